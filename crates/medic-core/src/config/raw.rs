//! The config as written: serde structs mirroring the TOML, unknown keys
//! rejected, spans kept where validation needs to point.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// A duration written as "10s", "5m", "1h30m", "250ms", at most
/// [`crate::duration::MAX`]. `Dur<true>` ([`PosDur`])
/// also rejects zero, for timers that would otherwise spin or always fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dur<const POSITIVE: bool = false>(pub Duration);

/// A duration that must be greater than zero.
pub(crate) type PosDur = Dur<true>;

impl<const POSITIVE: bool> Dur<POSITIVE> {
    /// The value, or `default` when the key was not written.
    pub fn or(value: Option<Self>, default: Duration) -> Duration {
        value.map_or(default, |d| d.0)
    }
}

impl<'de, const POSITIVE: bool> Deserialize<'de> for Dur<POSITIVE> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<const P: bool>;
        impl<const P: bool> serde::de::Visitor<'_> for Visitor<P> {
            type Value = Dur<P>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration with a unit, such as \"10s\", \"5m\" or \"250ms\"")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                let duration = crate::duration::parse(text).map_err(E::custom)?;
                if P && duration.is_zero() {
                    return Err(E::custom(format!(
                        "this duration must be greater than zero, not \"{text}\""
                    )));
                }
                Ok(Dur(duration))
            }
        }
        d.deserialize_any(Visitor::<POSITIVE>)
    }
}

/// A size in bytes: an integer, or "64KiB", "1MiB", "1MB".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a size in bytes, such as 65536, \"64KiB\" or \"1MiB\"")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(ByteSize(n))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
                u64::try_from(n)
                    .map(ByteSize)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(n), &self))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                parse_size(text).map(ByteSize).ok_or_else(|| {
                    E::custom(format!(
                        "invalid size \"{text}\" (write e.g. 65536, \"64KiB\", \"1MiB\")"
                    ))
                })
            }
        }
        d.deserialize_any(Visitor)
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

/// One label selector or several: `"k=v"` or `["a", "b=c"]`.
#[derive(Debug, Clone)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a label selector \"key=value\" (or \"key\"), or an array of them")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(OneOrMany::One(text.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut labels = Vec::new();
                while let Some(label) = seq.next_element::<String>()? {
                    labels.push(label);
                }
                Ok(OneOrMany::Many(labels))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Any TOML value, as JSON (`json_equals`); a TOML date-time becomes its RFC 3339 string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JsonValue(pub serde_json::Value);

impl<'de> Deserialize<'de> for JsonValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        fn convert(value: toml::Value) -> serde_json::Value {
            match value {
                toml::Value::String(s) => s.into(),
                toml::Value::Integer(i) => i.into(),
                toml::Value::Float(f) => f.into(),
                toml::Value::Boolean(b) => b.into(),
                toml::Value::Datetime(dt) => dt.to_string().into(),
                toml::Value::Array(items) => items.into_iter().map(convert).collect(),
                toml::Value::Table(table) => table
                    .into_iter()
                    .map(|(k, v)| (k, convert(v)))
                    .collect::<serde_json::Map<_, _>>()
                    .into(),
            }
        }
        toml::Value::deserialize(d).map(|v| JsonValue(convert(v)))
    }
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
    /// The socket's permission bits, octal ("0600").
    pub control_socket_mode: Option<Spanned<String>>,
    /// The socket's owner (a user name); medic must be root to change it.
    pub control_socket_owner: Option<String>,
    /// The socket's group (a group name).
    pub control_socket_group: Option<String>,
    /// A TCP address for the control API; off unless set, and then only with a token.
    pub control_listen: Option<Spanned<String>>,
    /// The file holding the bearer token that TCP control requires.
    pub control_token_file: Option<String>,
    /// Metrics listen address; "" turns metrics off.
    pub metrics_listen: Option<String>,
    /// TLS and basic auth for the HTTP listeners (Prometheus exporter-toolkit YAML).
    pub web_config: Option<String>,
    /// The status page's own address ("" turns the page off); unset: on metrics_listen.
    pub status_listen: Option<String>,
    /// The URL people reach medic's status page at (alerts link to it).
    pub external_url: Option<Spanned<String>>,
    /// Docker engine address (unix:// or tcp://).
    pub docker_host: Option<String>,
    /// How often containers are listed and inspected besides the event stream.
    pub reconcile_interval: Option<PosDur>,
    /// How long shutdown waits for running actions.
    pub shutdown_grace: Option<Dur>,
    /// Blindness longer than this raises one critical alert.
    pub blind_alert_after: Option<Dur>,
    /// Most restarts and rollbacks running at once.
    pub max_concurrent_actions: Option<Spanned<usize>>,
    /// Most probes running at once.
    pub max_concurrent_probes: Option<Spanned<usize>>,
    /// Size past which the recovery log and alerts file rotate ("64MiB").
    pub journal_max_size: Option<Spanned<String>>,
    /// Rotated files kept of each.
    pub journal_keep: Option<Spanned<usize>>,
    /// Share of all services whose failing together within `storm_window` is a storm.
    pub storm_share: Option<Spanned<f64>>,
    /// How close together failures must come to count as one storm.
    pub storm_window: Option<PosDur>,
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
    "flap_limit",
    "flap_window",
    "flap_backoff",
    "backoff",
    "backoff_max",
    "recover_timeout",
    "verify_interval",
    "replace_grace",
    "stop_timeout",
    "on_stop",
    "slo",
];

