//! What an inspect says about a container (its observation facts), the verdict
//! medic draws from them, and the evidence they contribute to an alert.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use bollard::models::{ContainerInspectResponse, HealthStatusEnum};
use serde_json::{Map, Value};

use crate::libpod::HealthOnFailure;

/// How many health check results are kept as evidence (Docker keeps five).
const HEALTH_LOG_KEEP: usize = 3;
/// Longest health check output kept, in bytes.
const HEALTH_OUTPUT_MAX: usize = 512;

/// A container's state as Docker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    /// Created, never started (or a recreate in progress).
    Created,
    /// Its process runs.
    Running,
    /// Frozen by `docker pause`.
    Paused,
    /// Docker's own restart policy is restarting it.
    Restarting,
    /// Being removed.
    Removing,
    /// Being stopped.
    Stopping,
    /// Its process ended.
    Exited,
    /// Podman only: its process ended and whoever ended it (a kill's
    /// cleanup, a `podman rm -f`) has not finished; `exited` or gone follows.
    Stopped,
    /// Docker failed to stop or remove it.
    Dead,
    /// Docker said nothing medic knows.
    Unknown,
}

impl ContainerState {
    /// From Docker's word for it.
    pub fn parse(status: &str) -> Self {
        match status {
            "created" => Self::Created,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "restarting" => Self::Restarting,
            "removing" => Self::Removing,
            "stopping" => Self::Stopping,
            "exited" => Self::Exited,
            "stopped" => Self::Stopped,
            "dead" => Self::Dead,
            _ => Self::Unknown,
        }
    }

    /// Docker's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Removing => "removing",
            Self::Stopping => "stopping",
            Self::Exited => "exited",
            Self::Stopped => "stopped",
            Self::Dead => "dead",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status of Docker's own health check (`HEALTHCHECK`, `--health-cmd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Within the start period, no verdict yet.
    Starting,
    /// The last checks passed.
    Healthy,
    /// `retries` consecutive checks failed.
    Unhealthy,
}

impl Health {
    /// Docker's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One run of Docker's health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckRun {
    /// Its exit code: 0 healthy, 1 unhealthy.
    pub exit_code: i64,
    /// Its output, trimmed and capped.
    pub output: String,
    /// When it ended.
    pub end: Option<String>,
}

/// The facts of one inspected container that judge its health.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerFacts {
    /// Full id.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// created, running, paused, restarting, removing, exited, dead.
    pub state: ContainerState,
    /// Docker's health check status, when the container has one.
    pub health: Option<Health>,
    /// The last health check runs, oldest first.
    pub health_log: Vec<HealthCheckRun>,
    /// Exit code of the last run (0 while it has never ended).
    pub exit_code: Option<i64>,
    /// Killed by the OOM killer.
    pub oom_killed: bool,
    /// Docker's error for the last start, if any.
    pub error: Option<String>,
    /// When the current (or last) run started (RFC 3339).
    pub started_at: Option<String>,
    /// When the last run ended (RFC 3339).
    pub finished_at: Option<String>,
    /// Restarts done by Docker's own restart policy.
    pub restart_count: i64,
    /// Docker's restart policy: no, always, unless-stopped, on-failure.
    pub restart_policy: Option<String>,
    /// For `on-failure`: how many restarts it allows (0: no limit).
    pub restart_max_retries: i64,
    /// The image id it runs.
    pub image_id: String,
    /// The image reference it was created from.
    pub image: String,
    /// Its labels.
    pub labels: HashMap<String, String>,
    /// Podman's own action when its health check fails (`--health-on-failure`),
    /// read from libpod's inspect for an unhealthy container only.
    pub health_on_failure: Option<HealthOnFailure>,
}

/// How a container was last stopped by a command, as the event stream told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCommand {
    /// Sent its stop signal (a `kill` with SIGTERM): `docker stop` or `docker restart`.
    Graceful,
    /// Killed outright (`docker kill`): no restart policy brings it back.
    Kill,
    /// `podman restart` (Podman announces the restart before the stop).
    Restart,
}

