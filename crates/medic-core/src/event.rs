//! What the core tells the world: recovery-log events and alerts.

use std::time::Instant;

use crate::observation::Evidence;

/// The kind of a recovery-log event; its `as_str` is the `event` field of the JSONL contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// medic started watching the service.
    Watching,
    /// The first fresh successful observations: the service is healthy.
    Healthy,
    /// An incident opened: the failure threshold was reached or a decisive failure seen.
    Failing,
    /// A restart was started.
    Restart,
    /// The restart action finished; verification follows.
    RestartDone,
    /// The restart action failed or did not verify within `recover_timeout`.
    RestartFailed,
    /// Fresh successes after a restart (or on its own): the incident is closed.
    Recovered,
    /// A rollback to the last known good version was started.
    Rollback,
    /// The rollback action finished; verification follows.
    RollbackDone,
    /// The rollback was impossible, failed, or did not verify.
    RollbackFailed,
    /// Fresh successes after a rollback: the incident is closed.
    RolledBack,
    /// No further automatic action: a person must act.
    Escalated,
    /// A person paused automatic recovery.
    Paused,
    /// Automatic recovery resumed.
    Resumed,
    /// A person reset the service: escalation cleared, attempts forgotten.
    Reset,
    /// A probe cannot see; no action is taken while blind.
    Blind,
    /// Probes see again, or observations are fresh again after being stale.
    SightRestored,
    /// No fresh observation within 2 × interval + timeout: the service is reported unknown.
    Stale,
    /// An action was cut short by shutdown.
    Interrupted,
    /// A queued action was dropped before it ran: its reason went (the
    /// service recovered, a person paused, reset or deployed it).
    Dropped,
    /// A result arrived from a job medic no longer waits for (it timed out,
    /// or the deploy already ended): logged, and nothing else.
    Ignored,
    /// An action waits for a service this one depends on.
    WaitingForDependency,
    /// The service is no longer watched (config reload, container gone from a selector).
    Removed,
    /// `medic deploy` began: automatic recovery is held.
    DeployStarted,
    /// The deploy command finished; the new version is verified.
    DeployDone,
    /// The deploy command failed, or the new version was not healthy in time: rollback follows.
    DeployFailed,
    /// The new version was healthy on fresh observations: it becomes the last known good once it stays healthy.
    Deployed,
    /// A person's or a script's restart (`docker restart`) brought it back: not an incident.
    Restarted,
    /// A new target under the same name replaced the removed one (a deploy): not an incident.
    Replaced,
    /// Flapping with nothing different to roll back to: restarts go on, each after a growing delay.
    Flapping,
    /// Healthy for `flap_window` since its last incident: the flap delay is forgotten.
    FlappingEnded,
}

impl EventKind {
    /// Every kind, in the order they are declared.
    pub const ALL: [EventKind; 31] = [
        EventKind::Watching,
        EventKind::Healthy,
        EventKind::Failing,
        EventKind::Restart,
        EventKind::RestartDone,
        EventKind::RestartFailed,
        EventKind::Recovered,
        EventKind::Rollback,
        EventKind::RollbackDone,
        EventKind::RollbackFailed,
        EventKind::RolledBack,
        EventKind::Escalated,
        EventKind::Paused,
        EventKind::Resumed,
        EventKind::Reset,
        EventKind::Blind,
        EventKind::SightRestored,
        EventKind::Stale,
        EventKind::Interrupted,
        EventKind::Dropped,
        EventKind::Ignored,
        EventKind::WaitingForDependency,
        EventKind::Removed,
        EventKind::DeployStarted,
        EventKind::DeployDone,
        EventKind::DeployFailed,
        EventKind::Deployed,
        EventKind::Restarted,
        EventKind::Replaced,
        EventKind::Flapping,
        EventKind::FlappingEnded,
    ];

