//! The config as written: serde structs mirroring the TOML, unknown keys
//! rejected, spans kept where validation needs to point.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// A duration written as "10s", "5m", "1h30m", "250ms".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim())
            .map(Dur)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid duration \"{text}\": {e} (write e.g. \"10s\", \"5m\", \"250ms\")"
                ))
            })
    }
}

/// A size in bytes: an integer, or "64KiB", "1MiB", "1MB".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(text) => parse_size(&text).map(ByteSize).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid size \"{text}\" (write e.g. 65536, \"64KiB\", \"1MiB\")"
                ))
            }),
        }
    }
}

fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// One label selector or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// `[medic]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSettings {
    /// Where state.json and, unless set one by one, the logs live.
    pub state_dir: Option<String>,
    /// The recovery log path.
    pub recovery_log: Option<String>,
    /// The critical alerts file path.
    pub alerts_file: Option<String>,
    /// The control API's unix socket.
    pub control_socket: Option<String>,
    /// Metrics listen address; "" turns metrics off.
    pub metrics_listen: Option<String>,
    /// Docker engine address (unix:// or tcp://).
    pub docker_host: Option<String>,
    /// How often containers are listed and inspected besides the event stream.
    pub reconcile_interval: Option<Dur>,
    /// How long shutdown waits for running actions.
    pub shutdown_grace: Option<Dur>,
    /// Blindness longer than this raises one critical alert.
    pub blind_alert_after: Option<Dur>,
    /// Most restarts and rollbacks running at once.
    pub max_concurrent_actions: Option<Spanned<usize>>,
}

/// Keys that may be set in `[defaults]` and per service.
pub(crate) const POLICY_KEYS: &[&str] = &[
    "interval",
    "timeout",
    "failure_threshold",
    "success_threshold",
    "start_period",
    "max_attempts",
    "attempt_window",
    "backoff",
    "backoff_max",
    "recover_timeout",
    "verify_interval",
    "replace_grace",
    "stop_timeout",
    "on_stop",
];

/// `[defaults]`, and the same keys on a service.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    /// Time between probe runs.
    pub interval: Option<Dur>,
    /// Longest one probe run may take.
    pub timeout: Option<Dur>,
    /// Consecutive failures that open an incident.
    pub failure_threshold: Option<Spanned<u32>>,
    /// Consecutive successes that close one without action.
    pub success_threshold: Option<Spanned<u32>>,
    /// Grace after start.
    pub start_period: Option<Dur>,
    /// Restarts inside the attempt window before rollback.
    pub max_attempts: Option<Spanned<u32>>,
    /// The window restarts are counted in.
    pub attempt_window: Option<Dur>,
    /// Delay before the second attempt; doubles after.
    pub backoff: Option<Dur>,
    /// Cap of one backoff delay.
    pub backoff_max: Option<Dur>,
    /// Time an action has to show fresh successes.
    pub recover_timeout: Option<Dur>,
    /// Probe cadence while verifying.
    pub verify_interval: Option<Dur>,
    /// Wait for a replacement of a removed container before restoring it.
    pub replace_grace: Option<Dur>,
    /// Docker stop timeout on restart.
    pub stop_timeout: Option<Dur>,
    /// "restore" (default) or "leave" a stopped container.
    pub on_stop: Option<Spanned<String>>,
}

impl RawPolicy {
    /// Per-service values over the defaults.
    pub fn over(&self, defaults: &RawPolicy) -> RawPolicy {
        RawPolicy {
            interval: self.interval.or(defaults.interval),
            timeout: self.timeout.or(defaults.timeout),
            failure_threshold: self
                .failure_threshold
                .clone()
                .or_else(|| defaults.failure_threshold.clone()),
            success_threshold: self
                .success_threshold
                .clone()
                .or_else(|| defaults.success_threshold.clone()),
            start_period: self.start_period.or(defaults.start_period),
            max_attempts: self
                .max_attempts
                .clone()
                .or_else(|| defaults.max_attempts.clone()),
            attempt_window: self.attempt_window.or(defaults.attempt_window),
            backoff: self.backoff.or(defaults.backoff),
            backoff_max: self.backoff_max.or(defaults.backoff_max),
            recover_timeout: self.recover_timeout.or(defaults.recover_timeout),
            verify_interval: self.verify_interval.or(defaults.verify_interval),
            replace_grace: self.replace_grace.or(defaults.replace_grace),
            stop_timeout: self.stop_timeout.or(defaults.stop_timeout),
            on_stop: self.on_stop.clone().or_else(|| defaults.on_stop.clone()),
        }
    }
}

