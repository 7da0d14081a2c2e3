//! A small HTTP/1 client for the daemon's control socket.

use std::path::Path;

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

/// Sends one request to the control socket; returns the status and the JSON body.
pub async fn call(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<(StatusCode, serde_json::Value)> {
    let (status, bytes) = call_raw(socket, method, path, body).await?;
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Ok((status, json))
}

/// Like [`call`], with the body as the daemon sent it (a status answer is
/// printed or parsed into its own type, never into a generic value first).
pub async fn call_raw(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let stream = UnixStream::connect(socket).await.with_context(|| {
        format!(
            "cannot reach the medic daemon at {} (is `medic run` running?)",
            socket.display()
        )
    })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("control socket handshake")?;
    tokio::spawn(connection);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "medic")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let response = sender
        .send_request(request)
        .await
        .context("control request")?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}

/// The control API path of an action on a service or instance: the name is one
/// percent-encoded path segment, so `docker/app_web_1` or `web/app-web-1.x` reach it whole.
pub fn service_path(name: &str, action: &str) -> String {
    format!("/v1/services/{}/{action}", encode(name))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_travel_as_one_segment() {
        let path = super::service_path("docker/app_web_1", "pause");
        assert_eq!(path, "/v1/services/docker%2Fapp_web_1/pause");
        let path = super::service_path("web/app-web-1.x y", "deploy/finish");
        assert_eq!(path, "/v1/services/web%2Fapp-web-1.x%20y/deploy/finish");
    }
}
