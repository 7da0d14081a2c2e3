//! The pure core of medic: the config model and its validation, the per-service
//! recovery state machine and its policies.
//!
//! Architecture invariant: nothing here reads a clock, sleeps, spawns, or touches a
//! file or socket. Time comes in as a parameter (`now: Instant`), inputs come in
//! through [`Supervisor::handle_input`], decisions come out of
//! [`Supervisor::poll_action`] and the next deadline out of
//! [`Supervisor::poll_timeout`] — the quinn-proto shape.

pub mod availability;
pub mod backoff;
pub mod config;
pub mod delivery;
pub mod duration;
pub mod event;
pub mod machine;
pub mod notice;
pub mod observation;
#[cfg(feature = "planted")]
pub mod planted;
pub mod policy;
pub mod saved_times;
pub mod slots;
pub mod snapshot;
pub mod storm;
pub mod supervisor;
pub mod time;
pub mod vocabulary;

pub use event::{Alert, EventKind, RecoveryEvent, Severity};
pub use machine::{ClosedIncident, FlapStatus, Health, Phase, UnitStatus};
pub use observation::{
    ENGINE_GRACE, Evidence, Observation, Outcome, RESTART_EXPECTED_FROM, Urgency,
};
pub use policy::{Policy, ProbeTiming};
pub use supervisor::Supervisor;
pub use vocabulary::{Action, ActionResult, Control, DeployEnd, Input, Job, JobId, Step};
