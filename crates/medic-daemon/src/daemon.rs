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
mod rollout;
mod unit_index;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use medic_core::config::Config;
use medic_core::{Action, ActionResult, Control, Input, Supervisor};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::{WallClock, now};
use crate::executor::{Executor, JobContext};
use crate::files::FileHealth;
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::schedule::{Pacing, UnitProbes};
use crate::shell::{ControlCommand, ControlRequest, Event, Shell};
use crate::status::StatusReport;
use crate::units::{self, UnitSpec};
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
    /// Units with an action running, so shutdown can wait for them.
    in_flight: BTreeMap<String, ()>,
    /// Actions waiting for a free slot (at most `max_concurrent_actions` run at once).
    queued: std::collections::VecDeque<(String, medic_core::Step, bool)>,
    max_concurrent_actions: usize,
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
    sup.set_blind_alert_after(settings.blind_alert_after);
    let executor = Executor::new(&config)?;
    let announcer = Announcer::start(&config, &shell, clock)?;
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
        in_flight: BTreeMap::new(),
        queued: std::collections::VecDeque::new(),
        max_concurrent_actions: settings.max_concurrent_actions,
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
    daemon.executor.start_events(&shell);
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
        self.durability
            .save_history(&self.sup, now, &self.clock, false);
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
        match self.durability.store().snapshot(&spec.name, &self.clock) {
            Some(saved) if !self.sup.contains(&spec.name) => {
                self.sup.restore_unit(now, saved, spec.policy.clone());
            }
            _ => self.sup.add_unit(now, &spec.name, spec.policy.clone()),
        }
        self.durability
            .restore_history(&mut self.sup, &spec.name, now, &self.clock);
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

    /// Takes the changed units into the state store and hands it to its writer.
    fn save_store(&mut self) {
        self.durability
            .save(&self.sup, self.announcer.storm_mut(), &self.clock);
    }

    /// Continues the storm the state store kept, if any, with its members
    /// still watched and failing (see `Announcer::restore_storm`).
    fn restore_storm(&mut self) {
        let store = self.durability.store();
        let Some(saved) = store.storm(&self.clock) else {
            return;
        };
        let open = store
            .open_incidents()
            .filter(|unit| self.units.contains(unit));
        let failing = open.map(str::to_owned).collect();
        let services = self.units.len();
        if self
            .announcer
            .restore_storm(now(), saved, failing, services)
        {
            self.durability.storm_turned();
        }
    }

    /// A unit is no longer watched: the storm rule forgets it too.
    fn storm_forget(&mut self, unit: &str) {
        if self.announcer.forget(unit, self.units.len()) {
            self.durability.storm_turned();
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
            Event::Finished { unit, result } => {
                self.in_flight.remove(&unit);
                self.start_queued();
                Input::Finished { unit, result }
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

    fn control(&mut self, request: ControlRequest) {
        let now = now();
        match request {
            ControlRequest::Status { only, reply } => {
                let answer = crate::status::render(
                    &self.sup,
                    self.durability.store(),
                    &self.clock,
                    now,
                    only.as_deref(),
                    &self.storage_problems(),
                    &self.selector_status(),
                    // The last whole answer's size, so the buffer is not regrown.
                    if only.is_none() { self.status_size } else { 0 },
                );
                if only.is_none() {
                    self.status_size = answer.len() + answer.len() / 8;
                }
                reply.send(answer).ok();
            }
            ControlRequest::Reload(reply) => {
                reply.send(self.reload()).ok();
            }
            ControlRequest::Page(reply) => {
                let store = self.durability.store();
                let mut report = StatusReport::new(&self.sup, store, &self.clock, now);
                report.problems = self.storage_problems();
                let log = self.config.medic.recovery_log.clone();
                reply
                    .send(crate::page::PageSnapshot::new(report, &self.sup, now, log))
                    .ok();
            }
            ControlRequest::Metrics(reply) => {
                let units = crate::metrics::unit_infos(&self.config, self.units.specs());
                let mut text = self.metrics.render(&self.sup, now, &units);
                self.announcer.render_metrics(&mut text);
                crate::metrics::render_storage(&mut text, &self.file_healths());
                reply.send(text).ok();
            }
            ControlRequest::DeployBegin {
                unit,
                command_timeout,
                verify_timeout,
                reply,
            } => {
                let result = self.deploy_begin(now, unit, command_timeout, verify_timeout);
                reply.send(result).ok();
            }
            ControlRequest::DeployFinish {
                unit,
                result,
                reply,
            } => self.deploy_finish(now, unit, result, reply),
            ControlRequest::Resolve { name, reply } => {
                reply.send(self.resolve(&name)).ok();
            }
            ControlRequest::Forget { name, reply } => {
                reply.send(self.forget(&name)).ok();
            }
            ControlRequest::Unit {
                unit,
                control,
                reply,
            } => {
                let targets = self.resolve(&unit);
                if targets.is_empty() {
                    reply
                        .send(Err(format!("no service or instance named `{unit}`")))
                        .ok();
                    return;
                }
                let control = match control {
                    ControlCommand::Pause(duration) => Control::Pause {
                        until: duration.map(|d| now + d),
                    },
                    ControlCommand::Resume => Control::Resume,
                    ControlCommand::Reset => Control::Reset,
                    ControlCommand::Recover => Control::Recover,
                };
                for unit in targets {
                    self.sup
                        .handle_input(now, Input::Control { unit, control })
                        .ok();
                }
                reply.send(Ok(())).ok();
            }
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
                Action::Restart { .. } | Action::Rollback { .. } => jobs.push(action),
                action => self.act(action),
            }
        }
        self.durability
            .persist(jobs, &self.sup, self.announcer.storm_mut(), &self.clock);
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Log(mut event) => {
                let now = now();
                self.deploy_event(now, &mut event);
                self.metrics.event(&event.service, event.kind);
                self.durability.logged(&event.service, event.kind);
                if self.announcer.log(now, event, self.units.len()) {
                    self.durability.storm_turned();
                }
            }
            Action::Alert(alert) => self.announcer.alert(now(), alert),
            Action::Restart {
                unit,
                attempt,
                recreate,
                ..
            } => {
                self.start_action(unit, medic_core::Step::Restart(attempt), recreate);
            }
            Action::Rollback { unit, recreate, .. } => {
                self.start_action(unit, medic_core::Step::Rollback, recreate);
            }
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

    /// Every file written in the background and whether it is writable.
    /// In the order of the `medic_file_writable` series and of status problems:
    /// the two journals, the state files, the outbox.
    fn file_healths(&self) -> Vec<&FileHealth> {
        let mut all: Vec<&FileHealth> = self.announcer.healths().collect();
        all.splice(2..2, self.durability.healths());
        all
    }

    /// "recovery log not writable: No space left on device", one per file that is not.
    fn storage_problems(&self) -> Vec<String> {
        let lock = self.lock.problem().map(str::to_owned);
        lock.into_iter()
            .chain(self.file_healths().iter().filter_map(|h| h.problem()))
            .collect()
    }

    /// Starts a restart or rollback job, or queues it while `max_concurrent_actions`
    /// run or while this unit's previous job (one the core gave up on) still runs.
    fn start_action(&mut self, unit: String, step: medic_core::Step, recreate: bool) {
        if self.in_flight.len() >= self.max_concurrent_actions || self.in_flight.contains_key(&unit)
        {
            tracing::info!(%unit, running = self.in_flight.len(), "Action queued");
            self.queued.push_back((unit, step, recreate));
            return;
        }
        self.launch(unit, step, recreate);
    }

    /// Starts queued jobs while there is room. One whose unit is no longer
    /// watched (removed by a reload) is dropped, so the queue never stalls on it;
    /// one whose unit still has a job running keeps its place.
    fn start_queued(&mut self) {
        let mut kept = std::collections::VecDeque::new();
        while self.in_flight.len() < self.max_concurrent_actions
            && let Some((unit, step, recreate)) = self.queued.pop_front()
        {
            if !self.units.contains(&unit) {
                tracing::info!(%unit, "Queued action dropped: the service is no longer watched");
            } else if self.in_flight.contains_key(&unit) {
                kept.push_back((unit, step, recreate));
            } else {
                self.launch(unit, step, recreate);
            }
        }
        kept.append(&mut self.queued);
        self.queued = kept;
    }

    fn launch(&mut self, unit: String, step: medic_core::Step, recreate: bool) {
        let Some(u) = self.units.get(&unit) else {
            return;
        };
        let context = JobContext {
            last_known_good: self.durability.store().last_known_good(&unit).cloned(),
            dependents: self.units.dependents_of(&unit),
            undo_deploy: self.deploying(&unit),
            recreate,
        };
        self.in_flight.insert(unit.clone(), ());
        let job = self.executor.job(&u.spec, step, context);
        let events = self.shell.events.clone();
        let cancel = self.shell.cancel.clone();
        self.shell.tracker.spawn(async move {
            let result = tokio::select! {
                result = job => result,
                () = cancel.cancelled() => ActionResult::Interrupted,
            };
            events.send(Event::Finished { unit, result }).await.ok();
        });
    }

    /// Stops probes, lets running actions finish within the grace period, logs
    /// the rest as interrupted, and saves the store.
    async fn shutdown(mut self, events_rx: &mut mpsc::Receiver<Event>) -> anyhow::Result<()> {
        tracing::info!(running_actions = self.in_flight.len(), "Shutting down");
        self.units.stop_probes();
        let deadline = Instant::now() + self.shutdown_grace;
        while !self.in_flight.is_empty() {
            match tokio::time::timeout_at(deadline, events_rx.recv()).await {
                Ok(Some(event @ Event::Finished { .. })) => self.handle(event),
                Ok(Some(Event::LastKnownGood { unit, spec, .. })) => {
                    self.durability.set_last_known_good(&unit, spec);
                }
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
            while let Some(action) = self.sup.poll_action() {
                // Only record what happened; start nothing new while stopping.
                match action {
                    Action::Log(_) | Action::Alert(_) => self.act(action),
                    _ => {}
                }
            }
        }
        let now = now();
        let queued = std::mem::take(&mut self.queued)
            .into_iter()
            .map(|(unit, _, _)| unit);
        for unit in std::mem::take(&mut self.in_flight)
            .into_keys()
            .chain(queued)
        {
            let input = Input::Finished {
                unit,
                result: ActionResult::Interrupted,
            };
            self.sup.handle_input(now, input).ok();
        }
        while let Some(action) = self.sup.poll_action() {
            if let Action::Log(_) | Action::Alert(_) = action {
                self.act(action);
            }
        }
        // The writers write what they hold, then stop; the tracker waits for them.
        self.durability
            .close(&self.sup, self.announcer.storm_mut(), now, &self.clock);
        self.announcer.close();
        self.shell.cancel.cancel();
        self.shell.tracker.close();
        let wait = self.shutdown_grace.max(Duration::from_secs(1));
        if tokio::time::timeout(wait, self.shell.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("Some tasks did not stop in time");
        }
        Ok(())
    }
}
