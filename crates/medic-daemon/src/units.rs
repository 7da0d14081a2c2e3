//! Turns the validated config into units: what each watched thing is, how it
//! is probed and what acting on it means.

use std::time::Duration;

use anyhow::Context;
use medic_core::Policy;
use medic_core::config::{
    CommandTarget, Config, ContainerSelector, ContainerTarget, ProbeKind, Service, Target,
};

use crate::checks::Check;
use crate::executor::Executor;

/// One thing medic keeps alive: a service, or one container of a service whose selector matches several.
#[derive(Debug, Clone)]
pub struct UnitSpec {
    /// `service`, or `service/container` for a selector's instances.
    pub name: String,
    /// The service it belongs to.
    pub service: String,
    /// How it is judged and recovered.
    pub policy: Policy,
    /// What acting on it means.
    pub target: UnitTarget,
    /// Its probes and their intervals, in policy order.
    pub checks: Vec<(Check, Duration)>,
    /// Units it must not be restarted before.
    pub depends_on: Vec<String>,
    /// The unit whose network namespace it joins (`network_mode: container:X`).
    pub namespace_parent: Option<String>,
}

/// What acting on a unit means.
#[derive(Debug, Clone)]
pub enum UnitTarget {
    /// Watch only.
    None,
    /// Run the user's commands.
    Command(CommandTarget),
    /// One Docker container, by name.
    Container {
        /// The container's name.
        container: String,
        /// Restart and restore settings.
        target: ContainerTarget,
    },
}

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
                    let prefix = format!("{}/", service.name);
                    for unit in known.iter().filter(|u| u.starts_with(&prefix)) {
                        let container = &unit[prefix.len()..];
                        units.push(container_unit(service, target, unit, container, executor)?);
                    }
                }
            },
            Some(Target::LaunchAgent(_)) => {
                anyhow::bail!(
                    "service `{}`: launch_agent targets are not wired yet",
                    service.name
                );
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

/// Builds a unit and its checks.
pub fn unit(
    service: &Service,
    name: &str,
    target: UnitTarget,
    executor: &Executor,
) -> anyhow::Result<UnitSpec> {
    let mut checks = Vec::new();
    for probe in &service.probes {
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
                anyhow::bail!(
                    "service `{}`: launch_agent probes are not wired yet",
                    service.name
                );
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
        depends_on: service.depends_on.clone(),
        namespace_parent: None,
    })
}
