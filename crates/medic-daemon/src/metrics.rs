//! Prometheus metrics in the text exposition format on `metrics_listen`:
//! per-service health, state, attempts, availability over 1 h / 24 h / 7 d / 30 d
//! against the SLO with the error budget left, a 0–100 health score, probe
//! latency histograms, observation and recovery counters, and medic's own
//! process figures. A Prometheus server scraping every host's medic is how a
//! fleet is watched (`web.rs` binds the listener).

pub(crate) mod sinks;
mod text;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use medic_core::availability::{error_budget_left, health_score};
use medic_core::config::{Config, Service};
use medic_core::{EventKind, Health, Observation, Supervisor};
use tokio::sync::{mpsc, oneshot};

use crate::shell::ControlRequest;
use crate::status::health_name;
use crate::unit_spec::UnitSpec;
use text::{family, sample};

/// Upper bounds of the probe latency histogram, in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const STATES: [&str; 10] = [
    "starting",
    "healthy",
    "failing",
    "recovering",
    "rolling_back",
    "escalated",
    "deploying",
    "restarting",
    "replacing",
    "flapping",
];
const WINDOWS: [(&str, Duration); 4] = [
    ("1h", Duration::from_secs(3600)),
    ("24h", Duration::from_secs(24 * 3600)),
    ("7d", Duration::from_secs(7 * 24 * 3600)),
    ("30d", Duration::from_secs(30 * 24 * 3600)),
];
/// The revision medic was built from (`build.rs`), or `unknown`.
const REVISION: &str = env!("MEDIC_REVISION");

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// What the exposition needs to know of one unit besides its status.
#[derive(Debug, Clone, Default)]
pub struct UnitInfo {
    /// The labels every series of the unit carries: `service`, `instance_name`
    /// for a selector's instance (`web/app-1` → `web`, `app-1`), then the
    /// service's user labels.
    pub labels: Vec<(String, String)>,
    /// The kind of each probe, by index.
    pub probes: Vec<&'static str>,
    /// The availability objective.
    pub slo: f64,
}

impl UnitInfo {
    /// The info of unit `unit` of `service` (None: a unit whose service left the config).
    pub fn new(unit: &str, service: Option<&Service>, probes: Vec<&'static str>) -> Self {
        let mut labels = match unit.split_once('/') {
            Some((service, instance)) => vec![
                ("service".to_owned(), service.to_owned()),
                ("instance_name".to_owned(), instance.to_owned()),
            ],
            None => vec![("service".to_owned(), unit.to_owned())],
        };
        labels.extend(service.into_iter().flat_map(|s| s.labels.iter().cloned()));
        Self {
            labels,
            probes,
            slo: service.map_or(0.999, |s| s.slo),
        }
    }
}

/// Every unit's [`UnitInfo`], from the config and the units' specs.
pub fn unit_infos<'a>(
    config: &Config,
    specs: impl Iterator<Item = &'a UnitSpec>,
) -> BTreeMap<String, UnitInfo> {
    let services: BTreeMap<&str, &Service> = config
        .services
        .iter()
        .map(|s| (s.name.as_str(), s))
        .collect();
    specs
        .map(|spec| {
            let service = services.get(spec.service.as_str()).copied();
            let info = UnitInfo::new(&spec.name, service, spec.probe_kinds.clone());
            (spec.name.clone(), info)
        })
        .collect()
}

/// One probe's latency histogram and its results by outcome.
#[derive(Debug, Default)]
struct ProbeFigures {
    latency: Histogram,
    /// Counts by [`OUTCOMES`].
    outcomes: [u64; OUTCOMES.len()],
}

/// Probe outcomes, in the order their series are written.
const OUTCOMES: [&str; 3] = ["blind", "fail", "ok"];

/// Counters and histograms fed by the supervisor loop.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Per unit, by probe index: one entry (and one name) per unit, found
    /// without making a key for each observation.
    probes: BTreeMap<String, Vec<ProbeFigures>>,
    recoveries: BTreeMap<(String, &'static str), u64>,
}

/// A unit's labels followed by `extra`.
fn with<'a>(info: &'a UnitInfo, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    info.labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(extra.iter().copied())
        .collect()
}

