//! Configuration: TOML text in, a validated [`Config`] or every error out.
//! Pure: the shell reads the file and passes its text and name.

mod error;
mod model;
mod raw;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use error::Errors;
pub use error::{ConfigError, ConfigErrors};
pub use model::*;
use raw::{OneOrMany, POLICY_KEYS, RawPolicy, RawProbe, RawService, RawSettings};

use crate::policy::{Policy, ProbeTiming};

/// The embedded default job: every container labelled `medic.enable=true`.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

const SETTINGS_KEYS: &[&str] = &[
    "state_dir",
    "recovery_log",
    "alerts_file",
    "control_socket",
    "metrics_listen",
    "docker_host",
    "reconcile_interval",
    "shutdown_grace",
    "blind_alert_after",
    "max_concurrent_actions",
];
const SERVICE_KEYS: &[&str] = &[
    "name",
    "container",
    "launch_agent",
    "command",
    "depends_on",
    "probe",
];
const PROBE_KINDS: &str = "http, tcp, exec, container, launch_agent";

/// The embedded default job, validated.
pub fn default_config() -> Config {
    // Invariant: DEFAULT_CONFIG is tested to parse (tests::default_config_parses).
    parse(DEFAULT_CONFIG, "<default>")
        .unwrap_or_else(|e| panic!("embedded default config is invalid:\n{e}"))
}

/// Parses and validates a config; `origin` names the file in error messages.
pub fn parse(source: &str, origin: &str) -> Result<Config, ConfigErrors> {
    let mut errors = Errors::new(source);
    let (document, syntax) = DeTable::parse_recoverable(source);
    for error in &syntax {
        errors.toml(error, &[]);
    }
    if !syntax.is_empty() {
        return Err(errors.finish(origin));
    }
    let document = document.into_inner();
    let mut settings = RawSettings::default();
    let mut defaults = RawPolicy::default();
    let mut services = Vec::new();
    for (key, value) in document {
        let span = key.span();
        match key.get_ref().as_ref() {
            "medic" => settings = decode(value, SETTINGS_KEYS, &mut errors).unwrap_or_default(),
            "defaults" => defaults = decode(value, POLICY_KEYS, &mut errors).unwrap_or_default(),
            "service" => services = decode_services(value, &mut errors),
            other => errors.at(
                span,
                format!("unknown table `{other}`"),
                Some("the top level has [medic], [defaults] and [[service]]".into()),
            ),
        }
    }
    let medic = build_settings(settings, &mut errors);
    let services = build_services(&services, &defaults, &mut errors);
    errors.into_result(origin, Config { medic, services })
}

fn decode<T: for<'de> Deserialize<'de>>(
    value: Spanned<DeValue<'_>>,
    allowed: &[&str],
    errors: &mut Errors,
) -> Option<T> {
    T::deserialize(ValueDeserializer::from(value))
        .map_err(|e| errors.toml(&e, allowed))
        .ok()
}

/// A service's table split in two: the policy keys and the rest.
struct ServiceEntry {
    service: RawService,
    policy: RawPolicy,
    span: Range<usize>,
}

fn decode_services(value: Spanned<DeValue<'_>>, errors: &mut Errors) -> Vec<ServiceEntry> {
    let span = value.span();
    let DeValue::Array(items) = value.into_inner() else {
        errors.at(
            span,
            "`service` must be an array of tables",
            Some("write [[service]]".into()),
        );
        return Vec::new();
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
        let (mut policy, mut rest) = (DeTable::new(), DeTable::new());
        for (key, value) in table {
            if POLICY_KEYS.contains(&key.get_ref().as_ref()) {
                policy.insert(key, value);
            } else {
                rest.insert(key, value);
            }
        }
        let table = |t| Spanned::new(span.clone(), DeValue::Table(t));
        let mut allowed: Vec<&str> = SERVICE_KEYS.to_vec();
        allowed.extend(POLICY_KEYS);
        let service = decode::<RawService>(table(rest), &allowed, errors);
        let policy = decode::<RawPolicy>(table(policy), POLICY_KEYS, errors);
        if let (Some(service), Some(policy)) = (service, policy) {
            entries.push(ServiceEntry {
                service,
                policy,
                span: span.clone(),
            });
        }
    }
    entries
}

fn build_settings(raw: RawSettings, errors: &mut Errors) -> Settings {
    let max_concurrent_actions = match raw.max_concurrent_actions {
        Some(n) if *n.get_ref() == 0 => {
            errors.at(
                n.span(),
                "`max_concurrent_actions` must be at least 1",
                Some("the default is 4".into()),
            );
            4
        }
        Some(n) => *n.get_ref(),
        None => 4,
    };
    let state_dir = PathBuf::from(raw.state_dir.unwrap_or_else(|| "/var/lib/medic".into()));
    Settings {
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
        docker_host: raw.docker_host,
        reconcile_interval: raw
            .reconcile_interval
            .map_or(Duration::from_secs(10), |d| d.0),
        shutdown_grace: raw.shutdown_grace.map_or(Duration::from_secs(4), |d| d.0),
        blind_alert_after: raw
            .blind_alert_after
            .map_or(Duration::from_secs(300), |d| d.0),
        max_concurrent_actions,
        state_dir,
    }
}

