//! One exposition being written: a family's `# HELP` and `# TYPE` lines,
//! then its samples, in the format the scraper asked for.

use std::fmt::Write as _;

use crate::Format;

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up; its samples end in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Buckets (`_bucket` with `le`), `_sum` and `_count`.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// An exposition being written. Callers write each family once, with all
/// its samples right after it: the text format wants every family's lines
/// in one group and OpenMetrics requires it.
#[derive(Debug)]
pub struct Exposition {
    out: String,
    format: Format,
}

impl Exposition {
    /// An empty exposition in `format`.
    pub fn new(format: Format) -> Self {
        Self {
            out: String::new(),
            format,
        }
    }

    /// The format being written.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines. `name` is the name
    /// of its samples (a counter's with `_total`); OpenMetrics names the
    /// family without that suffix.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let name = match (self.format, kind) {
            (Format::OpenMetrics, Kind::Counter) => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        };
        let help = escape(help, self.format == Format::OpenMetrics);
        // Invariant: writing to a String cannot fail.
        let _ = writeln!(
            self.out,
            "# HELP {name} {help}\n# TYPE {name} {}",
            kind.as_str()
        );
    }

    /// One sample of the family last started, its label values escaped.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{key}=\"{}\"", escape(value, true));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
    }

    /// One histogram's series: a `_bucket` per upper bound with its
    /// cumulative count, `+Inf`, `_sum` and `_count`.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        buckets: impl IntoIterator<Item = (f64, u64)>,
        count: u64,
        sum: f64,
    ) {
        let bucket = format!("{name}_bucket");
        let bounds = buckets.into_iter().map(|(bound, cumulative)| {
            // `{:?}` writes 1.0 as "1.0": OpenMetrics wants `le` canonical.
            (format!("{bound:?}"), cumulative)
        });
        for (le, cumulative) in bounds.chain([("+Inf".to_owned(), count)]) {
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cumulative as f64);
        }
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count as f64);
    }

    /// The finished exposition (OpenMetrics ends with `# EOF`).
    pub fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }
}

/// A sample value as both formats spell it (`+Inf`, `-Inf`, `NaN`).
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        value.to_string()
    }
}

/// Escapes `\` and newlines, and `"` where the format wants it (label
/// values in both, HELP text in OpenMetrics).
fn escape(text: &str, quote: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(format: Format) -> String {
        let mut e = Exposition::new(format);
        e.family(
            "medic_recoveries_total",
            Kind::Counter,
            "Incidents \"ended\"\\.",
        );
        e.sample("medic_recoveries_total", &[("service", "a\"b\\c\nd")], 2.0);
        e.family("medic_up", Kind::Gauge, "Up.");
        e.sample("medic_up", &[], f64::INFINITY);
        e.family("medic_latency_seconds", Kind::Histogram, "Latency.");
        e.histogram(
            "medic_latency_seconds",
            &[("service", "a")],
            [(0.5, 1), (1.0, 2)],
            3,
            4.25,
        );
        e.finish()
    }

    #[test]
    fn the_text_format() {
        assert_eq!(
            write(Format::Text),
            r#"# HELP medic_recoveries_total Incidents "ended"\\.
# TYPE medic_recoveries_total counter
medic_recoveries_total{service="a\"b\\c\nd"} 2
# HELP medic_up Up.
# TYPE medic_up gauge
medic_up +Inf
# HELP medic_latency_seconds Latency.
# TYPE medic_latency_seconds histogram
medic_latency_seconds_bucket{service="a",le="0.5"} 1
medic_latency_seconds_bucket{service="a",le="1.0"} 2
medic_latency_seconds_bucket{service="a",le="+Inf"} 3
medic_latency_seconds_sum{service="a"} 4.25
medic_latency_seconds_count{service="a"} 3
"#
        );
    }

    #[test]
    fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
        let text = write(Format::OpenMetrics);
        assert!(
            text.starts_with(
                "# HELP medic_recoveries Incidents \\\"ended\\\"\\\\.\n# TYPE medic_recoveries counter\nmedic_recoveries_total{"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("medic_latency_seconds_count{service=\"a\"} 3\n# EOF\n"),
            "{text}"
        );
    }
}