impl Metrics {
    /// Counts one observation and its latency.
    pub fn observed(&mut self, unit: &str, probe: usize, observation: &Observation) {
        let seconds = observation.latency.as_secs_f64();
        if !self.probes.contains_key(unit) {
            self.probes.insert(unit.to_owned(), Vec::new());
        }
        let Some(figures) = self.probes.get_mut(unit) else {
            return;
        };
        if figures.len() <= probe {
            // Exact: a Vec grown by one reserves room for four figures (600 bytes
            // a unit), and nearly every unit has a single probe.
            figures.reserve_exact(probe + 1 - figures.len());
            figures.resize_with(probe + 1, ProbeFigures::default);
        }
        let figures = &mut figures[probe];
        let histogram = &mut figures.latency;
        for (bound, count) in BUCKETS.iter().zip(&mut histogram.counts) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
        let outcome = observation.outcome.as_str();
        if let Some(at) = OUTCOMES.iter().position(|o| *o == outcome) {
            figures.outcomes[at] += 1;
        }
    }

    /// Every observed probe's figures: unit, probe index, figures.
    fn probe_figures(&self) -> impl Iterator<Item = (&str, usize, &ProbeFigures)> {
        self.probes.iter().flat_map(|(unit, probes)| {
            probes
                .iter()
                .enumerate()
                .filter(|(_, f)| f.latency.count > 0)
                .map(move |(probe, f)| (unit.as_str(), probe, f))
        })
    }

    /// Counts how incidents end.
    pub fn event(&mut self, unit: &str, kind: EventKind) {
        let outcome = match kind {
            EventKind::Recovered => "recovered",
            EventKind::RolledBack => "rolled_back",
            EventKind::Escalated => "escalated",
            _ => return,
        };
        *self
            .recoveries
            .entry((unit.to_owned(), outcome))
            .or_default() += 1;
    }

    /// Forgets a unit that is no longer watched.
    pub fn forget(&mut self, unit: &str) {
        self.probes.remove(unit);
        self.recoveries.retain(|(u, _), _| u != unit);
    }

