//! A fault proxy on a unix socket in front of a Docker engine: medic talks
//! to the engine through it, and a test scripts, per request method and path,
//! what happens to each call: it passes through, its answer's body is held
//! forever (Docker's `wait` on a container that never stops), it is delayed,
//! answered 500, dropped, or its JSON answer is edited (a state the real
//! engine cannot be brought into, such as a container stuck in removal).
//!
//! Everything else is the real engine's: the proxy forwards each request on
//! a connection of its own and relays the answer as it streams (the event
//! stream included). It runs on a runtime of its own, so plain `#[test]`s
//! use it; dropping it closes every connection, held ones too.

use std::convert::Infallible;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// An edit of a JSON answer.
pub type Edit = Arc<dyn Fn(&mut Value) + Send + Sync>;

/// What the proxy does with a call.
#[derive(Clone)]
pub enum Fault {
    /// Forwards it and relays the answer as it comes.
    Pass,
    /// Forwards it, relays the status and headers, and never sends the body.
    HoldBody,
    /// Waits this long, then forwards it.
    Delay(Duration),
    /// Answers this status with Docker's error body, without forwarding.
    Status(u16),
    /// Closes the connection without an answer.
    Drop,
    /// Forwards it and answers with its JSON body as `edit` leaves it.
    Edit(Edit),
}

/// One scripted rule: a method (`*`: any) and a path pattern.
struct Rule {
    method: String,
    path: String,
    fault: Fault,
}

impl Rule {
    /// Whether it applies: the path without Docker's `/v1.xx` prefix and the
    /// query, segment by segment, `*` matching any one segment.
    fn matches(&self, method: &str, path: &str) -> bool {
        if self.method != "*" && !self.method.eq_ignore_ascii_case(method) {
            return false;
        }
        let wanted: Vec<&str> = self.path.trim_matches('/').split('/').collect();
        let got: Vec<&str> = unversioned(path).trim_matches('/').split('/').collect();
        wanted.len() == got.len() && wanted.iter().zip(&got).all(|(w, g)| *w == "*" || w == g)
    }
}

/// `/v1.47/containers/x/json` → `/containers/x/json`.
fn unversioned(path: &str) -> &str {
    let path = path.split('?').next().unwrap_or_default();
    match path
        .strip_prefix("/v")
        .and_then(|rest| rest.split_once('/'))
    {
        Some((version, rest)) if version.chars().all(|c| c.is_ascii_digit() || c == '.') => {
            &path[path.len() - rest.len() - 1..]
        }
        _ => path,
    }
}

/// What the test scripted and what the proxy saw, shared with its tasks.
#[derive(Default)]
struct Script {
    /// Newest first: a later rule overrides an earlier one.
    rules: Mutex<Vec<Rule>>,
    /// Every request seen, as `METHOD /path` (unversioned, no query).
    seen: Mutex<Vec<String>>,
    /// Answers whose body is being held now.
    held: AtomicUsize,
}

impl Script {
    fn fault(&self, method: &str, path: &str) -> Fault {
        let rules = self.rules.lock().unwrap_or_else(PoisonError::into_inner);
        rules
            .iter()
            .find(|rule| rule.matches(method, path))
            .map_or(Fault::Pass, |rule| rule.fault.clone())
    }
}

