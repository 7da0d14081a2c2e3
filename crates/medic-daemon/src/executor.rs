//! Carries out the core's restart and rollback decisions on a unit's target,
//! and records last known good specs. Each job reports an `ActionResult` with
//! its evidence; it never decides whether to retry (the core does).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use medic_core::config::{Config, ContainerSelector, OnStop, Probe, Service, Target};
use medic_core::{ActionResult, Step};
use medic_probe::{ClientPool, ProbeRunner, run_command};

use crate::docker::Docker;
use crate::job::{Job, JobContext, failed};
use crate::launchd::{AgentJob, Launchd};
use crate::probe::Check;
use crate::shell::Shell;
use crate::systemd::{Systemd, SystemdUnit};
use crate::unit_spec::{UnitSpec, UnitTarget};
use crate::world::World;

/// Most bytes of a restart or rollback command's output kept as evidence.
const COMMAND_OUTPUT_CAP: usize = 64 * 1024;

/// The adapters actions go through.
#[derive(Debug)]
pub struct Executor {
    clients: ClientPool,
    docker: Option<Docker>,
    /// launchctl is run per call, so it is always there (a reload may add the first agent).
    launchd: Launchd,
    /// systemd's managers, connected on first use.
    systemd: Systemd,
    /// The world every check and job goes to instead of the host's adapters
    /// (a simulation); None on a host.
    world: Option<Arc<dyn World>>,
}

impl Executor {
    /// Connects the adapters the config needs (Docker only when a service has a container target).
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let docker = Docker::for_config(config)?;
        Ok(Self {
            clients: ClientPool::default(),
            docker,
            launchd: Launchd::new(),
            systemd: Systemd::for_config(config),
            world: None,
        })
    }

    /// An executor whose checks and jobs all go to `world`: no engine, no
    /// launchctl, no D-Bus, no network, no process.
    pub fn in_world(world: Arc<dyn World>, config: &Config) -> Self {
        Self {
            clients: ClientPool::default(),
            docker: None,
            launchd: Launchd::new(),
            systemd: Systemd::for_config(config),
            world: Some(world),
        }
    }

    /// Probe `probe` of `unit` in the executor's world, if it has one.
    pub fn world_check(&self, unit: &str, probe: usize) -> Option<Check> {
        self.world.as_ref().map(|world| Check::World {
            world: world.clone(),
            unit: unit.into(),
            probe,
        })
    }

    /// Starts the Docker event stream, when there is a Docker connection, and
    /// follows systemd's unit changes, when a service has a systemd_unit target.
    pub fn start_events(&self, shell: &Shell, config: &Config) {
        if let Some(docker) = &self.docker {
            docker.start_events(shell);
        }
        self.follow_systemd(shell, config);
    }

    /// Follows systemd's unit changes for the managers `config` names and
    /// are not followed yet (a reload may add the first systemd_unit target).
    pub fn follow_systemd(&self, shell: &Shell, config: &Config) {
        if self.world.is_none() {
            self.systemd.start_events(shell, config);
        }
    }

    /// Lists the containers a selector matches, with their labels, as a future
    /// a task of its own awaits; None without a Docker connection.
    pub fn list_containers(
        &self,
        selector: &ContainerSelector,
    ) -> Option<impl Future<Output = anyhow::Result<Vec<crate::shell::Found>>> + Send + 'static>
    {
        self.docker.as_ref().map(|docker| docker.list(selector))
    }

    /// Starts discovering the containers or jobs of a selector service (at
    /// start, or added by a reload); nothing for a single name or label.
    pub fn start_discovery(&self, shell: &Shell, config: &Config, service: &Service) {
        match &service.target {
            Some(Target::Container(target)) => {
                if let Some(docker) = &self.docker {
                    docker.start_discovery(shell, config, &service.name, target);
                }
            }
            Some(Target::LaunchAgent(target)) => {
                self.launchd
                    .start_discovery(shell, config, &service.name, target);
            }
            Some(Target::SystemdUnit(target)) => {
                self.systemd
                    .start_discovery(shell, config, &service.name, target);
            }
            Some(Target::Command(_)) | None => {}
        }
    }

    /// Runs the discovery of selector services now (an unknown container appeared).
    pub fn rediscover(&self) {
        if let Some(docker) = &self.docker {
            docker.rediscover();
        }
    }

    /// An http, tcp or exec check.
    pub fn runner(&self, probe: &Probe) -> anyhow::Result<Check> {
        Ok(Check::Runner(Arc::new(ProbeRunner::new(
            probe,
            &self.clients,
        )?)))
    }

    /// A container check.
    pub fn container_check(
        &self,
        container: &str,
        timeout: Duration,
        on_stop: OnStop,
    ) -> anyhow::Result<Check> {
        let docker = self.docker()?;
        Ok(Check::Container(docker.check(container, timeout, on_stop)))
    }

    /// A launchd job check.
    pub fn launch_agent_check(&self, job: &AgentJob, timeout: Duration) -> Check {
        Check::LaunchAgent(self.launchd.check(job.clone(), timeout))
    }

    /// A systemd unit check.
    pub fn systemd_unit_check(&self, unit: &SystemdUnit, timeout: Duration) -> Check {
        Check::SystemdUnit(self.systemd.check(unit.clone(), timeout))
    }

    /// The systemd units whose names match `pattern`.
    pub async fn find_systemd_units(
        &self,
        user: bool,
        pattern: &str,
    ) -> anyhow::Result<Vec<String>> {
        Ok(self.systemd.find(user, pattern).await?)
    }

    /// The labels of the loaded launchd jobs that start with `prefix`.
    pub async fn find_launch_agents(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        Ok(self.launchd.find(prefix).await?)
    }

    /// The names of the containers a selector matches now.
    pub async fn find_containers(
        &self,
        selector: &ContainerSelector,
    ) -> anyhow::Result<Vec<String>> {
        self.docker()?.find(selector).await
    }

    fn docker(&self) -> anyhow::Result<&Docker> {
        self.docker.as_ref().ok_or_else(|| {
            anyhow::anyhow!("no Docker connection (no service has a container target)")
        })
    }

    /// The job that carries out `step` on a unit.
    pub fn job(&self, unit: &UnitSpec, step: Step, context: JobContext) -> Job {
        if let Some(world) = &self.world {
            return world.job(&unit.name, step, &context);
        }
        match (&unit.target, step) {
            (UnitTarget::None, _) => {
                Box::pin(async { failed("watch-only service: nothing to act on") })
            }
            (UnitTarget::Command(command), Step::Restart(_)) => {
                Box::pin(run_target_command(command.restart.clone(), command.timeout))
            }
            (UnitTarget::Command(command), Step::Rollback) => match &command.rollback {
                Some(argv) => Box::pin(run_target_command(argv.clone(), command.timeout)),
                None => Box::pin(async { failed("no rollback command configured") }),
            },
            (UnitTarget::Container { container, target }, step) => match &self.docker {
                Some(docker) => docker.job(container, target, step, context),
                None => Box::pin(async { failed("no Docker connection") }),
            },
            // A launchd job's version is its plist: a deploy that kept it has
            // nothing medic could return to, so its rollback fails and escalates.
            (UnitTarget::LaunchAgent(job), step) => {
                self.launchd.job(job, step, context.last_known_good)
            }
            (UnitTarget::SystemdUnit(unit), step) => {
                self.systemd
                    .job(unit, step, context.last_known_good, context.resumed)
            }
        }
    }

    /// Captures what runs now as the unit's last known good spec (reported as an event).
    /// `container_id`: the container the verifying observations saw, recorded
    /// by id (the name may already belong to another one).
    pub fn record_last_known_good(
        &self,
        shell: &Shell,
        unit: &UnitSpec,
        container_id: Option<&str>,
    ) {
        if let Some(world) = &self.world {
            let (unit, events) = (unit.name.clone(), shell.events.clone());
            if let Some(spec) = world.version(&unit) {
                let event = crate::shell::Event::LastKnownGood {
                    unit,
                    spec,
                    namespace_parent: None,
                };
                shell
                    .tracker
                    .spawn(async move { events.send(event).await.ok() });
            }
            return;
        }
        if let (UnitTarget::Container { container, .. }, Some(docker)) =
            (&unit.target, &self.docker)
        {
            docker.record_last_known_good(shell, &unit.name, container_id.unwrap_or(container));
        }
        if let UnitTarget::LaunchAgent(job) = &unit.target {
            self.launchd.record_last_known_good(shell, &unit.name, job);
        }
        if let UnitTarget::SystemdUnit(systemd_unit) = &unit.target {
            self.systemd
                .record_last_known_good(shell, &unit.name, systemd_unit);
        }
    }
}

