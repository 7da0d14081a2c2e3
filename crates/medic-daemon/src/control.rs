//! The control API: HTTP+JSON on a unix socket (mode 0600), through which
//! `medic status`, `pause`, `resume`, `reset` and `recover` reach the daemon.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use crate::daemon::{ControlCommand, ControlRequest, Shell};
use crate::status::StatusReport;

/// The body of `POST /v1/services/{name}/pause`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PauseBody {
    /// Pause for this many seconds; absent: until resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_secs: Option<u64>,
}

/// The error body of a refused request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Why.
    pub error: String,
}

type Reply<T> = Result<Json<T>, (StatusCode, Json<ErrorBody>)>;

/// Binds the socket (replacing a stale one) and serves until shutdown; requests go to `tx`.
pub fn serve(socket: &Path, shell: &Shell, tx: mpsc::Sender<ControlRequest>) -> anyhow::Result<()> {
    if let Some(parent) = socket.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(error).with_context(|| format!("cannot remove stale {}", socket.display()));
        }
    }
    let listener =
        UnixListener::bind(socket).with_context(|| format!("cannot bind {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", socket.display()))?;
    let app = Router::new()
        .route("/v1/status", get(status))
        .route("/v1/reload", post(reload))
        .route("/v1/services/{name}/pause", post(pause))
        .route("/v1/services/{name}/{command}", post(command))
        .with_state(tx);
    let cancel = shell.cancel.clone();
    shell.tracker.spawn(async move {
        let server = axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await });
        if let Err(error) = server.await {
            tracing::error!(%error, "Control API stopped");
        }
    });
    Ok(())
}

async fn status(State(tx): State<mpsc::Sender<ControlRequest>>) -> Reply<StatusReport> {
    let (reply, answer) = oneshot::channel();
    tx.send(ControlRequest::Status(reply))
        .await
        .map_err(|_| stopping())?;
    answer.await.map(Json).map_err(|_| stopping())
}

async fn reload(State(tx): State<mpsc::Sender<ControlRequest>>) -> Reply<serde_json::Value> {
    let (reply, answer) = oneshot::channel();
    tx.send(ControlRequest::Reload(reply))
        .await
        .map_err(|_| stopping())?;
    match answer.await.map_err(|_| stopping())? {
        Ok(()) => Ok(Json(serde_json::json!({ "ok": true }))),
        Err(error) => Err((StatusCode::UNPROCESSABLE_ENTITY, Json(ErrorBody { error }))),
    }
}

async fn pause(
    State(tx): State<mpsc::Sender<ControlRequest>>,
    UrlPath(name): UrlPath<String>,
    body: Option<Json<PauseBody>>,
) -> Reply<serde_json::Value> {
    let duration = body.and_then(|b| b.for_secs).map(Duration::from_secs);
    unit(tx, name, ControlCommand::Pause(duration)).await
}

async fn command(
    State(tx): State<mpsc::Sender<ControlRequest>>,
    UrlPath((name, command)): UrlPath<(String, String)>,
) -> Reply<serde_json::Value> {
    let command = match command.as_str() {
        "resume" => ControlCommand::Resume,
        "reset" => ControlCommand::Reset,
        "recover" => ControlCommand::Recover,
        other => {
            let error = format!("unknown command `{other}`: use pause, resume, reset or recover");
            return Err((StatusCode::NOT_FOUND, Json(ErrorBody { error })));
        }
    };
    unit(tx, name, command).await
}

async fn unit(
    tx: mpsc::Sender<ControlRequest>,
    unit: String,
    control: ControlCommand,
) -> Reply<serde_json::Value> {
    let (reply, answer) = oneshot::channel();
    let request = ControlRequest::Unit {
        unit,
        control,
        reply,
    };
    tx.send(request).await.map_err(|_| stopping())?;
    match answer.await.map_err(|_| stopping())? {
        Ok(()) => Ok(Json(serde_json::json!({ "ok": true }))),
        Err(error) => Err((StatusCode::NOT_FOUND, Json(ErrorBody { error }))),
    }
}

fn stopping() -> (StatusCode, Json<ErrorBody>) {
    let error = "medic is shutting down".to_owned();
    (StatusCode::SERVICE_UNAVAILABLE, Json(ErrorBody { error }))
}