    /// The snake_case name written to the recovery log.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Watching => "watching",
            EventKind::Healthy => "healthy",
            EventKind::Failing => "failing",
            EventKind::Restart => "restart",
            EventKind::RestartDone => "restart_done",
            EventKind::RestartFailed => "restart_failed",
            EventKind::Recovered => "recovered",
            EventKind::Rollback => "rollback",
            EventKind::RollbackDone => "rollback_done",
            EventKind::RollbackFailed => "rollback_failed",
            EventKind::RolledBack => "rolled_back",
            EventKind::Escalated => "escalated",
            EventKind::Paused => "paused",
            EventKind::Resumed => "resumed",
            EventKind::Reset => "reset",
            EventKind::Blind => "blind",
            EventKind::SightRestored => "sight_restored",
            EventKind::Stale => "stale",
            EventKind::Interrupted => "interrupted",
            EventKind::Dropped => "dropped",
            EventKind::Ignored => "ignored",
            EventKind::WaitingForDependency => "waiting_for_dependency",
            EventKind::Removed => "removed",
            EventKind::DeployStarted => "deploy",
            EventKind::DeployDone => "deploy_done",
            EventKind::DeployFailed => "deploy_failed",
            EventKind::Deployed => "deployed",
            EventKind::Restarted => "restarted",
            EventKind::Replaced => "replaced",
            EventKind::Flapping => "flapping",
            EventKind::FlappingEnded => "flapping_ended",
        }
    }
}

/// One line of the recovery log, before the shell stamps it with the wall-clock time.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryEvent {
    /// The unit (service, or `service/instance`).
    pub service: String,
    /// What happened.
    pub kind: EventKind,
    /// The incident this event belongs to.
    pub incident: Option<String>,
    /// The service's state after the event (`healthy`, `recovering`, …).
    pub state: &'static str,
    /// The attempt number for restart events.
    pub attempt: Option<u32>,
    /// One human line.
    pub message: String,
    /// The facts behind it.
    pub evidence: Evidence,
    /// How loud it is and when its state change must be on disk: the core's
    /// decision, which the shell follows (see [`crate::notice`]).
    pub notice: Notice,
}

/// How loud a recovery event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// News: the journal at info.
    Routine,
    /// Something is wrong: the journal at warn.
    Trouble,
}

/// When the state change behind a recovery event must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persist {
    /// With the next whole save of the state store (at most a second later).
    WithNextSave,
    /// In a change line at the end of this drain: a medic restarted after a
    /// kill -9 must find it (an incident opened or closed, a step taken, a
    /// pause), or it would act or alert a second time.
    AtOnce,
}

/// What the shell does with one recovery event (the rule: `Notice::of` in [`crate::notice`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice {
    /// How loud it is.
    pub level: Level,
    /// When its state change must be on disk.
    pub persist: Persist,
}

/// How urgently a person must look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// For the record (an alerted incident resolved).
    Info,
    /// medic acted drastically but the service is back (rolled back, restored).
    Warning,
    /// A person must act now.
    Critical,
}

impl Severity {
    /// The lowercase name written to the alerts file.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One line of the critical alerts file, before the shell stamps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The unit.
    pub service: String,
    /// How urgent.
    pub severity: Severity,
    /// `escalated`, `rolled_back`, `resolved`, …
    pub kind: &'static str,
    /// The incident it belongs to.
    pub incident: Option<String>,
    /// One human line.
    pub message: String,
    /// The facts behind it.
    pub evidence: Evidence,
    /// True on the line that ends an incident that was alerted before.
    pub resolved: bool,
    /// A storm holds it: it goes to the alerts file, not to the sinks (the
    /// storm's own alert stands for it; see [`crate::storm`]).
    pub held: bool,
}

/// The storm rule's news (see [`crate::storm`]), an output of the core.
/// A storm in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Active {
    /// When its first failure (within the window that started it) came.
    pub since: Instant,
    /// The first failures: unit and why.
    pub first: Vec<(String, String)>,
    /// Services that failed since it began.
    pub failed: usize,
    /// Services failing now.
    pub failing: usize,
    /// The failing count last summarised, and when.
    pub(crate) summarised: (usize, Instant),
}

/// A storm began, goes on, or ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Began: what to tell people.
    Began(Active),
    /// Goes on with a different count: a summary, at most every [`crate::storm::SUMMARY_EVERY`].
    Summary(Active),
    /// Ended: how it went.
    Ended {
        /// When it began.
        since: Instant,
        /// Services that failed during it.
        failed: usize,
        /// Services still failing as it ends.
        still_failing: usize,
    },
}

impl Change {
    /// Whether what a restarted medic must know of the storm changed with
    /// it: a storm that began or ended is saved at once, or the next medic
    /// would alert again (a summary changes nothing saved).
    pub fn persist_at_once(&self) -> bool {
        !matches!(self, Change::Summary(_))
    }
}
