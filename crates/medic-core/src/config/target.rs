//! A service's target: exactly one of `container`, `launch_agent`,
//! `systemd_unit` or `command`, or none.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::error::Errors;
use super::model::*;
use super::raw::{Dur, OneOrMany, RawPolicy, RawService};

pub(super) fn build_target(
    raw: &RawService,
    policy: &RawPolicy,
    errors: &mut Errors,
) -> Option<Target> {
    let mut given = [
        raw.container.as_ref().map(|t| ("container", t.span())),
        raw.launch_agent
            .as_ref()
            .map(|t| ("launch_agent", t.span())),
        raw.command.as_ref().map(|t| ("command", t.span())),
        raw.systemd_unit
            .as_ref()
            .map(|t| ("systemd_unit", t.span())),
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
            Some("a service acts on exactly one of container / launch_agent / systemd_unit / command (or none: watch only); split it into two services".into()),
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
        let written = c.on_stop.as_ref().or(policy.on_stop.as_ref());
        let on_stop = on_stop(written, OnStop::Restore, errors);
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
            expect: build_expect(a.expect.as_ref(), errors),
        }));
    }
    if let Some(unit) = &raw.systemd_unit {
        let u = unit.get_ref();
        let selector = match (&u.name, &u.pattern) {
            (Some(name), None) if !name.is_empty() => UnitSelector::Name(name.clone()),
            (None, Some(pattern)) if !pattern.is_empty() => UnitSelector::Pattern(pattern.clone()),
            _ => {
                errors.at(
                    unit.span(),
                    "a systemd_unit target needs exactly one of `name` or `pattern`",
                    Some("e.g. systemd_unit = { name = \"api.service\" } or { pattern = \"app-*.service\" }".into()),
                );
                return None;
            }
        };
        return Some(Target::SystemdUnit(SystemdUnitTarget {
            selector,
            user: u.user.unwrap_or(false),
            expect: build_expect(u.expect.as_ref(), errors),
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

/// `expect = "exited_ok" | "running"` of a launch_agent or systemd_unit target.
fn build_expect(expect: Option<&Spanned<String>>, errors: &mut Errors) -> Expect {
    match expect.map(|e| (e.get_ref().as_str(), e.span())) {
        None | Some(("exited_ok", _)) => Expect::ExitedOk,
        Some(("running", _)) => Expect::Running,
        Some((other, span)) => {
            errors.at(
                span,
                format!("unknown expect `{other}`"),
                Some("use \"exited_ok\" (a clean exit is the job done) or \"running\" (the job must stay up)".into()),
            );
            Expect::ExitedOk
        }
    }
}

/// What `on_stop` says (`otherwise` when it is not written): "restore" or
/// "leave" (also read from a `medic.on_stop` label, see `labels.rs`).
pub(super) fn on_stop(
    written: Option<&Spanned<String>>,
    otherwise: OnStop,
    errors: &mut Errors,
) -> OnStop {
    match written.map(|s| (s.get_ref().as_str(), s.span())) {
        None => otherwise,
        Some(("restore", _)) => OnStop::Restore,
        Some(("leave", _)) => OnStop::Leave,
        Some((other, span)) => {
            errors.at(
                span,
                format!("unknown on_stop `{other}`"),
                Some("use \"restore\" or \"leave\"".into()),
            );
            otherwise
        }
    }
}
