//! Prometheus metrics on `metrics_listen`, in the text format or OpenMetrics
//! as the scraper asks (`medic-exposition` writes them): per-service health,
//! state, attempts, availability over 1 h / 24 h / 7 d / 30 d against the
//! SLO with the error budget left, a 0–1 health score, probe
//! latency histograms, observation and recovery counters, and medic's own
//! process figures. A Prometheus server scraping every host's medic is how a
//! fleet is watched (`web.rs` binds the listener).

pub(crate) mod sinks;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;
use medic_core::availability::{error_budget_left, health_score};
use medic_core::config::{Config, Service};
use medic_core::{EventKind, Health, Observation, Supervisor, UnitStatus};
use medic_exposition::{Exposition, Format, Kind};
use medic_records::files::FileHealth;
use tokio::sync::{mpsc, oneshot};

use crate::shell::ControlRequest;
use crate::status::health_name;
use crate::unit_spec::UnitSpec;

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
    /// When the certificate an HTTPS probe last saw expires (Unix seconds).
    cert_expiry: Option<i64>,
}

/// Probe outcomes, in the order their series are written.
const OUTCOMES: [&str; 3] = ["blind", "fail", "ok"];

/// How incidents end, in the order their series are written.
const ENDINGS: [&str; 3] = ["recovered", "rolled_back", "escalated"];

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
        if observation.cert_expiry.is_some() {
            figures.cert_expiry = observation.cert_expiry;
        }
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

    /// Counts how incidents end ([`ENDINGS`]).
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

    /// The service families of the exposition, each in one group;
    /// `units` holds each unit's labels, probe kinds and objective.
    pub fn render(
        &self,
        out: &mut Exposition,
        sup: &Supervisor,
        now: Instant,
        units: &BTreeMap<String, UnitInfo>,
    ) {
        let fallback = UnitInfo::default();
        let info = |unit: &str| units.get(unit).unwrap_or(&fallback);
        out.family(
            "medic_build_info",
            Kind::Gauge,
            "Always 1; the labels say which medic runs and on which host.",
        );
        out.sample(
            "medic_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("revision", REVISION),
                ("host", &medic_alerts::hostname::hostname()),
            ],
            1.0,
        );
        let status = sup.status(now);
        let each = Each {
            status: &status,
            info: &info,
        };
        each.gauge(
            out,
            "medic_service_up",
            "1 when healthy on fresh observations, 0 otherwise (unknown is 0).",
            |s| flag(s.health == Health::Healthy),
        );
        out.family(
            "medic_service_health",
            Kind::Gauge,
            "1 for the service's current health: healthy, unhealthy or unknown (stale or blind).",
        );
        for s in &status {
            for health in [Health::Healthy, Health::Unhealthy, Health::Unknown] {
                out.sample(
                    "medic_service_health",
                    &with(info(&s.name), &[("health", health_name(health))]),
                    flag(s.health == health),
                );
            }
        }
        each.gauge(
            out,
            "medic_service_failing_streak",
            "Failed observations in a row while still below failure_threshold (`failing (1/3)`); 0 otherwise.",
            |s| f64::from(s.below_threshold.map_or(0, |(streak, _)| streak)),
        );
        each.gauge(
            out,
            "medic_service_flapping",
            "1 while the service flaps: its open incident skipped its restarts (flap_limit incidents within flap_window), or, with nothing different to roll back to, restarts wait a growing delay.",
            |s| flag(s.reason.is_some() || s.flapping.is_some()),
        );
        each.gauge(
            out,
            "medic_service_flap_delay_seconds",
            "While the service flaps with nothing different to roll back to: the delay the next incident's first restart waits; 0 otherwise.",
            |s| s.flapping.map_or(0.0, |f| f.next_delay.as_secs_f64()),
        );
        out.family(
            "medic_service_state",
            Kind::Gauge,
            "1 for the service's recovery state.",
        );
        for s in &status {
            for state in STATES {
                out.sample(
                    "medic_service_state",
                    &with(info(&s.name), &[("state", state)]),
                    flag(s.state == state),
                );
            }
        }
        each.gauge(
            out,
            "medic_service_paused",
            "1 while a person paused automatic recovery.",
            |s| flag(s.paused.is_some()),
        );
        each.gauge(
            out,
            "medic_service_attempts",
            "Restart attempts used inside the attempt window.",
            |s| f64::from(s.attempts),
        );
        render_availability(out, sup, now, &each);
        self.render_probes(out, &info);
        out.family(
            "medic_recoveries_total",
            Kind::Counter,
            "Incidents ended, by outcome: recovered, rolled_back, escalated.",
        );
        // Every outcome of every unit, 0 until it happens: Prometheus's
        // increase() sees a counter's first incident only when it was 0 before.
        for s in &status {
            for outcome in ENDINGS {
                let count = self.recoveries.get(&(s.name.clone(), outcome));
                out.sample(
                    "medic_recoveries_total",
                    &with(info(&s.name), &[("outcome", outcome)]),
                    count.copied().unwrap_or(0) as f64,
                );
            }
        }
    }

    fn render_probes<'a>(&self, out: &mut Exposition, info: &impl Fn(&str) -> &'a UnitInfo) {
        let kind =
            |unit: &str, probe: usize| info(unit).probes.get(probe).copied().unwrap_or("unknown");
        out.family(
            "medic_probe_latency_seconds",
            Kind::Histogram,
            "How long probes took.",
        );
        for (unit, probe, figures) in self.probe_figures() {
            let h = &figures.latency;
            let index = probe.to_string();
            let labels = with(
                info(unit),
                &[("probe", kind(unit, probe)), ("index", index.as_str())],
            );
            let buckets = BUCKETS.iter().copied().zip(h.counts);
            out.histogram(
                "medic_probe_latency_seconds",
                &labels,
                buckets,
                h.count,
                h.sum,
            );
        }
        out.family(
            "medic_probe_observations_total",
            Kind::Counter,
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
                out.sample("medic_probe_observations_total", &labels, count as f64);
            }
        }
        out.family(
            "medic_probe_ssl_earliest_cert_expiry_seconds",
            Kind::Gauge,
            "When the certificate an HTTPS probe's server presented expires, in seconds since the Unix epoch.",
        );
        for (unit, probe, figures) in self.probe_figures() {
            if let Some(expiry) = figures.cert_expiry {
                let index = probe.to_string();
                let labels = with(
                    info(unit),
                    &[("probe", kind(unit, probe)), ("index", &index)],
                );
                out.sample(
                    "medic_probe_ssl_earliest_cert_expiry_seconds",
                    &labels,
                    expiry as f64,
                );
            }
        }
    }
}

