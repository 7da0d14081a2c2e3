//! What the supervisor loop answers for the status page: every unit's status
//! and its availability over the page's windows (24 h, 7 d, 30 d), taken from
//! the core on the loop; the page reads the recovery log itself, off the loop.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use medic_core::Supervisor;
use serde::{Deserialize, Serialize};

use crate::status::StatusReport;

/// The windows the page shows, with how many bars each is cut into.
const WINDOWS: [(&str, Duration, usize); 3] = [
    ("24h", Duration::from_secs(24 * 3600), 24),
    ("7d", Duration::from_secs(7 * 24 * 3600), 28),
    ("30d", Duration::from_secs(30 * 24 * 3600), 30),
];
/// What the supervisor loop answers for the page; the recovery log is read outside the loop.
#[derive(Debug)]
pub struct PageSnapshot {
    /// Every unit's status.
    pub report: StatusReport,
    /// Per unit, its availability windows.
    pub availability: BTreeMap<String, Vec<Window>>,
    /// Where the recovery log is.
    pub recovery_log: PathBuf,
}

impl PageSnapshot {
    /// Takes the page's figures from the supervisor as of `now`.
    pub fn new(
        report: StatusReport,
        sup: &Supervisor,
        now: std::time::Instant,
        recovery_log: PathBuf,
    ) -> Self {
        let availability = report
            .services
            .iter()
            .map(|s| {
                let windows = WINDOWS
                    .iter()
                    .map(|&(name, length, bars)| Window {
                        window: name.to_owned(),
                        ratio: sup.availability(&s.name, now, length),
                        bars: sup
                            .availability_series(&s.name, now, length, bars)
                            .unwrap_or_else(|| vec![None; bars]),
                    })
                    .collect();
                (s.name.clone(), windows)
            })
            .collect();
        Self {
            report,
            availability,
            recovery_log,
        }
    }
}

/// Availability over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// `24h`, `7d` or `30d`.
    pub window: String,
    /// Healthy share of the known time; None before any verdict.
    pub ratio: Option<f64>,
    /// The window cut into equal bars, oldest first; None where nothing was known.
    pub bars: Vec<Option<f64>>,
}
