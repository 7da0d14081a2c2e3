//! The async shell of medic: the supervisor loop around the pure core, probe
//! scheduling, executors for Docker and commands, the state store, the recovery
//! log and the critical alerts file.
//!
//! Architecture invariant: decisions (retry, backoff, escalation) are made in
//! medic-core; this crate only observes, carries out actions and records.

pub mod accounts;
pub mod alerts;
mod check;
pub mod clock;
pub mod control;
pub mod daemon;
mod digest;
mod docker;
pub mod doctor;
mod executor;
pub mod files;
pub mod history;
pub mod journal;
mod launchd;
pub mod lock;
mod metrics;
mod notify;
pub mod output;
pub mod page;
mod probe;
pub mod report;
pub mod rotation;
mod saver;
mod schedule;
pub mod shell;
pub mod status;
pub mod store;
mod units;
pub mod web;

pub use check::{CheckRow, check_once, container_engine, exit_code, millis};
pub use daemon::run;
pub use shell::{ControlCommand, ControlRequest, DeployOutcome};
