//! The control API: HTTP+JSON on a unix socket (mode 0600 unless configured),
//! through which `medic status`, `pause`, `resume`, `reset` and `recover`
//! reach the daemon; optionally the same API on TCP, behind a bearer token
//! (and over TLS with `web_config`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use medic_core::ActionResult;
use medic_core::config::{Settings, SocketAccess};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use crate::shell::{ControlCommand, ControlRequest, DeployOutcome, Shell};

/// The body of `POST /v1/services/{name}/pause`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PauseBody {
    /// Pause for this many seconds; absent: until resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_secs: Option<u64>,
}

/// The body of `POST /v1/services/{name}/deploy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployBody {
    /// The deploy command must report back within this many seconds.
    pub command_timeout_secs: u64,
    /// The new version must be healthy within this many seconds of the command's end.
    pub verify_timeout_secs: u64,
}

/// The answer to a deploy's beginning.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployStarted {
    /// The version before the deploy, when medic recorded one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
}

/// The body of `POST /v1/services/{name}/deploy/finish`: how the command ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployFinishBody {
    /// It exited 0 (or the person chose to keep what it left).
    pub ok: bool,
    /// One line: `exited 0`, `exited 3`, `interrupted by Ctrl-C`.
    pub message: String,
    /// Exit status, output tail.
    #[serde(default)]
    pub evidence: medic_core::Evidence,
}

/// The error body of a refused request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Why.
    pub error: String,
}

type Reply<T> = Result<Json<T>, (StatusCode, Json<ErrorBody>)>;

/// Binds the socket (`run` has cleared a stale one away: see `lock.rs`) with its configured access, and
/// the TCP listener when configured; serves until shutdown; requests go to `tx`.
pub fn serve(
    settings: &Settings,
    shell: &Shell,
    guard: Option<&crate::web::Guard>,
    tx: mpsc::Sender<ControlRequest>,
) -> anyhow::Result<()> {
    let socket = &settings.control_socket;
    if let Some(parent) = socket.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let listener =
        UnixListener::bind(socket).with_context(|| format!("cannot bind {}", socket.display()))?;
    restrict(socket, &settings.control_access)?;
    spawn(shell, listener, router(tx.clone()));
    if let Some(tcp) = &settings.control_tcp {
        let token = std::fs::read_to_string(&tcp.token_file).with_context(|| {
            format!(
                "cannot read control_token_file {}",
                tcp.token_file.display()
            )
        })?;
        let token = Arc::new(token.trim().to_owned());
        anyhow::ensure!(
            !token.is_empty(),
            "control_token_file {} is empty",
            tcp.token_file.display()
        );
        // web_config's TLS applies here too; the bearer token stays the
        // authentication (it is the Authorization header basic auth would use).
        let app = router(tx).layer(middleware::from_fn_with_state(token, bearer));
        crate::web::listen_on(&tcp.listen, "control_listen", shell, app, guard)?;
    }
    Ok(())
}

/// Applies the configured mode, owner and group to the freshly bound socket.
fn restrict(socket: &Path, access: &SocketAccess) -> anyhow::Result<()> {
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(access.mode))
        .with_context(|| format!("cannot set the mode of {}", socket.display()))?;
    let uid = match &access.owner {
        Some(name) => Some(
            crate::accounts::user_by_name(name)?
                .with_context(|| format!("control_socket_owner: no user `{name}`"))?
                .id,
        ),
        None => None,
    };
    let gid = match &access.group {
        Some(name) => Some(
            crate::accounts::group_by_name(name)?
                .with_context(|| format!("control_socket_group: no group `{name}`"))?
                .id,
        ),
        None => None,
    };
    if uid.is_some() || gid.is_some() {
        nix::unistd::chown(
            socket,
            uid.map(nix::unistd::Uid::from_raw),
            gid.map(nix::unistd::Gid::from_raw),
        )
        .with_context(|| format!("cannot chown {}", socket.display()))?;
    }
    Ok(())
}

/// The routes, answering through `tx`; public so the fuzz target
/// (`fuzz/fuzz_targets/control.rs`) drives the very handlers the socket serves.
pub fn router(tx: mpsc::Sender<ControlRequest>) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/reload", post(reload))
        .route("/v1/services/{name}", get(resolve))
        .route("/v1/services/{name}/forget", post(forget))
        .route("/v1/services/{name}/pause", post(pause))
        .route("/v1/services/{name}/deploy", post(deploy_begin))
        .route("/v1/services/{name}/deploy/finish", post(deploy_finish))
        .route("/v1/services/{name}/{command}", post(command))
        .with_state(tx)
}

fn spawn<L>(shell: &Shell, listener: L, app: Router)
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let cancel = shell.cancel.clone();
    shell.tracker.spawn(async move {
        let server = axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await });
        if let Err(error) = server.await {
            tracing::error!(%error, "Control API stopped");
        }
    });
}

