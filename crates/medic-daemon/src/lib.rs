//! The async shell of medic: the supervisor loop around the pure core, probe
//! scheduling, executors for Docker and commands, the state store, the recovery
//! log and the critical alerts file.
//!
//! Architecture invariant: decisions (retry, backoff, escalation) are made in
//! medic-core; this crate only observes, carries out actions and records.

pub mod accounts;
pub mod clock;
pub mod control;
pub mod daemon;
mod digest;
mod discovery;
pub mod docker;
pub mod executor;
pub mod job;
mod launchd;
mod launcher;
pub mod lock;
mod metrics;
mod notify;
pub mod output;
pub mod page;
pub mod page_snapshot;
mod probe;
mod saver;
mod schedule;
pub mod shell;
pub mod status;
pub mod store;
mod systemd;
pub mod unit_spec;
pub mod units;
pub mod web;
pub mod world;

pub use daemon::{run, run_in};
pub use shell::{ControlCommand, ControlRequest, DeployOutcome};
