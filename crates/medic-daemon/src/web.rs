//! medic's HTTP listeners besides the unix control socket: `metrics_listen`
//! serves `/metrics` and, unless `status_listen` says otherwise, the status
//! page; `status_listen` serves the page alone, so a listener opened for
//! Prometheus need not show every incident's evidence. With `web_config`
//! (`web/security.rs`) they speak TLS and require basic authentication; the
//! TCP control listener takes its TLS too. SIGHUP reads the web config again
//! (new certificates for new connections; a broken file keeps the old one).

mod attempts;
mod schema;
mod security;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use medic_core::config::{Settings, StatusListen};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use security::{Guard, WebConfig};

use crate::shell::{ControlRequest, Shell};

/// How long accepting pauses after an error (EMFILE and the like), as axum's own server does.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// How long a client may take over its TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Loads `web_config` when set; an unreadable or invalid file stops medic from starting.
pub fn guard(settings: &Settings) -> anyhow::Result<Option<Guard>> {
    let Some(path) = &settings.web_config else {
        return Ok(None);
    };
    let guard = Guard::new(WebConfig::load(path)?);
    Ok(Some(guard))
}

/// Binds the configured listeners and serves them until shutdown; `guard` (from [`guard`]) secures them.
pub fn serve(
    settings: &Settings,
    shell: &Shell,
    guard: Option<&Guard>,
    requests: mpsc::Sender<ControlRequest>,
) -> anyhow::Result<()> {
    let secure = |app: Router| match guard {
        Some(guard) => app.layer(axum::middleware::from_fn_with_state(
            guard.clone(),
            security::basic_auth,
        )),
        None => app,
    };
    let page = crate::page::routes(requests.clone());
    let metrics = crate::metrics::routes(requests);
    if let Some(listen) = &settings.metrics_listen {
        let app = match settings.status_listen {
            StatusListen::WithMetrics => metrics.merge(page.clone()),
            StatusListen::Own(_) | StatusListen::Off => metrics,
        };
        listen_on(listen, "metrics_listen", shell, secure(app), guard)?;
    }
    if let StatusListen::Own(listen) = &settings.status_listen {
        listen_on(listen, "status_listen", shell, secure(page), guard)?;
    }
    if let Some(guard) = guard {
        reload_on_hangup(shell, guard.clone())?;
    }
    Ok(())
}

/// Serves `app` on `listen` (the config key `key` names it in errors), over
/// TLS when the guard has a certificate.
pub fn listen_on(
    listen: &str,
    key: &str,
    shell: &Shell,
    app: Router,
    guard: Option<&Guard>,
) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen on {listen} ({key})"))?;
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let run = accept(
        listener,
        app,
        guard.cloned(),
        shell.tracker.clone(),
        shell.cancel.clone(),
        key.to_owned(),
    );
    shell.tracker.spawn(run);
    Ok(())
}

/// Accepts connections until shutdown; each is served in a tracked task of its own.
async fn accept(
    listener: TcpListener,
    app: Router,
    guard: Option<Guard>,
    tracker: TaskTracker,
    cancel: CancellationToken,
    key: String,
) {
    loop {
        let (stream, peer) = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: pause so a failing
                    // accept cannot spin the runtime's only thread, then try again.
                    tracing::warn!(%error, listener = %key, "Cannot accept a connection");
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(ACCEPT_PAUSE) => continue,
                    }
                }
            },
        };
        stream.set_nodelay(true).ok();
        let tls = guard.as_ref().and_then(Guard::tls);
        let service = with_peer(app.clone(), peer);
        let cancel = cancel.clone();
        tracker.spawn(async move {
            match tls {
                Some(config) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => connection(TokioIo::new(stream), service, cancel).await,
                        Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
                None => connection(TokioIo::new(stream), service, cancel).await,
            }
        });
    }
}

/// The app for one connection: each request carries the client's address
/// (`ConnectInfo`), which the password check counts failures by.
fn with_peer(
    app: Router,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future + Send,
> + Clone
+ Send
+ 'static {
    hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        tower_service::Service::call(&mut app.clone(), request)
    })
}

