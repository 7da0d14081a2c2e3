//! Delivery counters per sink, shared by the supervisor loop (queued,
//! dropped) and the sink's task (delivered, retried, rejected); the daemon's
//! `/metrics` renders them.

use std::sync::atomic::{AtomicU64, Ordering};

/// One sink's counters at a moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkCounts {
    /// Alerts the sink took.
    pub delivered: u64,
    /// Attempts that failed and were retried.
    pub retried: u64,
    /// Alerts the sink rejected for good.
    pub rejected: u64,
    /// Alerts not taken: the queue was full.
    pub dropped: u64,
    /// Alerts waiting, including the one being retried.
    pub waiting: u64,
}

/// One sink's counters.
#[derive(Debug, Default)]
pub struct SinkStats {
    delivered: AtomicU64,
    retried: AtomicU64,
    rejected: AtomicU64,
    dropped: AtomicU64,
    waiting: AtomicU64,
}

impl SinkStats {
    /// `n` alerts now wait in the sink's queue.
    pub fn queued(&self, n: u64) {
        self.waiting.fetch_add(n, Ordering::Relaxed);
    }

    /// The queue was full: an alert was not taken.
    pub fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt failed and will be retried.
    pub fn retried(&self) {
        self.retried.fetch_add(1, Ordering::Relaxed);
    }

    /// The sink took an alert.
    pub fn delivered(&self) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.done();
    }

    /// The sink rejected an alert for good.
    pub fn rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        self.done();
    }

    /// The counters as they are now.
    pub fn counts(&self) -> SinkCounts {
        SinkCounts {
            delivered: self.delivered.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }

    fn done(&self) {
        // Never below zero, whatever the order of updates.
        self.waiting
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            })
            .ok();
    }
}
