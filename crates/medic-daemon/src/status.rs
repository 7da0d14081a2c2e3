//! The status report served by the control API and printed by `medic status`:
//! its own serde types, so the JSON contract does not freeze the core's internals.

use jiff::Timestamp;
use medic_core::{Health, Supervisor};
use serde::{Deserialize, Serialize};

use crate::clock::WallClock;

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
}

/// One unit's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// The unit name.
    pub name: String,
    /// starting, healthy, failing, recovering, rolling_back, escalated.
    pub state: String,
    /// healthy, unhealthy or unknown (stale or blind data is never healthy).
    pub health: String,
    /// Paused by a person.
    pub paused: bool,
    /// When the pause ends, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_until: Option<Timestamp>,
    /// When the state last changed.
    pub since: Timestamp,
    /// Restart attempts used inside the attempt window.
    pub attempts: u32,
    /// The open incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// Age of the freshest observation, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_observation_ms: Option<u64>,
    /// The last observation of each probe.
    pub probes: Vec<ProbeStatus>,
    /// launch_agent units: healthy, idle, failed, missing, or unknown without fresh evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<String>,
    /// Share of the last 24 h with a verdict that was healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_24h: Option<f64>,
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
    /// Builds the report from the supervisor's view as of `now`.
    pub fn new(sup: &Supervisor, clock: &WallClock, now: std::time::Instant) -> Self {
        let services = sup
            .status(now)
            .into_iter()
            .map(|s| {
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
                let classification = s
                    .probes
                    .iter()
                    .flatten()
                    .find_map(|p| p.observation.evidence.get("classification")?.as_str())
                    .map(|c| match s.health {
                        Health::Unknown => "unknown".to_owned(),
                        _ => c.to_owned(),
                    });
                let availability_24h = sup.availability(&s.name, now, DAY);
                ServiceStatus {
                    classification,
                    availability_24h,
                    name: s.name,
                    state: s.state.to_owned(),
                    health: health_name(s.health).to_owned(),
                    paused: s.paused.is_some(),
                    paused_until: s.paused.flatten().map(|u| clock.to_wall(u)),
                    since: clock.to_wall(s.since),
                    attempts: s.attempts,
                    incident: s.incident,
                    last_observation_ms,
                    probes,
                }
            })
            .collect();
        Self {
            generated: clock.to_wall(now),
            overall: health_name(sup.overall(now)).to_owned(),
            services,
        }
    }
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
