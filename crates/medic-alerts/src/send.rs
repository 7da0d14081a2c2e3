//! One delivery attempt to one sink: an HTTP POST (webhook, Slack,
//! Alertmanager) or a command with the alert on stdin, under the sink's
//! timeout. Error messages are built here and scrubbed of the sink's secrets.

use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;

use medic_core::config::{AlertSink, Secret, SinkKind};
use medic_core::delivery::{Outcome, http_outcome};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tokio::io::AsyncWriteExt;

use super::format;

/// A failed attempt: whether to try again, and why (without secrets).
#[derive(Debug, Clone)]
pub struct Failure {
    /// `Retry` or `GiveUp`.
    pub outcome: Outcome,
    /// What went wrong, safe to log and show.
    pub message: String,
}

/// One delivery attempt elsewhere than the network or a process: the seam
/// a simulated world (`medic-sim`) stands behind, in place of every sink's
/// endpoint or command.
pub trait Post: Send + Sync + std::fmt::Debug {
    /// Delivers alert `id` (its `body` in the sink's format) to sink `sink`;
    /// an error is retried like a sink's 5xx.
    fn post(&self, sink: &str, id: &str, body: &[u8]) -> PostRun;
}

/// One attempt of a [`Post`].
pub type PostRun = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Sends to one sink.
#[derive(Debug)]
pub struct Sender {
    sink: AlertSink,
    client: reqwest::Client,
    /// Where attempts go instead of the sink itself (a simulation).
    post: Option<Arc<dyn Post>>,
}

