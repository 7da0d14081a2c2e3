//! The connection to one Docker engine and the calls medic makes on it.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bollard::models::{ContainerInspectResponse, NetworkConnectRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, EventsOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RestartContainerOptionsBuilder,
    StopContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::{API_DEFAULT_VERSION, Docker};
use futures_util::{Stream, StreamExt, TryStreamExt, stream};

mod rollback;
mod settle;

pub use settle::{SettleError, Settled};

use crate::DockerError;
use crate::endpoint::{Endpoint, default_socket, parse_host};
use crate::events::{ACTIONS, ContainerEvent};
use crate::facts::{ContainerFacts, ContainerState, Health, cap};
use crate::libpod;
use crate::select::{ContainerSummary, Selector, is_the_one};
use crate::spec::ContainerSpec;

/// bollard's timeout for one request (until the response starts), a backstop
/// behind the deadlines of [`DockerClient::call`]. Calls that wait for a stop
/// get the stop timeout on top.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest a read (version, list, inspect, logs, the event stream's connect) may
/// take, answer and body included: an engine that has not answered by then is
/// hung, and the caller learns it as [`DockerError::TimedOut`]. Actions get
/// their deadline from the caller.
pub(crate) const READ_DEADLINE: Duration = Duration::from_secs(30);
/// Docker's stop timeout when a container sets none.
const DOCKER_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest log line kept, in bytes.
const LOG_LINE_MAX: usize = 1024;

/// A connection to one Docker engine.
///
/// It connects lazily and speaks the newest API version both sides know
/// (negotiated on first use, again after the engine was unreachable, e.g.
/// upgraded). A missing socket is not an error here: every call then fails as
/// unreachable until the engine is back. Clones share the connection.
#[derive(Debug, Clone)]
pub struct DockerClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    endpoint: Endpoint,
    /// The negotiated client, once the engine answered.
    docker: Mutex<Option<Docker>>,
}

impl DockerClient {
    /// `DOCKER_HOST` when set (`unix://…`, `tcp://…`), else the first local
    /// socket that exists: Docker's (`/var/run/docker.sock`, rootless Docker's,
    /// Docker Desktop's), then Podman's (rootless
    /// `$XDG_RUNTIME_DIR/podman/podman.sock`, rootful `/run/podman/podman.sock`);
    /// `/var/run/docker.sock` when none does.
    pub fn connect() -> Result<Self, DockerError> {
        let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
        match env("DOCKER_HOST") {
            Some(host) => {
                if env("DOCKER_TLS_VERIFY").is_some() {
                    return Err(DockerError::UnsupportedHost {
                        host,
                        reason: "TLS (DOCKER_TLS_VERIFY) is not supported; use a unix socket or an SSH tunnel",
                    });
                }
                Self::connect_to(&host)
            }
            None => {
                let candidates = [
                    Some(PathBuf::from("/var/run/docker.sock")),
                    env("XDG_RUNTIME_DIR").map(|d| Path::new(&d).join("docker.sock")),
                    env("HOME").map(|h| Path::new(&h).join(".docker/run/docker.sock")),
                    env("XDG_RUNTIME_DIR").map(|d| Path::new(&d).join("podman/podman.sock")),
                    Some(PathBuf::from("/run/podman/podman.sock")),
                ];
                let socket = default_socket(candidates.into_iter().flatten(), |p| p.exists());
                Ok(Self::with(Endpoint::Unix(
                    socket.to_string_lossy().into_owned(),
                )))
            }
        }
    }

    /// A given engine: `unix:///path` (or just `/path`), `tcp://host:port` or
    /// `http://host:port`.
    pub fn connect_to(host: &str) -> Result<Self, DockerError> {
        Ok(Self::with(parse_host(host)?))
    }

    fn with(endpoint: Endpoint) -> Self {
        Self {
            inner: Arc::new(Inner {
                endpoint,
                docker: Mutex::new(None),
            }),
        }
    }

