//! Turns the validated config into units: what each watched thing is, how it
//! is probed and what acting on it means.

use anyhow::Context;
use medic_core::config::{
    Config, ContainerSelector, ContainerTarget, LabelSelector, LaunchAgentTarget, ProbeKind,
    Service, SystemdUnitTarget, Target, UnitSelector,
};

use crate::executor::Executor;
use crate::launchd::AgentJob;
use crate::systemd::SystemdUnit;
use crate::unit_spec::{UnitSpec, UnitTarget};

/// The units of a config: one per service, except selectors that match many
/// containers, whose instances are discovered at run time (and restored from the store).
pub fn plan(config: &Config, executor: &Executor, known: &[&str]) -> anyhow::Result<Vec<UnitSpec>> {
    let mut units = Vec::new();
    for service in &config.services {
        match &service.target {
            Some(Target::Container(target)) => match &target.selector {
                ContainerSelector::Name(name) => {
                    units.push(container_unit(
                        service,
                        target,
                        &service.name,
                        name,
                        executor,
                    )?);
                }
                _ => {
                    // Instances seen before are watched from the start, so one removed
                    // while medic was down is restored too.
                    for (unit, container) in known_instances(service, known) {
                        units.push(container_unit(service, target, unit, container, executor)?);
                    }
                }
            },
            Some(Target::LaunchAgent(target)) => match &target.selector {
                LabelSelector::Label(label) => {
                    units.push(launch_agent_unit(
                        service,
                        target,
                        &service.name,
                        label,
                        executor,
                    )?);
                }
                LabelSelector::Prefix(_) => {
                    // Jobs seen before are watched from the start, so one unloaded
                    // while medic was down is restored too; discovery finds the rest.
                    for (unit, label) in known_instances(service, known) {
                        units.push(launch_agent_unit(service, target, unit, label, executor)?);
                    }
                }
            },
            Some(Target::SystemdUnit(target)) => {
                // A pattern's units seen before are watched from the start, so
                // one whose file went while medic was down is reported too.
                let instances: Vec<(&str, &str)> = match &target.selector {
                    UnitSelector::Name(name) => vec![(service.name.as_str(), name.as_str())],
                    UnitSelector::Pattern(_) => known_instances(service, known).collect(),
                };
                for (unit, name) in instances {
                    units.push(systemd_unit(service, target, unit, name, executor)?);
                }
            }
            Some(Target::Command(command)) => {
                units.push(unit(
                    service,
                    &service.name,
                    UnitTarget::Command(command.clone()),
                    executor,
                )?);
            }
            None => units.push(unit(service, &service.name, UnitTarget::None, executor)?),
        }
    }
    Ok(units)
}

/// The instances of a selector service among the units known before
/// (`service/instance`), each with its instance's name.
fn known_instances<'a>(
    service: &Service,
    known: &'a [&'a str],
) -> impl Iterator<Item = (&'a str, &'a str)> {
    let prefix = format!("{}/", service.name);
    known
        .iter()
        .filter_map(move |unit| Some((*unit, unit.strip_prefix(&prefix)?)))
}

/// The unit of one container of a service.
pub fn container_unit(
    service: &Service,
    target: &ContainerTarget,
    unit_name: &str,
    container: &str,
    executor: &Executor,
) -> anyhow::Result<UnitSpec> {
    let target = UnitTarget::Container {
        container: container.to_owned(),
        target: target.clone(),
    };
    unit(service, unit_name, target, executor)
}

/// The unit of one launchd job of a service.
pub fn launch_agent_unit(
    service: &Service,
    target: &LaunchAgentTarget,
    unit_name: &str,
    label: &str,
    executor: &Executor,
) -> anyhow::Result<UnitSpec> {
    let target = UnitTarget::LaunchAgent(AgentJob::new(label, target));
    unit(service, unit_name, target, executor)
}

