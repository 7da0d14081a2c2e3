//! Targets: what each lets medic do, and their errors.

use std::time::Duration;

use insta::assert_snapshot;

use super::{check, valid};
use crate::config::*;

/// A service's probes: `kind/interval`, comma-separated.
fn probes(service: &Service) -> String {
    let probes: Vec<_> = service
        .probes
        .iter()
        .map(|p| format!("{}/{:?}", p.kind_name(), p.interval))
        .collect();
    probes.join(",")
}

#[test]
fn targets_decide_what_medic_may_do() {
    let config = valid(
        r#"
[[service]]
name = "web"
container = { label = ["com.example.app=web", "tier"], stop_timeout = "3s", on_stop = "leave" }

[[service]]
name = "stack"
container = { compose_project = "app", compose_service = "db" }
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:5432"
  [[service.probe]]
  kind = "container"
  interval = "3s"

[[service]]
name = "agent"
launch_agent = { label_prefix = "com.example.", domain = "gui/501", expect = "running" }

[[service]]
name = "api"
command = { restart = ["restart-api"], rollback = ["rollback-api"], timeout = "5m" }
  [[service.probe]]
  kind = "tcp"
  address = "[::1]:8080"

[[service]]
name = "unit"
systemd_unit = { name = "api.service" }

[[service]]
name = "upstream"
  [[service.probe]]
  kind = "tcp"
  address = "example.com:443"
"#,
    );
    let summary: Vec<String> = config
        .services
        .iter()
        .map(|s| {
            format!(
                "{}: restart={} rollback={} resumes={} probes={}",
                s.name,
                s.policy.can_restart,
                s.policy.can_rollback,
                s.policy.rollback_resumes,
                probes(s)
            )
        })
        .collect();
    assert_snapshot!(summary.join("\n"), @"
    web: restart=true rollback=true resumes=true probes=container/10s
    stack: restart=true rollback=true resumes=true probes=tcp/10s,container/3s
    agent: restart=true rollback=true resumes=false probes=launch_agent/10s
    api: restart=true rollback=true resumes=false probes=tcp/10s
    unit: restart=true rollback=true resumes=true probes=systemd_unit/10s
    upstream: restart=false rollback=false resumes=false probes=tcp/10s
    ");
    assert_eq!(
        config.services[0].target,
        Some(Target::Container(ContainerTarget {
            selector: ContainerSelector::Labels(vec![
                ("com.example.app".into(), Some("web".into())),
                ("tier".into(), None),
            ]),
            stop_timeout: Duration::from_secs(3),
            on_stop: OnStop::Leave,
        }))
    );
    assert_eq!(
        config.services[2].target,
        Some(Target::LaunchAgent(LaunchAgentTarget {
            selector: LabelSelector::Prefix("com.example.".into()),
            domain: Some("gui/501".into()),
            plist: None,
            expect: Expect::Running,
        }))
    );
}

#[test]
fn targets_are_checked() {
    assert_snapshot!(check(r#"
[[service]]
name = "two"
container = { name = "x" }
launch_agent = { label = "com.example.x" }

[[service]]
name = "selector"
container = { name = "x", compose_project = "p" }

[[service]]
name = "labels"
container = { label = ["=web"] }

[[service]]
name = "agent"
launch_agent = { domain = "system" }

[[service]]
name = "stop"
container = { name = "x" }
on_stop = "kill"

[[service]]
name = "oneshot"
launch_agent = { label = "com.example.once", expect = "done" }

[[service]]
name = "cmd"
command = { restart = ["x"], rollback = [] }
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:1"
"#), @r#"
    medic.toml:5:16: error: service `two` has more than one target: `container` and `launch_agent`
      hint: a service acts on exactly one of container / launch_agent / systemd_unit / command (or none: watch only); split it into two services
    medic.toml:9:13: error: a container target selects by exactly one of `name`, `label`, or `compose_project` + `compose_service`
      hint: e.g. container = { name = "app-web-1" }
    medic.toml:13:13: error: a container `label` selector needs a non-empty key
      hint: write label = "key=value", label = "key" or an array of them
    medic.toml:17:16: error: a launch_agent target needs exactly one of `label` or `label_prefix`
    medic.toml:22:11: error: unknown on_stop `kill`
      hint: use "restore" or "leave"
    medic.toml:26:55: error: unknown expect `done`
      hint: use "exited_ok" (a clean exit is the job done) or "running" (the job must stay up)
    medic.toml:30:41: error: `rollback` is an empty command
      hint: write an argv array, or leave `rollback` out (then medic escalates after the restarts)
    "#);
}

#[test]
fn systemd_units_by_name_or_pattern() {
    let config = valid(
        r#"
[[service]]
name = "api"
systemd_unit = { name = "api.service" }

[[service]]
name = "apps"
systemd_unit = { pattern = "app-*.service", user = true }

[[service]]
name = "backup"
systemd_unit = { name = "backup.service", expect = "running" }
  [[service.probe]]
  kind = "systemd_unit"
  interval = "1m"
"#,
    );
    let summary: Vec<String> = config
        .services
        .iter()
        .map(|s| format!("{}: {:?} probes={}", s.name, s.target, probes(s)))
        .collect();
    assert_snapshot!(summary.join("\n"));
    assert_snapshot!(check(
        r#"
[[service]]
name = "both"
systemd_unit = { name = "a.service", pattern = "a-*" }

[[service]]
name = "two"
command = { restart = ["x"] }
systemd_unit = { name = "a.service" }

[[service]]
name = "probe"
command = { restart = ["x"] }
  [[service.probe]]
  kind = "systemd_unit"

[[service]]
name = "expect"
systemd_unit = { name = "a.service", expect = "up" }
"#
    ));
}
