//! systemd in the daemon: the systemd_unit check (D-Bus, and the journal as
//! evidence), discovery of the units of a `pattern`, the restart job
//! (RestartUnit, waiting for systemd's job), the rollback to its last known
//! good unit files (`systemd/rollback.rs`), and following property changes
//! so a unit that fails is checked within milliseconds (`systemd/follow.rs`).

mod follow;
mod rollback;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use medic_core::config::{Config, Expect, SystemdUnitTarget, Target, UnitSelector};
use medic_core::{
    ActionResult, ENGINE_GRACE, Evidence, Observation, RESTART_EXPECTED_FROM, Step, Urgency,
};
use medic_systemd::{Classification, SystemdBus, SystemdError, UnitFacts, journal};
use tokio::sync::{Mutex, Notify};
use tokio::time::Instant;

use crate::job::Job;
use crate::shell::Shell;

pub use follow::Follows;

/// Journal lines of a failing unit kept as evidence.
const JOURNAL_LINES: usize = 50;
/// Most bytes of journalctl's JSON read (50 entries with their fields fit many times).
const JOURNAL_OUTPUT_CAP: usize = 512 * 1024;
/// The longest one D-Bus call (or connecting) may take.
const CALL_DEADLINE: Duration = Duration::from_secs(10);
/// The longest journalctl may take for an action's evidence.
const JOURNAL_DEADLINE: Duration = Duration::from_secs(5);

/// The daemon's connections to systemd: the system manager's and the user's,
/// each made on first use and made again after it broke.
#[derive(Debug, Clone)]
pub struct Systemd {
    managers: Arc<[Manager; 2]>,
    /// How often to try again to follow a manager's signals after a break.
    retry: Duration,
}

#[derive(Debug, Default)]
struct Manager {
    bus: Mutex<Option<SystemdBus>>,
    follows: Follows,
    /// Whether a task follows its signals (started for the first unit of
    /// this manager, at start or by a reload; it runs until medic stops).
    followed: AtomicBool,
}

/// One systemd unit a medic unit watches.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemdUnit {
    /// The unit's name (`api.service`).
    pub name: String,
    /// The user's manager rather than the system's.
    pub user: bool,
    /// What a one-shot unit that exited 0 means (`expect` in config).
    pub expect: Expect,
}

impl SystemdUnit {
    /// The unit `name` of a target.
    pub fn new(name: &str, target: &SystemdUnitTarget) -> Self {
        Self {
            name: name.to_owned(),
            user: target.user,
            expect: target.expect,
        }
    }
}

impl Systemd {
    /// The connections a config needs; nothing connects until a call.
    pub fn for_config(config: &Config) -> Self {
        Self {
            managers: Arc::default(),
            retry: config.medic.reconcile_interval,
        }
    }

    fn manager(&self, user: bool) -> &Manager {
        &self.managers[usize::from(user)]
    }

    /// The manager's connection, made now when there is none.
    async fn bus(&self, user: bool) -> Result<SystemdBus, SystemdError> {
        let mut bus = self.manager(user).bus.lock().await;
        if let Some(bus) = bus.as_ref() {
            return Ok(bus.clone());
        }
        let connected = SystemdBus::connect(user, CALL_DEADLINE).await?;
        *bus = Some(connected.clone());
        Ok(connected)
    }

    /// Forgets a connection that broke, so the next call makes a new one.
    async fn broke(&self, user: bool, error: &SystemdError) {
        if error.is_disconnected() {
            self.manager(user).bus.lock().await.take();
        }
    }

    /// systemd's view of `unit`.
    async fn facts(&self, unit: &SystemdUnit) -> Result<UnitFacts, SystemdError> {
        let result = async { self.bus(unit.user).await?.facts(&unit.name).await }.await;
        if let Err(error) = &result {
            self.broke(unit.user, error).await;
        }
        result
    }

    /// The check of one unit.
    pub fn check(&self, unit: SystemdUnit, timeout: Duration) -> SystemdUnitCheck {
        SystemdUnitCheck {
            systemd: self.clone(),
            unit,
            timeout,
        }
    }

