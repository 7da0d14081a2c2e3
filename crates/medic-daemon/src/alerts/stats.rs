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

/// One series per sink: its family, an extra label, and the counter it shows.
struct Series {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    label: Option<(&'static str, &'static str)>,
    read: fn(&SinkStats) -> &AtomicU64,
}

const UNDELIVERED: &str = "Alerts given up: rejected by the sink (4xx) or dropped (queue full).";

const SERIES: [Series; 5] = [
    Series {
        name: "medic_alerts_delivered_total",
        kind: "counter",
        help: "Alerts the sink took.",
        label: None,
        read: |s| &s.delivered,
    },
    Series {
        name: "medic_alert_attempts_failed_total",
        kind: "counter",
        help: "Delivery attempts that failed and were retried.",
        label: None,
        read: |s| &s.retried,
    },
    Series {
        name: "medic_alerts_undelivered_total",
        kind: "counter",
        help: UNDELIVERED,
        label: Some(("reason", "rejected")),
        read: |s| &s.rejected,
    },
    Series {
        name: "medic_alerts_undelivered_total",
        kind: "counter",
        help: UNDELIVERED,
        label: Some(("reason", "dropped")),
        read: |s| &s.dropped,
    },
    Series {
        name: "medic_alert_queue_length",
        kind: "gauge",
        help: "Alerts waiting for delivery, including the one being retried.",
        label: None,
        read: |s| &s.waiting,
    },
];

/// Appends the alert delivery families for `sinks` (name, counters) to a Prometheus exposition.
pub fn render<'a>(out: &mut String, sinks: impl Iterator<Item = (&'a str, &'a SinkStats)> + Clone) {
    let mut previous = "";
    for series in &SERIES {
        if series.name != previous {
            family(out, series.name, series.kind, series.help);
            previous = series.name;
        }
        for (sink, stats) in sinks.clone() {
            let mut labels = vec![("sink", sink)];
            labels.extend(series.label);
            let value = (series.read)(stats).load(Ordering::Relaxed) as f64;
            sample(out, series.name, &labels, value);
        }
    }
}
