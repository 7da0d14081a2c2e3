//! `[[service]]` and its policy: names, labels, dependencies (no cycles),
//! and the restart / rollback / flapping policy from `[defaults]` and the service.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::decode::ServiceEntry;
use super::error::{self, Errors};
use super::model::*;
use super::probe::{build_probe, check_timing, default_timeout};
use super::raw::{Dur, RawPolicy};
use super::target::build_target;
use crate::policy::{Policy, ProbeTiming};

/// Label names medic sets itself (or Prometheus does), so a service's `labels` cannot.
pub(super) const RESERVED_LABELS: &[&str] = &[
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

pub(super) fn build_services(
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

pub(super) fn build_service(
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
    let implied = match (
        &target,
        &raw.container,
        &raw.launch_agent,
        &raw.systemd_unit,
    ) {
        (Some(Target::Container(_)), Some(c), _, _) => {
            Some(("container", ProbeKind::Container, c.span()))
        }
        (Some(Target::LaunchAgent(_)), _, Some(a), _) => {
            Some(("launch_agent", ProbeKind::LaunchAgent, a.span()))
        }
        (Some(Target::SystemdUnit(_)), _, _, Some(u)) => {
            Some(("systemd_unit", ProbeKind::SystemdUnit, u.span()))
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
    let targeted =
        raw.container.is_some() || raw.launch_agent.is_some() || raw.systemd_unit.is_some();
    if !targeted && entry.written_probes == 0 {
        errors.at(
            raw.name.span(),
            format!("service `{name}` has nothing to observe"),
            Some("add a [[service.probe]], or a container / launch_agent / systemd_unit target (which implies its probe)".into()),
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

pub(super) fn build_policy(
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
            Some(Target::SystemdUnit(_)) => true,
            Some(Target::Command(c)) => c.rollback.is_some(),
            None => false,
        },
        // Both compare before they write: one cut short finishes at the next start.
        rollback_resumes: matches!(target, Some(Target::Container(_) | Target::SystemdUnit(_))),
        probes: probes
            .iter()
            .map(|p| ProbeTiming {
                interval: p.interval,
                timeout: p.timeout,
            })
            .collect(),
    }
}

/// A Prometheus label name that is not reserved for Prometheus itself (`__…`).
pub(super) fn is_label_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !text.starts_with("__")
}

/// Reports each dependency cycle once, at the service that closes it.
pub(super) fn check_cycles(entries: &[ServiceEntry], errors: &mut Errors) {
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

pub(super) fn find_cycle<'a>(
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
