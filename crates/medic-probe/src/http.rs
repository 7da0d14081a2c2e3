//! The http probe: one request with the whole exchange (connect, headers,
//! capped body) bounded by the probe timeout, judged by status, body and latency.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use medic_core::Observation;
use medic_core::config::HttpProbe;
use reqwest::{Client, Method, Url, redirect};
use tokio::time::Instant;

use crate::ProbeError;

/// Bytes of body kept as evidence.
const EXCERPT: usize = 512;

/// Reqwest clients shared by every probe with the same TLS and redirect
/// settings: one connection pool and TLS config, not one per endpoint.
#[derive(Debug, Default)]
pub struct ClientPool {
    clients: Mutex<HashMap<ClientKey, Client>>,
}

/// What makes two probes' clients different: TLS verification, extra CA, redirects.
type ClientKey = (bool, Option<PathBuf>, bool);

impl ClientPool {
    fn get(&self, spec: &HttpProbe) -> Result<Client, ProbeError> {
        let key = (spec.tls_verify, spec.ca_file.clone(), spec.follow_redirects);
        // Invariant: the lock is never held across an await or a panic-prone call.
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let mut builder = Client::builder()
            .user_agent(concat!("medic/", env!("CARGO_PKG_VERSION")))
            .danger_accept_invalid_certs(!spec.tls_verify)
            .redirect(if spec.follow_redirects {
                redirect::Policy::limited(10)
            } else {
                redirect::Policy::none()
            });
        if let Some(path) = &spec.ca_file {
            let ca_error = |message: String| ProbeError::CaFile {
                path: path.display().to_string(),
                message,
            };
            let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
            let certificate =
                reqwest::Certificate::from_pem(&pem).map_err(|e| ca_error(e.to_string()))?;
            builder = builder.add_root_certificate(certificate);
        }
        let client = builder.build()?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}

/// One configured http probe.
#[derive(Debug)]
pub struct HttpCheck {
    spec: HttpProbe,
    client: Client,
    method: Method,
    /// The URL with any password removed, for evidence.
    shown_url: String,
}

impl HttpCheck {
    pub fn new(spec: HttpProbe, clients: &ClientPool) -> Result<Self, ProbeError> {
        let client = clients.get(&spec)?;
        let method = Method::from_bytes(spec.method.as_bytes()).unwrap_or(Method::GET);
        let shown_url = redact(&spec.url);
        Ok(Self {
            spec,
            client,
            method,
            shown_url,
        })
    }

    pub async fn run(&self, timeout: Duration) -> Observation {
        let started = Instant::now();
        let exchange = tokio::time::timeout(timeout, self.exchange()).await;
        let latency = started.elapsed();
        let observation = match exchange {
            Err(_) => Observation::fail(latency, format!("timed out after {timeout:?}")),
            Ok(Err(error)) => Observation::fail(latency, describe(&error)),
            Ok(Ok(answer)) => self.judge(answer, latency),
        };
        observation.with("url", self.shown_url.clone()).with(
            "latency_ms",
            u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        )
    }

    async fn exchange(&self) -> Result<Answer, reqwest::Error> {
        let mut request = self.client.request(self.method.clone(), &self.spec.url);
        for (name, value) in &self.spec.headers {
            request = request.header(name, value);
        }
        let mut response = request.send().await?;
        let status = response.status().as_u16();
        let cap = usize::try_from(self.spec.max_body).unwrap_or(usize::MAX);
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await? {
            let room = cap - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break; // dropping the response closes the connection: no more is read
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            body,
            truncated,
        })
    }

    fn judge(&self, answer: Answer, latency: Duration) -> Observation {
        let spec = &self.spec;
        let text = String::from_utf8_lossy(&answer.body);
        let problem = if !spec.expect_status.contains(&answer.status) {
            Some(format!(
                "HTTP {} (expected {})",
                answer.status,
                status_list(&spec.expect_status)
            ))
        } else if let Some(needle) = spec
            .body_contains
            .as_ref()
            .filter(|n| !text.contains(n.as_str()))
        {
            Some(format!("body does not contain {needle:?}"))
        } else if let Some(regex) = spec.body_regex.as_ref().filter(|r| !r.is_match(&text)) {
            Some(format!("body does not match /{}/", regex.as_str()))
        } else if let Some((pointer, expected)) = &spec.json_pointer {
            match serde_json::from_slice::<serde_json::Value>(&answer.body) {
                Err(error) => Some(format!("body is not JSON: {error}")),
                Ok(json) => match json.pointer(pointer) {
                    Some(value) if value == expected => None,
                    Some(value) => Some(format!("{pointer} is {value}, expected {expected}")),
                    None => Some(format!("{pointer} is missing from the body")),
                },
            }
        } else {
            spec.max_latency
                .filter(|max| latency > *max)
                .map(|max| format!("answered in {latency:?}, slower than max_latency {max:?}"))
        };
        let mut observation = match problem {
            Some(problem) => Observation::fail(latency, problem),
            None => Observation::ok(latency, format!("HTTP {}", answer.status)),
        };
        let excerpt: String = text.chars().take(EXCERPT).collect();
        observation = observation
            .with("status", answer.status)
            .with("body", excerpt);
        if answer.truncated {
            observation = observation.with("body_truncated", true);
        }
        observation
    }
}

struct Answer {
    status: u16,
    body: Vec<u8>,
    truncated: bool,
}

/// A short reason: "connection refused", "TLS certificate not trusted", …
fn describe(error: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    let mut innermost = error.to_string();
    while let Some(e) = source {
        innermost = e.to_string();
        source = e.source();
    }
    let what = if error.is_connect() {
        "cannot connect"
    } else if error.is_timeout() {
        "timed out"
    } else if error.is_body() || error.is_decode() {
        "body read failed"
    } else {
        "request failed"
    };
    format!("{what}: {innermost}")
}

fn status_list(statuses: &[u16]) -> String {
    let all_2xx: Vec<u16> = (200..300).collect();
    if statuses == all_2xx.as_slice() {
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
            parsed.set_password(None).ok();
            parsed.set_username("").ok();
            parsed.to_string()
        }
        Err(_) => url.to_owned(),
    }
}