fn build_services(
    entries: &[ServiceEntry],
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
        .filter_map(|entry| build_service(entry, defaults, &seen, errors))
        .collect();
    check_cycles(entries, errors);
    services
}

fn build_service(
    entry: &ServiceEntry,
    defaults: &RawPolicy,
    names: &BTreeMap<&str, Range<usize>>,
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
    let target = build_target(raw, &policy, entry.span.clone(), errors);
    for dependency in &raw.depends_on {
        if dependency.get_ref() == &name {
            errors.at(
                dependency.span(),
                format!("service `{name}` depends on itself"),
                None,
            );
        } else if !names.contains_key(dependency.get_ref().as_str()) {
            errors.at(
                dependency.span(),
                format!(
                    "`depends_on` names an unknown service `{}`",
                    dependency.get_ref()
                ),
                Some(format!(
                    "known services: {}",
                    names.keys().copied().collect::<Vec<_>>().join(", ")
                )),
            );
        }
    }
    let interval = policy.interval.map_or(Duration::from_secs(10), |d| d.0);
    let timeout = policy.timeout.map_or(Duration::from_secs(2), |d| d.0);
    let mut probes = Vec::new();
    let implied = match &target {
        Some(Target::Container(_)) => Some(("container", ProbeKind::Container)),
        Some(Target::LaunchAgent(_)) => Some(("launch_agent", ProbeKind::LaunchAgent)),
        _ => None,
    };
    if let Some((kind, probe)) = implied
        && !raw.probe.iter().any(|p| p.get_ref().kind.get_ref() == kind)
    {
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
    if probes.is_empty() && raw.probe.is_empty() {
        errors.at(
            raw.name.span(),
            format!("service `{name}` has nothing to observe"),
            Some("add a [[service.probe]], or a container / launch_agent target (which implies its probe)".into()),
        );
    }
    let policy = build_policy(&policy, &target, &probes, errors);
    Some(Service {
        name,
        target,
        probes,
        policy,
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
    let or = |value: Option<raw::Dur>, default: Duration| value.map_or(default, |d| d.0);
    Policy {
        failure_threshold,
        success_threshold,
        max_attempts,
        start_period: or(raw.start_period, defaults.start_period),
        attempt_window: or(raw.attempt_window, defaults.attempt_window),
        backoff_base: or(raw.backoff, defaults.backoff_base),
        backoff_max: or(raw.backoff_max, defaults.backoff_max),
        recover_timeout: or(raw.recover_timeout, defaults.recover_timeout),
        verify_interval: or(raw.verify_interval, defaults.verify_interval),
        replace_grace: or(raw.replace_grace, defaults.replace_grace),
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

fn build_target(
    raw: &RawService,
    policy: &RawPolicy,
    span: Range<usize>,
    errors: &mut Errors,
) -> Option<Target> {
    let given = [
        raw.container.is_some(),
        raw.launch_agent.is_some(),
        raw.command.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        errors.at(
            span,
            format!("service `{}` has more than one target", raw.name.get_ref()),
            Some("a service acts on exactly one of container / launch_agent / command (or none: watch only)".into()),
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
            stop_timeout: c
                .stop_timeout
                .or(policy.stop_timeout)
                .map_or(Duration::from_secs(10), |d| d.0),
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
            errors.at(rollback.span(), "`rollback` is an empty command", None);
        }
        return Some(Target::Command(CommandTarget {
            restart,
            rollback: c.rollback.as_ref().map(|r| r.get_ref().clone()),
            timeout: c.timeout.map_or(Duration::from_secs(60), |d| d.0),
        }));
    }
    None
}

fn build_probe(
    spanned: &Spanned<RawProbe>,
    target: &Option<Target>,
    interval: Duration,
    timeout: Duration,
    errors: &mut Errors,
) -> Option<Probe> {
    let raw = spanned.get_ref();
    let span = spanned.span();
    let interval = raw.interval.map_or(interval, |d| d.0);
    let timeout = raw.timeout.map_or(timeout, |d| d.0);
    if timeout >= interval {
        errors.at(
            span.clone(),
            format!(
                "probe timeout ({}) must be shorter than its interval ({})",
                humantime::format_duration(timeout),
                humantime::format_duration(interval)
            ),
            Some("set `timeout` below `interval`, on the probe, the service or [defaults]".into()),
        );
    }
    let kind = raw.kind.get_ref().as_str();
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
        "http" => ProbeKind::Http(Box::new(build_http(raw, span, errors)?)),
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
                errors.at(argv.span(), "`command` is empty", None);
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
                    Some("e.g. \"/status\"".into()),
                );
            }
            Some((p.clone(), value.clone()))
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
    Some(HttpProbe {
        url: url.get_ref().clone(),
        method: raw
            .method
            .clone()
            .unwrap_or_else(|| "GET".into())
            .to_uppercase(),
        headers: raw
            .headers
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        expect_status: raw
            .expect_status
            .clone()
            .unwrap_or_else(|| (200..300).collect()),
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
