//! medic's Docker adapter over bollard: find containers by selector, inspect
//! them into facts, capture and recreate their create spec, start and restart
//! them, roll back to a last known good spec keeping a forensic copy, and
//! stream container events.
//!
//! Architecture invariant: no retries, backoff or timing decisions here; the
//! core decides, this crate does one Docker thing per call and reports what
//! happened. The only waits are Docker's own (a stop timeout). Every engine
//! call has a deadline that covers its whole answer, body included: an
//! action's comes from the caller, a read's is `client::READ_DEADLINE`.

mod client;
mod endpoint;
mod error;
mod events;
mod facts;
mod labels;
mod libpod;
mod select;
mod spec;

pub use client::{DockerClient, EngineInfo, EngineKind, SettleError, Settled};
pub use error::DockerError;
pub use events::{ACTIONS, ContainerEvent};
pub use facts::{
    BringsBack, ContainerFacts, ContainerState, Health, HealthCheckRun, StopCommand, Verdict,
};
pub use labels::{OVERRIDE_PREFIX, overrides};
pub use libpod::HealthOnFailure;
pub use select::{ContainerSummary, Selector, forensic_name, is_forensic};
pub use spec::{ContainerSpec, minimal_config, spec_differs};

/// How many forensic copies of failed containers a rollback keeps per name.
pub const FORENSIC_KEEP: usize = 3;