/// One `[[service]]` without its policy keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    /// Unique name.
    pub name: Spanned<String>,
    /// A container target.
    pub container: Option<Spanned<RawContainer>>,
    /// A launchd job target.
    pub launch_agent: Option<Spanned<RawLaunchAgent>>,
    /// A command target.
    pub command: Option<Spanned<RawCommand>>,
    /// Services that must be healthy before this one is restarted.
    #[serde(default)]
    pub depends_on: Vec<Spanned<String>>,
    /// The probes.
    #[serde(default)]
    pub probe: Vec<Spanned<RawProbe>>,
}

/// `container = { … }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawContainer {
    /// Exact container name.
    pub name: Option<String>,
    /// Label selector(s): "key" or "key=value".
    pub label: Option<OneOrMany>,
    /// com.docker.compose.project
    pub compose_project: Option<String>,
    /// com.docker.compose.service
    pub compose_service: Option<String>,
    /// Docker stop timeout on restart.
    pub stop_timeout: Option<Dur>,
    /// "restore" or "leave".
    pub on_stop: Option<Spanned<String>>,
}

/// `launch_agent = { … }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLaunchAgent {
    /// One job's label.
    pub label: Option<String>,
    /// Every job whose label starts with this.
    pub label_prefix: Option<String>,
    /// gui/<uid>, user/<uid> or system.
    pub domain: Option<String>,
    /// The job's plist.
    pub plist: Option<String>,
}

/// `command = { … }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCommand {
    /// argv that restarts the service.
    pub restart: Option<Spanned<Vec<String>>>,
    /// argv that rolls it back.
    pub rollback: Option<Spanned<Vec<String>>>,
    /// Longest a command may run.
    pub timeout: Option<Dur>,
}

/// One `[[service.probe]]`; which fields apply depends on `kind`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProbe {
    /// http, tcp, exec, container or launch_agent.
    pub kind: Spanned<String>,
    /// Overrides the service interval.
    pub interval: Option<Dur>,
    /// Overrides the service timeout.
    pub timeout: Option<Dur>,
    /// http: the URL.
    pub url: Option<Spanned<String>>,
    /// http: the method.
    pub method: Option<String>,
    /// http: request headers.
    pub headers: Option<BTreeMap<String, String>>,
    /// http: accepted status codes.
    pub expect_status: Option<Vec<u16>>,
    /// http: text the body must contain.
    pub body_contains: Option<String>,
    /// http: regex the body must match.
    pub body_regex: Option<Spanned<String>>,
    /// http: JSON pointer into the body.
    pub json_pointer: Option<Spanned<String>>,
    /// http: the value expected at json_pointer.
    pub json_equals: Option<serde_json::Value>,
    /// http: slower than this fails.
    pub max_latency: Option<Dur>,
    /// http: verify TLS certificates.
    pub tls_verify: Option<bool>,
    /// http: extra CA certificate (PEM).
    pub ca_file: Option<String>,
    /// http: follow redirects.
    pub follow_redirects: Option<bool>,
    /// http: most bytes of body read.
    pub max_body: Option<ByteSize>,
    /// tcp: host:port.
    pub address: Option<Spanned<String>>,
    /// exec: argv.
    pub command: Option<Spanned<Vec<String>>>,
    /// exec: the exit code that means healthy.
    pub expect_exit: Option<i32>,
    /// exec: most output bytes kept.
    pub max_output: Option<ByteSize>,
}
