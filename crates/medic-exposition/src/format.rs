//! Which format a scraper asked for (`Accept`), and its content type.

/// The two formats `/metrics` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The Prometheus text format, version 0.0.4: what curl and older scrapers get.
    #[default]
    Text,
    /// OpenMetrics 1.0.0: `_total` only on counter samples, `# EOF` at the end.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header prefers: OpenMetrics when it is offered
    /// with a weight at least that of everything else (as Prometheus sends
    /// it), the text format otherwise (no header, `*/*`, `text/plain`).
    pub fn negotiate(accept: Option<&str>) -> Self {
        let mut open_metrics = 0.0_f64;
        let mut other = 0.0_f64;
        for range in accept.unwrap_or("").split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            if media.is_empty() {
                continue;
            }
            let weight = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .and_then(|(_, q)| q.trim().parse::<f64>().ok())
                .filter(|q| (0.0..=1.0).contains(q))
                .unwrap_or(1.0);
            if media == "application/openmetrics-text" {
                open_metrics = open_metrics.max(weight);
            } else {
                other = other.max(weight);
            }
        }
        if open_metrics > 0.0 && open_metrics >= other {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Format::{self, OpenMetrics, Text};

    #[track_caller]
    fn check(accept: Option<&str>, expect: Format) {
        assert_eq!(Format::negotiate(accept), expect, "Accept: {accept:?}");
    }

    #[test]
    fn the_accept_header_picks_the_format() {
        check(None, Text);
        check(Some(""), Text);
        check(Some("*/*"), Text);
        check(Some("text/plain"), Text);
        check(Some("application/openmetrics-text"), OpenMetrics);
        check(
            Some("Application/OpenMetrics-Text; version=1.0.0"),
            OpenMetrics,
        );
        // What Prometheus 2.x sends.
        check(
            Some(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            ),
            OpenMetrics,
        );
        check(
            Some("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5"),
            Text,
        );
        check(Some("application/openmetrics-text;q=0"), Text);
        check(Some("application/openmetrics-text;q=bogus"), OpenMetrics);
    }
}
