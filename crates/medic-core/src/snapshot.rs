//! What the state store keeps of a unit across daemon restarts: enough to
//! continue an incident and its attempt count, never enough to claim health.

use std::time::Instant;

/// Where a unit was in its recovery when it was saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavedPhase {
    /// Starting or healthy: both restart as `starting`, since health needs fresh evidence.
    Fine,
    /// An incident is open and no action was running.
    Failing,
    /// Restart attempt `k` was running or being verified.
    Recovering(u32),
    /// A rollback was running or being verified.
    RollingBack,
    /// Waiting for a person.
    Escalated,
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
    /// Restart attempts still inside the attempt window.
    pub attempts: Vec<Instant>,
    /// `Some(until)` when paused; `until` is `None` for an open-ended pause.
    pub paused: Option<Option<Instant>>,
}
