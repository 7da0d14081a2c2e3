//! Configuration: TOML text in, a validated [`Config`] or every error out.
//! Pure: the shell reads the file and passes its text and name.

mod alerts;
mod error;
mod model;
mod raw;
mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

pub use alerts::Env;
use error::Errors;
pub use error::{ConfigError, ConfigErrors};
pub use model::*;
use raw::{Dur, OneOrMany, POLICY_KEYS, RawPolicy, RawProbe, RawService, RawSettings};

use crate::policy::{Policy, ProbeTiming};

/// The embedded default job: every container labelled `medic.enable=true`.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// The keys of `RawService`; `probe` and the policy keys are decoded apart.
const SERVICE_KEYS: &[&str] = &[
    "name",
    "container",
    "launch_agent",
    "command",
    "depends_on",
    "labels",
];
/// Label names medic sets itself (or Prometheus does), so a service's `labels` cannot.
const RESERVED_LABELS: &[&str] = &[
    "service",
    "instance_name",
    "instance",
    "job",
    "alertname",
    "severity",
    "kind",
    "host",
    "incident",
    "probe",
    "index",
    "outcome",
    "state",
    "health",
    "window",
    "sink",
    "reason",
    "le",
];
const PROBE_KINDS: &str = "http, tcp, exec, container, launch_agent";

/// The embedded default job, validated.
pub fn default_config() -> Config {
    // Invariant: DEFAULT_CONFIG is tested to parse (tests::default_config_parses).
    parse(DEFAULT_CONFIG, "<default>")
        .unwrap_or_else(|e| panic!("embedded default config is invalid:\n{e}"))
}

/// Parses and validates a config; `origin` names the file in error messages.
/// No environment: a `${NAME}` in an `[[alert]]` table is an error (see [`parse_with_env`]).
pub fn parse(source: &str, origin: &str) -> Result<Config, ConfigErrors> {
    parse_with_env(source, origin, &|_| None)
}

/// Like [`parse`], with `env` resolving the `${NAME}`s of `[[alert]]` tables
/// (the shell passes the process environment).
pub fn parse_with_env(source: &str, origin: &str, env: Env<'_>) -> Result<Config, ConfigErrors> {
    let mut errors = Errors::new(source);
    let (document, syntax) = DeTable::parse_recoverable(source);
    for error in &syntax {
        errors.toml(error);
    }
    if !syntax.is_empty() {
        return Err(errors.finish(origin));
    }
    let document = document.into_inner();
    let mut settings = RawSettings::default();
    let mut defaults = RawPolicy::default();
    let mut services = (Vec::new(), BTreeSet::new());
    let mut raw_alerts = Vec::new();
    let mut raw_report = None;
    for (key, value) in document {
        let span = key.span();
        match key.get_ref().as_ref() {
            "medic" => settings = lenient(value, &mut errors),
            "defaults" => {
                if let DeValue::Table(table) = value.get_ref() {
                    warn_deprecated(table, &mut errors);
                }
                defaults = lenient(value, &mut errors);
            }
            "service" => services = decode_services(value, &mut errors),
            "alert" => raw_alerts = alerts::decode(value, &mut errors),
            "report" => raw_report = report::decode(value, &mut errors),
            other => {
                let what = if matches!(value.get_ref(), DeValue::Table(_) | DeValue::Array(_)) {
                    "table"
                } else {
                    "key"
                };
                let hint =
                    error::suggest(other, &["medic", "defaults", "service", "alert", "report"])
                        .map_or_else(String::new, |h| format!("{h} "));
                errors.at(
                    span,
                    format!("unknown top-level {what} `{other}`"),
                    Some(format!(
                        "{hint}the top level has [medic], [defaults], [[service]], [[alert]] and [report]"
                    )),
                );
            }
        }
    }
    let medic = build_settings(settings, &mut errors);
    let (services, names) = services;
    let services = build_services(&services, &names, &defaults, &mut errors);
    let service_names: Vec<&str> = names.iter().map(String::as_str).collect();
    let alerts = alerts::build(raw_alerts, &service_names, env, &mut errors);
    let report = report::build(raw_report, &alerts, &mut errors);
    let warnings = errors.warnings(origin);
    errors.into_result(
        origin,
        Config {
            medic,
            services,
            alerts,
            report,
            warnings,
        },
    )
}

/// A warning at each deprecated key of a policy table (`[defaults]` or a service).
fn warn_deprecated(table: &DeTable<'_>, errors: &mut Errors) {
    for key in table.keys().filter(|k| k.get_ref() == "attempt_window") {
        errors.warn_at(
            key.span(),
            "`attempt_window` is deprecated: each incident gets `max_attempts` restarts; it is read as `flap_window` (incidents counted for flapping) unless that is set",
        );
    }
}

/// Decodes a table and reports every bad key in it; `None` when anything was
/// wrong, so that a half-read table causes no follow-on errors.
/// `widen`: see [`Errors::toml_in`].
fn decode<T: for<'de> Deserialize<'de>>(
    value: Spanned<DeValue<'_>>,
    errors: &mut Errors,
    widen: (&[&str], &[&str]),
) -> Option<T> {
    decode_lenient(value, errors, widen)
        .filter(|(_, complete)| *complete)
        .map(|(value, _)| value)
}