impl Sender {
    /// A sender with its own HTTP client (the sink's timeout, no redirects),
    /// or whose attempts go to `post`.
    pub fn new(sink: &AlertSink, post: Option<Arc<dyn Post>>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(sink.timeout)
            .connect_timeout(sink.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("medic/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot build the HTTP client of sink `{}`: {}",
                    sink.name,
                    e.without_url()
                )
            })?;
        Ok(Self {
            sink: sink.clone(),
            client,
            post,
        })
    }

    /// The sink this sends to.
    pub fn sink(&self) -> &AlertSink {
        &self.sink
    }

    /// One attempt to deliver `body` (already in the sink's format) for alert `id`.
    pub async fn attempt(&self, id: &str, body: &[u8]) -> Result<(), Failure> {
        if let Some(post) = &self.post {
            // Bounded by the sink's timeout, as the HTTP client's attempts are.
            let attempt = post.post(&self.sink.name, id, body);
            let result = tokio::time::timeout(self.sink.timeout, attempt)
                .await
                .unwrap_or_else(|_| {
                    let took = humantime::format_duration(self.sink.timeout);
                    Err(format!("no answer within {took}"))
                });
            return result.map_err(|message| Failure {
                outcome: Outcome::Retry,
                message,
            });
        }
        let result = match &self.sink.kind {
            SinkKind::Webhook {
                url,
                headers,
                hmac_secret,
            } => {
                let signature = hmac_secret
                    .as_ref()
                    .map(|key| format::signature(key.expose().as_bytes(), body));
                self.post(url.expose(), headers, id, body, signature).await
            }
            SinkKind::Slack { url, headers } => {
                self.post(url.expose(), headers, id, body, None).await
            }
            SinkKind::Alertmanager { urls, headers, .. } => {
                self.post_every(urls, headers, id, body).await
            }
            SinkKind::Exec { command } => self.exec(command, body).await,
        };
        result.map_err(|failure| Failure {
            message: self.redact(failure.message),
            ..failure
        })
    }

    /// Posts to every Alertmanager of a cluster at once, as Prometheus does
    /// (their HA model: each one gets every alert, they deduplicate
    /// notifications among themselves). Delivered when at least one took it; a
    /// member that was down gets what still fires with the next re-post.
    async fn post_every(
        &self,
        urls: &[Secret],
        headers: &[(String, Secret)],
        id: &str,
        body: &[u8],
    ) -> Result<(), Failure> {
        let posts = urls.iter().map(|url| async move {
            let url = format!("{}/api/v2/alerts", url.expose().trim_end_matches('/'));
            self.post(&url, headers, id, body, None).await
        });
        let results = futures_util::future::join_all(posts).await;
        let failures: Vec<Failure> = results.into_iter().filter_map(Result::err).collect();
        if failures.len() < urls.len() {
            for failure in &failures {
                let error = self.redact(failure.message.clone());
                tracing::warn!(sink = %self.sink.name, %error, "One Alertmanager of the sink did not take the alert");
            }
            return Ok(());
        }
        let outcome = if failures.iter().any(|f| f.outcome == Outcome::Retry) {
            Outcome::Retry
        } else {
            Outcome::GiveUp
        };
        let messages: Vec<String> = failures.into_iter().map(|f| f.message).collect();
        Err(Failure {
            outcome,
            message: messages.join("; "),
        })
    }

    async fn post(
        &self,
        url: &str,
        headers: &[(String, Secret)],
        id: &str,
        body: &[u8],
        signature: Option<String>,
    ) -> Result<(), Failure> {
        let mut map = HeaderMap::new();
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in headers {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value.expose()),
            ) else {
                return Err(Failure {
                    outcome: Outcome::GiveUp,
                    message: format!("header `{name}` is not a valid HTTP header"),
                });
            };
            map.insert(name, value);
        }
        if let Ok(value) = HeaderValue::from_str(id) {
            map.insert("x-medic-alert-id", value);
        }
        if let Some(signature) = signature.and_then(|s| HeaderValue::from_str(&s).ok()) {
            map.insert("x-medic-signature", signature);
        }
        let response = self
            .client
            .post(url)
            .headers(map)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| Failure {
                outcome: Outcome::Retry,
                message: self.describe(&e),
            })?;
        let status = response.status();
        match http_outcome(status.as_u16()) {
            Outcome::Delivered => Ok(()),
            outcome => Err(Failure {
                outcome,
                message: format!("HTTP {}", status.as_u16()),
            }),
        }
    }

    async fn exec(&self, command: &[Secret], body: &[u8]) -> Result<(), Failure> {
        let argv: Vec<&str> = command.iter().map(Secret::expose).collect();
        let Some((program, args)) = argv.split_first() else {
            return Err(Failure {
                outcome: Outcome::GiveUp,
                message: "empty command".into(),
            });
        };
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Failure {
                outcome: match e.kind() {
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                        Outcome::GiveUp
                    }
                    _ => Outcome::Retry,
                },
                message: format!("cannot run the command: {e}"),
            })?;
        let run = async {
            if let Some(mut stdin) = child.stdin.take() {
                // One JSON line. A command that does not read its stdin is its own business.
                stdin.write_all(body).await.ok();
                stdin.write_all(b"\n").await.ok();
            }
            child.wait().await
        };
        match tokio::time::timeout(self.sink.timeout, run).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(Failure {
                outcome: Outcome::Retry,
                message: format!("the command failed: {status}"),
            }),
            Ok(Err(e)) => Err(Failure {
                outcome: Outcome::Retry,
                message: format!("cannot wait for the command: {e}"),
            }),
            // Dropping the child kills it (kill_on_drop).
            Err(_) => Err(Failure {
                outcome: Outcome::Retry,
                message: format!(
                    "the command timed out after {}",
                    humantime::format_duration(self.sink.timeout)
                ),
            }),
        }
    }

    /// A reqwest error in words, without the URL (it may hold a token).
    fn describe(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            return format!(
                "timed out after {}",
                humantime::format_duration(self.sink.timeout)
            );
        }
        let what = if error.is_connect() {
            "cannot connect"
        } else {
            "request failed"
        };
        let mut causes = Vec::new();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            causes.push(cause.to_string());
            source = cause.source();
        }
        match causes.last() {
            Some(root) => format!("{what}: {root}"),
            None => what.to_owned(),
        }
    }

    /// Removes every secret of the sink from a message.
    fn redact(&self, mut message: String) -> String {
        let mut secrets: Vec<&str> = Vec::new();
        match &self.sink.kind {
            SinkKind::Webhook {
                url,
                headers,
                hmac_secret,
            } => {
                secrets.push(url.expose());
                secrets.extend(headers.iter().map(|(_, v)| v.expose()));
                secrets.extend(hmac_secret.iter().map(Secret::expose));
            }
            SinkKind::Slack { url, headers } => {
                secrets.push(url.expose());
                secrets.extend(headers.iter().map(|(_, v)| v.expose()));
            }
            SinkKind::Alertmanager { urls, headers, .. } => {
                secrets.extend(urls.iter().map(Secret::expose));
                secrets.extend(headers.iter().map(|(_, v)| v.expose()));
            }
            SinkKind::Exec { command } => {
                secrets.extend(command.iter().skip(1).map(Secret::expose))
            }
        }
        for secret in secrets.into_iter().filter(|s| s.len() >= 4) {
            message = message.replace(secret, "<redacted>");
        }
        message
    }
}
