//! Alert delivery policy, clockless: which sinks an alert line goes to (one
//! notification per incident state change, the resolving line to every sink
//! that heard of the incident), what an HTTP answer means, and when to retry.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::Severity;
use crate::backoff;
use crate::config::AlertSink;

/// What one delivery attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The sink took it.
    Delivered,
    /// Worth trying again later (5xx, 408, 429, timeout, connection refused).
    Retry,
    /// Trying again would not help (another 4xx: the sink rejects this request).
    GiveUp,
}

/// What an HTTP status means for a delivery.
pub fn http_outcome(status: u16) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        408 | 425 | 429 | 500..=599 => Outcome::Retry,
        _ => Outcome::GiveUp,
    }
}

/// The wait before the next attempt after `failures` failed ones: `base`,
/// doubling, capped at `max`, with up to 10 % jitter from `seed` (sink + alert id).
pub fn retry_delay(failures: u32, base: Duration, max: Duration, seed: &str) -> Duration {
    backoff::delay(failures.saturating_add(1).max(2), base, max, seed)
}

/// The key that ties an alert line to what it starts or ends: the incident
/// id, or for alerts outside an incident (`blind`) the service and kind.
pub fn incident_key(service: &str, kind: &str, incident: Option<&str>) -> String {
    incident.map_or_else(|| format!("{service}/{kind}"), str::to_owned)
}

/// The facts about an alert line that routing needs.
#[derive(Debug, Clone, Copy)]
pub struct Route<'a> {
    /// The unit.
    pub service: &'a str,
    /// How urgent.
    pub severity: Severity,
    /// See [`incident_key`].
    pub key: &'a str,
    /// The line ends its incident.
    pub resolved: bool,
}

/// Decides which sinks get each alert line. A sink gets the lines of its
/// services at or above its minimum severity, and the resolving line of every
/// incident it was told about, even when that line is below its minimum.
#[derive(Debug, Default)]
pub struct Router {
    sinks: Vec<Filter>,
}

#[derive(Debug)]
struct Filter {
    sink: AlertSink,
    /// Keys of open incidents this sink was told about.
    told: BTreeSet<String>,
}

impl Router {
    /// A router over the configured sinks.
    pub fn new(sinks: &[AlertSink]) -> Self {
        Self {
            sinks: sinks
                .iter()
                .map(|sink| Filter {
                    sink: sink.clone(),
                    told: BTreeSet::new(),
                })
                .collect(),
        }
    }

    /// Replays a line that was routed to `sink` before a restart, so its resolution still goes there.
    pub fn replay(&mut self, sink: &str, key: &str, resolved: bool) {
        if let Some(filter) = self.sinks.iter_mut().find(|f| f.sink.name == sink) {
            if resolved {
                filter.told.remove(key);
            } else {
                filter.told.insert(key.to_owned());
            }
        }
    }

    /// The indices (in config order) of the sinks that get this line.
    pub fn route(&mut self, line: Route<'_>) -> Vec<usize> {
        let mut out = Vec::new();
        for (index, filter) in self.sinks.iter_mut().enumerate() {
            if !filter.sink.wants_service(line.service) {
                continue;
            }
            let told = filter.told.contains(line.key);
            if line.resolved {
                filter.told.remove(line.key);
            }
            let passes = line.severity >= filter.sink.min_severity;
            if passes || (line.resolved && told) {
                if !line.resolved {
                    filter.told.insert(line.key.to_owned());
                }
                out.push(index);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        let text = r#"
[[service]]
name = "web"
container = { name = "web" }

[[alert]]
name = "pager"
kind = "exec"
command = ["page"]
min_severity = "critical"

[[alert]]
name = "chat"
kind = "exec"
command = ["chat"]
min_severity = "info"
services = ["web"]
"#;
        let config = crate::config::parse(text, "t.toml").unwrap();
        Router::new(&config.alerts)
    }

    #[track_caller]
    fn check(router: &mut Router, line: (&str, Severity, &str, bool), expect: &[usize]) {
        let (service, severity, key, resolved) = line;
        let got = router.route(Route {
            service,
            severity,
            key,
            resolved,
        });
        assert_eq!(got, expect, "{line:?}");
    }

    #[test]
    fn resolutions_follow_what_each_sink_was_told() {
        let mut r = router();
        // A recovered incident nobody was paged for: info, only chat hears it.
        check(&mut r, ("web", Severity::Info, "i1", true), &[1]);
        // Escalation pages; its resolution (info) goes to the pager too, once.
        check(&mut r, ("web", Severity::Critical, "i2", false), &[0, 1]);
        check(&mut r, ("web", Severity::Info, "i2", true), &[0, 1]);
        check(&mut r, ("web", Severity::Info, "i2", true), &[1]);
        // Another service: chat filters it out.
        check(&mut r, ("db", Severity::Critical, "i3", false), &[0]);
        let mut r = router();
        r.replay("pager", "i4", false);
        check(&mut r, ("db", Severity::Info, "i4", true), &[0]);
    }

    #[test]
    fn http_answers_and_retry_delays() {
        assert_eq!(http_outcome(204), Outcome::Delivered);
        assert_eq!(http_outcome(503), Outcome::Retry);
        assert_eq!(http_outcome(429), Outcome::Retry);
        assert_eq!(http_outcome(404), Outcome::GiveUp);
        let s = Duration::from_secs(1);
        let max = Duration::from_secs(300);
        assert!(retry_delay(1, s, max, "x") >= s && retry_delay(1, s, max, "x") <= s.mul_f64(1.1));
        assert!(retry_delay(3, s, max, "x") >= 4 * s);
        assert_eq!(retry_delay(40, s, max, "x"), max);
    }
}
