//! What an inspect says about a container, and the verdict medic draws from it.

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum};
use serde_json::{Map, Value};

/// The facts of one inspected container that judge its health.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerFacts {
    /// Full id.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// created, running, paused, restarting, removing, exited, dead.
    pub status: String,
    /// Docker health: starting, healthy, unhealthy, or none.
    pub health: Option<String>,
    /// The last health check outputs, newest last.
    pub health_log: Vec<String>,
    /// Exit code of the last run.
    pub exit_code: Option<i64>,
    /// Killed by the OOM killer.
    pub oom_killed: bool,
    /// Docker's error for the last start.
    pub error: Option<String>,
    /// When the last run ended (RFC 3339).
    pub finished_at: Option<String>,
    /// Restarts done by Docker's own restart policy.
    pub restart_count: i64,
    /// The image id it runs.
    pub image_id: String,
}

/// medic's reading of the facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Healthy enough: running and not unhealthy.
    pub ok: bool,
    /// One human line.
    pub message: String,
}

impl ContainerFacts {
    /// Extracts the facts from an inspect response.
    pub fn from_inspect(inspect: &ContainerInspectResponse) -> Self {
        let state = inspect.state.clone().unwrap_or_default();
        let health = state.health.as_ref();
        Self {
            id: inspect.id.clone().unwrap_or_default(),
            name: inspect
                .name
                .clone()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
            status: state.status.map_or("unknown", status_name).to_owned(),
            health: health
                .and_then(|h| h.status)
                .filter(|s| *s != HealthStatusEnum::NONE && *s != HealthStatusEnum::EMPTY)
                .map(|s| s.to_string()),
            health_log: health
                .and_then(|h| h.log.as_ref())
                .map(|log| {
                    log.iter()
                        .rev()
                        .take(3)
                        .rev()
                        .map(|r| {
                            format!(
                                "exit {}: {}",
                                r.exit_code.unwrap_or(-1),
                                r.output.as_deref().unwrap_or("").trim()
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            exit_code: state.exit_code,
            oom_killed: state.oom_killed.unwrap_or(false),
            error: state.error.filter(|e| !e.is_empty()),
            finished_at: state.finished_at.filter(|f| !f.starts_with("0001-")),
            restart_count: inspect.restart_count.unwrap_or(0),
            image_id: inspect.image.clone().unwrap_or_default(),
        }
    }

    /// Running (or paused) now.
    pub fn is_running(&self) -> bool {
        matches!(self.status.as_str(), "running" | "paused")
    }

    /// Its process ended: exited or dead.
    pub fn has_stopped(&self) -> bool {
        matches!(self.status.as_str(), "exited" | "dead")
    }

    /// Running and not unhealthy is ok (a health check still `starting` is ok);
    /// restarting under Docker's policy, exited, dead or created is a failure.
    pub fn verdict(&self) -> Verdict {
        let (ok, message) = match (self.status.as_str(), self.health.as_deref()) {
            ("running", Some("unhealthy")) => {
                (false, "running but Docker reports it unhealthy".to_owned())
            }
            ("running", Some(health)) => (true, format!("running ({health})")),
            ("running", None) => (true, "running".to_owned()),
            ("paused", _) => (true, "paused by Docker".to_owned()),
            ("restarting", _) => (
                false,
                format!(
                    "stuck restarting ({} restarts by Docker)",
                    self.restart_count
                ),
            ),
            ("exited" | "dead", _) if self.oom_killed => {
                (false, "killed by the OOM killer".to_owned())
            }
            ("exited" | "dead", _) => (
                false,
                format!("exited with {}", self.exit_code.unwrap_or(-1)),
            ),
            (status, _) => (false, format!("not running ({status})")),
        };
        Verdict { ok, message }
    }

    /// Exit code, OOM flag, error, finish time, health and restart count as evidence.
    pub fn evidence(&self) -> Map<String, Value> {
        let mut evidence = Map::new();
        evidence.insert("container".into(), self.name.clone().into());
        evidence.insert("status".into(), self.status.clone().into());
        evidence.insert("image_id".into(), self.image_id.clone().into());
        if let Some(code) = self.exit_code {
            evidence.insert("exit_code".into(), code.into());
        }
        evidence.insert("oom_killed".into(), self.oom_killed.into());
        if let Some(error) = &self.error {
            evidence.insert("error".into(), error.clone().into());
        }
        if let Some(finished) = &self.finished_at {
            evidence.insert("finished_at".into(), finished.clone().into());
        }
        if let Some(health) = &self.health {
            evidence.insert("health".into(), health.clone().into());
            evidence.insert("health_log".into(), self.health_log.clone().into());
        }
        evidence.insert("restart_count".into(), self.restart_count.into());
        evidence
    }
}

fn status_name(status: ContainerStateStatusEnum) -> &'static str {
    match status {
        ContainerStateStatusEnum::CREATED => "created",
        ContainerStateStatusEnum::RUNNING => "running",
        ContainerStateStatusEnum::PAUSED => "paused",
        ContainerStateStatusEnum::RESTARTING => "restarting",
        ContainerStateStatusEnum::REMOVING => "removing",
        ContainerStateStatusEnum::STOPPING => "stopping",
        ContainerStateStatusEnum::EXITED => "exited",
        ContainerStateStatusEnum::DEAD => "dead",
        ContainerStateStatusEnum::EMPTY => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(status: &str, health: Option<&str>) -> ContainerFacts {
        ContainerFacts {
            id: "id".into(),
            name: "web".into(),
            status: status.into(),
            health: health.map(str::to_owned),
            health_log: Vec::new(),
            exit_code: Some(3),
            oom_killed: false,
            error: None,
            finished_at: None,
            restart_count: 4,
            image_id: "sha256:1".into(),
        }
    }

    #[track_caller]
    fn check(status: &str, health: Option<&str>, ok: bool, message: &str) {
        let verdict = facts(status, health).verdict();
        assert_eq!((verdict.ok, verdict.message.as_str()), (ok, message));
    }

    #[test]
    fn verdicts() {
        check("running", None, true, "running");
        check("running", Some("starting"), true, "running (starting)");
        check(
            "running",
            Some("unhealthy"),
            false,
            "running but Docker reports it unhealthy",
        );
        check(
            "restarting",
            None,
            false,
            "stuck restarting (4 restarts by Docker)",
        );
        check("exited", None, false, "exited with 3");
        check("created", None, false, "not running (created)");
    }
}
