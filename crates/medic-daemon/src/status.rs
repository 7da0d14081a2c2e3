//! The status report served by the control API and printed by `medic status`:
//! its own serde types, so the JSON contract does not freeze the core's internals.

use jiff::Timestamp;
use medic_core::{Health, Supervisor, UnitStatus};
use serde::{Deserialize, Serialize};

use crate::clock::WallClock;
use crate::store::Store;

/// The window of the availability shown in status.
const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Every unit's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// When the report was made.
    pub generated: Timestamp,
    /// `healthy` only when every service is; `unknown` when any lacks fresh evidence.
    pub overall: String,
    /// One entry per unit.
    pub services: Vec<ServiceStatus>,
    /// What medic itself cannot do right now, e.g. "recovery log not
    /// writable: No space left on device" (it keeps supervising).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// What each selector service's engine lists (`watching 0 containers
    /// labelled medic.enable=true`), or why it cannot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selectors: Vec<SelectorStatus>,
}

/// A selector service (label, compose or label prefix): what discovery sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectorStatus {
    /// The service.
    pub service: String,
    /// How many instances the engine lists; absent while it cannot be reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watching: Option<usize>,
    /// One line: `watching 2 containers labelled medic.enable=true`, or the error.
    pub message: String,
}

/// One unit's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// The unit name.
    pub name: String,
    /// starting, healthy, failing, recovering, rolling_back, escalated,
    /// deploying, restarting or replacing (a person's restart or a deploy's
    /// replacement under way: no incident), flapping (a restart waits its flap delay).
    pub state: String,
    /// healthy, unhealthy or unknown (stale or blind data is never healthy);
    /// `failing (1/3)` while a healthy service fails below its `failure_threshold`.
    pub health: String,
    /// Paused by a person.
    pub paused: bool,
    /// When the pause ends, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_until: Option<Timestamp>,
    /// When the state last changed.
    pub since: Timestamp,
    /// Restarts started in the open incident.
    pub attempts: u32,
    /// Why the open incident skipped its restarts (`flapping: 4 incidents in 10 min`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Flapping with nothing different to roll back to: restarts wait a growing delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flapping: Option<Flapping>,
    /// The open incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// Share of the last 24 hours with a verdict that was healthy (unknown time
    /// counts neither way); absent before any verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_24h: Option<f64>,
    /// The version a rollback returns to (image and image id for containers),
    /// when medic recorded one while the service was healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_known_good: Option<serde_json::Value>,
    /// How the last closed incident ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_incident: Option<LastIncident>,
    /// Age of the freshest observation, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_observation_ms: Option<u64>,
    /// The last observation of each probe.
    pub probes: Vec<ProbeStatus>,
    /// launch_agent units: healthy, starting, idle, failed, missing, or unknown without fresh evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<String>,
    /// launch_agent units: what launchctl said, so a person sees why at once
    /// (state, job_state, pid, runs, last_exit_code + last_exit_name or
    /// last_signal + last_signal_name, exit_reason, keep_alive, throttled,
    /// last_exit, plist or submitted_by).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The evidence keys of a launch_agent observation that `agent` carries.
const AGENT_KEYS: &[&str] = &[
    "state",
    "job_state",
    "pid",
    "runs",
    "last_exit_code",
    "last_exit_name",
    "last_signal",
    "last_signal_name",
    "exit_reason",
    "keep_alive",
    "throttled",
    "last_exit",
    "plist",
    "submitted_by",
];

/// A service flapping with nothing different to roll back to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flapping {
    /// The delay the next incident's first restart waits, in seconds (10, 20, … 300).
    pub next_delay_secs: u64,
    /// When the open incident's delayed restart is due, while it waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_at: Option<Timestamp>,
}

impl Flapping {
    /// What a table shows beside the state, as of `now`: `restart in 32s`
    /// while a restart waits, else `flapping, next delay 40s`.
    pub fn describe(&self, now: Timestamp) -> String {
        match self.restart_at {
            Some(at) => {
                let secs = at.duration_since(now).as_secs().max(0);
                format!("restart in {secs}s")
            }
            None => format!("flapping, next delay {}s", self.next_delay_secs),
        }
    }
}

