//! The exposition formats of `/metrics`: the Prometheus text format (0.0.4)
//! and OpenMetrics 1.0, written family by family so every family's samples
//! stand in one group, plus medic's own `process_*` families.
//!
//! Hand-written rather than through the `prometheus-client` crate: medic's
//! figures live in the supervisor and are rendered from one snapshot per
//! scrape; a registry of metric objects would be a second copy of them kept
//! in step on every event, and a custom collector would write these same
//! lines through a larger API.

mod format;
pub mod process;
mod writer;

pub use format::Format;
pub use writer::{Exposition, Kind};