/// 1 for true, 0 for false.
fn flag(on: bool) -> f64 {
    f64::from(u8::from(on))
}

/// Every unit's status with its info: writes a family with one series per unit.
struct Each<'a, F: Fn(&str) -> &'a UnitInfo> {
    status: &'a [UnitStatus],
    info: &'a F,
}

impl<'a, F: Fn(&str) -> &'a UnitInfo> Each<'a, F> {
    /// A gauge family with one sample per unit, read by `value`.
    fn gauge(
        &self,
        out: &mut Exposition,
        name: &str,
        help: &str,
        value: impl Fn(&UnitStatus) -> f64,
    ) {
        self.family(out, name, Kind::Gauge, help, |s| Some(value(s)));
    }

    /// A family with one sample per unit that `value` gives one for.
    fn family(
        &self,
        out: &mut Exposition,
        name: &str,
        kind: Kind,
        help: &str,
        value: impl Fn(&UnitStatus) -> Option<f64>,
    ) {
        out.family(name, kind, help);
        for s in self.status {
            if let Some(value) = value(s) {
                out.sample(name, &with((self.info)(&s.name), &[]), value);
            }
        }
    }
}

/// The availability SLI (counters), its windows, the SLO and what is left of the budget.
fn render_availability<'a, F: Fn(&str) -> &'a UnitInfo>(
    out: &mut Exposition,
    sup: &Supervisor,
    now: Instant,
    each: &Each<'a, F>,
) {
    let totals = |s: &UnitStatus| sup.availability_totals(&s.name, now);
    each.family(
        out,
        "medic_service_healthy_seconds_total",
        Kind::Counter,
        "Seconds the service was healthy since medic began watching it: the availability SLI's good time.",
        |s| totals(s).map(|(up, _)| up as f64 / 1000.0),
    );
    each.family(
        out,
        "medic_service_known_seconds_total",
        Kind::Counter,
        "Seconds with a verdict (healthy or unhealthy; unknown time counts neither way): the SLI's total.",
        |s| totals(s).map(|(_, known)| known as f64 / 1000.0),
    );
    out.family(
        "medic_availability_ratio",
        Kind::Gauge,
        "Share of time with a verdict that the service was healthy.",
    );
    for s in each.status {
        for (window, length) in WINDOWS {
            if let Some(ratio) = sup.availability(&s.name, now, length) {
                out.sample(
                    "medic_availability_ratio",
                    &with((each.info)(&s.name), &[("window", window)]),
                    ratio,
                );
            }
        }
    }
    let slo = |s: &UnitStatus| (each.info)(&s.name).slo;
    each.gauge(
        out,
        "medic_slo_objective_ratio",
        "The availability objective (slo).",
        slo,
    );
    each.family(
        out,
        "medic_error_budget_remaining_ratio",
        Kind::Gauge,
        "Error budget left over 7 days: 1 untouched, 0 spent.",
        |s| {
            let week = sup.availability(&s.name, now, WINDOWS[2].1)?;
            Some(error_budget_left(week, slo(s)))
        },
    );
    each.gauge(
        out,
        "medic_health_score_ratio",
        "0-1: half the verdict now (unknown counts half), half the 24 h availability.",
        |s| health_score(s.health, sup.availability(&s.name, now, WINDOWS[1].1)),
    );
}

