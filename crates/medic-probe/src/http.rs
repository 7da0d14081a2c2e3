//! The http probe: one request with the whole exchange (connect, TLS, headers,
//! capped body) bounded by the probe timeout, judged by status, body and latency.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use medic_core::Observation;
use medic_core::config::HttpProbe;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, Url, redirect};
use tokio::time::Instant;

use crate::{ProbeError, millis, reason};

/// Bytes of body kept as evidence.
const EXCERPT: usize = 512;

/// Redirects followed at most when a probe follows redirects.
const MAX_REDIRECTS: usize = 10;

/// Shares reqwest clients between probes with the same TLS and redirect
/// settings: 10,000 endpoints mean one client (one TLS config, one root
/// store) per distinct setting, not one per endpoint.
///
/// Clients that may speak TLS trust the system's roots (read once, when the
/// first such client is built: `SSL_CERT_FILE` / `SSL_CERT_DIR` when set,
/// else the platform's store) and the bundled web PKI roots, plus a probe's
/// `ca_file`, as blackbox_exporter and curl do: a service behind an internal
/// CA the host trusts needs no `ca_file`. A plain `http://` probe that follows
/// no redirects never speaks TLS: its client holds no roots, and a config of
/// such probes never reads or keeps the system's store.
///
/// The clients keep no idle connections: every check opens a fresh
/// connection (so it proves the server still accepts them, as kubelet's probes
/// do) and closes it, so file descriptors are bounded by the checks running
/// at once rather than by the number of endpoints. System proxy variables
/// are ignored: a probe judges the endpoint, not a proxy.
#[derive(Debug, Default)]
pub struct ClientPool {
    clients: Mutex<HashMap<ClientKey, Client>>,
    /// The system's trusted roots, read when the first TLS client is built.
    system_roots: OnceLock<Vec<reqwest::Certificate>>,
}

/// The system's trusted roots, as reqwest certificates.
fn load_system_roots() -> Vec<reqwest::Certificate> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "Cannot read some of the system's trusted certificates");
    }
    found
        .certs
        .iter()
        .filter_map(|der| reqwest::Certificate::from_der(der).ok())
        .collect()
}

/// What makes two probes' clients different. The CA is keyed by its content,
/// so a probe rebuilt after the file changed (config reload) gets a client
/// that trusts the new certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    /// Whether the client may speak TLS: an `https://` URL, a redirect that
    /// may lead to one, or a `ca_file` (checked like any TLS setting).
    tls: bool,
    tls_verify: bool,
    ca_pem: Option<Vec<u8>>,
    follow_redirects: bool,
}

impl ClientPool {
    /// An empty pool; the system's roots are read with its first TLS client.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many distinct clients the pool holds.
    pub fn client_count(&self) -> usize {
        self.lock().len()
    }

