//! What the state store keeps of a unit across daemon restarts: enough to
//! resume an incident exactly where it was, never enough to claim health.

use std::time::{Duration, Instant};

use crate::vocabulary::Step;

/// Where a unit was in its recovery when it was saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavedPhase {
    /// Starting or healthy: both restart as `starting`, since health needs fresh evidence.
    Fine,
    /// An incident is open and no action is scheduled (watch only).
    Failing,
    /// `step` was due at `at` (a backoff or replace grace): it fires at its time, or at once.
    Waiting {
        /// What comes next.
        step: Step,
        /// When.
        at: Instant,
    },
    /// `step`'s action was running: it finished with an unknown result and is verified.
    Acting(Step),
    /// `step`'s action had finished and was being verified until `deadline`.
    Verifying {
        /// Which action.
        step: Step,
        /// When its verification gives up.
        deadline: Instant,
    },
    /// Waiting for a person.
    Escalated,
    /// A person's deploy was running or being verified: it failed with the restart of medic.
    Deploying,
}

/// An open incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedIncident {
    /// The id every event of the incident carries.
    pub id: String,
    /// When it opened.
    pub opened: Instant,
    /// Whether an alert went out for it (so its end is alerted too).
    pub alerted: bool,
    /// Whether a rollback was already tried in this incident.
    pub rollback_tried: bool,
    /// Restarts started in it.
    pub attempts: u32,
    /// Why its restarts were skipped (flapping).
    pub reason: Option<String>,
    /// Opened by a removal: its restart recreates the target.
    pub gone: bool,
    /// When the removal was seen (steps wait `replace_grace` from it).
    pub removed_at: Option<Instant>,
    /// Flapping with nothing to roll back to: its first restart waits this.
    pub flap_delay: Option<Duration>,
}

/// A unit flapping with nothing different to roll back to (issue #35).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedFlap {
    /// The delay the next incident's first restart waits.
    pub next: Duration,
    /// The incident whose critical alert said it flaps (its `resolved` is still due).
    pub alerted: Option<String>,
    /// When its last incident closed (None while one is open).
    pub calm_since: Option<Instant>,
}

/// One unit's persisted state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSnapshot {
    /// The unit name.
    pub name: String,
    /// Where it was.
    pub phase: SavedPhase,
    /// The open incident, if any.
    pub incident: Option<SavedIncident>,
    /// When recent incidents opened (for flapping).
    pub incidents: Vec<Instant>,
    /// Flapping with nothing to roll back to: the delay and the alert to resolve.
    pub flap: Option<SavedFlap>,
    /// `Some(until)` when paused; `until` is `None` for an open-ended pause.
    pub paused: Option<Option<Instant>>,
    /// When its probes stopped seeing, while they cannot: a restarted medic
    /// counts `blind_alert_after` from here, not from its own start.
    pub blind_since: Option<Instant>,
}