    /// Follows the property changes of the managers `config`'s units live
    /// in, so a change runs their checks at once: at start, and after a
    /// reload that adds the first unit of a manager.
    pub fn start_events(&self, shell: &Shell, config: &Config) {
        for user in [false, true] {
            let used = config
                .services
                .iter()
                .any(|s| matches!(&s.target, Some(Target::SystemdUnit(t)) if t.user == user));
            if used && !self.manager(user).followed.swap(true, Ordering::Relaxed) {
                let follow = follow::follow(self.clone(), user, shell.clone(), self.retry);
                shell.tracker.spawn(follow);
            }
        }
    }

    /// Lists the units of a `pattern` service every `reconcile_interval` and
    /// reports each one (nothing for a single name).
    pub fn start_discovery(
        &self,
        shell: &Shell,
        config: &Config,
        service: &str,
        target: &SystemdUnitTarget,
    ) {
        let UnitSelector::Pattern(pattern) = &target.selector else {
            return;
        };
        let (systemd, shell_, service, pattern) = (
            self.clone(),
            shell.clone(),
            service.to_owned(),
            pattern.clone(),
        );
        let (user, interval) = (target.user, config.medic.reconcile_interval);
        shell.tracker.spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            loop {
                tokio::select! {
                    () = shell_.cancel.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                let found = systemd
                    .find(user, &pattern)
                    .await
                    .map(|units| units.into_iter().map(|u| (u, HashMap::new())).collect())
                    .map_err(|error| format!("cannot list systemd units: {error}"));
                if !crate::discovery::report_discovery(&shell_, &service, found).await {
                    return;
                }
            }
        });
    }

    /// The units whose names match `pattern`.
    pub async fn find(&self, user: bool, pattern: &str) -> Result<Vec<String>, SystemdError> {
        let result = async { self.bus(user).await?.list(pattern).await }.await;
        if let Err(error) = &result {
            self.broke(user, error).await;
        }
        result
    }

    /// The job that carries out `step` on a unit (a rollback returns to
    /// `last_known_good`; `resumed`: one cut short by a stop of medic).
    pub fn job(
        &self,
        unit: &SystemdUnit,
        step: Step,
        last_known_good: Option<serde_json::Value>,
        resumed: bool,
    ) -> Job {
        let (systemd, unit) = (self.clone(), unit.clone());
        Box::pin(async move {
            match step {
                Step::Restart(_) => systemd.restart(&unit).await,
                Step::Rollback => systemd.rollback(&unit, last_known_good, resumed).await,
            }
        })
    }

    /// RestartUnit, with ResetFailedUnit first when the unit is failed (as a
    /// person runs `systemctl reset-failed`: it clears the start limit, which
    /// systemd 252 reports as `exit-code` when its own restarts hit it), then
    /// what systemd says of the unit after its job.
    async fn restart(&self, unit: &SystemdUnit) -> ActionResult {
        let mut evidence = Evidence::new();
        evidence.insert("unit".into(), unit.name.clone().into());
        let before = self.facts(unit).await;
        let reset = before
            .as_ref()
            .is_ok_and(|facts| facts.active_state == "failed" || facts.result == "start-limit-hit");
        let restarted = async { self.bus(unit.user).await?.restart(&unit.name, reset).await }.await;
        let outcome = match restarted {
            Ok(outcome) => outcome,
            Err(error) => {
                self.broke(unit.user, &error).await;
                return ActionResult::Failed {
                    message: error.to_string(),
                    evidence,
                };
            }
        };
        evidence.insert("job_result".into(), outcome.result.clone().into());
        evidence.insert("reset_failed".into(), outcome.reset_failed.into());
        if let Ok(after) = self.facts(unit).await {
            evidence.extend(after.evidence());
        }
        let reset = if outcome.reset_failed {
            "reset its failed state and start limit, and "
        } else {
            ""
        };
        if outcome.result == "done" {
            return ActionResult::Done {
                message: format!("{reset}restarted `{}` through systemd", unit.name),
                evidence,
            };
        }
        if let Some(lines) = read_journal(unit, JOURNAL_DEADLINE).await {
            evidence.insert("journal".into(), lines.into());
        }
        ActionResult::Failed {
            message: format!(
                "{reset}asked systemd to restart `{}`: its job ended `{}`",
                unit.name, outcome.result
            ),
            evidence,
        }
    }
}