    /// The whole exposition; `units` holds each unit's labels, probe kinds and objective.
    pub fn render(
        &self,
        sup: &Supervisor,
        now: Instant,
        units: &BTreeMap<String, UnitInfo>,
    ) -> String {
        let mut out = String::new();
        let fallback = UnitInfo::default();
        let info = |unit: &str| units.get(unit).unwrap_or(&fallback);
        family(
            &mut out,
            "medic_build_info",
            "gauge",
            "Always 1; the labels say which medic runs and on which host.",
        );
        sample(
            &mut out,
            "medic_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("revision", REVISION),
                ("host", &medic_alerts::hostname::hostname()),
            ],
            1.0,
        );
        let status = sup.status(now);
        family(
            &mut out,
            "medic_service_up",
            "gauge",
            "1 when healthy on fresh observations, 0 otherwise (unknown is 0).",
        );
        for s in &status {
            sample(
                &mut out,
                "medic_service_up",
                &with(info(&s.name), &[]),
                f64::from(u8::from(s.health == Health::Healthy)),
            );
        }
        family(
            &mut out,
            "medic_service_health",
            "gauge",
            "1 for the service's current health: healthy, unhealthy or unknown (stale or blind).",
        );
        for s in &status {
            for health in [Health::Healthy, Health::Unhealthy, Health::Unknown] {
                let value = f64::from(u8::from(s.health == health));
                sample(
                    &mut out,
                    "medic_service_health",
                    &with(info(&s.name), &[("health", health_name(health))]),
                    value,
                );
            }
        }
        family(
            &mut out,
            "medic_service_failing_streak",
            "gauge",
            "Failed observations in a row while still below failure_threshold (`failing (1/3)`); 0 otherwise.",
        );
        for s in &status {
            let streak = s.below_threshold.map_or(0, |(streak, _)| streak);
            sample(
                &mut out,
                "medic_service_failing_streak",
                &with(info(&s.name), &[]),
                f64::from(streak),
            );
        }
        family(
            &mut out,
            "medic_service_flapping",
            "gauge",
            "1 while the service flaps: its open incident skipped its restarts (flap_limit incidents within flap_window), or, with nothing different to roll back to, restarts wait a growing delay.",
        );
        for s in &status {
            sample(
                &mut out,
                "medic_service_flapping",
                &with(info(&s.name), &[]),
                f64::from(u8::from(s.reason.is_some() || s.flapping.is_some())),
            );
        }
        family(
            &mut out,
            "medic_service_flap_delay_seconds",
            "gauge",
            "While the service flaps with nothing different to roll back to: the delay the next incident's first restart waits; 0 otherwise.",
        );
        for s in &status {
            let delay = s.flapping.map_or(0.0, |f| f.next_delay.as_secs_f64());
            sample(
                &mut out,
                "medic_service_flap_delay_seconds",
                &with(info(&s.name), &[]),
                delay,
            );
        }
        family(
            &mut out,
            "medic_service_state",
            "gauge",
            "1 for the service's recovery state.",
        );
        for s in &status {
            for state in STATES {
                sample(
                    &mut out,
                    "medic_service_state",
                    &with(info(&s.name), &[("state", state)]),
                    f64::from(u8::from(s.state == state)),
                );
            }
        }
        family(
            &mut out,
            "medic_service_paused",
            "gauge",
            "1 while a person paused automatic recovery.",
        );
        family(
            &mut out,
            "medic_service_attempts",
            "gauge",
            "Restart attempts used inside the attempt window.",
        );
        for s in &status {
            let labels = with(info(&s.name), &[]);
            sample(
                &mut out,
                "medic_service_paused",
                &labels,
                f64::from(u8::from(s.paused.is_some())),
            );
            sample(
                &mut out,
                "medic_service_attempts",
                &labels,
                f64::from(s.attempts),
            );
        }
        self.render_availability(&mut out, sup, now, &status, &info);
        self.render_probes(&mut out, &info);
        family(
            &mut out,
            "medic_recoveries_total",
            "counter",
            "Incidents ended, by outcome: recovered, rolled_back, escalated.",
        );
        for ((unit, outcome), count) in &self.recoveries {
            sample(
                &mut out,
                "medic_recoveries_total",
                &with(info(unit), &[("outcome", outcome)]),
                *count as f64,
            );
        }
        process(&mut out);
        out
    }

    /// The availability SLI (counters), its windows, the SLO and what is left of the budget.
    fn render_availability<'a>(
        &self,
        out: &mut String,
        sup: &Supervisor,
        now: Instant,
        status: &[medic_core::UnitStatus],
        info: &impl Fn(&str) -> &'a UnitInfo,
    ) {
        family(
            out,
            "medic_service_healthy_seconds_total",
            "counter",
            "Seconds the service was healthy since medic began watching it: the availability SLI's good time.",
        );
        family(
            out,
            "medic_service_known_seconds_total",
            "counter",
            "Seconds with a verdict (healthy or unhealthy; unknown time counts neither way): the SLI's total.",
        );
        for s in status {
            if let Some((up, known)) = sup.availability_totals(&s.name, now) {
                let labels = with(info(&s.name), &[]);
                sample(
                    out,
                    "medic_service_healthy_seconds_total",
                    &labels,
                    up as f64 / 1000.0,
                );
                sample(
                    out,
                    "medic_service_known_seconds_total",
                    &labels,
                    known as f64 / 1000.0,
                );
            }
        }
        family(
            out,
            "medic_availability_ratio",
            "gauge",
            "Share of time with a verdict that the service was healthy.",
        );
        for s in status {
            for (window, length) in WINDOWS {
                if let Some(ratio) = sup.availability(&s.name, now, length) {
                    sample(
                        out,
                        "medic_availability_ratio",
                        &with(info(&s.name), &[("window", window)]),
                        ratio,
                    );
                }
            }
        }
        family(
            out,
            "medic_slo_objective_ratio",
            "gauge",
            "The availability objective (slo).",
        );
        family(
            out,
            "medic_error_budget_remaining_ratio",
            "gauge",
            "Error budget left over 7 days: 1 untouched, 0 spent.",
        );
        family(
            out,
            "medic_health_score",
            "gauge",
            "0-100: half the verdict now (unknown counts half), half the 24 h availability.",
        );
        for s in status {
            let unit = info(&s.name);
            let labels = with(unit, &[]);
            sample(out, "medic_slo_objective_ratio", &labels, unit.slo);
            if let Some(week) = sup.availability(&s.name, now, WINDOWS[2].1) {
                sample(
                    out,
                    "medic_error_budget_remaining_ratio",
                    &labels,
                    error_budget_left(week, unit.slo),
                );
            }
            let day = sup.availability(&s.name, now, WINDOWS[1].1);
            sample(
                out,
                "medic_health_score",
                &labels,
                f64::from(health_score(s.health, day)),
            );
        }
    }

    fn render_probes<'a>(&self, out: &mut String, info: &impl Fn(&str) -> &'a UnitInfo) {
        let kind =
            |unit: &str, probe: usize| info(unit).probes.get(probe).copied().unwrap_or("unknown");
        family(
            out,
            "medic_probe_latency_seconds",
            "histogram",
            "How long probes took.",
        );
        for (unit, probe, figures) in self.probe_figures() {
            let h = &figures.latency;
            let index = probe.to_string();
            let labels = with(
                info(unit),
                &[("probe", kind(unit, probe)), ("index", index.as_str())],
            );
            for (bound, count) in BUCKETS.iter().zip(h.counts) {
                let le = bound.to_string();
                let mut with_le = labels.clone();
                with_le.push(("le", &le));
                sample(
                    out,
                    "medic_probe_latency_seconds_bucket",
                    &with_le,
                    count as f64,
                );
            }
            let mut inf = labels.clone();
            inf.push(("le", "+Inf"));
            sample(
                out,
                "medic_probe_latency_seconds_bucket",
                &inf,
                h.count as f64,
            );
            sample(out, "medic_probe_latency_seconds_sum", &labels, h.sum);
            sample(
                out,
                "medic_probe_latency_seconds_count",
                &labels,
                h.count as f64,
            );
        }
        family(
            out,
            "medic_probe_observations_total",
            "counter",
            "Probe results by outcome: ok, fail, blind.",
        );
        for (unit, probe, figures) in self.probe_figures() {
            let index = probe.to_string();
            for (outcome, count) in OUTCOMES.iter().zip(figures.outcomes) {
                if count == 0 {
                    continue;
                }
                let labels = with(
                    info(unit),
                    &[
                        ("probe", kind(unit, probe)),
                        ("index", &index),
                        ("outcome", outcome),
                    ],
                );
                sample(out, "medic_probe_observations_total", &labels, count as f64);
            }
        }
    }
}