/// Decodes a table and reports every bad key in it, not only the first: serde
/// stops at the first error in a struct, so the key it points at is set aside
/// and the rest decoded again. Returns what decoded and whether that is all of
/// it. For tables of independent optional keys (`[medic]`, policy keys), where
/// the rest is still worth using: the bad keys fall back to their defaults.
fn decode_lenient<T: for<'de> Deserialize<'de>>(
    value: Spanned<DeValue<'_>>,
    errors: &mut Errors,
    widen: (&[&str], &[&str]),
) -> Option<(T, bool)> {
    let span = value.span();
    let mut table = match value.into_inner() {
        DeValue::Table(table) => table,
        other => {
            return T::deserialize(ValueDeserializer::from(Spanned::new(span, other)))
                .map_err(|e| errors.toml_in(&e, widen.0, widen.1))
                .ok()
                .map(|value| (value, true));
        }
    };
    let mut set_aside: Vec<String> = Vec::new();
    loop {
        let attempt = Spanned::new(span.clone(), DeValue::Table(table.clone()));
        let error = match T::deserialize(ValueDeserializer::from(attempt)) {
            Ok(value) => return Some((value, set_aside.is_empty())),
            Err(error) => error,
        };
        if error::missing_key(error.message()).is_some_and(|k| set_aside.iter().any(|s| s == k)) {
            return None; // reported already, as whatever was wrong with it
        }
        errors.toml_in(&error, widen.0, widen.1);
        let within = |outer: Range<usize>, inner: &Range<usize>| {
            outer.start <= inner.start && inner.end <= outer.end
        };
        let culprit = error.span().and_then(|at| {
            table
                .iter()
                .find(|(k, v)| within(k.span(), &at) || within(v.span(), &at))
                .map(|(k, _)| k.get_ref().to_string())
        });
        let key = culprit?; // no key to set aside: nothing more to learn from this table
        table.remove(key.as_str());
        set_aside.push(key);
    }
}

/// What decoded of a table of optional keys, defaults where it did not.
fn lenient<T: for<'de> Deserialize<'de> + Default>(
    value: Spanned<DeValue<'_>>,
    errors: &mut Errors,
) -> T {
    decode_lenient(value, errors, AS_IS).map_or_else(T::default, |(value, _)| value)
}

/// No extra keys: serde's list of a table's keys is complete.
const AS_IS: (&[&str], &[&str]) = (&[], &[]);

/// One decoded `[[service]]`: its policy keys apart from the rest.
struct ServiceEntry {
    service: RawService,
    policy: RawPolicy,
    /// `[[service.probe]]` tables written, including ones that failed to decode.
    written_probes: usize,
}

/// The services that decoded, and the names of all written, so that a service
/// with a typo in it does not also make every `depends_on` naming it an error.
fn decode_services(
    value: Spanned<DeValue<'_>>,
    errors: &mut Errors,
) -> (Vec<ServiceEntry>, BTreeSet<String>) {
    let span = value.span();
    let mut names = BTreeSet::new();
    let DeValue::Array(items) = value.into_inner() else {
        errors.at(
            span,
            "`service` must be an array of tables",
            Some("write [[service]]".into()),
        );
        return (Vec::new(), names);
    };
    let mut entries = Vec::new();
    for item in items {
        let span = item.span();
        let DeValue::Table(table) = item.into_inner() else {
            errors.at(
                span,
                "each `service` must be a table",
                Some("write [[service]]".into()),
            );
            continue;
        };
        if let Some(DeValue::String(name)) = table.get("name").map(Spanned::get_ref) {
            names.insert(name.to_string());
        }
        let (mut policy, mut rest, mut probes) = (DeTable::new(), DeTable::new(), None);
        for (key, value) in table {
            if POLICY_KEYS.contains(&key.get_ref().as_ref()) {
                policy.insert(key, value);
            } else if key.get_ref() == "probe" {
                probes = Some(value);
            } else {
                rest.insert(key, value);
            }
        }
        warn_deprecated(&policy, errors);
        let table = |t| Spanned::new(span.clone(), DeValue::Table(t));
        let more: Vec<&str> = std::iter::once("probe")
            .chain(POLICY_KEYS.iter().copied())
            .collect();
        let service = decode::<RawService>(table(rest), errors, (SERVICE_KEYS, &more));
        let policy = lenient::<RawPolicy>(table(policy), errors);
        let (probes, written_probes) =
            probes.map_or((Some(Vec::new()), 0), |p| decode_probes(p, errors));
        if let (Some(mut service), Some(probes)) = (service, probes) {
            service.probe = probes;
            entries.push(ServiceEntry {
                service,
                policy,
                written_probes,
            });
        }
    }
    (entries, names)
}

