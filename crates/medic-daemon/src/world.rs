//! The seam between the daemon and the world it acts on: the checks of units
//! and the jobs on their targets (the engine, launchctl, the probes' HTTP,
//! TCP and exec runners, command targets) and the alert sinks' deliveries
//! (`medic_alerts::Post`). The host's adapters stand behind
//! it by default; a simulated world (`medic-sim`) stands behind it in
//! deterministic simulation, with the real core, loop and store in front.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

pub use medic_alerts::{Post, PostRun};
use medic_core::{Observation, Step};

use crate::job::{Job, JobContext};

/// One run of a check in a world: never fails, never exceeds its timeout.
pub type CheckRun = Pin<Box<dyn Future<Output = Observation> + Send>>;

/// A world the daemon observes and acts on, standing in for the host's
/// adapters (see `Executor::in_world`) and, as a [`Post`], for the alert
/// sinks' endpoints.
pub trait World: Post + Send + Sync + Debug {
    /// Runs probe `probe` (its index in the service's probes) of `unit` once.
    fn check(&self, unit: &str, probe: usize) -> CheckRun;

    /// The job that carries out `step` on `unit`'s target.
    fn job(&self, unit: &str, step: Step, context: &JobContext) -> Job;

    /// What runs now as `unit`'s version, recorded as its last known good
    /// (None: nothing to record).
    fn version(&self, unit: &str) -> Option<serde_json::Value>;
}
