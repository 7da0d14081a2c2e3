//! The alert sinks' delivery counters (`medic_alerts::stats`) as Prometheus families.

use medic_alerts::stats::SinkCounts;

use medic_exposition::{Exposition, Kind};

/// One series per sink: its family, an extra label, and the counter it shows.
struct Series {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    label: Option<(&'static str, &'static str)>,
    read: fn(&SinkCounts) -> u64,
}

const UNDELIVERED: &str = "Alerts given up: rejected by the sink (4xx) or dropped (queue full).";

const SERIES: [Series; 5] = [
    Series {
        name: "medic_alerts_delivered_total",
        kind: Kind::Counter,
        help: "Alerts the sink took.",
        label: None,
        read: |s| s.delivered,
    },
    Series {
        name: "medic_alert_attempts_failed_total",
        kind: Kind::Counter,
        help: "Delivery attempts that failed and were retried.",
        label: None,
        read: |s| s.retried,
    },
    Series {
        name: "medic_alerts_undelivered_total",
        kind: Kind::Counter,
        help: UNDELIVERED,
        label: Some(("reason", "rejected")),
        read: |s| s.rejected,
    },
    Series {
        name: "medic_alerts_undelivered_total",
        kind: Kind::Counter,
        help: UNDELIVERED,
        label: Some(("reason", "dropped")),
        read: |s| s.dropped,
    },
    Series {
        name: "medic_alert_queue_length",
        kind: Kind::Gauge,
        help: "Alerts waiting for delivery, including the one being retried.",
        label: None,
        read: |s| s.waiting,
    },
];

/// Appends the alert delivery families for `sinks` (name, counters) to a Prometheus exposition.
pub(crate) fn render<'a>(
    out: &mut Exposition,
    sinks: impl Iterator<Item = (&'a str, SinkCounts)> + Clone,
) {
    if sinks.clone().next().is_none() {
        return;
    }
    let mut previous = "";
    for series in &SERIES {
        if series.name != previous {
            out.family(series.name, series.kind, series.help);
            previous = series.name;
        }
        for (sink, stats) in sinks.clone() {
            let mut labels = vec![("sink", sink)];
            labels.extend(series.label);
            let value = (series.read)(&stats) as f64;
            out.sample(series.name, &labels, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sink_has_its_counters_and_no_sink_renders_nothing() {
        let slow = SinkCounts {
            dropped: 1,
            waiting: 2,
            ..SinkCounts::default()
        };
        let mut out = Exposition::new(medic_exposition::Format::Text);
        render(&mut out, [("slow", slow)].into_iter());
        let out = out.finish();
        assert!(
            out.contains("medic_alerts_undelivered_total{sink=\"slow\",reason=\"dropped\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("medic_alert_queue_length{sink=\"slow\"} 2"),
            "{out}"
        );
        assert_eq!(
            out.matches("# TYPE medic_alerts_undelivered_total").count(),
            1,
            "one family, two series: {out}"
        );
        let mut none = Exposition::new(medic_exposition::Format::Text);
        render(&mut none, std::iter::empty());
        assert_eq!(none.finish(), "");
    }
}