/// An incident that ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastIncident {
    /// Its id.
    pub id: String,
    /// recovered, rolled_back or reset.
    pub outcome: String,
    /// When it ended.
    pub ended: Timestamp,
}

/// The last observation of one probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeStatus {
    /// ok, fail, blind, or none (not observed yet).
    pub outcome: String,
    /// The probe's message.
    pub message: String,
    /// How long the probe took.
    pub latency_ms: u64,
    /// How long ago it was made.
    pub age_ms: u64,
}

impl StatusReport {
    /// Builds the report from the supervisor's view as of `now` (the status
    /// page; the control API writes its answer with [`render`]).
    pub fn new(
        sup: &Supervisor,
        store: &Store,
        clock: &WallClock,
        now: std::time::Instant,
    ) -> Self {
        let services = sup
            .status(now)
            .into_iter()
            .map(|s| ServiceStatus::new(s, sup, store, clock, now))
            .collect();
        Self {
            generated: clock.to_wall(now),
            overall: health_name(sup.overall(now)).to_owned(),
            services,
            problems: Vec::new(),
            selectors: Vec::new(),
        }
    }
}

/// `GET /v1/status` as JSON, written service by service into one buffer: an
/// answer about 10,000 services never holds their statuses beside its bytes,
/// only one at a time. `only` (sorted) keeps the units a name means. Parses
/// as a [`StatusReport`].
#[allow(clippy::too_many_arguments)]
pub fn render(
    sup: &Supervisor,
    store: &Store,
    clock: &WallClock,
    now: std::time::Instant,
    only: Option<&[String]>,
    problems: &[String],
    selectors: &[SelectorStatus],
    capacity: usize,
) -> Vec<u8> {
    let answer = Answer {
        generated: clock.to_wall(now),
        overall: health_name(sup.overall(now)),
        services: Services {
            sup,
            store,
            clock,
            now,
            only,
        },
        problems,
        selectors,
    };
    let mut out = Vec::with_capacity(capacity);
    // Writing into a Vec fails only if a Serialize impl does, and none here does.
    serde_json::to_writer(&mut out, &answer).ok();
    out
}

/// [`StatusReport`]'s shape, borrowing what it can.
#[derive(Serialize)]
struct Answer<'a> {
    generated: Timestamp,
    overall: &'static str,
    services: Services<'a>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    problems: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    selectors: &'a [SelectorStatus],
}

/// The services of an [`Answer`], made one by one as they are written.
struct Services<'a> {
    sup: &'a Supervisor,
    store: &'a Store,
    clock: &'a WallClock,
    now: std::time::Instant,
    only: Option<&'a [String]>,
}

impl Serialize for Services<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let Self {
            sup,
            store,
            clock,
            now,
            only,
        } = *self;
        let mut seq = serializer.serialize_seq(None)?;
        let mut write = |s| seq.serialize_element(&ServiceStatus::new(s, sup, store, clock, now));
        match only {
            Some(units) => {
                for unit in units {
                    if let Some(s) = sup.unit_status(now, unit) {
                        write(s)?;
                    }
                }
            }
            None => {
                for s in sup.statuses(now) {
                    write(s)?;
                }
            }
        }
        seq.end()
    }
}

