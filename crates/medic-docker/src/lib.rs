//! medic's Docker adapter over bollard: find containers by selector, inspect
//! them into facts, capture and recreate their create spec, restart, roll back
//! with a forensic copy, and stream container events.
//!
//! Architecture invariant: no retries, backoff or timing decisions here; the
//! core decides, this crate only does one Docker thing per call.

mod facts;
mod spec;

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerSummaryStateEnum, NetworkConnectRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, EventsOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RenameContainerOptionsBuilder,
    RestartContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::{Stream, StreamExt, TryStreamExt};

pub use facts::{ContainerFacts, Verdict};
pub use spec::{ContainerSpec, minimal_config, spec_differs};

/// The Docker API version medic speaks (Docker 20.10 and newer).
const API_VERSION: &bollard::ClientVersion = &bollard::ClientVersion {
    major_version: 1,
    minor_version: 41,
};
/// bollard's own request timeout, a backstop behind the probes' timeouts.
const TIMEOUT_SECS: u64 = 120;

/// How many forensic copies of failed containers are kept per name.
const FORENSIC_KEEP: usize = 3;

/// A Docker call failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DockerError(#[from] bollard::errors::Error);

impl DockerError {
    /// The engine cannot be reached (socket missing, refused, timed out): medic is blind, the container may be fine.
    pub fn is_unreachable(&self) -> bool {
        use bollard::errors::Error as E;
        matches!(
            self.0,
            E::SocketNotFoundError(_)
                | E::HyperLegacyError { .. }
                | E::IOError { .. }
                | E::RequestTimeoutError
                | E::HttpClientError { .. }
        )
    }

    /// Docker answered 404: no such container (or image).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.0,
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            }
        )
    }
}

/// How to find containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Exactly this name.
    Name(String),
    /// Every container with all these labels (`key` or `key=value`).
    Labels(Vec<(String, Option<String>)>),
    /// One compose service.
    Compose {
        /// com.docker.compose.project
        project: String,
        /// com.docker.compose.service
        service: String,
    },
}

impl Selector {
    fn filters(&self) -> HashMap<String, Vec<String>> {
        let label = |k: &str, v: Option<&str>| match v {
            Some(v) => format!("{k}={v}"),
            None => k.to_owned(),
        };
        match self {
            Selector::Name(name) => HashMap::from([("name".into(), vec![format!("^/{name}$")])]),
            Selector::Labels(labels) => HashMap::from([(
                "label".into(),
                labels.iter().map(|(k, v)| label(k, v.as_deref())).collect(),
            )]),
            Selector::Compose { project, service } => HashMap::from([(
                "label".into(),
                vec![
                    label("com.docker.compose.project", Some(project)),
                    label("com.docker.compose.service", Some(service)),
                ],
            )]),
        }
    }
}

/// A container found by a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its id.
    pub id: String,
    /// Its name without `/`.
    pub name: String,
    /// Whether it runs now.
    pub running: bool,
    /// Its labels (medic reads per-container overrides from `medic.*`).
    pub labels: HashMap<String, String>,
}

/// One container event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    /// die, oom, kill, stop, destroy, health_status: unhealthy, start, create, rename, …
    pub action: String,
    /// The container id.
    pub id: String,
    /// The container name.
    pub name: String,
    /// Its labels.
    pub labels: HashMap<String, String>,
    /// When Docker recorded it, in nanoseconds since the epoch.
    pub time_nanos: i64,
}

/// The events medic listens to.
const EVENTS: &[&str] = &[
    "create",
    "start",
    "restart",
    "die",
    "oom",
    "kill",
    "stop",
    "destroy",
    "rename",
    "pause",
    "unpause",
    "health_status",
];

/// A connection to one Docker engine (connects lazily; every call may fail as unreachable).
#[derive(Debug, Clone)]
pub struct DockerClient(Docker);

impl DockerClient {
    /// DOCKER_HOST when set, else the local socket.
    pub fn connect() -> Result<Self, DockerError> {
        let host =
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        Self::connect_to(&host)
    }

    /// A given engine address: `unix:///path` or `tcp://host:port`. medic speaks
    /// API 1.41, which every engine since Docker 20.10 understands.
    pub fn connect_to(host: &str) -> Result<Self, DockerError> {
        let docker = match host.strip_prefix("unix://") {
            Some(path) => Docker::connect_with_unix(path, TIMEOUT_SECS, API_VERSION)?,
            None => Docker::connect_with_http(host, TIMEOUT_SECS, API_VERSION)?,
        };
        Ok(Self(docker))
    }

    /// Checks the engine answers.
    pub async fn ping(&self) -> Result<(), DockerError> {
        self.0.ping().await?;
        Ok(())
    }

