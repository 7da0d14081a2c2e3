//! One probe result: what the shell saw, handed to the core as evidence.

use std::time::{Duration, Instant};

/// Structured evidence attached to observations, events and alerts (exit code,
/// OOM flag, last log lines, HTTP status, …). A JSON object so every sink can
/// carry it unchanged.
pub type Evidence = serde_json::Map<String, serde_json::Value>;

/// What a probe concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The service answered as expected.
    Ok,
    /// The service is observably broken.
    Fail,
    /// The probe itself cannot see (Docker socket down, launchctl missing): no
    /// conclusion about the service, and never a reason to act.
    Blind,
}

impl Outcome {
    /// The lowercase word used in tables, JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Blind => "blind",
        }
    }
}

/// How much weight a failed observation carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Urgency {
    /// Counts towards the failure threshold.
    #[default]
    Normal,
    /// Fails at once (container died, OOM): no threshold, no start-period grace.
    Decisive,
    /// The thing is gone (container destroyed, job unloaded). From a healthy
    /// unit no incident yet: a replacement under the same name (a deploy,
    /// Compose recreating it) has `replace_grace` to appear; then medic
    /// restores it. Inside an incident, its next step waits the same grace.
    Gone,
    /// Stopped by a person's or a script's command that brings it back
    /// (`docker restart`, `podman restart`; a `docker stop` looks the same
    /// until then): not a failure. From a healthy unit no incident unless it
    /// is not back within [`ENGINE_GRACE`]; who is in the evidence under
    /// [`RESTART_EXPECTED_FROM`].
    Commanded,
    /// Stopped, but the engine is bringing it back itself (its restart policy,
    /// Podman's `--health-on-failure`): a failure all the same (a crash), but
    /// the first restart waits [`ENGINE_GRACE`], so medic and the engine never
    /// restart the same thing twice. Who is expected is in the evidence under
    /// [`RESTART_EXPECTED_FROM`].
    EngineRestarts,
}

/// How long the engine (or a person's `docker restart`) gets to bring back a
/// container before medic acts: Docker's policy restarts after 100 ms (doubling), a
/// `docker restart` starts right after the stop, a busy Podman takes seconds.
pub const ENGINE_GRACE: Duration = Duration::from_secs(10);

/// Evidence key naming who is expected to bring an [`Urgency::EngineRestarts`] failure back.
pub const RESTART_EXPECTED_FROM: &str = "restart_expected_from";

/// One probe result.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The verdict.
    pub outcome: Outcome,
    /// How long the probe took.
    pub latency: Duration,
    /// One human line: "HTTP 503", "connection refused", "exited with 3".
    pub message: String,
    /// Structured facts behind the verdict.
    pub evidence: Evidence,
    /// Weight of a failure; ignored for `Ok` and `Blind`.
    pub urgency: Urgency,
    /// When the probe began, if the shell knows: a probe that began before an
    /// action finished says nothing about the action's result.
    pub started: Option<Instant>,
    /// For an HTTPS probe, when the certificate the server presented expires
    /// (seconds since the Unix epoch): exported as a metric, whatever the verdict.
    pub cert_expiry: Option<i64>,
}

impl Observation {
    /// A successful observation with a message.
    pub fn ok(latency: Duration, message: impl Into<String>) -> Self {
        Self::new(Outcome::Ok, latency, message)
    }

    /// A failed observation that counts towards the threshold.
    pub fn fail(latency: Duration, message: impl Into<String>) -> Self {
        Self::new(Outcome::Fail, latency, message)
    }

    /// The probe could not see.
    pub fn blind(latency: Duration, message: impl Into<String>) -> Self {
        Self::new(Outcome::Blind, latency, message)
    }

    fn new(outcome: Outcome, latency: Duration, message: impl Into<String>) -> Self {
        Self {
            outcome,
            latency,
            message: message.into(),
            evidence: Evidence::new(),
            urgency: Urgency::Normal,
            started: None,
            cert_expiry: None,
        }
    }

    /// Records when the probe began (builder style).
    pub fn started_at(mut self, started: Instant) -> Self {
        self.started = Some(started);
        self
    }

    /// Whether the probe began at or after `since` (unknown start: when it was handed in, `at`).
    pub fn began_since(&self, at: Instant, since: Instant) -> bool {
        self.started.unwrap_or(at) >= since
    }

    /// Sets the urgency (builder style).
    pub fn with_urgency(mut self, urgency: Urgency) -> Self {
        self.urgency = urgency;
        self
    }

    /// Adds one evidence entry (builder style).
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.evidence.insert(key.to_owned(), value.into());
        self
    }
}