/// The proxy: its socket, its script, its runtime.
pub struct FaultProxy {
    dir: tempfile::TempDir,
    script: Arc<Script>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FaultProxy {
    /// Listens on a socket of its own in front of `upstream` (`unix:///path` or `/path`).
    pub fn start(upstream: &str) -> Self {
        let upstream = PathBuf::from(upstream.strip_prefix("unix://").unwrap_or(upstream));
        let dir = tempfile::Builder::new()
            .prefix("medic-fault-proxy")
            .tempdir_in("/tmp")
            .expect("a temp dir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the fault proxy");
        let script = Arc::new(Script::default());
        let socket = dir.path().join("docker.sock");
        let listener = {
            let _entered = runtime.enter();
            tokio::net::UnixListener::bind(&socket).expect("bind the proxy's socket")
        };
        runtime.spawn(serve(listener, upstream, script.clone()));
        Self {
            dir,
            script,
            runtime: Some(runtime),
        }
    }

    /// Its address, for medic's `docker_host`.
    pub fn host(&self) -> String {
        format!("unix://{}/docker.sock", self.dir.path().display())
    }

    /// From now on, `method` (`GET`, …, `*`) on `path` (`/containers/web/wait`,
    /// `*` for one segment) meets `fault`; it overrides earlier rules.
    pub fn on(&self, method: &str, path: &str, fault: Fault) {
        let rule = Rule {
            method: method.to_owned(),
            path: path.to_owned(),
            fault,
        };
        let mut rules = self
            .script
            .rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        rules.insert(0, rule);
    }

    /// Every call passes through again (answers already held stay held).
    pub fn clear(&self) {
        let mut rules = self
            .script
            .rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        rules.clear();
    }

    /// How many answers it holds the body of now.
    pub fn held(&self) -> usize {
        self.script.held.load(Ordering::SeqCst)
    }

    /// How many requests `method` on `path` it has seen (same patterns as [`Self::on`]).
    pub fn count(&self, method: &str, path: &str) -> usize {
        let rule = Rule {
            method: method.to_owned(),
            path: path.to_owned(),
            fault: Fault::Pass,
        };
        let seen = self
            .script
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        seen.iter()
            .filter(|line| {
                let (method, path) = line.split_once(' ').unwrap_or_default();
                rule.matches(method, path)
            })
            .count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Without waiting for held answers: their tasks are dropped, their connections closed.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Accepts connections until the runtime stops.
async fn serve(listener: tokio::net::UnixListener, upstream: PathBuf, script: Arc<Script>) {
    while let Ok((stream, _)) = listener.accept().await {
        let (upstream, script) = (upstream.clone(), script.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                handle(request, upstream.clone(), script.clone())
            });
            // A dropped call ends the connection with an error: nothing to report.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The error a service returns to make hyper close the connection unanswered.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dropped by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

async fn handle(
    request: Request<Incoming>,
    upstream: PathBuf,
    script: Arc<Script>,
) -> Result<Response<ProxyBody>, Dropped> {
    let (method, path) = (
        request.method().to_string(),
        request.uri().path().to_owned(),
    );
    script
        .seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(format!("{method} {}", unversioned(&path)));
    let fault = script.fault(&method, &path);
    match fault {
        Fault::Drop => return Err(Dropped),
        Fault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = serde_json::json!({ "message": format!("fault proxy: injected {code}") });
            return Ok(json(status, &body));
        }
        Fault::Delay(delay) => tokio::time::sleep(delay).await,
        Fault::Pass | Fault::HoldBody | Fault::Edit(_) => {}
    }
    let response = match forward(request, &upstream).await {
        Ok(response) => response,
        Err(error) => {
            let body = serde_json::json!({ "message": format!("fault proxy: upstream: {error}") });
            return Ok(json(StatusCode::BAD_GATEWAY, &body));
        }
    };
    Ok(match fault {
        Fault::HoldBody => {
            let (parts, _body) = response.into_parts();
            Response::from_parts(parts, BoxBody::new(Held::new(script)))
        }
        Fault::Edit(edit) => {
            let (mut parts, body) = response.into_parts();
            let bytes = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => return Err(Dropped),
            };
            let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
                let body = Full::new(bytes).map_err(|never| match never {}).boxed();
                return Ok(Response::from_parts(parts, body));
            };
            edit(&mut value);
            parts.headers.remove(hyper::header::CONTENT_LENGTH);
            parts.headers.remove(hyper::header::TRANSFER_ENCODING);
            let body = Full::new(Bytes::from(value.to_string()));
            Response::from_parts(parts, body.map_err(|never| match never {}).boxed())
        }
        _ => response.map(BodyExt::boxed),
    })
}

/// Sends one request to the engine on a connection of its own.
async fn forward(
    request: Request<Incoming>,
    upstream: &PathBuf,
) -> Result<Response<Incoming>, String> {
    let stream = tokio::net::UnixStream::connect(upstream)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    // Driven for as long as the answer streams; it ends with the connection.
    tokio::spawn(connection);
    sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())
}

fn json(status: StatusCode, body: &Value) -> Response<ProxyBody> {
    let body = Full::new(Bytes::from(body.to_string())).map_err(|never: Infallible| match never {});
    let mut response = Response::new(body.boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// A body that never yields: the answer's headers went out, the rest never
/// comes. Counted in [`FaultProxy::held`] while it lives.
struct Held(Arc<Script>);

impl Held {
    fn new(script: Arc<Script>) -> Self {
        script.held.fetch_add(1, Ordering::SeqCst);
        Self(script)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Body for Held {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_without_the_api_version() {
        let rule = Rule {
            method: "POST".into(),
            path: "/containers/*/wait".into(),
            fault: Fault::Pass,
        };
        assert!(rule.matches("POST", "/v1.47/containers/web/wait"));
        assert!(rule.matches("post", "/containers/web/wait?condition=removed"));
        assert!(!rule.matches("GET", "/v1.47/containers/web/wait"));
        assert!(!rule.matches("POST", "/v1.47/containers/web/json"));
        assert!(!rule.matches("POST", "/v1.47/containers/wait"));
        assert_eq!(unversioned("/v1.41/version"), "/version");
        assert_eq!(unversioned("/version"), "/version");
        assert_eq!(unversioned("/volumes/x"), "/volumes/x");
    }
}
