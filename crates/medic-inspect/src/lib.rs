//! What the `medic` CLI reads from the host and the engine without a running
//! daemon: `medic check` (every probe of every unit once, planned exactly as
//! the daemon plans its units) and `medic doctor` (host, config and
//! installed-unit findings, each with a fix). `medic report` reads the
//! records the daemon wrote (`medic_records::report`, which the daemon's
//! scheduled digest shares).
//!
//! Architecture invariant: nothing here acts (no restart, no alert, no
//! write outside a temporary probe file), and the daemon never depends on
//! this crate.

pub mod check;
pub mod doctor;