/// One counter of a file's health: its name, help and how to read it.
type FileCounter = (&'static str, &'static str, fn(&FileHealth) -> u64);

/// Failed writes and lost lines of each file medic writes in the
/// background: the append-only journals (recovery log, alerts, change
/// lines, outboxes) and the state files replaced whole (state store,
/// availability history).
pub(crate) fn render_storage(
    out: &mut Exposition,
    journals: &[&FileHealth],
    state: &[&FileHealth],
) {
    let series: [(FileCounter, &[&FileHealth]); 3] = [
        (
            (
                "medic_journal_write_errors_total",
                "Failed writes of medic's append-only files (recovery log, alerts, change lines, outboxes); medic keeps supervising and retries.",
                FileHealth::errors_total,
            ),
            journals,
        ),
        (
            (
                "medic_journal_lines_dropped_total",
                "Lines lost because the file stayed unwritable until its bounded buffer was full.",
                FileHealth::dropped_total,
            ),
            journals,
        ),
        (
            (
                "medic_state_write_errors_total",
                "Failed saves of medic's state files (state store, availability history); medic keeps supervising and saves again.",
                FileHealth::errors_total,
            ),
            state,
        ),
    ];
    for ((name, help, value), files) in series {
        out.family(name, Kind::Counter, help);
        for file in files {
            out.sample(name, &[("file", file.what)], value(file) as f64);
        }
    }
}

/// `GET /metrics`; the supervisor loop renders each answer.
pub fn routes(requests: mpsc::Sender<ControlRequest>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(requests)
}

async fn scrape(
    State(requests): State<mpsc::Sender<ControlRequest>>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let accept = headers.get(ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let (reply, answer) = oneshot::channel();
    let text = match requests.send(ControlRequest::Metrics(format, reply)).await {
        Ok(()) => answer.await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    ([(CONTENT_TYPE, format.content_type())], text)
}