/// Who brings a stopped container back by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BringsBack {
    /// A person's or a script's command (`docker restart`, `podman restart`;
    /// a `docker stop` looks the same until then): not a failure.
    Command(String),
    /// The engine after a failure: its restart policy, Podman's `--health-on-failure`.
    Engine(String),
}

impl BringsBack {
    /// Who, in words: `` `docker restart` (a person or a script) ``, `` its restart policy `always` ``.
    pub fn who(&self) -> &str {
        match self {
            Self::Command(who) | Self::Engine(who) => who,
        }
    }
}

/// medic's reading of the facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Healthy enough: running and not unhealthy.
    pub ok: bool,
    /// Ok, but Docker's health check has no verdict yet (only ever true when `ok` is).
    pub starting: bool,
    /// One human line.
    pub message: String,
}

impl ContainerFacts {
    /// Extracts the facts from an inspect response.
    pub fn from_inspect(inspect: &ContainerInspectResponse) -> Self {
        let state = inspect.state.clone().unwrap_or_default();
        let health = state.health.as_ref();
        let config = inspect.config.as_ref();
        Self {
            id: inspect.id.clone().unwrap_or_default(),
            name: inspect
                .name
                .as_deref()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
            state: state.status.map_or(ContainerState::Unknown, |s| {
                ContainerState::parse(s.as_ref())
            }),
            health: health.and_then(|h| h.status).and_then(|s| match s {
                HealthStatusEnum::STARTING => Some(Health::Starting),
                HealthStatusEnum::HEALTHY => Some(Health::Healthy),
                HealthStatusEnum::UNHEALTHY => Some(Health::Unhealthy),
                HealthStatusEnum::NONE | HealthStatusEnum::EMPTY => None,
            }),
            health_log: health
                .and_then(|h| h.log.as_deref())
                .map(|log| {
                    let skip = log.len().saturating_sub(HEALTH_LOG_KEEP);
                    log[skip..]
                        .iter()
                        .map(|run| HealthCheckRun {
                            exit_code: run.exit_code.unwrap_or(-1),
                            output: cap(
                                run.output.as_deref().unwrap_or_default().trim(),
                                HEALTH_OUTPUT_MAX,
                            ),
                            end: run.end.as_ref().map(ToString::to_string),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            exit_code: state.exit_code,
            oom_killed: state.oom_killed.unwrap_or(false),
            error: state.error.filter(|e| !e.is_empty()),
            started_at: state.started_at.filter(|t| !is_zero_time(t)),
            finished_at: state.finished_at.filter(|t| !is_zero_time(t)),
            restart_count: inspect.restart_count.unwrap_or(0),
            restart_policy: inspect
                .host_config
                .as_ref()
                .and_then(|h| h.restart_policy.as_ref())
                .and_then(|p| p.name)
                .map(|n| n.to_string())
                .filter(|n| !n.is_empty()),
            restart_max_retries: inspect
                .host_config
                .as_ref()
                .and_then(|h| h.restart_policy.as_ref())
                .and_then(|p| p.maximum_retry_count)
                .unwrap_or(0),
            image_id: inspect.image.clone().unwrap_or_default(),
            image: config.and_then(|c| c.image.clone()).unwrap_or_default(),
            labels: config.and_then(|c| c.labels.clone()).unwrap_or_default(),
            health_on_failure: None,
        }
    }

    /// Running (or paused) now: `docker restart` applies, `docker start` does not.
    pub fn is_running(&self) -> bool {
        matches!(self.state, ContainerState::Running | ContainerState::Paused)
    }

    /// Being removed (`docker rm -f`, `podman rm -f`): gone once the engine is done.
    pub fn is_removing(&self) -> bool {
        self.state == ContainerState::Removing
    }

    /// Being stopped or removed by someone (`stopping`, `removing`, Podman's
    /// `stopped`): the engine has not finished, and neither start nor restart
    /// applies yet. A start of a `stopped` container races a `podman rm -f`
    /// that is removing it: Podman then deletes the container and leaves the
    /// started process running outside its knowledge.
    pub fn is_stopping(&self) -> bool {
        matches!(
            self.state,
            ContainerState::Stopping | ContainerState::Removing | ContainerState::Stopped
        )
    }

    /// Its process ended: exited, dead, or Podman's `stopped`.
    pub fn has_stopped(&self) -> bool {
        matches!(
            self.state,
            ContainerState::Exited | ContainerState::Dead | ContainerState::Stopped
        )
    }

    /// Who brings a stopped (or restarting) container back by itself, if
    /// anyone: a `docker restart` / `podman restart` under way, the
    /// engine's restart policy (which never undoes `docker kill`), or, for
    /// an unhealthy one, Podman's `--health-on-failure` (`kill` and `stop`
    /// are there for a systemd unit's `Restart=`). `command` is how it was
    /// last stopped, when the event stream saw a command do it.
    pub fn restart_expected_from(&self, command: Option<StopCommand>) -> Option<BringsBack> {
        let policy = self.restart_policy.as_deref().unwrap_or("no");
        let by_policy = || BringsBack::Engine(format!("its restart policy `{policy}`"));
        // Podman acts on the failed check (about to, or stopping it now: it
        // announces a `restart` as it does for `podman restart`).
        let by_health_check = self.health_on_failure.filter(|_| {
            self.health == Some(Health::Unhealthy) && self.state != ContainerState::Restarting
        });
        if let Some(action) = by_health_check {
            return Some(BringsBack::Engine(match action {
                HealthOnFailure::Restart => "Podman's `--health-on-failure=restart`".to_owned(),
                action => format!(
                    "Podman's `--health-on-failure={}` (then its systemd unit's restart, if any)",
                    action.as_str()
                ),
            }));
        }
        match (self.state, command) {
            (ContainerState::Restarting, _) => Some(by_policy()),
            // Podman shows `stopping` during a restart's stop timeout.
            (
                ContainerState::Exited
                | ContainerState::Dead
                | ContainerState::Stopped
                | ContainerState::Stopping,
                Some(StopCommand::Restart),
            ) => Some(BringsBack::Command(
                "`podman restart` (a person or a script)".to_owned(),
            )),
            (
                ContainerState::Exited
                | ContainerState::Dead
                | ContainerState::Stopped
                | ContainerState::Stopping,
                Some(StopCommand::Graceful),
            ) => Some(BringsBack::Command(
                "`docker restart` (a person or a script)".to_owned(),
            )),
            (ContainerState::Exited | ContainerState::Dead | ContainerState::Stopped, None) => {
                let retries_left =
                    self.restart_max_retries <= 0 || self.restart_count < self.restart_max_retries;
                let restarts = match policy {
                    "always" | "unless-stopped" => true,
                    "on-failure" => self.exit_code.unwrap_or(0) != 0 && retries_left,
                    _ => false,
                };
                restarts.then(by_policy)
            }
            _ => None,
        }
    }

    /// Its `medic.*` override labels, see [`crate::labels::overrides`].
    pub fn overrides(&self) -> BTreeMap<String, String> {
        crate::labels::overrides(&self.labels)
    }

    /// Running and not unhealthy is ok (a health check still `starting` is ok,
    /// flagged as starting); restarting under Docker's own policy, paused,
    /// exited, dead or created is a failure.
    pub fn verdict(&self) -> Verdict {
        let fail = |message: String| Verdict {
            ok: false,
            starting: false,
            message,
        };
        match (self.state, self.health) {
            (ContainerState::Running, Some(Health::Unhealthy)) => {
                let last = self
                    .health_log
                    .last()
                    .filter(|run| !run.output.is_empty())
                    .map(|run| format!(": {}", first_line(&run.output)))
                    .unwrap_or_default();
                fail(format!("running but Docker reports it unhealthy{last}"))
            }
            (ContainerState::Running, health) => Verdict {
                ok: true,
                starting: health == Some(Health::Starting),
                message: match health {
                    // Podman runs health checks from systemd timers: without
                    // systemd none ever runs and it stays `starting`.
                    Some(Health::Starting) if self.health_log.is_empty() => {
                        "running (health starting: no health check has run yet)".to_owned()
                    }
                    Some(health) => format!("running ({health})"),
                    None => "running".to_owned(),
                },
            },
            (ContainerState::Paused, _) => fail("paused (docker pause): not serving".to_owned()),
            (ContainerState::Restarting, _) => fail(format!(
                "restarting under Docker's restart policy{} ({} restarts so far, last exit code {})",
                self.restart_policy
                    .as_deref()
                    .map(|p| format!(" `{p}`"))
                    .unwrap_or_default(),
                self.restart_count,
                self.exit_code.unwrap_or(-1),
            )),
            (ContainerState::Exited | ContainerState::Dead | ContainerState::Stopped, _)
                if self.oom_killed =>
            {
                fail("killed by the OOM killer".to_owned())
            }
            (ContainerState::Exited | ContainerState::Dead | ContainerState::Stopped, _) => {
                let error = self
                    .error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                fail(format!(
                    "{} with exit code {}{error}",
                    self.state,
                    self.exit_code.unwrap_or(-1)
                ))
            }
            (ContainerState::Created, _) => match &self.error {
                Some(error) => fail(format!("created but could not start: {error}")),
                None => fail("created, not started".to_owned()),
            },
            (state, _) => fail(format!("not running ({state})")),
        }
    }

    /// The facts as evidence: container, state, image, exit code, OOM flag,
    /// error, start and finish times, health with its last runs, restart count
    /// and policy. The daemon adds log lines.
    pub fn evidence(&self) -> Map<String, Value> {
        let mut evidence = Map::new();
        let mut put = |key: &str, value: Value| {
            evidence.insert(key.to_owned(), value);
        };
        put("container", self.name.clone().into());
        put("container_id", self.id.clone().into());
        put("state", self.state.as_str().into());
        put("image", self.image.clone().into());
        put("image_id", self.image_id.clone().into());
        if let Some(code) = self.exit_code {
            put("exit_code", code.into());
        }
        put("oom_killed", self.oom_killed.into());
        if let Some(error) = &self.error {
            put("error", error.clone().into());
        }
        if let Some(started) = &self.started_at {
            put("started_at", started.clone().into());
        }
        if let Some(finished) = &self.finished_at {
            put("finished_at", finished.clone().into());
        }
        if let Some(health) = self.health {
            put("health", health.as_str().into());
            let runs = self
                .health_log
                .iter()
                .map(|run| {
                    let mut entry = Map::new();
                    entry.insert("exit_code".into(), run.exit_code.into());
                    entry.insert("output".into(), run.output.clone().into());
                    if let Some(end) = &run.end {
                        entry.insert("end".into(), end.clone().into());
                    }
                    Value::Object(entry)
                })
                .collect();
            put("health_log", Value::Array(runs));
        }
        put("restart_count", self.restart_count.into());
        if let Some(policy) = &self.restart_policy {
            put("restart_policy", policy.clone().into());
        }
        evidence
    }
}

/// Docker writes `0001-01-01T00:00:00Z` for "never".
fn is_zero_time(time: &str) -> bool {
    time.is_empty() || time.starts_with("0001-")
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// At most `max` bytes of `text`, cut at a character boundary.
pub(crate) fn cap(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(state: ContainerState, health: Option<Health>) -> ContainerFacts {
        ContainerFacts {
            id: "id".into(),
            name: "web".into(),
            state,
            health,
            health_log: vec![HealthCheckRun {
                exit_code: 1,
                output: "connection refused\nmore".into(),
                end: Some("2025-01-01T00:00:00Z".into()),
            }],
            exit_code: Some(3),
            oom_killed: false,
            error: None,
            started_at: None,
            finished_at: Some("2025-01-01T00:00:00Z".into()),
            restart_count: 4,
            restart_policy: Some("always".into()),
            restart_max_retries: 0,
            image_id: "sha256:1".into(),
            image: "app:1".into(),
            labels: HashMap::new(),
            health_on_failure: None,
        }
    }

    #[track_caller]
    fn check(state: ContainerState, health: Option<Health>, expect: (bool, bool, &str)) {
        let verdict = facts(state, health).verdict();
        assert_eq!(
            (verdict.ok, verdict.starting, verdict.message.as_str()),
            expect
        );
    }

    #[test]
    fn verdicts() {
        use ContainerState as S;
        check(S::Running, None, (true, false, "running"));
        check(
            S::Running,
            Some(Health::Healthy),
            (true, false, "running (healthy)"),
        );
        check(
            S::Running,
            Some(Health::Starting),
            (true, true, "running (starting)"),
        );
        check(
            S::Running,
            Some(Health::Unhealthy),
            (
                false,
                false,
                "running but Docker reports it unhealthy: connection refused",
            ),
        );
        check(
            S::Restarting,
            None,
            (
                false,
                false,
                "restarting under Docker's restart policy `always` (4 restarts so far, last exit code 3)",
            ),
        );
        check(S::Exited, None, (false, false, "exited with exit code 3"));
        check(S::Dead, None, (false, false, "dead with exit code 3"));
        check(S::Stopped, None, (false, false, "stopped with exit code 3"));
        check(S::Created, None, (false, false, "created, not started"));
        check(
            S::Paused,
            None,
            (false, false, "paused (docker pause): not serving"),
        );
        check(S::Removing, None, (false, false, "not running (removing)"));
        let mut oom = facts(S::Exited, None);
        oom.oom_killed = true;
        assert_eq!(oom.verdict().message, "killed by the OOM killer");
    }

    #[test]
    fn evidence_carries_the_facts() {
        let evidence =
            Value::Object(facts(ContainerState::Exited, Some(Health::Unhealthy)).evidence());
        let expect = serde_json::json!({
            "container": "web", "container_id": "id", "state": "exited",
            "image": "app:1", "image_id": "sha256:1", "exit_code": 3, "oom_killed": false,
            "finished_at": "2025-01-01T00:00:00Z", "health": "unhealthy",
            "health_log": [{"exit_code": 1, "output": "connection refused\nmore", "end": "2025-01-01T00:00:00Z"}],
            "restart_count": 4, "restart_policy": "always",
        });
        assert_eq!(evidence, expect);
    }

    #[test]
    fn reads_an_inspect_response() {
        let inspect: ContainerInspectResponse = serde_json::from_value(serde_json::json!({
            "Id": "abc", "Name": "/web", "Image": "sha256:1", "RestartCount": 2,
            "State": {"Status": "exited", "ExitCode": 137, "OOMKilled": true, "Error": "",
                      "StartedAt": "2025-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z",
                      "Health": {"Status": "unhealthy", "FailingStreak": 3, "Log": [
                          {"ExitCode": 1, "Output": "a"}, {"ExitCode": 1, "Output": "b"},
                          {"ExitCode": 1, "Output": "c"}, {"ExitCode": 1, "Output": " d \n"}]}},
            "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 0}},
            "Config": {"Image": "app:1", "Labels": {"medic.max_attempts": "5"}}
        }))
        .unwrap();
        let facts = ContainerFacts::from_inspect(&inspect);
        assert_eq!(facts.name, "web");
        assert_eq!(facts.state, ContainerState::Exited);
        assert_eq!(
            (facts.exit_code, facts.oom_killed, facts.error.as_deref()),
            (Some(137), true, None)
        );
        assert_eq!(facts.finished_at, None, "the zero time means never");
        assert_eq!(facts.health, Some(Health::Unhealthy));
        let outputs: Vec<_> = facts.health_log.iter().map(|r| r.output.as_str()).collect();
        assert_eq!(outputs, ["b", "c", "d"]);
        assert_eq!(facts.restart_policy.as_deref(), Some("on-failure"));
        assert_eq!(facts.overrides()["max_attempts"], "5");
    }

    #[test]
    fn who_brings_a_stopped_container_back() {
        use ContainerState as S;
        use StopCommand as C;
        let with = |state, policy: &str, exit: i64, command| {
            let mut facts = facts(state, None);
            facts.restart_policy = Some(policy.to_owned()).filter(|p| !p.is_empty());
            facts.exit_code = Some(exit);
            facts.restart_expected_from(command)
        };
        let policy = |p: &str| Some(BringsBack::Engine(format!("its restart policy `{p}`")));
        assert_eq!(with(S::Exited, "always", 3, None), policy("always"));
        assert_eq!(
            with(S::Exited, "unless-stopped", 0, None),
            policy("unless-stopped")
        );
        assert_eq!(with(S::Exited, "on-failure", 3, None), policy("on-failure"));
        assert_eq!(with(S::Exited, "on-failure", 0, None), None, "a clean exit");
        assert_eq!(with(S::Exited, "no", 3, None), None);
        assert_eq!(with(S::Exited, "", 3, None), None);
        assert_eq!(with(S::Restarting, "always", 3, None), policy("always"));
        // The engine's policy never undoes `docker kill`.
        assert_eq!(with(S::Exited, "always", 137, Some(C::Kill)), None);
        let person = Some(BringsBack::Command(
            "`docker restart` (a person or a script)".to_owned(),
        ));
        assert_eq!(with(S::Exited, "no", 143, Some(C::Graceful)), person);
        assert_eq!(with(S::Running, "always", 0, Some(C::Graceful)), None);
        let podman = Some(BringsBack::Command(
            "`podman restart` (a person or a script)".to_owned(),
        ));
        assert_eq!(with(S::Stopping, "no", 0, Some(C::Restart)), podman);
        assert_eq!(with(S::Stopping, "no", 0, None), None, "podman stop, rm -f");
        let mut limited = facts(S::Exited, None);
        (limited.restart_policy, limited.restart_max_retries) = (Some("on-failure".into()), 4);
        assert_eq!(
            limited.restart_expected_from(None),
            None,
            "4 of 4 retries used"
        );
    }

    #[test]
    fn podmans_health_on_failure_brings_an_unhealthy_container_back() {
        let with = |health, action| {
            let mut facts = facts(ContainerState::Running, health);
            facts.restart_policy = None;
            facts.health_on_failure = action;
            facts
                .restart_expected_from(None)
                .map(|b| b.who().to_owned())
        };
        let unhealthy = Some(Health::Unhealthy);
        assert_eq!(
            with(unhealthy, Some(HealthOnFailure::Restart)).as_deref(),
            Some("Podman's `--health-on-failure=restart`")
        );
        assert_eq!(
            with(unhealthy, Some(HealthOnFailure::Kill)).as_deref(),
            Some("Podman's `--health-on-failure=kill` (then its systemd unit's restart, if any)")
        );
        assert_eq!(with(unhealthy, None), None, "`none`, or Docker");
        let mut stopping = facts(ContainerState::Stopping, unhealthy);
        stopping.health_on_failure = Some(HealthOnFailure::Restart);
        assert_eq!(
            stopping.restart_expected_from(Some(StopCommand::Restart)),
            Some(BringsBack::Engine(
                "Podman's `--health-on-failure=restart`".to_owned()
            )),
            "its restart under way"
        );
        assert_eq!(
            with(Some(Health::Healthy), Some(HealthOnFailure::Restart)),
            None
        );
    }

    #[test]
    fn a_health_check_that_never_ran_is_said_so() {
        let mut facts = facts(ContainerState::Running, Some(Health::Starting));
        facts.health_log.clear();
        assert_eq!(
            facts.verdict().message,
            "running (health starting: no health check has run yet)"
        );
    }

    #[test]
    fn caps_at_a_char_boundary() {
        assert_eq!(cap("héllo", 2), "h…");
        assert_eq!(cap("hello", 5), "hello");
    }
}