/// One counter of a file's health: its name, help and how to read it.
type FileCounter = (
    &'static str,
    &'static str,
    fn(&medic_records::files::FileHealth) -> u64,
);

/// Failed writes and lost lines of each file medic writes in the background.
pub(crate) fn render_storage(out: &mut String, files: &[&medic_records::files::FileHealth]) {
    let series: [FileCounter; 2] = [
        (
            "medic_journal_write_errors_total",
            "Failed writes of medic's own files (recovery log, alerts, state store, …); medic keeps supervising and retries.",
            medic_records::files::FileHealth::errors_total,
        ),
        (
            "medic_journal_lines_dropped_total",
            "Lines lost because the file stayed unwritable until its bounded buffer was full.",
            medic_records::files::FileHealth::dropped_total,
        ),
    ];
    for (name, help, value) in series {
        family(out, name, "counter", help);
        for file in files {
            sample(out, name, &[("file", file.what)], value(file) as f64);
        }
    }
}

/// medic's own process figures, from /proc (Linux; absent elsewhere).
fn process(out: &mut String) {
    let page = 4096.0;
    if let Some(rss) = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
    {
        family(
            out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        let _ = writeln!(out, "process_resident_memory_bytes {}", rss * page);
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th of those.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        family(
            out,
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
        );
        let _ = writeln!(
            out,
            "process_cpu_seconds_total {}",
            (ticks(11) + ticks(12)) / 100.0
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        family(
            out,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
        );
        let _ = writeln!(out, "process_open_fds {}", fds.count());
    }
}

/// `GET /metrics`; the supervisor loop renders each answer.
pub fn routes(requests: mpsc::Sender<ControlRequest>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(requests)
}

async fn scrape(State(requests): State<mpsc::Sender<ControlRequest>>) -> impl IntoResponse {
    let (reply, answer) = oneshot::channel();
    let text = match requests.send(ControlRequest::Metrics(reply)).await {
        Ok(()) => answer.await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
}
