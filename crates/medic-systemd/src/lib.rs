//! medic's systemd adapter: read a unit's state over D-Bus into facts and a
//! classification (healthy / starting / idle / failed / restarting /
//! missing), restart it through the manager and wait for the job's result,
//! follow its property changes, read its journal through journalctl, and
//! keep its unit files as the last known good and write them back.
//!
//! Architecture invariant: no recovery decisions here; the core decides, this
//! crate does one systemd thing per call, under a deadline, and reports what
//! happened. It imports no medic crate.

mod client;
mod error;
mod facts;
pub mod journal;
pub mod names;
pub mod unit_files;
mod verdict;

pub use client::{JobOutcome, SystemdBus, UNIT_PATHS, unit_path};
pub use error::{POLKIT_RULE_PATH, POLKIT_RULE_SOURCE, SystemdError};
pub use facts::UnitFacts;
pub use unit_files::{UnitFiles, UnitFilesError};
pub use verdict::{Classification, Expect, Verdict, classify};