    /// The connected client, connecting and negotiating the API version first if needed.
    async fn docker(&self) -> Result<Docker, DockerError> {
        if let Some(docker) = self.slot().clone() {
            return Ok(docker);
        }
        let timeout = REQUEST_TIMEOUT.as_secs();
        let docker = match &self.inner.endpoint {
            Endpoint::Unix(path) => Docker::connect_with_unix(path, timeout, API_DEFAULT_VERSION)?,
            Endpoint::Http(addr) => Docker::connect_with_http(addr, timeout, API_DEFAULT_VERSION)?,
        };
        let docker = match tokio::time::timeout(READ_DEADLINE, docker.negotiate_version()).await {
            Ok(negotiated) => negotiated?,
            Err(_) => return Err(DockerError::timed_out("version", READ_DEADLINE)),
        };
        let version = docker.client_version();
        tracing::debug!(endpoint = ?self.inner.endpoint, api = %version, "Connected to the Docker engine");
        *self.slot() = Some(docker.clone());
        Ok(docker)
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Docker>> {
        // The guarded value is a plain Option that no panic can leave half-written.
        self.inner
            .docker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// One engine call, ended as [`DockerError::TimedOut`] unless its whole
    /// answer is in within `limit`: bollard's own timeout ends when the
    /// headers arrive, and Docker sends a `wait`'s headers at once and its
    /// body only when the container stops.
    async fn call<T>(
        &self,
        name: &'static str,
        limit: Duration,
        call: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, DockerError> {
        match tokio::time::timeout(limit, call).await {
            Ok(result) => result.map_err(|e| self.seen(e)),
            Err(_) => Err(DockerError::timed_out(name, limit)),
        }
    }

    /// Sorts a failure; after an unreachable engine the next call connects
    /// and negotiates afresh (the engine may have been upgraded meanwhile).
    fn seen(&self, error: bollard::errors::Error) -> DockerError {
        let error = DockerError::from(error);
        if error.is_unreachable() {
            *self.slot() = None;
        }
        error
    }

    /// Where the engine listens, as `DOCKER_HOST` would say it.
    pub fn endpoint(&self) -> String {
        match &self.inner.endpoint {
            Endpoint::Unix(path) => format!("unix://{path}"),
            Endpoint::Http(addr) => format!("tcp://{addr}"),
        }
    }

    /// Which engine answers (Docker or Podman) and its version.
    pub async fn engine(&self) -> Result<EngineInfo, DockerError> {
        let docker = self.docker().await?;
        let version = self
            .call("version", READ_DEADLINE, docker.version())
            .await?;
        let components = version.components.unwrap_or_default();
        let podman = components.iter().find(|c| c.name == "Podman Engine");
        Ok(EngineInfo {
            kind: if podman.is_some() {
                EngineKind::Podman
            } else {
                EngineKind::Docker
            },
            version: podman
                .map(|c| c.version.clone())
                .or(version.version)
                .unwrap_or_default(),
            api_version: docker.client_version().to_string(),
            endpoint: self.endpoint(),
        })
    }

    /// Checks that the engine answers.
    pub async fn ping(&self) -> Result<(), DockerError> {
        let docker = self.docker().await?;
        self.call("ping", READ_DEADLINE, docker.ping()).await?;
        Ok(())
    }

    /// Every container (running or not) a selector matches, without medic's
    /// forensic copies and Compose one-off (`docker compose run`) containers.
    pub async fn find(&self, selector: &Selector) -> Result<Vec<ContainerSummary>, DockerError> {
        let listed = self.list(&selector.filters()?).await?;
        Ok(listed.into_iter().filter(|c| selector.keeps(c)).collect())
    }

    /// Every container (running or not) the engine lists under `filters`.
    async fn list(
        &self,
        filters: &std::collections::HashMap<String, Vec<String>>,
    ) -> Result<Vec<ContainerSummary>, DockerError> {
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(filters)
            .build();
        let docker = self.docker().await?;
        let listed = self
            .call("list", READ_DEADLINE, docker.list_containers(Some(options)))
            .await?;
        Ok(listed
            .into_iter()
            .filter_map(ContainerSummary::from_list)
            .collect())
    }

    /// The raw inspect of exactly this container (see `is_the_one`), or None.
    async fn inspect_raw(
        &self,
        id_or_name: &str,
    ) -> Result<Option<ContainerInspectResponse>, DockerError> {
        Ok(self.inspect_read(id_or_name).await?.map(|read| read.0))
    }

    /// [`Self::inspect_raw`], with the state when it is one Docker's API has
    /// no word for (Podman's `stopped`: its answer then reads with an empty
    /// status). A container Podman answers 500 for and no longer lists is
    /// one it was removing: gone.
    async fn inspect_read(
        &self,
        id_or_name: &str,
    ) -> Result<Option<(ContainerInspectResponse, Option<ContainerState>)>, DockerError> {
        let docker = self.docker().await?;
        let inspected = docker.inspect_container(id_or_name, None);
        let (inspect, state) = match self.call("inspect", READ_DEADLINE, inspected).await {
            Ok(inspect) => (inspect, None),
            Err(error) if error.is_not_found() => return Ok(None),
            Err(error) if error.is_unreadable() => {
                match self.inspect_unreadable(id_or_name).await {
                    Some(Some(read)) => read,
                    Some(None) => return Ok(None),
                    None => return Err(error),
                }
            }
            Err(error) if error.is_server_error() && !self.lists(id_or_name).await? => {
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        let id = inspect.id.as_deref().unwrap_or_default();
        let name = inspect
            .name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/');
        Ok(is_the_one(id_or_name, id, name).then_some((inspect, state)))
    }

    /// The inspect read again as JSON, its state taken aside when Docker's
    /// API has no word for it; None when that fails too (the caller keeps
    /// bollard's error), Some(None) when the container is gone by now.
    async fn inspect_unreadable(
        &self,
        id_or_name: &str,
    ) -> Option<Option<(ContainerInspectResponse, Option<ContainerState>)>> {
        let read = libpod::compat_inspect(&self.inner.endpoint, id_or_name);
        let mut value = match tokio::time::timeout(READ_DEADLINE, read).await {
            Ok(Ok(Some(value))) => value,
            Ok(Ok(None)) => return Some(None),
            Ok(Err(error)) => {
                tracing::debug!(container = %id_or_name, %error, "No plain inspect either");
                return None;
            }
            Err(_) => return None,
        };
        let status = value.pointer_mut("/State/Status")?;
        let state = ContainerState::parse(status.as_str()?);
        *status = serde_json::Value::String(String::new());
        let inspect = serde_json::from_value(value).ok()?;
        Some(Some((inspect, Some(state))))
    }

    /// Whether the engine lists this container (by exact name, or by id).
    async fn lists(&self, id_or_name: &str) -> Result<bool, DockerError> {
        if !self
            .find(&Selector::Name(id_or_name.to_owned()))
            .await?
            .is_empty()
        {
            return Ok(true);
        }
        let by_id =
            std::collections::HashMap::from([("id".to_owned(), vec![id_or_name.to_owned()])]);
        Ok(!self.list(&by_id).await?.is_empty())
    }

    /// The container's facts, or None when there is no such container. For
    /// an unhealthy one, also Podman's `--health-on-failure` (its libpod API
    /// on the same socket says it; Docker's API and Podman's compatible one do not).
    pub async fn inspect(&self, id_or_name: &str) -> Result<Option<ContainerFacts>, DockerError> {
        let Some((inspect, state)) = self.inspect_read(id_or_name).await? else {
            return Ok(None);
        };
        let mut facts = ContainerFacts::from_inspect(&inspect);
        if let Some(state) = state {
            facts.state = state;
        }
        if facts.health == Some(Health::Unhealthy) {
            facts.health_on_failure =
                libpod::health_on_failure(&self.inner.endpoint, &facts.id).await;
        }
        Ok(Some(facts))
    }

    /// The last `lines` lines of its stdout and stderr, oldest first, each at most 1 KiB.
    pub async fn tail_logs(&self, id: &str, lines: usize) -> Result<Vec<String>, DockerError> {
        if lines == 0 {
            return Ok(Vec::new());
        }
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let docker = self.docker().await?;
        let logs = docker.logs(id, Some(options)).try_collect::<Vec<_>>();
        let chunks = self.call("logs", READ_DEADLINE, logs).await?;
        let bytes: Vec<u8> = chunks.into_iter().flat_map(|c| c.into_bytes()).collect();
        let text = String::from_utf8_lossy(&bytes);
        let all: Vec<&str> = text.lines().collect();
        let skip = all.len().saturating_sub(lines);
        Ok(all[skip..].iter().map(|l| cap(l, LOG_LINE_MAX)).collect())
    }

    /// The container's full create spec, to be recorded as its last known good:
    /// image id, Config, HostConfig, networks, and its image's own Config.
    pub async fn capture_spec(&self, id_or_name: &str) -> Result<ContainerSpec, DockerError> {
        let inspect = self
            .inspect_raw(id_or_name)
            .await?
            .ok_or_else(|| no_such_container(id_or_name))?;
        let image_config = match &inspect.image {
            Some(image) => {
                let docker = self.docker().await?;
                match self
                    .call("inspect image", READ_DEADLINE, docker.inspect_image(image))
                    .await
                {
                    Ok(image) => image.config,
                    Err(error) if error.is_not_found() => None,
                    Err(error) => return Err(error),
                }
            }
            None => None,
        };
        let parent = inspect
            .host_config
            .as_ref()
            .and_then(|h| h.network_mode.as_deref())
            .and_then(|m| m.strip_prefix("container:"));
        let parent_name = match parent {
            Some(parent) => self
                .inspect_raw(parent)
                .await?
                .and_then(|p| p.name)
                .map(|n| n.trim_start_matches('/').to_owned()),
            None => None,
        };
        Ok(ContainerSpec::from_inspect(
            inspect,
            image_config,
            parent_name.as_deref(),
        ))
    }

    /// Starts a created or stopped container (a running one is left as it
    /// is); the engine gets `within`.
    pub async fn start(&self, id: &str, within: Duration) -> Result<(), DockerError> {
        let docker = self.docker().await?;
        let started = self
            .call("start", within, docker.start_container(id, None))
            .await;
        self.gone_if_unlisted(id, started).await
    }

    /// A 5xx answer for a container the engine no longer lists (Podman's
    /// `does not exist in database` while it removes one) as the 404 it is.
    async fn gone_if_unlisted(
        &self,
        id: &str,
        result: Result<(), DockerError>,
    ) -> Result<(), DockerError> {
        match result {
            Err(error) if error.is_server_error() && !self.lists(id).await? => Err(
                no_such_container(&format!("{id} (the engine answered: {error})")),
            ),
            result => result,
        }
    }

    /// Waits until a container being stopped or removed by someone else has
    /// settled: for `stopping` (Podman shows it for the whole stop timeout of
    /// a `podman stop` or `podman rm -f`) until it no longer runs; for
    /// `removing` (Docker's `rm -f` past its kill) until it is gone; for
    /// Podman's `stopped` until it is cleaned up (`exited`) or removed. The
    /// engine's own wait, for at most `within` (a container stuck in removal
    /// never ends it: then [`DockerError::TimedOut`]). A container that is
    /// removed meanwhile ends the wait too.
    pub async fn wait_stopped(
        &self,
        id: &str,
        state: ContainerState,
        within: Duration,
    ) -> Result<(), DockerError> {
        if state == ContainerState::Stopped {
            let wait = libpod::wait_exited(&self.inner.endpoint, id);
            return match tokio::time::timeout(within, wait).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(DockerError::Api(
                    bollard::errors::Error::DockerStreamError { error },
                )),
                Err(_) => Err(DockerError::timed_out("wait", within)),
            };
        }
        let condition = match state {
            ContainerState::Removing => "removed",
            _ => "not-running",
        };
        let options = WaitContainerOptionsBuilder::default()
            .condition(condition)
            .build();
        let docker = self.docker().await?;
        let mut wait = docker.wait_container(id, Some(options));
        let answer = async move { wait.next().await.transpose() };
        match self.call("wait", within, answer).await {
            Err(error) if error.is_unreachable() || error.is_timed_out() => Err(error),
            // Podman answers a removal with an error body: it is not running, all the same.
            _ => Ok(()),
        }
    }

    /// `docker restart`: stop (SIGTERM, then SIGKILL after `stop_timeout`),
    /// start; the engine gets `within` beyond the stop timeout.
    pub async fn restart(
        &self,
        id: &str,
        stop_timeout: Duration,
        within: Duration,
    ) -> Result<(), DockerError> {
        let options = RestartContainerOptionsBuilder::default()
            .t(seconds(stop_timeout))
            .build();
        let docker = self
            .docker()
            .await?
            .with_timeout(REQUEST_TIMEOUT + stop_timeout);
        let restart = docker.restart_container(id, Some(options));
        let restarted = self
            .call("restart", stop_timeout.saturating_add(within), restart)
            .await;
        self.gone_if_unlisted(id, restarted).await
    }

    /// Stops a container with its own stop timeout (or `stop_timeout` when
    /// given); the engine gets `within` beyond it.
    async fn stop(
        &self,
        id: &str,
        stop_timeout: Option<Duration>,
        within: Duration,
    ) -> Result<(), DockerError> {
        let mut options = StopContainerOptionsBuilder::default();
        if let Some(timeout) = stop_timeout {
            options = options.t(seconds(timeout));
        }
        let wait = stop_timeout.unwrap_or(DOCKER_STOP_TIMEOUT);
        let docker = self.docker().await?.with_timeout(REQUEST_TIMEOUT + wait);
        let stop = docker.stop_container(id, Some(options.build()));
        self.call("stop", wait.saturating_add(within), stop).await
    }

    /// Creates the container from a spec under its name, connects its other
    /// networks, starts it, and returns its id. Config values the image sets
    /// are left to the image; the image is the spec's exact image id (named by
    /// its reference when that still points at the same id). A container that
    /// cannot get its networks is removed again; one that does not start is
    /// left created, with Docker's error returned (`NotFound` when someone
    /// removed it meanwhile). Each engine call gets `within`.
    pub async fn recreate(
        &self,
        spec: &ContainerSpec,
        within: Duration,
    ) -> Result<String, DockerError> {
        if spec.name.is_empty() {
            return Err(DockerError::Invalid("a container spec without a name"));
        }
        let docker = self.docker().await?;
        let (mut body, networks) = spec.create_body();
        if !spec.image.is_empty() && spec.image != spec.image_id {
            let image = docker.inspect_image(&spec.image);
            match self.call("inspect image", within, image).await {
                Ok(image) if image.id.as_deref() == Some(spec.image_id.as_str()) => {
                    body.image = Some(spec.image.clone());
                }
                Ok(_) => {}
                Err(error) if error.is_not_found() => {}
                Err(error) => return Err(error),
            }
        }
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let create = docker.create_container(Some(options), body);
        let created = self.call("create", within, create).await?;
        tracing::debug!(container = %spec.name, id = %created.id, "Created a container from its spec");
        for (network, endpoint) in networks {
            let request = NetworkConnectRequest {
                container: created.id.clone(),
                endpoint_config: Some(endpoint),
            };
            let connect = docker.connect_network(&network, request);
            if let Err(error) = self.call("connect network", within, connect).await {
                let remove = RemoveContainerOptionsBuilder::default().force(true).build();
                let remove = docker.remove_container(&created.id, Some(remove));
                if let Err(cleanup) = self.call("remove", within, remove).await {
                    tracing::warn!(container = %spec.name, error = %cleanup, "Cannot remove a half-created container");
                }
                return Err(error);
            }
        }
        let start = docker.start_container(&created.id, None);
        if let Err(error) = self.call("start", within, start).await {
            return Err(self.removed_meanwhile(&created.id, error).await);
        }
        Ok(created.id)
    }

    /// Container events medic listens to ([`ACTIONS`]) as they happen. The
    /// stream ends or fails when the connection breaks, and fails when the
    /// engine does not start answering within [`READ_DEADLINE`]; reconnecting
    /// is the caller's call. A quiet stream is not cut: it may be idle.
    pub fn events(&self) -> impl Stream<Item = Result<ContainerEvent, DockerError>> + Send + use<> {
        self.events_since(None)
    }

    /// [`Self::events`], starting with those the engine recorded since
    /// `since`: what happened between medic's start and the stream's answer
    /// (a `podman restart` announces itself once, before its stop).
    pub fn events_since(
        &self,
        since: Option<std::time::SystemTime>,
    ) -> impl Stream<Item = Result<ContainerEvent, DockerError>> + Send + use<> {
        let client = self.clone();
        let filters = std::collections::HashMap::from([
            ("type", vec!["container"]),
            ("event", ACTIONS.to_vec()),
        ]);
        let mut options = EventsOptionsBuilder::default().filters(&filters);
        if let Some(since) = since.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()) {
            // Both engines read `seconds.nanoseconds`.
            options = options.since(&format!("{}.{:09}", since.as_secs(), since.subsec_nanos()));
        }
        let options = options.build();
        stream::once(async move {
            // A stream's answer starts with its headers: bollard's own timeout bounds exactly them.
            let docker = client.docker().await?.with_timeout(READ_DEADLINE);
            let events = docker.events(Some(options)).map(move |item| match item {
                Ok(message) => Ok(ContainerEvent::from_message(message)),
                Err(error) => Err(client.seen(error)),
            });
            Ok::<_, DockerError>(events)
        })
        .try_flatten()
    }
}

/// The kind of engine behind the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// Docker Engine (dockerd).
    Docker,
    /// Podman's Docker-compatible service (`podman system service`).
    Podman,
}

impl EngineKind {
    /// Its name for people.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "Docker",
            Self::Podman => "Podman",
        }
    }
}

