//! The supervisor loop: one `select!` over probe observations, action results,
//! control commands and the core's next deadline. It owns the core and the
//! rooms around it — durability (the state store and its writers), the unit
//! index, the announcer (journals, sinks, stderr) — and routes each event and
//! each action of the core to them; everything slow runs in tracked tasks
//! that report back, so the loop never waits for the disk.

mod announcer;
mod deploy;
mod durability;
mod instances;
mod labels;
mod reload;
mod requests;
mod rollout;
mod shutdown;
mod unit_index;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use medic_core::config::Config;
use medic_core::{Action, Input, Supervisor};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::{WallClock, now};
use crate::executor::Executor;
use crate::job::JobContext;
use crate::launcher::Launcher;
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::schedule::{Pacing, UnitProbes};
use crate::shell::{Event, Shell};
use crate::unit_spec::UnitSpec;
use crate::units;
use crate::world::World;
use announcer::Announcer;
use durability::Durability;
use unit_index::UnitIndex;

/// The running daemon's state, owned by the supervisor loop.
struct Daemon {
    config: Config,
    /// The file the config came from; None for the embedded default (nothing to reload).
    config_path: Option<PathBuf>,
    notifier: Notifier,
    metrics: Metrics,
    sup: Supervisor,
    clock: WallClock,
    /// The state store, its writers and what waits for them.
    durability: Durability,
    /// The recovery log, the alerts file, the sinks and stderr.
    announcer: Announcer,
    /// The watched units and the indexes that find them.
    units: UnitIndex,
    executor: Executor,
    shell: Shell,
    /// Deploys in progress, by unit.
    deploys: BTreeMap<String, deploy::PendingDeploy>,
    /// Deploys of several instances in progress, by the name the person gave.
    rollouts: BTreeMap<String, rollout::Rollout>,
    /// The jobs the core launched, running in tracked tasks (the queue and
    /// its slots are the core's).
    launcher: Launcher,
    /// What the probe tasks share.
    pacing: Arc<Pacing>,
    /// One daemon per state_dir (see `lock.rs`), held while the daemon runs.
    lock: crate::lock::StateLock,
    shutdown_grace: Duration,
    /// About the size of the last status answer about every unit (see `control`).
    status_size: usize,
}

/// Runs the daemon until `shutdown` resolves; then stops within `shutdown_grace`.
/// SIGHUP (and `medic reload`) re-reads `config_path`, when there is one.
pub async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    run_in(None, config, config_path, shutdown).await
}

/// Runs the daemon like [`run`], observing and acting on `world` instead of
/// the host when one is given (a simulation: see `world.rs`).
pub async fn run_in(
    world: Option<Arc<dyn World>>,
    mut config: Config,
    config_path: Option<PathBuf>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // Kept for the daemon's life: the parser's spare room (up to 40 % of
    // 10,000 services) need not be.
    config.services.shrink_to_fit();
    let settings = config.medic.clone();
    // First: a second medic on this state_dir stops here, before it touches anything.
    let lock = crate::lock::StateLock::acquire(&settings.state_dir)?;
    crate::lock::clear_stale_socket(&settings.control_socket)?;
    let clock = WallClock::now();
    let (events_tx, mut events_rx) = mpsc::channel(1024);
    let shell = Shell {
        events: events_tx,
        tracker: TaskTracker::new(),
        cancel: CancellationToken::new(),
    };
    let durability = Durability::open(&settings.state_dir, &shell.tracker)?;
    let store = &durability.store().file;
    let mut sup = Supervisor::new(store.incident_prefix.clone(), store.next_incident);
    sup.set_max_concurrent_actions(settings.max_concurrent_actions);
    sup.set_storm_rule(settings.storm);
    sup.set_blind_alert_after(settings.blind_alert_after);
    let post = world
        .clone()
        .map(|world| world as Arc<dyn medic_alerts::Post>);
    let executor = match world {
        Some(world) => Executor::in_world(world, &config),
        None => Executor::new(&config)?,
    };
    let announcer = Announcer::start(&config, &shell, clock, post)?;
    crate::digest::start(&config, &shell);
    let mut daemon = Daemon {
        // Moved, not cloned: 10,000 services make a config of several MiB.
        config,
        config_path,
        notifier: Notifier::from_env(),
        metrics: Metrics::default(),
        sup,
        clock,
        durability,
        announcer,
        units: UnitIndex::default(),
        executor,
        shell: shell.clone(),
        deploys: BTreeMap::new(),
        rollouts: BTreeMap::new(),
        launcher: Launcher::default(),
        pacing: Arc::new(Pacing::new(settings.max_concurrent_probes)),
        lock,
        shutdown_grace: settings.shutdown_grace,
        status_size: 0,
    };
    let known = daemon.durability.known_units();
    for spec in units::plan(&daemon.config, &daemon.executor, &known)? {
        daemon.add_unit(spec);
    }
    daemon.restore_storm();
    daemon.executor.start_events(&shell, &daemon.config);
    daemon.start_discoveries();
    daemon.drain();
    tracing::info!(services = daemon.config.services.len(), "medic is running");

    let (control_tx, mut control) = mpsc::channel(16);
    let guard = crate::web::guard(&settings)?;
    crate::control::serve(&settings, &shell, guard.as_ref(), control_tx.clone())?;
    crate::web::serve(&settings, &shell, guard.as_ref(), control_tx)?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    // The watchdog is pinged from this loop, so a hung loop gets medic restarted.
    let beat = daemon
        .notifier
        .watchdog_interval()
        .unwrap_or(STATUS_EVERY)
        .min(STATUS_EVERY);
    let mut heartbeat = tokio::time::interval(beat);
    let mut ready = false;
    tokio::pin!(shutdown);
    loop {
        let deadline = daemon.sup.poll_timeout().map(Instant::from_std);
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            _ = heartbeat.tick() => daemon.heartbeat(),
            _ = hangup.recv() => {
                if let Err(error) = daemon.reload() {
                    tracing::error!("Config reload rejected; the running config stays: {error}");
                }
            }
            // A person's command goes before the probes' stream of observations,
            // which would otherwise keep it waiting while thousands of services report.
            Some(request) = control.recv() => daemon.handle(Event::Control(request)),
            Some(event) = events_rx.recv() => {
                daemon.handle(event);
                // Whatever else is ready goes into the same drain (one fsync, one save).
                for _ in 0..BATCH {
                    match events_rx.try_recv() {
                        Ok(event) => daemon.handle(event),
                        Err(_) => break,
                    }
                }
            }
            () = sleep_until(deadline) => daemon.sup.handle_timeout(now()),
            () = sleep_until(daemon.durability.save_by()) => daemon.save_store(),
            () = daemon.durability.written() => {
                for job in daemon.durability.ready() {
                    daemon.act(job);
                }
            }
        }
        daemon.drain();
        if !ready && daemon.sup.all_observed() && daemon.units.discovered() {
            ready = true;
            let summary = daemon.summary();
            tracing::info!("First round of observations done: {summary}");
            daemon.notifier.ready(&summary);
        }
    }
    daemon.notifier.stopping();
    daemon.shutdown(&mut events_rx).await
}