    /// Every container (running or not) a selector matches.
    pub async fn find(&self, selector: &Selector) -> Result<Vec<Found>, DockerError> {
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&selector.filters())
            .build();
        let list = self.0.list_containers(Some(options)).await?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let name = c.names?.first()?.trim_start_matches('/').to_owned();
                Some(Found {
                    id: c.id?,
                    name,
                    running: c.state == Some(ContainerSummaryStateEnum::RUNNING),
                    labels: c.labels.unwrap_or_default(),
                })
            })
            .collect())
    }

    /// The container's facts, or None when there is no such container.
    pub async fn inspect(&self, id_or_name: &str) -> Result<Option<ContainerFacts>, DockerError> {
        match self.0.inspect_container(id_or_name, None).await {
            Ok(inspect) => Ok(Some(ContainerFacts::from_inspect(&inspect))),
            Err(e) => {
                let error = DockerError(e);
                if error.is_not_found() {
                    Ok(None)
                } else {
                    Err(error)
                }
            }
        }
    }

    /// The last `lines` lines of stdout and stderr, each capped at 1 KiB.
    pub async fn tail_logs(&self, id: &str, lines: usize) -> Result<Vec<String>, DockerError> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let chunks: Vec<_> = self.0.logs(id, Some(options)).try_collect().await?;
        let text: String = chunks
            .iter()
            .map(|c| String::from_utf8_lossy(&c.clone().into_bytes()).into_owned())
            .collect();
        Ok(text
            .lines()
            .map(|l| l.chars().take(1024).collect())
            .collect::<Vec<String>>()
            .into_iter()
            .rev()
            .take(lines)
            .rev()
            .collect())
    }

    /// The full create spec of a container, with its image's own config.
    pub async fn capture_spec(&self, id_or_name: &str) -> Result<ContainerSpec, DockerError> {
        let inspect = self.0.inspect_container(id_or_name, None).await?;
        let image_id = inspect.image.clone().unwrap_or_default();
        let image_config = self
            .0
            .inspect_image(&image_id)
            .await
            .ok()
            .and_then(|i| i.config);
        let config = inspect.config.unwrap_or_default();
        Ok(ContainerSpec {
            name: inspect
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
            image: config.image.clone().unwrap_or_else(|| image_id.clone()),
            image_id,
            config,
            host_config: inspect.host_config.unwrap_or_default(),
            networks: inspect
                .network_settings
                .and_then(|n| n.networks)
                .unwrap_or_default(),
            image_config,
        })
    }

    /// Starts a stopped container.
    pub async fn start(&self, id: &str) -> Result<(), DockerError> {
        self.0.start_container(id, None).await?;
        Ok(())
    }

    /// `docker restart` with a stop timeout.
    pub async fn restart(&self, id: &str, stop_timeout: Duration) -> Result<(), DockerError> {
        let options = RestartContainerOptionsBuilder::default()
            .t(seconds(stop_timeout))
            .build();
        self.0.restart_container(id, Some(options)).await?;
        Ok(())
    }

    /// Creates the container from its spec under its own name, connects its extra networks, starts it.
    pub async fn recreate(&self, spec: &ContainerSpec) -> Result<String, DockerError> {
        let (body, networks) = spec.create_body();
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let created = self.0.create_container(Some(options), body).await?;
        for (network, endpoint) in networks {
            let request = NetworkConnectRequest {
                container: created.id.clone(),
                endpoint_config: Some(endpoint),
            };
            self.0.connect_network(&network, request).await?;
        }
        self.0.start_container(&created.id, None).await?;
        Ok(created.id)
    }

    /// Stops the failing container, keeps it as `<name>.medic-failed-<stamp>`
    /// (only the newest three such copies), and recreates the last known good under the name.
    pub async fn rollback(
        &self,
        current: &str,
        lkg: &ContainerSpec,
        stamp: &str,
    ) -> Result<String, DockerError> {
        if self.inspect(current).await?.is_some() {
            let stop = StopContainerOptionsBuilder::default().t(10).build();
            self.0.stop_container(current, Some(stop)).await?;
            let forensic = format!("{}.medic-failed-{stamp}", lkg.name);
            let rename = RenameContainerOptionsBuilder::default()
                .name(&forensic)
                .build();
            self.0.rename_container(current, rename).await?;
            self.prune_forensics(&lkg.name).await?;
        }
        self.recreate(lkg).await
    }

    /// Removes all but the newest forensic copies of a container.
    async fn prune_forensics(&self, name: &str) -> Result<(), DockerError> {
        let prefix = format!("{name}.medic-failed-");
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&HashMap::from([("name".to_owned(), vec![prefix.clone()])]))
            .build();
        let mut copies: Vec<(i64, String)> = self
            .0
            .list_containers(Some(options))
            .await?
            .into_iter()
            .filter_map(|c| {
                let name = c.names?.first()?.trim_start_matches('/').to_owned();
                name.starts_with(&prefix)
                    .then_some((c.created.unwrap_or(0), name))
            })
            .collect();
        copies.sort_by(|a, b| b.cmp(a));
        for (_, old) in copies.into_iter().skip(FORENSIC_KEEP) {
            let options = RemoveContainerOptionsBuilder::default().force(true).build();
            self.0.remove_container(&old, Some(options)).await?;
        }
        Ok(())
    }

    /// Container events medic cares about, as they happen.
    pub fn events(&self) -> impl Stream<Item = Result<ContainerEvent, DockerError>> + use<> {
        let filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            (
                "event".to_owned(),
                EVENTS.iter().map(|e| (*e).to_owned()).collect(),
            ),
        ]);
        let options = EventsOptionsBuilder::default().filters(&filters).build();
        self.0.events(Some(options)).map(|item| {
            let message = item?;
            let actor = message.actor.unwrap_or_default();
            let labels = actor.attributes.unwrap_or_default();
            Ok(ContainerEvent {
                action: message.action.unwrap_or_default(),
                id: actor.id.unwrap_or_default(),
                name: labels.get("name").cloned().unwrap_or_default(),
                labels,
                time_nanos: message.time_nano.unwrap_or(0),
            })
        })
    }
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
}
