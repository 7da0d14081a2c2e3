//! Podman's own API (libpod), served on the same socket as its
//! Docker-compatible one, for what that API leaves out: the action Podman
//! itself takes when a health check fails (`--health-on-failure`), a wait
//! for a `stopped` container to be cleaned up or removed, and a compatible
//! inspect read as plain JSON when its state is one Docker has no word for.

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

/// The compatible API's inspect of a container as plain JSON (`Ok(None)`
/// when the engine answers 404): for an answer bollard cannot read.
pub(crate) async fn compat_inspect(
    endpoint: &Endpoint,
    id: &str,
) -> Result<Option<serde_json::Value>, String> {
    let path = format!("/containers/{id}/json");
    match request(endpoint, hyper::Method::GET, &path).await? {
        (hyper::StatusCode::NOT_FOUND, _) => Ok(None),
        (status, body) if status.is_success() => serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| e.to_string()),
        (status, _) => Err(format!("{path} answered {status}")),
    }
}

/// Waits until a container Podman shows `stopped` (its process ended, the
/// one who ended it not finished) is cleaned up (`exited`) or removed:
/// libpod's own wait, which the compatible API's conditions cannot express.
/// The caller bounds it.
pub(crate) async fn wait_exited(endpoint: &Endpoint, id: &str) -> Result<(), String> {
    let path = format!("/v4.0.0/libpod/containers/{id}/wait?condition=exited");
    match request(endpoint, hyper::Method::POST, &path).await? {
        // Removed meanwhile: settled all the same.
        (status, _) if status.is_success() || status.is_server_error() => Ok(()),
        (hyper::StatusCode::NOT_FOUND, _) => Ok(()),
        (status, _) => Err(format!("{path} answered {status}")),
    }
}

/// One GET on the engine's socket; the body as JSON when the answer is 200.
async fn get_json(endpoint: &Endpoint, path: &str) -> Result<serde_json::Value, String> {
    match request(endpoint, hyper::Method::GET, path).await? {
        (status, body) if status.is_success() => {
            serde_json::from_slice(&body).map_err(|e| e.to_string())
        }
        (status, _) => Err(format!("{path} answered {status}")),
    }
}

/// One request on the engine's socket: its status and body.
async fn request(
    endpoint: &Endpoint,
    method: hyper::Method,
    path: &str,
) -> Result<(hyper::StatusCode, Bytes), String> {
    match endpoint {
        Endpoint::Unix(socket) => {
            let stream = tokio::net::UnixStream::connect(socket).await;
            send(stream.map_err(|e| e.to_string())?, method, path).await
        }
        Endpoint::Http(addr) => {
            let stream = tokio::net::TcpStream::connect(addr).await;
            send(stream.map_err(|e| e.to_string())?, method, path).await
        }
    }
}

async fn send(
    stream: impl AsyncRead + AsyncWrite + Send + Unpin + 'static,
    method: hyper::Method,
    path: &str,
) -> Result<(hyper::StatusCode, Bytes), String> {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
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
        Ok((status, body.map_err(|e| e.to_string())?.to_bytes()))
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