/// A service's `[[service.probe]]` tables, each decoded on its own; `None` when one failed.
fn decode_probes(
    value: Spanned<DeValue<'_>>,
    errors: &mut Errors,
) -> (Option<Vec<Spanned<RawProbe>>>, usize) {
    let span = value.span();
    let DeValue::Array(items) = value.into_inner() else {
        errors.at(
            span,
            "`probe` must be an array of tables",
            Some("write [[service.probe]]".into()),
        );
        return (None, 1);
    };
    let written = items.len();
    let mut probes = Some(Vec::new());
    for item in items {
        let span = item.span();
        match decode::<RawProbe>(item, errors, AS_IS) {
            Some(probe) => {
                if let Some(probes) = &mut probes {
                    probes.push(Spanned::new(span, probe));
                }
            }
            None => probes = None,
        }
    }
    (probes, written)
}

fn build_settings(raw: RawSettings, errors: &mut Errors) -> Settings {
    let max_concurrent_actions = at_least_one(
        raw.max_concurrent_actions,
        "max_concurrent_actions",
        4,
        errors,
    );
    let max_concurrent_probes = at_least_one(
        raw.max_concurrent_probes,
        "max_concurrent_probes",
        256,
        errors,
    );
    let state_dir = PathBuf::from(raw.state_dir.unwrap_or_else(|| "/var/lib/medic".into()));
    let mode = match raw.control_socket_mode {
        Some(mode) => match u32::from_str_radix(mode.get_ref(), 8) {
            Ok(bits) if bits <= 0o777 => bits,
            _ => {
                errors.at(
                    mode.span(),
                    "`control_socket_mode` must be octal permission bits",
                    Some("for example \"0600\" or \"0660\"".into()),
                );
                0o600
            }
        },
        None => 0o600,
    };
    let control_tcp = match (raw.control_listen, raw.control_token_file) {
        (Some(listen), Some(token_file)) => Some(TcpControl {
            listen: listen.into_inner(),
            token_file: PathBuf::from(token_file),
        }),
        (Some(listen), None) => {
            errors.at(
                listen.span(),
                "`control_listen` needs `control_token_file`",
                Some("TCP control always requires a bearer token: put one in a file only medic can read".into()),
            );
            None
        }
        (None, _) => None,
    };
    Settings {
        control_access: SocketAccess {
            mode,
            owner: raw.control_socket_owner,
            group: raw.control_socket_group,
        },
        control_tcp,
        recovery_log: raw
            .recovery_log
            .map_or_else(|| state_dir.join("recovery.jsonl"), PathBuf::from),
        alerts_file: raw
            .alerts_file
            .map_or_else(|| state_dir.join("alerts/critical.jsonl"), PathBuf::from),
        control_socket: PathBuf::from(
            raw.control_socket
                .unwrap_or_else(|| "/run/medic/control.sock".into()),
        ),
        metrics_listen: match raw.metrics_listen {
            Some(listen) if listen.is_empty() => None,
            Some(listen) => Some(listen),
            None => Some("127.0.0.1:9464".into()),
        },
        web_config: raw.web_config.map(PathBuf::from),
        status_listen: match raw.status_listen {
            None => StatusListen::WithMetrics,
            Some(listen) if listen.is_empty() => StatusListen::Off,
            Some(listen) => StatusListen::Own(listen),
        },
        external_url: raw.external_url.and_then(|url| {
            let text = url.get_ref();
            if text.starts_with("http://") || text.starts_with("https://") {
                Some(text.trim_end_matches('/').to_owned())
            } else {
                errors.at(
                    url.span(),
                    "`external_url` must start with http:// or https://",
                    Some("the address people open the status page at, e.g. \"https://host1.example:9464\"".into()),
                );
                None
            }
        }),
        docker_host: raw.docker_host,
        reconcile_interval: Dur::or(raw.reconcile_interval, Duration::from_secs(10)),
        shutdown_grace: Dur::or(raw.shutdown_grace, Duration::from_secs(4)),
        blind_alert_after: Dur::or(raw.blind_alert_after, Duration::from_secs(300)),
        max_concurrent_actions,
        max_concurrent_probes,
        journal_max_size: match raw.journal_max_size {
            Some(size) => parse_size(size.get_ref()).unwrap_or_else(|| {
                errors.at(
                    size.span(),
                    "`journal_max_size` must be a size of at least 1KiB",
                    Some("for example \"64MiB\", \"500KB\" or \"1GiB\"".into()),
                );
                DEFAULT_JOURNAL_MAX_SIZE
            }),
            None => DEFAULT_JOURNAL_MAX_SIZE,
        },
        journal_keep: at_least_one(raw.journal_keep, "journal_keep", 5, errors),
        storm: crate::storm::StormRule {
            share: match raw.storm_share {
                Some(share) if !(*share.get_ref() > 0.0 && *share.get_ref() <= 1.0) => {
                    errors.at(
                        share.span(),
                        "`storm_share` must be a share of the services above 0 and at most 1",
                        Some("for example 0.2: a fifth of the services".into()),
                    );
                    DEFAULT_STORM_SHARE
                }
                Some(share) => *share.get_ref(),
                None => DEFAULT_STORM_SHARE,
            },
            window: Dur::or(raw.storm_window, Duration::from_secs(60)),
        },
        state_dir,
    }
}