/// `[defaults]`, and the same keys on a service.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    /// Time between probe runs.
    pub interval: Option<PosDur>,
    /// Longest one probe run may take.
    pub timeout: Option<PosDur>,
    /// Consecutive failures that open an incident.
    pub failure_threshold: Option<Spanned<u32>>,
    /// Consecutive successes that close one without action.
    pub success_threshold: Option<Spanned<u32>>,
    /// Grace after start.
    pub start_period: Option<Dur>,
    /// Failed restarts per incident before rollback.
    pub max_attempts: Option<Spanned<u32>>,
    /// Deprecated: read as `flap_window` when that is not set.
    pub attempt_window: Option<PosDur>,
    /// Incidents within `flap_window` that make the next one go straight to rollback.
    pub flap_limit: Option<Spanned<u32>>,
    /// The window incidents are counted in for flapping.
    pub flap_window: Option<PosDur>,
    /// Flapping with nothing to roll back to: the first delay before a restart; doubles.
    pub flap_backoff: Option<Dur>,
    /// Delay before the second attempt; doubles after.
    pub backoff: Option<Dur>,
    /// Cap of one backoff delay.
    pub backoff_max: Option<Dur>,
    /// Time an action has to show fresh successes.
    pub recover_timeout: Option<PosDur>,
    /// Probe cadence while verifying.
    pub verify_interval: Option<PosDur>,
    /// Wait for a replacement of a removed container before restoring it.
    pub replace_grace: Option<Dur>,
    /// Docker stop timeout on restart.
    pub stop_timeout: Option<Dur>,
    /// "restore" (default) or "leave" a stopped container.
    pub on_stop: Option<Spanned<String>>,
    /// Availability objective, e.g. 0.999.
    pub slo: Option<Spanned<f64>>,
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
            flap_limit: self
                .flap_limit
                .clone()
                .or_else(|| defaults.flap_limit.clone()),
            flap_window: self.flap_window.or(defaults.flap_window),
            flap_backoff: self.flap_backoff.or(defaults.flap_backoff),
            backoff: self.backoff.or(defaults.backoff),
            backoff_max: self.backoff_max.or(defaults.backoff_max),
            recover_timeout: self.recover_timeout.or(defaults.recover_timeout),
            verify_interval: self.verify_interval.or(defaults.verify_interval),
            replace_grace: self.replace_grace.or(defaults.replace_grace),
            stop_timeout: self.stop_timeout.or(defaults.stop_timeout),
            on_stop: self.on_stop.clone().or_else(|| defaults.on_stop.clone()),
            slo: self.slo.clone().or_else(|| defaults.slo.clone()),
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
    /// A systemd unit target.
    pub systemd_unit: Option<Spanned<RawSystemdUnit>>,
    /// Services that must be healthy before this one is restarted.
    #[serde(default)]
    pub depends_on: Vec<Spanned<String>>,
    /// Labels copied to the service's metrics and alerts (Prometheus label names).
    #[serde(default)]
    pub labels: BTreeMap<String, Spanned<String>>,
    /// The probes (`[[service.probe]]`), decoded one by one apart from the rest so
    /// that every broken probe is reported.
    #[serde(skip)]
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
    /// "exited_ok" (default) or "running".
    pub expect: Option<Spanned<String>>,
}

