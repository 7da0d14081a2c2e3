//! Podman's own API (libpod), served on the same socket as its
//! Docker-compatible one, for what that API leaves out: the action Podman
//! itself takes when a health check fails (`--health-on-failure`).

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::endpoint::Endpoint;

/// The longest one libpod request may take: it is asked only about an
/// unhealthy container, and an answer that does not come means "unknown".
const LIBPOD_TIMEOUT: Duration = Duration::from_secs(5);

/// What Podman does itself when a container's health check fails
/// (`podman run --health-on-failure=…`; `none`, the default, is no action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthOnFailure {
    /// Podman restarts the container.
    Restart,
    /// Podman kills it (for a systemd unit's `Restart=` to bring it back).
    Kill,
    /// Podman stops it (likewise).
    Stop,
}

impl HealthOnFailure {
    /// From libpod's `Config.HealthcheckOnFailureAction`; None for `none` and anything unknown.
    pub fn parse(action: &str) -> Option<Self> {
        match action {
            "restart" => Some(Self::Restart),
            "kill" => Some(Self::Kill),
            "stop" => Some(Self::Stop),
            _ => None,
        }
    }

    /// Podman's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Restart => "restart",
            Self::Kill => "kill",
            Self::Stop => "stop",
        }
    }
}

/// The container's `--health-on-failure` action as libpod reports it; None
/// when it has none, or the engine does not answer libpod's API (Docker
/// answers 404).
pub(crate) async fn health_on_failure(endpoint: &Endpoint, id: &str) -> Option<HealthOnFailure> {
    let path = format!("/v4.0.0/libpod/containers/{id}/json");
    let inspect = match tokio::time::timeout(LIBPOD_TIMEOUT, get_json(endpoint, &path)).await {
        Ok(Ok(inspect)) => inspect,
        Ok(Err(error)) => {
            tracing::debug!(%error, container = %id, "No libpod inspect");
            return None;
        }
        Err(_) => {
            tracing::debug!(container = %id, "The libpod inspect did not answer in time");
            return None;
        }
    };
    inspect["Config"]["HealthcheckOnFailureAction"]
        .as_str()
        .and_then(HealthOnFailure::parse)
}

/// One GET on the engine's socket; the body as JSON when the answer is 200.
async fn get_json(endpoint: &Endpoint, path: &str) -> Result<serde_json::Value, String> {
    let body = match endpoint {
        Endpoint::Unix(socket) => {
            let stream = tokio::net::UnixStream::connect(socket).await;
            get(stream.map_err(|e| e.to_string())?, path).await?
        }
        Endpoint::Http(addr) => {
            let stream = tokio::net::TcpStream::connect(addr).await;
            get(stream.map_err(|e| e.to_string())?, path).await?
        }
    };
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

async fn get(
    stream: impl AsyncRead + AsyncWrite + Send + Unpin + 'static,
    path: &str,
) -> Result<Bytes, String> {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let request = hyper::Request::get(path)
        .header("host", "podman")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let exchange = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.into_body().collect().await;
        let body = body.map_err(|e| e.to_string())?.to_bytes();
        if !status.is_success() {
            return Err(format!("{path} answered {status}"));
        }
        Ok(body)
    };
    // The connection is driven beside the one request it serves (no task of its own).
    tokio::select! {
        biased;
        result = exchange => result,
        ended = connection => Err(match ended {
            Ok(()) => "the engine closed the connection".to_owned(),
            Err(error) => error.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_podmans_words() {
        assert_eq!(
            HealthOnFailure::parse("restart"),
            Some(HealthOnFailure::Restart)
        );
        assert_eq!(HealthOnFailure::parse("kill"), Some(HealthOnFailure::Kill));
        assert_eq!(HealthOnFailure::parse("stop"), Some(HealthOnFailure::Stop));
        assert_eq!(HealthOnFailure::parse("none"), None);
        assert_eq!(HealthOnFailure::parse(""), None);
    }
}