/// The last journal lines of a unit, through journalctl within `deadline`;
/// `None` when journalctl cannot be run or has nothing.
async fn read_journal(unit: &SystemdUnit, deadline: Duration) -> Option<Vec<String>> {
    let argv = journal::command(&unit.name, unit.user, JOURNAL_LINES);
    let outcome = medic_probe::run_command(&argv, deadline, JOURNAL_OUTPUT_CAP).await;
    let lines = journal::parse(&outcome.output);
    (!lines.is_empty()).then_some(lines)
}

/// The journal of a unit for `medic logs S --output`: its last `lines` lines.
pub async fn journal_lines(name: &str, user: bool, lines: usize) -> anyhow::Result<Vec<String>> {
    let argv = journal::command(name, user, lines);
    let outcome = medic_probe::run_command(&argv, CALL_DEADLINE, JOURNAL_OUTPUT_CAP).await;
    if let Some(error) = outcome.spawn_error {
        anyhow::bail!("cannot run journalctl: {error}");
    }
    if outcome.exit != Some(0) {
        anyhow::bail!("journalctl failed: {}", outcome.output.trim());
    }
    Ok(journal::parse(&outcome.output))
}

/// Reads one unit over D-Bus and judges it.
#[derive(Debug, Clone)]
pub struct SystemdUnitCheck {
    systemd: Systemd,
    unit: SystemdUnit,
    timeout: Duration,
}

impl SystemdUnitCheck {
    /// Runs this check as well when systemd announces a change to the unit.
    pub fn follow(&self, trigger: &Arc<Notify>) {
        self.systemd
            .manager(self.unit.user)
            .follows
            .add(&self.unit.name, trigger);
    }

    /// One observation: active or idle is ok; failed or not running is a
    /// decisive failure (its journal in the evidence); systemd restarting it
    /// itself is a failure that gets the engine's grace; starting counts
    /// towards the threshold; no unit file is `Gone`; systemd that cannot be
    /// reached or does not answer is blind.
    pub async fn run(&self) -> Observation {
        let started = Instant::now();
        let read = tokio::time::timeout(self.timeout, self.systemd.facts(&self.unit)).await;
        let latency = started.elapsed();
        let blind = |why: String| {
            Observation::blind(latency, why)
                .with("unit", self.unit.name.clone())
                .with("classification", "unknown")
        };
        let facts = match read {
            Err(_) => return blind("systemd did not answer in time".into()),
            Ok(Err(error)) => return blind(format!("systemd unreachable: {error}")),
            Ok(Ok(facts)) => facts,
        };
        let expect = match self.unit.expect {
            Expect::ExitedOk => medic_systemd::Expect::ExitedOk,
            Expect::Running => medic_systemd::Expect::Running,
        };
        let verdict = medic_systemd::classify(&facts, expect);
        let mut evidence = facts.evidence();
        evidence.insert("classification".into(), verdict.class.as_str().into());
        let message = format!("`{}` {}", self.unit.name, verdict.message);
        if verdict.class.is_ok() {
            let mut observation = Observation::ok(latency, message);
            observation.evidence = evidence;
            return observation;
        }
        let urgency = match verdict.class {
            Classification::Missing => Urgency::Gone,
            // Not yet a failure: it counts when systemd stays stuck there.
            Classification::Starting => Urgency::Normal,
            Classification::Restarting => {
                let who = format!("systemd (Restart={})", facts.restart);
                evidence.insert(RESTART_EXPECTED_FROM.into(), who.into());
                Urgency::EngineRestarts
            }
            _ => {
                let left = self.timeout.saturating_sub(started.elapsed());
                if let Some(lines) = read_journal(&self.unit, left.min(ENGINE_GRACE)).await {
                    evidence.insert("journal".into(), lines.into());
                }
                Urgency::Decisive
            }
        };
        let mut observation = Observation::fail(latency, message).with_urgency(urgency);
        observation.evidence = evidence;
        observation
    }
}
