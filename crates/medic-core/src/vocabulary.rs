//! The words the core and the shell speak: what comes in ([`Input`], a
//! person's [`Control`], an [`ActionResult`]) and what goes out ([`Action`],
//! naming a [`Step`] of the ladder). Nothing here decides anything.

use std::time::{Duration, Instant};

use crate::event::{Alert, RecoveryEvent};
use crate::observation::{Evidence, Observation};

/// A recovery action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// Restart attempt `k` (1-based) inside the attempt window.
    Restart(u32),
    /// Return to the last known good version.
    Rollback,
}

/// What the shell must do. Drain with [`Supervisor::poll_action`] after every input.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Restart the unit's target, then report [`Input::Finished`].
    Restart {
        /// The unit.
        unit: String,
        /// The incident it belongs to.
        incident: String,
        /// Which attempt this is.
        attempt: u32,
        /// A target found gone may be recreated: the incident is a removal and
        /// `replace_grace` has passed. Otherwise a gone target is reported as
        /// [`ActionResult::Gone`], so a replacement still gets its grace.
        recreate: bool,
    },
    /// Roll the unit's target back to its last known good version, then report [`Input::Finished`].
    Rollback {
        /// The unit.
        unit: String,
        /// The incident it belongs to.
        incident: String,
        /// As for [`Action::Restart`]: a gone target may be recreated (the
        /// removal's `replace_grace` has passed); otherwise report [`ActionResult::Gone`].
        recreate: bool,
    },
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
    /// Append this event to the recovery log.
    Log(RecoveryEvent),
    /// Append this alert to the critical alerts file and hand it to the sinks.
    Alert(Alert),
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
    /// Shutdown cut the action short.
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
    /// arrives as [`Input::Finished`] and the new version is verified; roll back
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
    /// An action the core asked for has ended.
    Finished {
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
            | Input::Finished { unit, .. }
            | Input::Control { unit, .. } => unit,
        }
    }
}
