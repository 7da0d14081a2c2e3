//! Defect classes medic had, re-planted for `scripts/sim --planted`, which
//! proves the simulator catches each one. Built only with the `planted`
//! feature (the simulator's), never into medic; one defect at a time is on.

use std::cell::Cell;

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
    /// A journal a crash cut mid-line is appended to as it is: the next
    /// medic's first line is glued to the torn one, and neither reads back
    /// (`medic_records::files::open_append`).
    TornLineGlued,
    /// A deadline restored from the state store is trusted as saved: after
    /// the wall clock stepped back it lies hours ahead, and the unit stays
    /// `recovering` (`medic_daemon`'s `Durability::restored`).
    RestoredDeadlineTrusted,
}

impl Defect {
    /// Every planted defect class.
    pub const ALL: [Defect; 6] = [
        Defect::QueueWaitCounted,
        Defect::StaleQueuedRun,
        Defect::ResultToSupersededStep,
        Defect::LaunchDuringShutdown,
        Defect::TornLineGlued,
        Defect::RestoredDeadlineTrusted,
    ];
}

thread_local! {
    static PLANTED: Cell<u8> = const { Cell::new(0) };
}

/// Plants `defect` (None: none) in the supervisors that run on this thread
/// (a simulation runs medic on one thread).
pub fn plant(defect: Option<Defect>) {
    PLANTED.set(defect.map_or(0, |d| d as u8));
}

/// Whether `defect` is planted now on this thread (the crates above the
/// core re-plant theirs with it, behind their own `planted` features).
pub fn is(defect: Defect) -> bool {
    PLANTED.get() == defect as u8
}