/// Most events handled before the actions they caused are carried out.
const BATCH: usize = 256;

/// How often the STATUS line is refreshed when no watchdog asks for more.
const STATUS_EVERY: Duration = Duration::from_secs(5);

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Daemon {
    /// "3 services: 2 healthy, 1 unhealthy" for STATUS= and logs.
    /// O(1): the core keeps the counts as verdicts change.
    fn summary(&self) -> String {
        let c = self.sup.health_counts();
        format!(
            "{} services: {} healthy, {} unhealthy, {} unknown",
            c.healthy + c.unhealthy + c.unknown,
            c.healthy,
            c.unhealthy,
            c.unknown
        )
    }

    /// The periodic chores: STATUS and the watchdog, the history, stderr's
    /// storm summary and spared lines, and whether files are writable.
    fn heartbeat(&mut self) {
        let summary = self.summary();
        self.notifier.alive(&summary);
        let now = now();
        self.durability.save_history(&self.sup, now, false);
        self.announcer.tick(now);
        let problems = self.storage_problems();
        self.announcer.check_storage(problems);
    }

    fn add_unit(&mut self, mut spec: UnitSpec) {
        if self.units.contains(&spec.name) {
            return;
        }
        let now = now();
        // A unit the supervisor knows (a reload) keeps its state under the new policy.
        match self.durability.restored(&spec.name, now, &spec.policy) {
            Some(saved) if !self.sup.contains(&spec.name) => {
                self.sup.restore_unit(now, saved, spec.policy.clone());
            }
            _ => self.sup.add_unit(now, &spec.name, spec.policy.clone()),
        }
        self.durability
            .restore_history(&mut self.sup, &spec.name, now);
        self.sup
            .set_dependencies(&spec.name, spec.depends_on.clone());
        let probes = UnitProbes::spawn(
            &self.shell,
            &self.pacing,
            &spec.name,
            std::mem::take(&mut spec.checks),
        );
        self.durability.changed(&spec.name);
        self.units.insert(spec, probes);
    }

    /// Puts what changed on disk: a change line, or a checkpoint of the whole store.
    fn save_store(&mut self) {
        self.durability.save(&mut self.sup);
    }

    /// Continues the storm the state store kept, if any: the core takes it
    /// back (its members are the units whose incident is still open).
    fn restore_storm(&mut self) {
        let Some(saved) = self.durability.store().storm(&self.clock) else {
            return;
        };
        self.sup.restore_storm(now(), saved);
        if let Some(active) = self.sup.storm().active() {
            self.announcer.storm_continues(active);
        }
    }

    fn handle(&mut self, event: Event) {
        let now = now();
        let input = match event {
            Event::Observed {
                unit,
                probe,
                observation,
            } => {
                self.metrics.observed(&unit, probe, &observation);
                Input::Observed {
                    unit,
                    probe,
                    observation,
                }
            }
            Event::Finished { unit, job, result } => {
                self.launcher.finished(job);
                Input::Finished { unit, job, result }
            }
            Event::Digest { line, sinks } => {
                self.announcer.send_to(&sinks, &line);
                return;
            }
            Event::LastKnownGood {
                unit,
                spec,
                namespace_parent,
            } => {
                self.durability.set_last_known_good(&unit, spec);
                let follows = namespace_parent.and_then(|p| self.units.follow_namespace(&unit, &p));
                if let Some(dependencies) = follows {
                    self.sup.set_dependencies(&unit, dependencies);
                }
                return;
            }
            Event::ContainerChanged { container, action } => {
                tracing::debug!(%container, %action, "Docker event");
                let watched = self.units.check_container(&container);
                if !watched && matches!(action.as_str(), "create" | "start" | "rename") {
                    self.executor.rediscover();
                }
                return;
            }
            Event::EngineReconnected => {
                self.units.check_containers();
                self.executor.rediscover();
                return;
            }
            Event::Found {
                service,
                container,
                labels,
            } => {
                self.found(&service, &container, &labels);
                return;
            }
            Event::Listed {
                service,
                why,
                found,
            } => {
                self.listed(&service, why, found);
                return;
            }
            Event::Sight { service, sight } => {
                self.sight(now, service, sight);
                return;
            }
            Event::Control(request) => {
                self.control(request);
                return;
            }
        };
        if let Err(error) = self.sup.handle_input(now, input) {
            tracing::debug!(%error, "Input for a unit that is no longer watched");
        }
    }

    /// Carries out every action the core decided. Restarts and rollbacks
    /// start only once the state store that says they run is on disk (its
    /// writer reports it; the loop never waits): a kill -9 at any moment never
    /// leaves a started action recorded as still due, which a restarted medic
    /// would start a second time.
    fn drain(&mut self) {
        let mut jobs = Vec::new();
        while let Some(action) = self.sup.poll_action() {
            match action {
                Action::Launch { .. } => jobs.push(action),
                action => self.act(action),
            }
        }
        self.durability.follow(self.announcer.records());
        self.durability.persist(jobs, &mut self.sup);
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Log(mut event) => {
                let now = now();
                self.deploy_event(now, &mut event);
                self.metrics.event(&event.service, event.kind);
                self.durability.logged(&event);
                let storming = self.sup.storm().active().is_some();
                self.announcer.log(now, event, storming);
            }
            Action::Alert(alert) => {
                let storming = self.sup.storm().active().is_some();
                self.announcer.alert(now(), alert, storming);
            }
            Action::Storm(change) => {
                if change.persist_at_once() {
                    self.durability.storm_turned();
                }
                self.announcer.storm(change);
            }
            Action::Launch(job) => self.launch(job),
            Action::DeployEnded { unit, end, failure } => self.deploy_ended(&unit, end, failure),
            Action::Probe { unit } => {
                if let Some(u) = self.units.get(&unit) {
                    u.probes.probe_now();
                }
            }
            Action::RecordLastKnownGood {
                unit,
                seen,
                provisional,
            } => {
                // Not yet confirmed: only ever the first one, never over a confirmed one.
                if provisional && self.durability.store().last_known_good(&unit).is_some() {
                    return;
                }
                if self.hold_last_known_good(&unit) {
                    return;
                }
                if let Some(u) = self.units.get(&unit) {
                    let id = seen.get("container_id").and_then(|v| v.as_str());
                    self.executor
                        .record_last_known_good(&self.shell, &u.spec, id);
                }
            }
        }
    }

    /// Starts a job the core launched, and tells the core it runs (its
    /// timeout starts now). A unit gone meanwhile frees the slot at once.
    fn launch(&mut self, job: medic_core::Job) {
        let now = now();
        let Some(u) = self.units.get(&job.unit) else {
            let result = crate::job::failed("the service is no longer watched");
            let (unit, job) = (job.unit, job.id);
            self.sup
                .handle_input(now, Input::Finished { unit, job, result })
                .ok();
            return;
        };
        let context = JobContext {
            incident: job.incident.clone(),
            last_known_good: self.durability.store().last_known_good(&job.unit).cloned(),
            dependents: self.units.dependent_containers(&job.unit),
            undo_deploy: self.deploying(&job.unit),
            recreate: job.recreate,
            resumed: job.resumed,
        };
        let work = self.executor.job(&u.spec, job.step, context);
        self.launcher.launch(&self.shell, &job, work);
        let launched = Input::Launched {
            unit: job.unit,
            job: job.id,
        };
        self.sup.handle_input(now, launched).ok();
    }
}