/// Journals rotate past 64 MiB by default: with 5 kept, at most 384 MiB each.
const DEFAULT_JOURNAL_MAX_SIZE: u64 = 64 * 1024 * 1024;
/// A fifth of the services failing within the window is a storm by default.
const DEFAULT_STORM_SHARE: f64 = 0.2;

/// "64MiB", "500KB", "1GiB", "4096" (bytes) → bytes; at least 1 KiB.
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "KiB" => 1024,
        "MB" => 1000 * 1000,
        "MiB" => 1024 * 1024,
        "GB" => 1000 * 1000 * 1000,
        "GiB" => 1024 * 1024 * 1024,
        _ => return None,
    };
    let bytes = digits.parse::<u64>().ok()?.checked_mul(factor)?;
    (bytes >= 1024).then_some(bytes)
}

/// A count that must be at least 1, or `default` when unset.
fn at_least_one(
    raw: Option<Spanned<usize>>,
    key: &str,
    default: usize,
    errors: &mut Errors,
) -> usize {
    match raw {
        Some(n) if *n.get_ref() == 0 => {
            errors.at(
                n.span(),
                format!("`{key}` must be at least 1"),
                Some(format!("the default is {default}")),
            );
            default
        }
        Some(n) => *n.get_ref(),
        None => default,
    }
}

fn build_services(
    entries: &[ServiceEntry],
    names: &BTreeSet<String>,
    defaults: &RawPolicy,
    errors: &mut Errors,
) -> Vec<Service> {
    let mut seen: BTreeMap<&str, Range<usize>> = BTreeMap::new();
    for entry in entries {
        let name = &entry.service.name;
        if let Some(first) = seen.get(name.get_ref().as_str()) {
            let (line, _) = error::position(errors.source(), first.start);
            errors.at(
                name.span(),
                format!("duplicate service name `{}`", name.get_ref()),
                Some(format!(
                    "the first `{}` is on line {line}; names must be unique",
                    name.get_ref()
                )),
            );
        } else {
            seen.insert(name.get_ref(), name.span());
        }
    }
    let services: Vec<Service> = entries
        .iter()
        .filter_map(|entry| build_service(entry, defaults, names, errors))
        .collect();
    check_cycles(entries, errors);
    services
}