/// `systemd_unit = { … }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSystemdUnit {
    /// One unit's name (`api.service`).
    pub name: Option<String>,
    /// Every unit whose name matches this shell-style pattern (`app-*.service`).
    pub pattern: Option<String>,
    /// The user's manager instead of the system's.
    pub user: Option<bool>,
    /// "exited_ok" (default) or "running".
    pub expect: Option<Spanned<String>>,
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
    pub timeout: Option<PosDur>,
}

/// One `[[service.probe]]`; which fields apply depends on `kind`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProbe {
    /// http, tcp, exec, container or launch_agent.
    pub kind: Spanned<String>,
    /// Overrides the service interval.
    pub interval: Option<PosDur>,
    /// Overrides the service timeout.
    pub timeout: Option<PosDur>,
    /// http: the URL.
    pub url: Option<Spanned<String>>,
    /// http: the method.
    pub method: Option<Spanned<String>>,
    /// http: request headers.
    pub headers: Option<Spanned<BTreeMap<String, String>>>,
    /// http: accepted status codes.
    pub expect_status: Option<Spanned<Vec<u16>>>,
    /// http: text the body must contain.
    pub body_contains: Option<String>,
    /// http: regex the body must match.
    pub body_regex: Option<Spanned<String>>,
    /// http: JSON pointer into the body.
    pub json_pointer: Option<Spanned<String>>,
    /// http: the value expected at json_pointer.
    pub json_equals: Option<JsonValue>,
    /// http: slower than this fails.
    pub max_latency: Option<PosDur>,
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

/// One `[[alert]]` sink as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlert {
    /// Unique sink name (`medic alert test NAME`, the outbox, `medic alerts`).
    pub name: Spanned<String>,
    /// `webhook`, `slack`, `alertmanager` or `exec`.
    pub kind: Spanned<String>,
    /// Where to POST (webhook, slack, alertmanager base URL); may hold `${ENV}`.
    pub url: Option<Spanned<String>>,
    /// Alertmanager: every Alertmanager of a cluster (each gets every alert); may hold `${ENV}`.
    pub urls: Option<Spanned<Vec<Spanned<String>>>>,
    /// Extra request headers; values may hold `${ENV}`.
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    /// Webhook: key for the `X-Medic-Signature: sha256=<hex>` HMAC of the body; may hold `${ENV}`.
    pub hmac_secret: Option<Spanned<String>>,
    /// Exec: argv that gets the alert JSON on stdin; elements may hold `${ENV}`.
    pub command: Option<Spanned<Vec<Spanned<String>>>>,
    /// Lowest severity sent: `info`, `warning` (default) or `critical`.
    pub min_severity: Option<Spanned<String>>,
    /// Only alerts of these services (and their instances); all when absent.
    pub services: Option<Vec<Spanned<String>>>,
    /// Per delivery attempt.
    pub timeout: Option<PosDur>,
    /// Most alerts waiting for this sink; more are dropped (and recorded so).
    pub queue: Option<Spanned<usize>>,
    /// First retry delay; doubles per failed attempt.
    pub retry_backoff: Option<PosDur>,
    /// Longest retry delay.
    pub retry_backoff_max: Option<PosDur>,
    /// Alertmanager: how often firing alerts are posted again.
    pub repeat_interval: Option<PosDur>,
}