/// TCP control: 401 unless `Authorization: Bearer <token>` matches, compared in constant time.
async fn bearer(
    State(token): State<Arc<String>>,
    request: Request,
    next: Next,
) -> Result<Response, (StatusCode, Json<ErrorBody>)> {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        Ok(next.run(request).await)
    } else {
        let error = "a valid bearer token is required".to_owned();
        Err((StatusCode::UNAUTHORIZED, Json(ErrorBody { error })))
    }
}

/// The query of `GET /v1/status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatusQuery {
    /// Only the units this name means: a unit, a service's instances, a Compose service's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// The answer of `GET /v1/services/{name}` and `POST …/forget`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnitsBody {
    /// The units the name means (or that were forgotten).
    pub units: Vec<String>,
}

/// A [`crate::status::StatusReport`], written by the loop straight into bytes.
async fn status(
    State(tx): State<mpsc::Sender<ControlRequest>>,
    Query(query): Query<StatusQuery>,
) -> Result<Response, (StatusCode, Json<ErrorBody>)> {
    let only = match query.service {
        Some(name) => {
            let mut units = resolved(&tx, name).await?.0.units;
            units.sort_unstable();
            units.dedup();
            Some(units)
        }
        None => None,
    };
    let (reply, answer) = oneshot::channel();
    tx.send(ControlRequest::Status { only, reply })
        .await
        .map_err(|_| stopping())?;
    let body = answer.await.map_err(|_| stopping())?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The units a name means; 404 when none.
async fn resolve(
    State(tx): State<mpsc::Sender<ControlRequest>>,
    UrlPath(name): UrlPath<String>,
) -> Reply<UnitsBody> {
    resolved(&tx, name).await
}

async fn resolved(tx: &mpsc::Sender<ControlRequest>, name: String) -> Reply<UnitsBody> {
    let (reply, answer) = oneshot::channel();
    let request = ControlRequest::Resolve {
        name: name.clone(),
        reply,
    };
    tx.send(request).await.map_err(|_| stopping())?;
    let units = answer.await.map_err(|_| stopping())?;
    if units.is_empty() {
        let error = format!("no service or instance named `{name}`");
        return Err((StatusCode::NOT_FOUND, Json(ErrorBody { error })));
    }
    Ok(Json(UnitsBody { units }))
}

async fn forget(
    State(tx): State<mpsc::Sender<ControlRequest>>,
    UrlPath(name): UrlPath<String>,
) -> Reply<UnitsBody> {
    let (reply, answer) = oneshot::channel();
    tx.send(ControlRequest::Forget { name, reply })
        .await
        .map_err(|_| stopping())?;
    match answer.await.map_err(|_| stopping())? {
        Ok(units) => Ok(Json(UnitsBody { units })),
        Err(error) => Err((StatusCode::NOT_FOUND, Json(ErrorBody { error }))),
    }
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
    let duration = match body.and_then(|b| b.for_secs) {
        Some(secs) => Some(bounded("for_secs", secs)?),
        None => None,
    };
    unit(tx, name, ControlCommand::Pause(duration)).await
}

async fn deploy_begin(
    State(tx): State<mpsc::Sender<ControlRequest>>,
    UrlPath(unit): UrlPath<String>,
    Json(body): Json<DeployBody>,
) -> Reply<DeployStarted> {
    let (reply, answer) = oneshot::channel();
    let request = ControlRequest::DeployBegin {
        unit,
        command_timeout: bounded("command_timeout_secs", body.command_timeout_secs)?,
        verify_timeout: bounded("verify_timeout_secs", body.verify_timeout_secs)?,
        reply,
    };
    tx.send(request).await.map_err(|_| stopping())?;
    match answer.await.map_err(|_| stopping())? {
        Ok(before) => Ok(Json(DeployStarted { before })),
        Err(error) => Err((StatusCode::CONFLICT, Json(ErrorBody { error }))),
    }
}

/// Answers when the deploy has ended: promoted, rolled back or escalated.
async fn deploy_finish(
    State(tx): State<mpsc::Sender<ControlRequest>>,
    UrlPath(unit): UrlPath<String>,
    Json(body): Json<DeployFinishBody>,
) -> Reply<DeployOutcome> {
    let result = if body.ok {
        ActionResult::Done {
            message: body.message,
            evidence: body.evidence,
        }
    } else {
        ActionResult::Failed {
            message: body.message,
            evidence: body.evidence,
        }
    };
    let (reply, answer) = oneshot::channel();
    let request = ControlRequest::DeployFinish {
        unit,
        result,
        reply,
    };
    tx.send(request).await.map_err(|_| stopping())?;
    answer.await.map(Json).map_err(|_| stopping())
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

/// A number of seconds from a request body, refused (400) beyond medic's longest duration.
fn bounded(field: &str, secs: u64) -> Result<Duration, (StatusCode, Json<ErrorBody>)> {
    medic_core::duration::from_secs(secs).map_err(|e| {
        let error = format!("{field}: {e}");
        (StatusCode::BAD_REQUEST, Json(ErrorBody { error }))
    })
}

fn stopping() -> (StatusCode, Json<ErrorBody>) {
    let error = "medic is shutting down".to_owned();
    (StatusCode::SERVICE_UNAVAILABLE, Json(ErrorBody { error }))
}