impl ServiceStatus {
    /// One unit's status as of `now`.
    pub fn new(
        s: UnitStatus,
        sup: &Supervisor,
        store: &Store,
        clock: &WallClock,
        now: std::time::Instant,
    ) -> Self {
        let probes: Vec<ProbeStatus> = s
            .probes
            .iter()
            .map(|p| match p {
                Some(p) => ProbeStatus {
                    outcome: p.observation.outcome.as_str().to_owned(),
                    message: p.observation.message.clone(),
                    latency_ms: millis(p.observation.latency),
                    age_ms: millis(now.saturating_duration_since(p.at)),
                },
                None => ProbeStatus {
                    outcome: "none".to_owned(),
                    message: "not observed yet".to_owned(),
                    latency_ms: 0,
                    age_ms: 0,
                },
            })
            .collect();
        let last_observation_ms = s
            .probes
            .iter()
            .flatten()
            .map(|p| millis(now.saturating_duration_since(p.at)))
            .min();
        let agent_evidence = s
            .probes
            .iter()
            .flatten()
            .map(|p| &p.observation.evidence)
            .find(|e| e.contains_key("classification"));
        let classification = agent_evidence
            .and_then(|e| e.get("classification")?.as_str())
            .map(|c| match s.health {
                Health::Unknown => "unknown".to_owned(),
                _ => c.to_owned(),
            });
        let agent = agent_evidence.map(|e| {
            AGENT_KEYS
                .iter()
                .filter_map(|k| Some(((*k).to_owned(), e.get(*k)?.clone())))
                .collect()
        });
        let availability_24h = sup.availability(&s.name, now, DAY);
        let last_incident = s.last_incident.map(|i| LastIncident {
            id: i.id,
            outcome: i.outcome.to_owned(),
            ended: clock.to_wall(i.ended),
        });
        let last_known_good = store
            .last_known_good(&s.name)
            .and_then(|spec| spec.as_object())
            .and_then(version);
        ServiceStatus {
            classification,
            agent,
            last_known_good,
            availability_24h,
            last_incident,
            name: s.name,
            state: s.state.to_owned(),
            health: match s.below_threshold {
                Some((streak, threshold)) => format!("failing ({streak}/{threshold})"),
                None => health_name(s.health).to_owned(),
            },
            paused: s.paused.is_some(),
            paused_until: s.paused.flatten().map(|u| clock.to_wall(u)),
            since: clock.to_wall(s.since),
            attempts: s.attempts,
            reason: s.reason,
            flapping: s.flapping.map(|f| Flapping {
                next_delay_secs: f.next_delay.as_secs(),
                restart_at: f.restart_at.map(|at| clock.to_wall(at)),
            }),
            incident: s.incident,
            last_observation_ms,
            probes,
        }
    }
}

/// The keys that name a version, in a last known good spec or a probe's evidence.
const VERSION_KEYS: &[&str] = &["image", "image_id", "plist", "fragment_path"];

/// The version a spec or an evidence object names, if it names one.
pub fn version(value: &serde_json::Map<String, serde_json::Value>) -> Option<serde_json::Value> {
    let picked: serde_json::Map<_, _> = VERSION_KEYS
        .iter()
        .filter_map(|key| Some(((*key).to_owned(), value.get(*key)?.clone())))
        .collect();
    (!picked.is_empty()).then_some(serde_json::Value::Object(picked))
}

/// The lowercase name of a health verdict.
pub fn health_name(health: Health) -> &'static str {
    match health {
        Health::Healthy => "healthy",
        Health::Unhealthy => "unhealthy",
        Health::Unknown => "unknown",
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use medic_core::{Input, Observation, Policy};

    #[test]
    fn the_answer_written_service_by_service_is_the_report() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Timestamp::now()).unwrap();
        let clock = WallClock::now();
        let now = std::time::Instant::now();
        let mut sup = Supervisor::new("t-", 1);
        for (name, ok) in [("api", true), ("db", false), ("web", true)] {
            sup.add_unit(now, name, Policy::default());
            let observation = if ok {
                Observation::ok(std::time::Duration::ZERO, "HTTP 200")
            } else {
                Observation::fail(std::time::Duration::ZERO, "HTTP 404").with("status", 404)
            };
            let unit = name.to_owned();
            let input = Input::Observed {
                unit,
                probe: 0,
                observation,
            };
            sup.handle_input(now, input).unwrap();
        }
        let problems = vec!["recovery log not writable: No space left on device".to_owned()];
        let render = |only: Option<&[String]>| -> StatusReport {
            let bytes = render(&sup, &store, &clock, now, only, &problems, &[], 0);
            serde_json::from_slice(&bytes).unwrap()
        };
        let mut report = StatusReport::new(&sup, &store, &clock, now);
        report.problems = problems.clone();
        assert_eq!(render(None), report);
        let only = ["db".to_owned(), "gone".to_owned(), "web".to_owned()];
        report.services.retain(|s| s.name != "api");
        assert_eq!(render(Some(&only)), report);
    }
}