/// The unit of one systemd unit of a service.
pub fn systemd_unit(
    service: &Service,
    target: &SystemdUnitTarget,
    unit_name: &str,
    name: &str,
    executor: &Executor,
) -> anyhow::Result<UnitSpec> {
    let target = UnitTarget::SystemdUnit(SystemdUnit::new(name, target));
    unit(service, unit_name, target, executor)
}

/// Builds a unit and its checks.
pub fn unit(
    service: &Service,
    name: &str,
    target: UnitTarget,
    executor: &Executor,
) -> anyhow::Result<UnitSpec> {
    let mut checks = Vec::with_capacity(service.probes.len());
    for (index, probe) in service.probes.iter().enumerate() {
        if let Some(check) = executor.world_check(name, index) {
            checks.push((check, probe.interval));
            continue;
        }
        let check = match &probe.kind {
            ProbeKind::Container => {
                let UnitTarget::Container { container, target } = &target else {
                    anyhow::bail!(
                        "service `{}`: a container probe needs a container target",
                        service.name
                    );
                };
                executor.container_check(container, probe.timeout, target.on_stop)?
            }
            ProbeKind::LaunchAgent => {
                let UnitTarget::LaunchAgent(job) = &target else {
                    anyhow::bail!(
                        "service `{}`: a launch_agent probe needs a launch_agent target",
                        service.name
                    );
                };
                executor.launch_agent_check(job, probe.timeout)
            }
            ProbeKind::SystemdUnit => {
                let UnitTarget::SystemdUnit(unit) = &target else {
                    anyhow::bail!(
                        "service `{}`: a systemd_unit probe needs a systemd_unit target",
                        service.name
                    );
                };
                executor.systemd_unit_check(unit, probe.timeout)
            }
            _ => executor.runner(probe).with_context(|| {
                format!("service `{}`: {} probe", service.name, probe.kind_name())
            })?,
        };
        checks.push((check, probe.interval));
    }
    Ok(UnitSpec {
        name: name.to_owned(),
        service: service.name.clone(),
        policy: service.policy.clone(),
        target,
        checks,
        probe_kinds: service.probes.iter().map(|p| p.kind_name()).collect(),
        depends_on: service.depends_on.clone(),
        namespace_parent: None,
    })
}

/// The stand-in for a selector service whose engine cannot list its
/// instances: no target, no probe tasks; the daemon feeds it blind observations.
pub fn placeholder(service: &Service) -> UnitSpec {
    UnitSpec {
        name: service.name.clone(),
        service: service.name.clone(),
        policy: service.policy.clone(),
        target: UnitTarget::None,
        checks: Vec::new(),
        probe_kinds: service.probes.iter().map(|p| p.kind_name()).collect(),
        depends_on: Vec::new(),
        namespace_parent: None,
    }
}

/// What a selector service watches, in words: `containers labelled
/// medic.enable=true`, `containers of compose service app/web`, `launchd jobs
/// labelled com.example.*`.
pub fn selector_words(service: &Service) -> String {
    match &service.target {
        Some(Target::Container(target)) => match &target.selector {
            ContainerSelector::Name(name) => format!("container `{name}`"),
            ContainerSelector::Labels(labels) => {
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(key, value)| match value {
                        Some(value) => format!("{key}={value}"),
                        None => key.clone(),
                    })
                    .collect();
                format!("containers labelled {}", labels.join(","))
            }
            ContainerSelector::Compose { project, service } => {
                format!("containers of compose service {project}/{service}")
            }
        },
        Some(Target::LaunchAgent(target)) => match &target.selector {
            LabelSelector::Label(label) => format!("launchd job {label}"),
            LabelSelector::Prefix(prefix) => format!("launchd jobs labelled {prefix}*"),
        },
        Some(Target::SystemdUnit(target)) => match &target.selector {
            UnitSelector::Name(name) => format!("systemd unit {name}"),
            UnitSelector::Pattern(pattern) => format!("systemd units matching {pattern}"),
        },
        _ => "instances".to_owned(),
    }
}