/// Runs a restart or rollback command: argv, no shell, its process group killed on timeout.
async fn run_target_command(argv: Vec<String>, timeout: Duration) -> ActionResult {
    let outcome = run_command(&argv, timeout, COMMAND_OUTPUT_CAP).await;
    let mut evidence = outcome.evidence();
    evidence.insert("command".into(), argv.clone().into());
    let program = argv.first().map_or("", String::as_str);
    match (outcome.exit, outcome.timed_out, &outcome.spawn_error) {
        (_, _, Some(error)) => ActionResult::Failed {
            message: format!("cannot run `{program}`: {error}"),
            evidence,
        },
        (_, true, _) => ActionResult::Failed {
            message: format!("`{program}` timed out after {}", humantime(timeout)),
            evidence,
        },
        (Some(0), _, _) => ActionResult::Done {
            message: format!("`{program}` exited 0"),
            evidence,
        },
        (Some(code), _, _) => ActionResult::Failed {
            message: format!("`{program}` exited {code}{}", output_tail(&outcome.output)),
            evidence,
        },
        (None, _, _) => ActionResult::Failed {
            message: format!(
                "`{program}` was killed by signal {}",
                outcome.signal.unwrap_or(0)
            ),
            evidence,
        },
    }
}

/// The last lines of a failed command's output, for its one-line message: they
/// usually say why ("Failed to restart api.service: Access denied").
fn output_tail(output: &str) -> String {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
    if tail.is_empty() {
        return tail;
    }
    format!(": {}", tail.chars().take(300).collect::<String>())
}

fn humantime(duration: Duration) -> String {
    format!("{}s", duration.as_secs_f64())
}