fn build_service(
    entry: &ServiceEntry,
    defaults: &RawPolicy,
    names: &BTreeSet<String>,
    errors: &mut Errors,
) -> Option<Service> {
    let raw = &entry.service;
    let name = raw.name.get_ref().clone();
    if name.is_empty() || name.contains('/') {
        errors.at(
            raw.name.span(),
            "a service name must be non-empty and contain no `/`",
            None,
        );
    }
    let policy = entry.policy.over(defaults);
    let target = build_target(raw, &policy, errors);
    for dependency in &raw.depends_on {
        if dependency.get_ref() == &name {
            errors.at(
                dependency.span(),
                format!("service `{name}` depends on itself"),
                None,
            );
        } else if !names.contains(dependency.get_ref()) {
            errors.at(
                dependency.span(),
                format!(
                    "`depends_on` names an unknown service `{}`",
                    dependency.get_ref()
                ),
                Some(format!(
                    "known services: {}",
                    names
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
        }
    }
    let interval = Dur::or(policy.interval, Duration::from_secs(10));
    // Unwritten, the timeout follows each probe's interval (see `default_timeout`).
    let timeout = policy.timeout.map(|t| t.0);
    let mut probes = Vec::new();
    let implied = match (&target, &raw.container, &raw.launch_agent) {
        (Some(Target::Container(_)), Some(c), _) => {
            Some(("container", ProbeKind::Container, c.span()))
        }
        (Some(Target::LaunchAgent(_)), _, Some(a)) => {
            Some(("launch_agent", ProbeKind::LaunchAgent, a.span()))
        }
        _ => None,
    };
    if let Some((kind, probe, span)) = implied
        && !raw.probe.iter().any(|p| p.get_ref().kind.get_ref() == kind)
    {
        let timeout = timeout.unwrap_or_else(|| default_timeout(interval));
        check_timing(
            interval,
            timeout,
            span,
            &format!("the implied {kind} probe"),
            errors,
        );
        probes.push(Probe {
            interval,
            timeout,
            kind: probe,
        });
    }
    for probe in &raw.probe {
        if let Some(probe) = build_probe(probe, &target, interval, timeout, errors) {
            probes.push(probe);
        }
    }
    if raw.container.is_none() && raw.launch_agent.is_none() && entry.written_probes == 0 {
        errors.at(
            raw.name.span(),
            format!("service `{name}` has nothing to observe"),
            Some("add a [[service.probe]], or a container / launch_agent target (which implies its probe)".into()),
        );
    }
    let slo = match &policy.slo {
        Some(slo) if !(*slo.get_ref() > 0.0 && *slo.get_ref() < 1.0) => {
            errors.at(
                slo.span(),
                "`slo` must be between 0 and 1",
                Some("e.g. 0.999 for 99.9 %".into()),
            );
            0.999
        }
        Some(slo) => *slo.get_ref(),
        None => 0.999,
    };
    let policy = build_policy(&policy, &target, &probes, errors);
    // Kept for the daemon's life: no room for four probes where there is one.
    probes.shrink_to_fit();
    let labels = raw
        .labels
        .iter()
        .filter(|(key, value)| {
            let valid = is_label_name(key) && !RESERVED_LABELS.contains(&key.as_str());
            if !valid {
                errors.at(
                    value.span(),
                    format!("`{key}` cannot be a label name"),
                    Some(format!(
                        "Prometheus label names match [a-zA-Z_][a-zA-Z0-9_]*, do not start with __, and medic sets these itself: {}",
                        RESERVED_LABELS.join(", ")
                    )),
                );
            }
            valid
        })
        .map(|(key, value)| (key.clone(), value.get_ref().clone()))
        .collect();
    Some(Service {
        labels,
        slo,
        name,
        target,
        probes,
        policy: Arc::new(policy),
        depends_on: raw.depends_on.iter().map(|d| d.get_ref().clone()).collect(),
    })
}

fn build_policy(
    raw: &RawPolicy,
    target: &Option<Target>,
    probes: &[Probe],
    errors: &mut Errors,
) -> Policy {
    let defaults = Policy::default();
    let mut positive = |value: &Option<Spanned<u32>>, key: &str, default: u32| match value {
        Some(v) if *v.get_ref() == 0 => {
            errors.at(
                v.span(),
                format!("`{key}` must be at least 1"),
                Some(format!("the default is {default}")),
            );
            default
        }
        Some(v) => *v.get_ref(),
        None => default,
    };
    let failure_threshold = positive(
        &raw.failure_threshold,
        "failure_threshold",
        defaults.failure_threshold,
    );
    let success_threshold = positive(
        &raw.success_threshold,
        "success_threshold",
        defaults.success_threshold,
    );
    let max_attempts = positive(&raw.max_attempts, "max_attempts", defaults.max_attempts);
    Policy {
        failure_threshold,
        success_threshold,
        max_attempts,
        start_period: Dur::or(raw.start_period, defaults.start_period),
        flap_limit: positive(&raw.flap_limit, "flap_limit", defaults.flap_limit),
        // `attempt_window` (deprecated) counted restarts across incidents; the
        // nearest meaning left is the window in which incidents count as flapping.
        flap_window: Dur::or(raw.flap_window.or(raw.attempt_window), defaults.flap_window),
        flap_backoff: Dur::or(raw.flap_backoff, defaults.flap_backoff),
        backoff_base: Dur::or(raw.backoff, defaults.backoff_base),
        backoff_max: Dur::or(raw.backoff_max, defaults.backoff_max),
        recover_timeout: Dur::or(raw.recover_timeout, defaults.recover_timeout),
        verify_interval: Dur::or(raw.verify_interval, defaults.verify_interval),
        replace_grace: Dur::or(raw.replace_grace, defaults.replace_grace),
        // A command target's own timeout ends its action first; 30 s for the kill and the report.
        action_timeout: match target {
            Some(Target::Command(c)) => c.timeout.saturating_add(Duration::from_secs(30)),
            _ => defaults.action_timeout,
        },
        can_restart: target.is_some(),
        can_rollback: match target {
            Some(Target::Container(_) | Target::LaunchAgent(_)) => true,
            Some(Target::Command(c)) => c.rollback.is_some(),
            None => false,
        },
        probes: probes
            .iter()
            .map(|p| ProbeTiming {
                interval: p.interval,
                timeout: p.timeout,
            })
            .collect(),
    }
}

fn build_target(raw: &RawService, policy: &RawPolicy, errors: &mut Errors) -> Option<Target> {
    let mut given = [
        raw.container.as_ref().map(|t| ("container", t.span())),
        raw.launch_agent
            .as_ref()
            .map(|t| ("launch_agent", t.span())),
        raw.command.as_ref().map(|t| ("command", t.span())),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    given.sort_by_key(|(_, span)| span.start);
    if let [(first, _), (second, span), ..] = given.as_slice() {
        errors.at(
            span.clone(),
            format!(
                "service `{}` has more than one target: `{first}` and `{second}`",
                raw.name.get_ref()
            ),
            Some("a service acts on exactly one of container / launch_agent / command (or none: watch only); split it into two services".into()),
        );
        return None;
    }
    if let Some(container) = &raw.container {
        let c = container.get_ref();
        let selector = match (&c.name, &c.label, &c.compose_project, &c.compose_service) {
            (Some(name), None, None, None) => ContainerSelector::Name(name.clone()),
            (None, Some(labels), None, None) => {
                let labels = match labels {
                    OneOrMany::One(l) => vec![l.clone()],
                    OneOrMany::Many(l) => l.clone(),
                };
                if labels.is_empty()
                    || labels
                        .iter()
                        .any(|l| l.split('=').next().is_none_or(str::is_empty))
                {
                    errors.at(
                        container.span(),
                        "a container `label` selector needs a non-empty key",
                        Some(
                            "write label = \"key=value\", label = \"key\" or an array of them"
                                .into(),
                        ),
                    );
                    return None;
                }
                ContainerSelector::Labels(
                    labels
                        .iter()
                        .map(|l| match l.split_once('=') {
                            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                            None => (l.clone(), None),
                        })
                        .collect(),
                )
            }
            (None, None, Some(project), Some(service)) => ContainerSelector::Compose {
                project: project.clone(),
                service: service.clone(),
            },
            _ => {
                errors.at(
                    container.span(),
                    "a container target selects by exactly one of `name`, `label`, or `compose_project` + `compose_service`",
                    Some("e.g. container = { name = \"app-web-1\" }".into()),
                );
                return None;
            }
        };
        let on_stop = c.on_stop.as_ref().or(policy.on_stop.as_ref());
        let on_stop = match on_stop.map(|s| (s.get_ref().as_str(), s.span())) {
            None | Some(("restore", _)) => OnStop::Restore,
            Some(("leave", _)) => OnStop::Leave,
            Some((other, span)) => {
                errors.at(
                    span,
                    format!("unknown on_stop `{other}`"),
                    Some("use \"restore\" or \"leave\"".into()),
                );
                OnStop::Restore
            }
        };
        return Some(Target::Container(ContainerTarget {
            selector,
            stop_timeout: Dur::or(
                c.stop_timeout.or(policy.stop_timeout),
                Duration::from_secs(10),
            ),
            on_stop,
        }));
    }
    if let Some(agent) = &raw.launch_agent {
        let a = agent.get_ref();
        let selector = match (&a.label, &a.label_prefix) {
            (Some(label), None) => LabelSelector::Label(label.clone()),
            (None, Some(prefix)) => LabelSelector::Prefix(prefix.clone()),
            _ => {
                errors.at(
                    agent.span(),
                    "a launch_agent target needs exactly one of `label` or `label_prefix`",
                    None,
                );
                return None;
            }
        };
        return Some(Target::LaunchAgent(LaunchAgentTarget {
            selector,
            domain: a.domain.clone(),
            plist: a.plist.as_ref().map(PathBuf::from),
        }));
    }
    if let Some(command) = &raw.command {
        let c = command.get_ref();
        let restart = match &c.restart {
            Some(argv) if !argv.get_ref().is_empty() => argv.get_ref().clone(),
            Some(argv) => {
                errors.at(
                    argv.span(),
                    "`restart` is an empty command",
                    Some("write an argv array, e.g. [\"systemctl\", \"restart\", \"api\"]".into()),
                );
                return None;
            }
            None => {
                let what = if c.rollback.is_some() {
                    "has a rollback but no restart"
                } else {
                    "has no restart"
                };
                errors.at(
                    command.span(),
                    format!("command target {what}"),
                    Some("add restart = [\"argv\", …]; rollback comes after restarts".into()),
                );
                return None;
            }
        };
        if let Some(rollback) = &c.rollback
            && rollback.get_ref().is_empty()
        {
            errors.at(
                rollback.span(),
                "`rollback` is an empty command",
                Some("write an argv array, or leave `rollback` out (then medic escalates after the restarts)".into()),
            );
        }
        return Some(Target::Command(CommandTarget {
            restart,
            rollback: c.rollback.as_ref().map(|r| r.get_ref().clone()),
            timeout: Dur::or(c.timeout, Duration::from_secs(60)),
        }));
    }
    None
}

fn build_probe(
    spanned: &Spanned<RawProbe>,
    target: &Option<Target>,
    interval: Duration,
    timeout: Option<Duration>,
    errors: &mut Errors,
) -> Option<Probe> {
    let raw = spanned.get_ref();
    let span = spanned.span();
    let interval = Dur::or(raw.interval, interval);
    let timeout = raw
        .timeout
        .map(|t| t.0)
        .or(timeout)
        .unwrap_or_else(|| default_timeout(interval));
    let kind = raw.kind.get_ref().as_str();
    check_timing(
        interval,
        timeout,
        span.clone(),
        &format!("{kind} probe"),
        errors,
    );
    let fields: &[(&str, bool)] = &[
        ("url", raw.url.is_some()),
        ("method", raw.method.is_some()),
        ("headers", raw.headers.is_some()),
        ("expect_status", raw.expect_status.is_some()),
        ("body_contains", raw.body_contains.is_some()),
        ("body_regex", raw.body_regex.is_some()),
        ("json_pointer", raw.json_pointer.is_some()),
        ("json_equals", raw.json_equals.is_some()),
        ("max_latency", raw.max_latency.is_some()),
        ("tls_verify", raw.tls_verify.is_some()),
        ("ca_file", raw.ca_file.is_some()),
        ("follow_redirects", raw.follow_redirects.is_some()),
        ("max_body", raw.max_body.is_some()),
        ("address", raw.address.is_some()),
        ("command", raw.command.is_some()),
        ("expect_exit", raw.expect_exit.is_some()),
        ("max_output", raw.max_output.is_some()),
    ];
    let applies: &[&str] = match kind {
        "http" => &[
            "url",
            "method",
            "headers",
            "expect_status",
            "body_contains",
            "body_regex",
            "json_pointer",
            "json_equals",
            "max_latency",
            "tls_verify",
            "ca_file",
            "follow_redirects",
            "max_body",
        ],
        "tcp" => &["address"],
        "exec" => &["command", "expect_exit", "max_output"],
        "container" | "launch_agent" => &[],
        other => {
            errors.at(
                raw.kind.span(),
                format!("unknown probe kind `{other}`"),
                Some(format!("kinds: {PROBE_KINDS}")),
            );
            return None;
        }
    };
    for (field, set) in fields {
        if *set && !applies.contains(field) {
            errors.at(
                span.clone(),
                format!("`{field}` does not apply to {kind} probes"),
                None,
            );
        }
    }
    let kind = match kind {
        "http" => ProbeKind::Http(Arc::new(build_http(raw, span, errors)?)),
        "tcp" => match &raw.address {
            Some(address)
                if address
                    .get_ref()
                    .rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok()) =>
            {
                ProbeKind::Tcp(TcpProbe {
                    address: address.get_ref().clone(),
                })
            }
            Some(address) => {
                errors.at(
                    address.span(),
                    "`address` must be host:port",
                    Some("e.g. \"127.0.0.1:5432\"".into()),
                );
                return None;
            }
            None => {
                errors.at(
                    span,
                    "a tcp probe needs `address`",
                    Some("e.g. address = \"127.0.0.1:5432\"".into()),
                );
                return None;
            }
        },
        "exec" => match &raw.command {
            Some(argv) if !argv.get_ref().is_empty() => ProbeKind::Exec(ExecProbe {
                argv: argv.get_ref().clone(),
                expect_exit: raw.expect_exit.unwrap_or(0),
                max_output: usize::try_from(raw.max_output.map_or(64 * 1024, |b| b.0))
                    .unwrap_or(usize::MAX),
            }),
            Some(argv) => {
                errors.at(
                    argv.span(),
                    "an exec probe's `command` is empty",
                    Some("write an argv array, e.g. [\"pg_isready\", \"-q\"]".into()),
                );
                return None;
            }
            None => {
                errors.at(
                    span,
                    "an exec probe needs `command`",
                    Some("e.g. command = [\"pg_isready\", \"-q\"]".into()),
                );
                return None;
            }
        },
        "container" => {
            if !matches!(target, Some(Target::Container(_))) {
                errors.at(
                    raw.kind.span(),
                    "a container probe needs a container target",
                    Some("add container = { name = \"…\" }".into()),
                );
            }
            ProbeKind::Container
        }
        _ => {
            if !matches!(target, Some(Target::LaunchAgent(_))) {
                errors.at(
                    raw.kind.span(),
                    "a launch_agent probe needs a launch_agent target",
                    None,
                );
            }
            ProbeKind::LaunchAgent
        }
    };
    Some(Probe {
        interval,
        timeout,
        kind,
    })
}

/// A probe's timeout when none is written: 2 s, or half the interval when
/// that is shorter, so `interval = "500ms"` alone is valid.
fn default_timeout(interval: Duration) -> Duration {
    Duration::from_secs(2).min(interval / 2)
}

/// A probe's timeout must end before its next run starts (a written pair that
/// breaks this is an error).
fn check_timing(
    interval: Duration,
    timeout: Duration,
    span: Range<usize>,
    probe: &str,
    errors: &mut Errors,
) {
    if timeout >= interval {
        errors.at(
            span,
            format!(
                "{probe}: timeout ({}) must be shorter than interval ({})",
                humantime::format_duration(timeout),
                humantime::format_duration(interval)
            ),
            Some("set `timeout` below `interval`, on the probe, the service or [defaults]".into()),
        );
    }
}

fn build_http(raw: &RawProbe, span: Range<usize>, errors: &mut Errors) -> Option<HttpProbe> {
    let Some(url) = &raw.url else {
        errors.at(
            span,
            "an http probe needs `url`",
            Some("e.g. url = \"http://127.0.0.1:8080/health\"".into()),
        );
        return None;
    };
    if !(url.get_ref().starts_with("http://") || url.get_ref().starts_with("https://")) {
        errors.at(
            url.span(),
            "`url` must start with http:// or https://",
            None,
        );
    }
    let body_regex = raw
        .body_regex
        .as_ref()
        .and_then(|r| match regex::Regex::new(r.get_ref()) {
            Ok(regex) => Some(regex),
            Err(e) => {
                errors.at(
                    r.span(),
                    format!(
                        "invalid `body_regex`: {}",
                        e.to_string().lines().last().unwrap_or("")
                    ),
                    None,
                );
                None
            }
        });
    let json_pointer = match (&raw.json_pointer, &raw.json_equals) {
        (Some(pointer), Some(value)) => {
            let p = pointer.get_ref();
            if !(p.is_empty() || p.starts_with('/')) {
                errors.at(
                    pointer.span(),
                    "`json_pointer` must be empty or start with `/`",
                    Some("e.g. \"/status\" or \"/checks/0/ok\" (RFC 6901)".into()),
                );
            } else if p
                .split('~')
                .skip(1)
                .any(|s| !(s.starts_with('0') || s.starts_with('1')))
            {
                errors.at(
                    pointer.span(),
                    "`json_pointer` has a `~` that is not `~0` or `~1`",
                    Some("write `~0` for `~` and `~1` for `/` inside a key (RFC 6901)".into()),
                );
            }
            Some((p.clone(), value.0.clone()))
        }
        (Some(pointer), None) => {
            errors.at(pointer.span(), "`json_pointer` needs `json_equals`", None);
            None
        }
        (None, Some(_)) => {
            errors.at(span, "`json_equals` needs `json_pointer`", None);
            None
        }
        (None, None) => None,
    };
    if let Some(method) = &raw.method
        && !is_token(method.get_ref())
    {
        errors.at(
            method.span(),
            format!("invalid HTTP method `{}`", method.get_ref()),
            Some("e.g. \"GET\", \"HEAD\" or \"POST\"".into()),
        );
    }
    if let Some(headers) = &raw.headers {
        for (name, value) in headers.get_ref() {
            if !is_token(name) || value.chars().any(|c| c.is_control() && c != '\t') {
                errors.at(
                    headers.span(),
                    format!("invalid HTTP header `{name}`"),
                    Some(
                        "header names are letters, digits and `-`; values have no line breaks"
                            .into(),
                    ),
                );
            }
        }
    }
    if let Some(codes) = &raw.expect_status
        && (codes.get_ref().is_empty() || codes.get_ref().iter().any(|c| !(100..=599).contains(c)))
    {
        errors.at(
            codes.span(),
            "`expect_status` must list HTTP status codes (100 to 599)",
            Some("e.g. [200, 204]; without it any 2xx is healthy".into()),
        );
    }
    Some(HttpProbe {
        url: url.get_ref().clone(),
        method: raw
            .method
            .as_ref()
            .map_or_else(|| "GET".into(), |m| m.get_ref().to_uppercase()),
        headers: raw
            .headers
            .as_ref()
            .map(|h| h.get_ref().clone())
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| (name, Secret::new(value)))
            .collect(),
        expect_status: raw
            .expect_status
            .as_ref()
            .map_or_else(any_2xx, |c| c.get_ref()[..].into()),
        body_contains: raw.body_contains.clone(),
        body_regex,
        json_pointer,
        max_latency: raw.max_latency.map(|d| d.0),
        tls_verify: raw.tls_verify.unwrap_or(true),
        ca_file: raw.ca_file.as_ref().map(PathBuf::from),
        follow_redirects: raw.follow_redirects.unwrap_or(false),
        max_body: raw.max_body.map_or(1 << 20, |b| b.0),
    })
}

/// The default `expect_status`, one shared list.
fn any_2xx() -> Arc<[u16]> {
    static ANY_2XX: std::sync::LazyLock<Arc<[u16]>> =
        std::sync::LazyLock::new(|| (200..300).collect());
    ANY_2XX.clone()
}

/// An HTTP token (RFC 9110): what a method or a header name may be made of.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

/// A Prometheus label name that is not reserved for Prometheus itself (`__…`).
fn is_label_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !text.starts_with("__")
}

/// Reports each dependency cycle once, at the service that closes it.
fn check_cycles(entries: &[ServiceEntry], errors: &mut Errors) {
    let graph: BTreeMap<&str, Vec<&str>> = entries
        .iter()
        .map(|e| {
            let deps = e
                .service
                .depends_on
                .iter()
                .map(|d| d.get_ref().as_str())
                .collect();
            (e.service.name.get_ref().as_str(), deps)
        })
        .collect();
    let mut reported = BTreeSet::new();
    for entry in entries {
        let start = entry.service.name.get_ref().as_str();
        let mut path = vec![start];
        if let Some(cycle) = find_cycle(&graph, start, &mut path) {
            let members: BTreeSet<&str> = cycle.iter().copied().collect();
            if reported.insert(members) {
                errors.at(
                    entry.service.name.span(),
                    format!("dependency cycle: {}", cycle.join(" → ")),
                    Some("break the cycle in one of the `depends_on` lists".into()),
                );
            }
        }
    }
}

fn find_cycle<'a>(
    graph: &BTreeMap<&'a str, Vec<&'a str>>,
    node: &'a str,
    path: &mut Vec<&'a str>,
) -> Option<Vec<&'a str>> {
    for next in graph.get(node).into_iter().flatten() {
        if *next == node {
            continue; // a self-dependency is reported on its own
        }
        if *next == path[0] {
            let mut cycle = path.clone();
            cycle.push(next);
            return Some(cycle);
        }
        if !path.contains(next) && graph.contains_key(next) {
            path.push(next);
            if let Some(cycle) = find_cycle(graph, next, path) {
                return Some(cycle);
            }
            path.pop();
        }
    }
    None
}

#[cfg(test)]
mod tests;