/// Which engine medic talks to: for `medic check` and `medic doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    /// Docker or Podman.
    pub kind: EngineKind,
    /// The engine's own version (`20.10.24`, `4.3.1`).
    pub version: String,
    /// The Docker API version medic and the engine agreed on.
    pub api_version: String,
    /// Where it listens (`unix:///run/podman/podman.sock`).
    pub endpoint: String,
}

impl std::fmt::Display for EngineInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} (API {}) at {}",
            self.kind.as_str(),
            self.version,
            self.api_version,
            self.endpoint
        )
    }
}

/// Docker's own answer for a missing container, for lookups that found an unrelated one.
fn no_such_container(id_or_name: &str) -> DockerError {
    DockerError::from(bollard::errors::Error::DockerResponseServerError {
        status_code: 404,
        message: format!("No such container: {id_or_name}"),
    })
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_socket_is_unreachable_not_a_connect_error() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let client = DockerClient::connect_to(&format!("unix://{}", socket.display())).unwrap();
        let error = client.ping().await.unwrap_err();
        assert!(error.is_unreachable(), "{error}");
        let error = client.inspect("web").await.unwrap_err();
        assert!(error.is_unreachable(), "{error}");
        let mut events = std::pin::pin!(client.events());
        let error = events.next().await.unwrap().unwrap_err();
        assert!(error.is_unreachable(), "{error}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable() {
        // A socket file nobody listens on: bind, then drop the listener.
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        let client = DockerClient::connect_to(socket.to_str().unwrap()).unwrap();
        let error = client
            .find(&Selector::Name("web".into()))
            .await
            .unwrap_err();
        assert!(error.is_unreachable(), "{error}");
        // A closed TCP port too.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = DockerClient::connect_to(&format!("tcp://127.0.0.1:{port}")).unwrap();
        let error = client.ping().await.unwrap_err();
        assert!(error.is_unreachable(), "{error}");
    }
}
