//! Defect classes medic had, re-planted for `scripts/sim --planted`, which
//! proves the simulator catches each one. Built only with the `planted`
//! feature (the simulator's), never into medic; one defect at a time is on.

use std::sync::atomic::{AtomicU8, Ordering};

/// A defect class the simulator must catch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// An action's timeout runs from its decision, so the wait in the queue
    /// counts against it: queued actions are counted failed without running.
    QueueWaitCounted = 1,
    /// A queued action is not dropped when its reason goes: a service that
    /// recovered by itself is restarted anyway.
    StaleQueuedRun,
    /// A result is taken for whatever step the unit is on, not only the
    /// job's own: a late result decides a step it does not belong to.
    ResultToSupersededStep,
    /// Queued actions still launch after SIGTERM.
    LaunchDuringShutdown,
}

impl Defect {
    /// Every planted defect class.
    pub const ALL: [Defect; 4] = [
        Defect::QueueWaitCounted,
        Defect::StaleQueuedRun,
        Defect::ResultToSupersededStep,
        Defect::LaunchDuringShutdown,
    ];
}

static PLANTED: AtomicU8 = AtomicU8::new(0);

/// Plants `defect` (None: none) in every supervisor of this process.
pub fn plant(defect: Option<Defect>) {
    PLANTED.store(defect.map_or(0, |d| d as u8), Ordering::Relaxed);
}

/// Whether `defect` is planted now.
pub(crate) fn is(defect: Defect) -> bool {
    PLANTED.load(Ordering::Relaxed) == defect as u8
}