/// Serves one HTTP/1.1 connection; at shutdown it finishes the request in flight.
async fn connection<I, S>(io: I, service: S, cancel: CancellationToken)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming> + Send,
    S::Future: Send,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE)
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
        }
        () = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await.ok();
        }
    }
}

/// Reads the web config again on every SIGHUP, off the runtime thread.
fn reload_on_hangup(shell: &Shell, guard: Guard) -> anyhow::Result<()> {
    let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    let cancel = shell.cancel.clone();
    shell.tracker.spawn(async move {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                got = hangup.recv() => if got.is_none() { return },
            }
            let again = guard.clone();
            match tokio::task::spawn_blocking(move || again.reload()).await {
                Ok(Ok(())) => tracing::info!("web_config reloaded"),
                Ok(Err(error)) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "web_config not reloaded; the previous one stays"
                    );
                }
                Err(error) => tracing::warn!(%error, "web_config reload failed"),
            }
        }
    });
    Ok(())
}

/// A listener open wider than it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// What is exposed, to whom.
    pub problem: String,
    /// What closes it.
    pub fix: &'static str,
}

impl std::fmt::Display for Exposure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; {}", self.problem, self.fix)
    }
}

/// What `medic config check` and `medic doctor` warn about: every listener
/// off loopback that serves evidence (the status page, `/api/status`,
/// `/metrics`) without authentication, TLS or not (TLS hides it from the wire,
/// not from whoever connects), and a TCP control listener off loopback
/// without TLS (its bearer token would travel in clear). Reads (and so
/// checks) `web_config`.
pub fn exposure_warnings(settings: &Settings) -> anyhow::Result<Vec<Exposure>> {
    let web = settings
        .web_config
        .as_deref()
        .map(WebConfig::load)
        .transpose()?;
    let authenticates = web.as_ref().is_some_and(WebConfig::authenticates);
    let tls = web.as_ref().is_some_and(|w| w.tls.is_some());
    let page = "the status page and /api/status (every service's state and every incident's evidence: log tails, probe bodies, command output)";
    let mut listeners: Vec<(&str, &str, String)> = Vec::new();
    if let Some(listen) = &settings.metrics_listen {
        let what = match settings.status_listen {
            StatusListen::WithMetrics => format!("/metrics and {page}"),
            _ => "/metrics (service names, states and labels)".to_owned(),
        };
        listeners.push(("metrics_listen", listen, what));
    }
    if let StatusListen::Own(listen) = &settings.status_listen {
        listeners.push(("status_listen", listen, page.to_owned()));
    }
    let mut warnings: Vec<Exposure> = listeners
        .into_iter()
        .filter(|(_, listen, _)| !authenticates && !is_loopback(listen))
        .map(|(key, listen, what)| {
            let without = if tls {
                "with TLS but without authentication"
            } else {
                "with neither TLS nor authentication"
            };
            Exposure {
                problem: format!(
                    "{key} = \"{listen}\" is reachable from other hosts {without}: it serves {what} to anyone who can connect"
                ),
                fix: "add basic_auth_users to web_config (docs/exposing.md) or listen on 127.0.0.1",
            }
        })
        .collect();
    if let Some(control) = settings
        .control_tcp
        .as_ref()
        .filter(|c| !tls && !is_loopback(&c.listen))
    {
        warnings.push(Exposure {
            problem: format!(
                "control_listen = \"{}\" is reachable from other hosts without TLS: its bearer token (pause, resume, reset, recover, deploy, forget, reload) travels in clear text for anyone on the path to read and reuse",
                control.listen
            ),
            fix: "set tls_server_config in web_config or listen on 127.0.0.1",
        });
    }
    Ok(warnings)
}

/// Whether a listen address (`host:port`) stays on this host.
fn is_loopback(listen: &str) -> bool {
    let host = listen.rsplit_once(':').map_or(listen, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses() {
        for listen in [
            "127.0.0.1:9464",
            "[::1]:9464",
            "localhost:9464",
            "127.0.0.2:1",
        ] {
            assert!(is_loopback(listen), "{listen}");
        }
        for listen in [
            "0.0.0.0:9464",
            "[::]:9464",
            "10.1.2.3:9464",
            "host1:9464",
            ":9464",
        ] {
            assert!(!is_loopback(listen), "{listen}");
        }
    }
}
