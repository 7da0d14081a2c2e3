//! `medic check`: every probe once, concurrently, without the state machine.

use std::time::Duration;

use medic_core::config::{Config, ContainerSelector, LabelSelector, Target, UnitSelector};
use medic_core::{Observation, Outcome};
use medic_daemon::executor::Executor;
use medic_daemon::unit_spec::UnitSpec;
use medic_daemon::units;

/// One probe's result.
#[derive(Debug, Clone)]
pub struct CheckRow {
    /// The unit.
    pub service: String,
    /// The probe kind.
    pub probe: &'static str,
    /// What it saw.
    pub observation: Observation,
}

/// Runs every probe of every unit once.
pub async fn check_once(config: &Config) -> anyhow::Result<Vec<CheckRow>> {
    let executor = Executor::new(config)?;
    let mut specs = units::plan(config, &executor, &[])?;
    for service in &config.services {
        if let Some(Target::LaunchAgent(target)) = &service.target
            && let LabelSelector::Prefix(prefix) = &target.selector
        {
            for label in executor.find_launch_agents(prefix).await? {
                let name = format!("{}/{label}", service.name);
                specs.push(units::launch_agent_unit(
                    service, target, &name, &label, &executor,
                )?);
            }
        }
        if let Some(Target::SystemdUnit(target)) = &service.target
            && let UnitSelector::Pattern(pattern) = &target.selector
        {
            for unit in executor.find_systemd_units(target.user, pattern).await? {
                let name = format!("{}/{unit}", service.name);
                specs.push(units::systemd_unit(
                    service, target, &name, &unit, &executor,
                )?);
            }
        }
        let Some(Target::Container(target)) = &service.target else {
            continue;
        };
        if matches!(target.selector, ContainerSelector::Name(_)) {
            continue;
        }
        for container in executor.find_containers(&target.selector).await? {
            let name = format!("{}/{container}", service.name);
            specs.push(units::container_unit(
                service, target, &name, &container, &executor,
            )?);
        }
    }
    let runs = specs.iter().flat_map(|spec: &UnitSpec| {
        spec.checks
            .iter()
            .zip(&spec.probe_kinds)
            .map(move |((check, _), kind)| async move {
                CheckRow {
                    service: spec.name.clone(),
                    probe: kind,
                    observation: check.run().await,
                }
            })
    });
    Ok(futures_util::future::join_all(runs).await)
}

/// The container engine the config's container services use (`[medic]
/// docker_host`, else `DOCKER_HOST`, else the Docker socket, then the Podman
/// sockets): Docker or Podman, its version and socket, or why none answers.
/// None when no service has a container target.
pub async fn container_engine(
    config: &Config,
) -> anyhow::Result<Option<Result<medic_docker::EngineInfo, String>>> {
    match medic_daemon::docker::Docker::for_config(config)? {
        Some(docker) => Ok(Some(docker.engine().await)),
        None => Ok(None),
    }
}

/// The exit code of `medic check` and `medic status`: 0 all healthy, 1 otherwise.
pub fn exit_code(rows: &[CheckRow]) -> i32 {
    i32::from(rows.iter().any(|r| r.observation.outcome != Outcome::Ok))
}

/// A probe latency in whole milliseconds.
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
