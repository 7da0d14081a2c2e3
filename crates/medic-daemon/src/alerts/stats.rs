//! Delivery counters per sink, shared by the supervisor loop (queued,
//! dropped) and the sink's task (delivered, retried, rejected), for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::metrics::{family, sample};

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

    fn done(&self) {
        // Never below zero, whatever the order of updates.
        self.waiting
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            })
            .ok();
    }
}

/// Appends the alert delivery families for `sinks` (name, counters) to a Prometheus exposition.
pub fn render<'a>(out: &mut String, sinks: impl Iterator<Item = (&'a str, &'a SinkStats)> + Clone) {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    family(
        out,
        "medic_alerts_delivered_total",
        "counter",
        "Alerts the sink took.",
    );
    for (sink, s) in sinks.clone() {
        sample(
            out,
            "medic_alerts_delivered_total",
            &[("sink", sink)],
            get(&s.delivered),
        );
    }
    family(
        out,
        "medic_alert_attempts_failed_total",
        "counter",
        "Delivery attempts that failed and were retried.",
    );
    for (sink, s) in sinks.clone() {
        sample(
            out,
            "medic_alert_attempts_failed_total",
            &[("sink", sink)],
            get(&s.retried),
        );
    }
    family(
        out,
        "medic_alerts_undelivered_total",
        "counter",
        "Alerts given up: rejected by the sink (4xx) or dropped (queue full).",
    );
    for (sink, s) in sinks.clone() {
        sample(
            out,
            "medic_alerts_undelivered_total",
            &[("sink", sink), ("reason", "rejected")],
            get(&s.rejected),
        );
        sample(
            out,
            "medic_alerts_undelivered_total",
            &[("sink", sink), ("reason", "dropped")],
            get(&s.dropped),
        );
    }
    family(
        out,
        "medic_alert_queue_length",
        "gauge",
        "Alerts waiting for delivery, including the one being retried.",
    );
    for (sink, s) in sinks {
        sample(
            out,
            "medic_alert_queue_length",
            &[("sink", sink)],
            get(&s.waiting),
        );
    }
}