    /// Whether the system's roots were read: only a client that may speak TLS needs them.
    pub fn has_system_roots(&self) -> bool {
        self.system_roots.get().is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, Client>> {
        // A poisoned map is still a valid map: inserts are single calls.
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn client(&self, spec: &HttpProbe, url: &Url) -> Result<Client, ProbeError> {
        let ca_pem = match &spec.ca_file {
            None => None,
            Some(path) => Some(
                std::fs::read(path).map_err(|source| ProbeError::CaFileRead {
                    path: path.display().to_string(),
                    source,
                })?,
            ),
        };
        let key = ClientKey {
            tls: url.scheme() == "https" || spec.follow_redirects || ca_pem.is_some(),
            tls_verify: spec.tls_verify,
            ca_pem,
            follow_redirects: spec.follow_redirects,
        };
        // The lock is held while building so one setting never builds two clients;
        // building does no IO but the first TLS client's read of the system
        // roots (at start, or at the reload that adds the first HTTPS probe,
        // which reads its config and CA files the same way), and the guard
        // never crosses an await.
        let mut clients = self.lock();
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let mut builder = Client::builder()
            .user_agent(concat!("medic/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .pool_max_idle_per_host(0)
            .tls_info(true)
            .danger_accept_invalid_certs(!key.tls_verify)
            .redirect(if key.follow_redirects {
                redirect::Policy::limited(MAX_REDIRECTS)
            } else {
                redirect::Policy::none()
            });
        if key.tls {
            for root in self.system_roots.get_or_init(load_system_roots) {
                builder = builder.add_root_certificate(root.clone());
            }
        } else {
            builder = builder.tls_built_in_root_certs(false);
        }
        if let (Some(pem), Some(path)) = (&key.ca_pem, &spec.ca_file) {
            let content_error = |source| ProbeError::CaFileContent {
                path: path.display().to_string(),
                source,
            };
            let certificates =
                reqwest::Certificate::from_pem_bundle(pem).map_err(|e| content_error(Some(e)))?;
            if certificates.is_empty() {
                return Err(content_error(None));
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder.build().map_err(ProbeError::Client)?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}

/// One configured http probe: URL, method and headers parsed once; the
/// checks on the answer are read from the shared config.
#[derive(Debug)]
pub struct HttpCheck {
    client: Client,
    method: Method,
    url: Url,
    headers: HeaderMap,
    /// The URL without userinfo, for evidence and messages.
    shown_url: String,
    spec: Arc<HttpProbe>,
    max_body: usize,
}

impl HttpCheck {
    pub fn new(spec: &Arc<HttpProbe>, clients: &ClientPool) -> Result<Self, ProbeError> {
        let shown_url = redact(&spec.url);
        let url = Url::parse(&spec.url).map_err(|e| ProbeError::Url {
            url: shown_url.clone(),
            source: Box::new(e),
        })?;
        let method = Method::from_bytes(spec.method.as_bytes())
            .map_err(|_| ProbeError::Method(spec.method.clone()))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &spec.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ProbeError::Header(name.clone()))?;
            let mut value = HeaderValue::from_str(value.expose())
                .map_err(|_| ProbeError::Header(name.to_string()))?;
            // Debug of the request and its HeaderMap prints `Sensitive`.
            value.set_sensitive(true);
            headers.append(name, value);
        }
        Ok(Self {
            client: clients.client(spec, &url)?,
            method,
            url,
            headers,
            shown_url,
            spec: spec.clone(),
            max_body: usize::try_from(spec.max_body).unwrap_or(usize::MAX),
        })
    }

    pub async fn run(&self, timeout: Duration) -> Observation {
        let started = Instant::now();
        let mut answer = Answer::default();
        let exchange = tokio::time::timeout(timeout, self.exchange(&mut answer)).await;
        let latency = started.elapsed();
        let observation = match exchange {
            Err(_) => {
                let message = match answer.status {
                    Some(status) => {
                        format!("timed out after {timeout:?} reading the body (HTTP {status})")
                    }
                    None => format!("timed out after {timeout:?}"),
                };
                Observation::fail(latency, message)
                    .with("failed_check", "timeout")
                    .with("timed_out", true)
            }
            Ok(Err(error)) => {
                let (check, message) = describe(&error);
                Observation::fail(latency, message).with("failed_check", check)
            }
            Ok(Ok(())) => self.judge(&answer, latency),
        };
        let observation = answer.evidence(observation, &self.shown_url, latency);
        self.redact(observation)
    }

    /// Header values are secrets: a server that echoes one back (in its body,
    /// an error) must not put it in the evidence, the recovery log or alerts.
    fn redact(&self, mut observation: Observation) -> Observation {
        let secrets: Vec<&str> = self
            .spec
            .headers
            .iter()
            .map(|(_, value)| value.expose())
            .filter(|value| value.len() >= 4)
            .collect();
        if secrets.is_empty() {
            return observation;
        }
        let scrub = |text: &mut String| {
            for secret in &secrets {
                if text.contains(secret) {
                    *text = text.replace(secret, "<redacted>");
                }
            }
        };
        scrub(&mut observation.message);
        for value in observation.evidence.values_mut() {
            if let serde_json::Value::String(text) = value {
                scrub(text);
            }
        }
        observation
    }

    /// Sends the request and reads at most `max_body` bytes of the body into
    /// `answer`, which keeps what arrived when the timeout cuts this short.
    async fn exchange(&self, answer: &mut Answer) -> Result<(), reqwest::Error> {
        let mut response = self
            .client
            .request(self.method.clone(), self.url.clone())
            .headers(self.headers.clone())
            .send()
            .await?;
        answer.status = Some(response.status().as_u16());
        answer.cert_expiry = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|tls| tls.peer_certificate())
            .and_then(not_after);
        if response.url() != &self.url {
            answer.final_url = Some(redact(response.url().as_str()));
        }
        while let Some(chunk) = response.chunk().await? {
            let room = self.max_body - answer.body.len();
            if chunk.len() > room {
                answer.body.extend_from_slice(&chunk[..room]);
                answer.truncated = true;
                // Dropping the response closes the connection: nothing more is read.
                break;
            }
            answer.body.extend_from_slice(&chunk);
        }
        Ok(())
    }

    fn judge(&self, answer: &Answer, latency: Duration) -> Observation {
        let spec = &self.spec;
        let status = answer.status.unwrap_or_default();
        let text = String::from_utf8_lossy(&answer.body);
        let problem: Option<(&str, String)> = if !spec.expect_status.contains(&status) {
            Some((
                "status",
                format!(
                    "HTTP {status} (expected {})",
                    status_list(&spec.expect_status)
                ),
            ))
        } else if let Some(needle) = spec
            .body_contains
            .as_ref()
            .filter(|n| !text.contains(n.as_str()))
        {
            Some(("body_contains", format!("body does not contain {needle:?}")))
        } else if let Some(regex) = spec.body_regex.as_ref().filter(|r| !r.is_match(&text)) {
            Some((
                "body_regex",
                format!("body does not match /{}/", regex.as_str()),
            ))
        } else if let Some(problem) = self.json_problem(answer) {
            Some(("json_pointer", problem))
        } else {
            spec.max_latency.filter(|max| latency > *max).map(|max| {
                (
                    "max_latency",
                    format!("answered in {latency:?}, slower than max_latency {max:?}"),
                )
            })
        };
        match problem {
            Some((check, message)) => {
                Observation::fail(latency, message).with("failed_check", check)
            }
            None => Observation::ok(latency, format!("HTTP {status}")),
        }
    }

    /// Why the body fails the json_pointer check, if it does.
    fn json_problem(&self, answer: &Answer) -> Option<String> {
        let (pointer, expected) = self.spec.json_pointer.as_ref()?;
        let json = match serde_json::from_slice::<serde_json::Value>(&answer.body) {
            Ok(json) => json,
            Err(error) if answer.truncated => {
                return Some(format!(
                    "body is not JSON: {error} (read only the first {} bytes, max_body)",
                    self.max_body
                ));
            }
            Err(error) => return Some(format!("body is not JSON: {error}")),
        };
        match json.pointer(pointer) {
            Some(value) if value == expected => None,
            Some(value) => Some(format!("{pointer} is {value}, expected {expected}")),
            None => Some(format!("{pointer} is missing from the body")),
        }
    }
}

/// What came back, as far as it got.
#[derive(Debug, Default)]
struct Answer {
    status: Option<u16>,
    final_url: Option<String>,
    body: Vec<u8>,
    truncated: bool,
    /// When the server's certificate expires (HTTPS only).
    cert_expiry: Option<i64>,
}

impl Answer {
    fn evidence(&self, observation: Observation, url: &str, latency: Duration) -> Observation {
        let mut observation = observation
            .with("url", url)
            .with("latency_ms", millis(latency));
        if let Some(status) = self.status {
            observation = observation
                .with("status", status)
                .with("body", excerpt(&self.body));
        }
        if let Some(final_url) = &self.final_url {
            observation = observation.with("final_url", final_url.as_str());
        }
        if self.truncated {
            observation = observation.with("body_truncated", true);
        }
        observation.cert_expiry = self.cert_expiry;
        observation
    }
}

/// A DER certificate's notAfter in seconds since the Unix epoch (None when
/// it does not parse: the probe's verdict does not depend on it).
fn not_after(der: &[u8]) -> Option<i64> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(certificate.validity().not_after.timestamp())
}

/// The first [`EXCERPT`] bytes as text, cut on a character boundary.
fn excerpt(body: &[u8]) -> String {
    let mut end = body.len().min(EXCERPT);
    if end < body.len() {
        // Back off over UTF-8 continuation bytes (at most 3) so the cut does
        // not leave a broken character behind.
        while end > EXCERPT - 3 && (body[end] & 0xC0) == 0x80 {
            end -= 1;
        }
    }
    String::from_utf8_lossy(&body[..end]).into_owned()
}

/// The failed check and a short reason: "cannot connect: connection refused", …
fn describe(error: &reqwest::Error) -> (&'static str, String) {
    let reason = reason::innermost(error);
    if error.is_connect() {
        ("connect", format!("cannot connect: {reason}"))
    } else if error.is_redirect() {
        ("redirect", format!("redirect failed: {reason}"))
    } else if error.is_body() || error.is_decode() {
        ("body", format!("body read failed: {reason}"))
    } else if let Some(io_error) = reason::find_io(error) {
        (
            "request",
            format!("request failed: {}", reason::io(io_error)),
        )
    } else {
        ("request", format!("request failed: {reason}"))
    }
}

fn status_list(statuses: &[u16]) -> String {
    if statuses.len() == 100 && statuses.iter().copied().eq(200..300) {
        return "2xx".into();
    }
    statuses
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The URL without userinfo, so secrets never reach logs or alerts.
fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            // Both fail only for URLs that cannot have userinfo, which then have none.
            parsed.set_password(None).ok();
            parsed.set_username("").ok();
            parsed.to_string()
        }
        // Unparseable: keep only what cannot be userinfo.
        Err(_) => match url.split_once("://") {
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://{host}"),
                None => url.to_owned(),
            },
            None => url.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_removes_userinfo() {
        assert_eq!(
            redact("https://user:pw@example.com:8443/x?y=1"),
            "https://example.com:8443/x?y=1"
        );
        assert_eq!(redact("http://example.com/"), "http://example.com/");
        assert_eq!(redact("http://us er:pw@[bad/"), "http://[bad/");
    }

    #[test]
    fn excerpts_cut_on_character_boundaries() {
        let mut body = vec![b'a'; EXCERPT - 1];
        body.extend_from_slice("é and more".as_bytes());
        let cut = excerpt(&body);
        assert_eq!(cut.len(), EXCERPT - 1);
        assert!(!cut.contains('\u{FFFD}'));
        assert_eq!(excerpt(b"short"), "short");
    }

    #[test]
    fn status_lists_are_short() {
        assert_eq!(status_list(&(200..300).collect::<Vec<_>>()), "2xx");
        assert_eq!(status_list(&[200, 204]), "200, 204");
    }
}
