//! The words the core and the shell speak: what comes in ([`Input`], a
//! person's [`Control`], an [`ActionResult`]) and what goes out ([`Action`],
//! a [`Job`] naming a [`Step`] of the ladder). Nothing here decides anything.

use std::time::{Duration, Instant};

use crate::event::{Alert, Change, RecoveryEvent};
use crate::observation::{Evidence, Observation};

/// A recovery action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// Restart attempt `k` (1-based) inside the attempt window.
    Restart(u32),
    /// Return to the last known good version.
    Rollback,
}

/// A job's identity, unique within one run of medic: results carry it, so a
/// result the core no longer waits for is never taken for another job's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

/// A restart or rollback the core decided and the shell carries out.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Its identity: [`Input::Launched`] and [`Input::Finished`] name it.
    pub id: JobId,
    /// The unit.
    pub unit: String,
    /// The incident it belongs to.
    pub incident: String,
    /// Which step of the ladder.
    pub step: Step,
    /// A target found gone may be recreated: the incident is a removal and
    /// `replace_grace` has passed. Otherwise a gone target is reported as
    /// [`ActionResult::Gone`], so a replacement still gets its grace.
    pub recreate: bool,
    /// Finishes a step a stop of medic cut short (a rollback between stop,
    /// rename, create and start): being on the last known good already is
    /// done, and a target found gone is recreated from it.
    pub resumed: bool,
    /// How long it may run: the core counts it failed after this, and the
    /// shell cancels it a little later (reporting [`ActionResult::TimedOut`]).
    pub timeout: Duration,
}

/// What the shell must do. Drain with [`Supervisor::poll_action`] after every input.
///
/// [`Supervisor::poll_action`]: crate::Supervisor::poll_action
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start this job now (a slot is taken for it): report
    /// [`Input::Launched`] when it runs and [`Input::Finished`] when it ends.
    Launch(Job),
    /// Run the unit's probes now (verification after an action).
    Probe {
        /// The unit.
        unit: String,
    },
    /// The unit is healthy: record what runs now as its last known good version.
    RecordLastKnownGood {
        /// The unit.
        unit: String,
        /// The evidence of the observations that judged it healthy: what to
        /// record (a container by its `container_id`), not a name looked up later.
        seen: Evidence,
        /// Judged healthy but not yet confirmed by a round one probe interval
        /// later: recorded only when the unit has no last known good yet, so a
        /// container removed in its first seconds can still be restored, while
        /// a good version is never replaced by one merely glimpsed running.
        provisional: bool,
    },
    /// A person's deploy has ended: answer whoever waits for it. Comes right
    /// before the log line that says why (which carries the versions).
    DeployEnded {
        /// The unit.
        unit: String,
        /// How it ended.
        end: DeployEnd,
        /// Why the deploy failed, when it did (the command failed or timed
        /// out, or the new version was not healthy in time): what rolled it back.
        failure: Option<String>,
    },
    /// Append this event to the recovery log.
    Log(RecoveryEvent),
    /// Append this alert to the critical alerts file and hand it to the
    /// sinks, unless it is `held`.
    Alert(Alert),
    /// A storm began, goes on or ended: tell people (stderr, one alert to
    /// the sinks), and save it at once when [`Change::persist_at_once`].
    Storm(Change),
}

/// How a person's deploy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployEnd {
    /// The new version was healthy on fresh observations.
    Promoted,
    /// It failed and the version from before is back.
    RolledBack,
    /// It failed and the rollback did not bring the service back.
    Escalated,
    /// A person reset the service meanwhile.
    Reset,
    /// The service is no longer watched.
    Removed,
}

impl DeployEnd {
    /// The snake_case name `medic deploy` shows per instance.
    pub fn as_str(self) -> &'static str {
        match self {
            DeployEnd::Promoted => "promoted",
            DeployEnd::RolledBack => "rolled_back",
            DeployEnd::Escalated => "escalated",
            DeployEnd::Reset => "reset",
            DeployEnd::Removed => "removed",
        }
    }
}

/// How an action ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionResult {
    /// The action ran; its effect is verified by fresh observations.
    Done {
        /// One human line.
        message: String,
        /// Exit status, output, ids.
        evidence: Evidence,
    },
    /// The action failed or was impossible (e.g. no different last known good).
    Failed {
        /// One human line.
        message: String,
        /// Exit status, output, errors.
        evidence: Evidence,
    },
    /// The action does not apply: a rollback with nothing different to return
    /// to (no last known good recorded, or it is what runs now). Nothing was
    /// tried, so nothing failed: a flapping service is kept restarting.
    Impossible {
        /// One human line.
        message: String,
        /// What was compared.
        evidence: Evidence,
    },
    /// The target disappeared before the action could act on it (a container
    /// removed while medic was about to restart it).
    Gone {
        /// One human line.
        message: String,
        /// What was found.
        evidence: Evidence,
    },
    /// The shell's deadline around the job passed: it was cancelled.
    TimedOut {
        /// How long it ran.
        after: Duration,
    },
    /// Shutdown cut the action short: the next medic finishes or verifies it.
    Interrupted,
}

/// A person's command through the CLI or control API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop automatic action, until the given time or until resumed.
    Pause {
        /// `None`: until resumed.
        until: Option<Instant>,
    },
    /// Resume automatic action.
    Resume,
    /// Clear escalation and the attempt count.
    Reset,
    /// Restart now with a fresh attempt budget.
    Recover,
    /// `medic deploy` begins: hold automatic action until the command's result
    /// arrives as [`Input::DeployFinished`] and the new version is verified; roll back
    /// to the last known good if it is not healthy in time.
    Deploy {
        /// The command must report back within this.
        command_timeout: Duration,
        /// The new version must be healthy on fresh observations within this.
        verify_timeout: Duration,
    },
}

/// Something that happened, for one unit.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A probe reported.
    Observed {
        /// The unit.
        unit: String,
        /// Index of the probe in the unit's policy.
        probe: usize,
        /// What it saw.
        observation: Observation,
    },
    /// A job the core asked for runs now: its timeout starts.
    Launched {
        /// The unit.
        unit: String,
        /// Which job.
        job: JobId,
    },
    /// A job the core asked for has ended (its slot is free again).
    Finished {
        /// The unit.
        unit: String,
        /// Which job.
        job: JobId,
        /// How it ended.
        result: ActionResult,
    },
    /// A person's deploy command has ended (`medic deploy`).
    DeployFinished {
        /// The unit.
        unit: String,
        /// How it ended.
        result: ActionResult,
    },
    /// A person's command.
    Control {
        /// The unit.
        unit: String,
        /// The command.
        control: Control,
    },
}

impl Input {
    /// The unit it is for.
    pub fn unit(&self) -> &str {
        match self {
            Input::Observed { unit, .. }
            | Input::Launched { unit, .. }
            | Input::Finished { unit, .. }
            | Input::DeployFinished { unit, .. }
            | Input::Control { unit, .. } => unit,
        }
    }
}
