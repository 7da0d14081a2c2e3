//! The supervisor loop: one `select!` over probe observations, action results,
//! control commands and the core's next deadline. It owns the core and the
//! state store's contents; everything slow runs in tracked tasks that report
//! back, and everything written to disk goes to a writer task (`journal.rs`,
//! `saver.rs`), so the loop never waits for the disk.

mod deploy;
mod instances;
mod reload;
mod rollout;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;
use medic_core::config::Config;
use medic_core::storm::Change;
use medic_core::supervisor::MEDIC_UNIT;
use medic_core::{
    Action, ActionResult, Control, EventKind, Input, Observation, Severity, Supervisor,
};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::WallClock;
use crate::executor::{Executor, JobContext};
use crate::files::FileHealth;
use crate::history::{HistoryFile, HistoryStore};
use crate::journal::{AlertLine, Journal, Limit, RecoveryLine};
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::saver::Saver;
use crate::schedule::{Pacing, UnitProbes};
use crate::status::StatusReport;
use crate::store::{SharedStoreFile, Store};
use crate::units::{self, UnitSpec, UnitTarget};

use crate::shell::{ControlCommand, ControlRequest, Event, Shell};

struct Unit {
    spec: UnitSpec,
    probes: UnitProbes,
    /// What the container's labels say (selector instances only).
    labels: instances::InstanceLabels,
}

/// The running daemon's state, owned by the supervisor loop.
struct Daemon {
    config: Config,
    /// The file the config came from; None for the embedded default (nothing to reload).
    config_path: Option<PathBuf>,
    notifier: Notifier,
    metrics: Metrics,
    sup: Supervisor,
    store: Store,
    clock: WallClock,
    recovery: Journal,
    alerts: Journal,
    /// The `[[alert]]` sinks every alert line is also handed to.
    sinks: crate::alerts::Sinks,
    /// Boxed: a B-tree node holds eleven slots, mostly empty ones for large values.
    units: BTreeMap<String, Box<Unit>>,
    executor: Executor,
    shell: Shell,
    /// Deploys in progress, by unit.
    deploys: BTreeMap<String, deploy::PendingDeploy>,
    /// Deploys of several instances in progress, by the name the person gave.
    rollouts: BTreeMap<String, rollout::Rollout>,
    /// The discovery task of each selector service, stopped when a reload replaces it.
    discoveries: BTreeMap<String, CancellationToken>,
    /// Units with an action running, so shutdown can wait for them.
    in_flight: BTreeMap<String, ()>,
    /// Actions waiting for a free slot (at most `max_concurrent_actions` run at once).
    queued: std::collections::VecDeque<(String, medic_core::Step, bool)>,
    max_concurrent_actions: usize,
    /// What the probe tasks share.
    pacing: Arc<Pacing>,
    /// Units whose recovery state changed since the store was last handed to its writer.
    store_changed: HashSet<String>,
    /// Every unit must be taken into the store (start, reload).
    store_all: bool,
    /// When the store is next handed to its writer, if anything changed.
    save_by: Option<Instant>,
    /// When it was last handed over: at most once per `SAVE_EVERY`.
    store_saved: Instant,
    store_saver: Saver<SharedStoreFile>,
    /// The number of the newest store save the writer has finished.
    store_written: tokio::sync::watch::Receiver<u64>,
    /// What must survive a kill -9 at once: the store's change lines.
    store_changes: Journal,
    /// A storm began or ended since the last change line: the next one carries it.
    storm_turned: bool,
    /// The number of the newest change line its writer has finished.
    changes_written: tokio::sync::watch::Receiver<u64>,
    /// Restarts and rollbacks waiting for the save or change line that records them.
    after_save: Vec<(Persisted, Action)>,
    /// The next save goes to the writer at the end of this drain (see `survives_a_crash_at_once`).
    save_urgent: bool,
    /// The availability history file and when it was last written.
    history: HistoryStore,
    history_saver: Saver<HistoryFile>,
    history_saved: Instant,
    /// Units by the container they watch, so a Docker event finds its units at once.
    containers: HashMap<String, Vec<String>>,
    /// Units by the unit whose network namespace they join (`dependents_of`).
    namespace_children: HashMap<String, Vec<String>>,
    /// Many services failing at once: one summary and one alert instead of thousands.
    storm: medic_core::storm::Storm,
    /// Per-service lines on stderr, a few a second (the recovery log has them all).
    lines: medic_core::storm::LineBudget,
    /// The sinks were told that files are not writable (told once, then once when they are).
    unwritable: bool,
    /// One daemon per state_dir (see `lock.rs`), held while the daemon runs.
    lock: crate::lock::StateLock,
    alert_seq: u64,
    shutdown_grace: Duration,
    /// About the size of the last status answer about every unit (see `control`).
    status_size: usize,
    /// Per selector service, what its last discovery round saw (see `sight`).
    sights: BTreeMap<String, Result<usize, String>>,
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
    let store = Store::open(&settings.state_dir, Timestamp::now())?;
    let history = HistoryStore::open(&settings.state_dir)?;
    let (events_tx, mut events_rx) = mpsc::channel(1024);
    let shell = Shell {
        events: events_tx,
        tracker: TaskTracker::new(),
        cancel: CancellationToken::new(),
    };
    let rotate = Limit::Rotate {
        max_size: settings.journal_max_size,
        keep: settings.journal_keep,
    };
    let recovery = Journal::start(
        &settings.recovery_log,
        "recovery log",
        rotate,
        &shell.tracker,
    );
    let alerts = Journal::start(&settings.alerts_file, "alerts file", rotate, &shell.tracker);
    let store_saver = Saver::start(
        store.path().to_owned(),
        "state store",
        SAVE_EVERY,
        &shell.tracker,
    );
    let store_changes = Journal::start(
        &crate::store::changes_path(&settings.state_dir),
        "state changes",
        Limit::Compact {
            max_size: CHANGES_MAX_SIZE,
            compact: crate::store::compact_changes,
        },
        &shell.tracker,
    );
    let history_saver = Saver::start(
        history.path().to_owned(),
        "availability history",
        SAVE_EVERY,
        &shell.tracker,
    );
    let mut sup = Supervisor::new(store.file.incident_prefix.clone(), store.file.next_incident);
    sup.set_blind_alert_after(settings.blind_alert_after);
    let executor = Executor::new(&config)?;
    let sinks = crate::alerts::Sinks::start(&config, &shell)?;
    crate::digest::start(&config, &shell);
    let mut daemon = Daemon {
        // Moved, not cloned: 10,000 services make a config of several MiB.
        config,
        config_path,
        notifier: Notifier::from_env(),
        metrics: Metrics::default(),
        sup,
        store,
        clock,
        recovery,
        alerts,
        sinks,
        units: BTreeMap::new(),
        executor,
        shell: shell.clone(),
        deploys: BTreeMap::new(),
        rollouts: BTreeMap::new(),
        discoveries: BTreeMap::new(),
        in_flight: BTreeMap::new(),
        queued: std::collections::VecDeque::new(),
        max_concurrent_actions: settings.max_concurrent_actions,
        pacing: Arc::new(Pacing::new(settings.max_concurrent_probes)),
        store_changed: HashSet::new(),
        store_all: true,
        save_by: Some(Instant::now()),
        store_saved: Instant::now(),
        store_written: store_saver.finished(),
        changes_written: store_changes.finished(),
        store_changes,
        storm_turned: false,
        after_save: Vec::new(),
        save_urgent: false,
        store_saver,
        history,
        history_saver,
        history_saved: Instant::now(),
        containers: HashMap::new(),
        namespace_children: HashMap::new(),
        storm: medic_core::storm::Storm::new(settings.storm),
        lines: medic_core::storm::LineBudget::default(),
        unwritable: false,
        lock,
        alert_seq: 0,
        shutdown_grace: settings.shutdown_grace,
        status_size: 0,
        sights: BTreeMap::new(),
    };
    let known: Vec<String> = daemon.store.file.units.keys().cloned().collect();
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    for spec in units::plan(&daemon.config, &daemon.executor, &known)? {
        daemon.add_unit(spec);
    }
    daemon.restore_storm();
    daemon.executor.start_events(&shell);
    let services: Vec<String> = daemon
        .config
        .services
        .iter()
        .filter(|s| instances::discovers(s))
        .map(|s| s.name.clone())
        .collect();
    for service in services {
        daemon.start_discovery(&service);
    }
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
            _ = heartbeat.tick() => {
                let summary = daemon.summary();
                daemon.notifier.alive(&summary);
                daemon.save_history(false);
                daemon.storm_summary();
                daemon.held_lines(now());
                daemon.check_storage();
            }
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
            () = sleep_until(daemon.save_by) => { daemon.save_store(); }
            Ok(()) = daemon.store_written.changed() => daemon.start_saved_jobs(),
            Ok(()) = daemon.changes_written.changed() => daemon.start_saved_jobs(),
        }
        daemon.drain();
        if !ready && daemon.sup.all_observed() && daemon.discovered() {
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

/// Each state file is written at most this often: a change waits at most
/// this long, and 10,000 changes in a second are one write.
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// `state.changes.jsonl` is rewritten without the lines `state.json` holds past this size.
const CHANGES_MAX_SIZE: u64 = 1024 * 1024;

/// What a restart or rollback waits for before it starts: the state that
/// records it on disk, in a whole save or in a change line (by number).
#[derive(Debug, Clone, Copy)]
enum Persisted {
    Save(u64),
    Change(u64),
}
/// How often the availability history is written.
const HISTORY_EVERY: Duration = Duration::from_secs(60);

/// How often the STATUS line is refreshed when no watchdog asks for more.
const STATUS_EVERY: Duration = Duration::from_secs(5);

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
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

    /// Hands the availability history to its writer at most once a minute, or now when `force`d.
    fn save_history(&mut self, force: bool) {
        if !force && self.history_saved.elapsed() < HISTORY_EVERY {
            return;
        }
        self.history_saved = Instant::now();
        let now = now();
        let file = self
            .history
            .snapshot(&self.sup, now, self.clock.to_wall(now));
        self.history_saver.save(file);
    }

    fn add_unit(&mut self, mut spec: UnitSpec) {
        if self.units.contains_key(&spec.name) {
            return;
        }
        let now = now();
        // A unit the supervisor knows (a reload) keeps its state under the new policy.
        match self.store.snapshot(&spec.name, &self.clock) {
            Some(saved) if !self.sup.contains(&spec.name) => {
                self.sup.restore_unit(now, saved, spec.policy.clone());
            }
            _ => self.sup.add_unit(now, &spec.name, spec.policy.clone()),
        }
        self.history
            .restore(&mut self.sup, &spec.name, now, self.clock.to_wall(now));
        self.sup
            .set_dependencies(&spec.name, spec.depends_on.clone());
        let probes = UnitProbes::spawn(
            &self.shell,
            &self.pacing,
            &spec.name,
            std::mem::take(&mut spec.checks),
        );
        if let UnitTarget::Container { container, .. } = &spec.target {
            index_add(&mut self.containers, container, &spec.name);
        }
        if let Some(parent) = &spec.namespace_parent {
            index_add(&mut self.namespace_children, parent, &spec.name);
        }
        self.store_changed.insert(spec.name.clone());
        let labels = instances::InstanceLabels::default();
        self.units.insert(
            spec.name.clone(),
            Box::new(Unit {
                spec,
                probes,
                labels,
            }),
        );
        self.save_soon();
    }

    /// Stops watching a unit's probes and forgets its container (reload).
    fn drop_unit(&mut self, name: &str) {
        let Some(unit) = self.units.remove(name) else {
            return;
        };
        unit.probes.stop();
        if let UnitTarget::Container { container, .. } = &unit.spec.target {
            index_remove(&mut self.containers, container, name);
        }
        if let Some(parent) = &unit.spec.namespace_parent {
            index_remove(&mut self.namespace_children, parent, name);
        }
    }

    /// Hands the state store to its writer as soon as `SAVE_EVERY` allows.
    fn save_soon(&mut self) {
        let at = (self.store_saved + SAVE_EVERY).max(Instant::now());
        self.save_by.get_or_insert(at);
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
                self.sinks.send_to(&sinks, &line);
                return;
            }
            Event::LastKnownGood {
                unit,
                spec,
                namespace_parent,
            } => {
                self.store.set_last_known_good(&unit, spec);
                if let Some(parent) = namespace_parent {
                    self.follow_namespace(&unit, &parent);
                }
                self.save_soon();
                return;
            }
            Event::ContainerChanged { container, action } => {
                tracing::debug!(%container, %action, "Docker event");
                let names = self
                    .containers
                    .get(&container)
                    .map_or(&[][..], Vec::as_slice);
                for name in names {
                    if let Some(unit) = self.units.get(name) {
                        unit.probes.check_container();
                    }
                }
                let watched = !names.is_empty();
                if !watched && matches!(action.as_str(), "create" | "start" | "rename") {
                    self.executor.rediscover();
                }
                return;
            }
            Event::EngineReconnected => {
                for unit in self.units.values() {
                    if matches!(unit.spec.target, UnitTarget::Container { .. }) {
                        unit.probes.check_container();
                    }
                }
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

    /// Makes `unit` depend on the unit watching `parent_container`, whose network
    /// namespace it joins: held while the parent fails, restarted after it.
    fn follow_namespace(&mut self, unit: &str, parent_container: &str) {
        let parent = self
            .containers
            .get(parent_container)
            .and_then(|names| names.iter().find(|n| *n != unit).cloned());
        let Some(parent) = parent else {
            return;
        };
        if let Some(u) = self.units.get_mut(unit)
            && u.spec.namespace_parent.as_deref() != Some(parent.as_str())
        {
            tracing::info!(%unit, %parent, "Shares the network namespace of its parent: follows its restarts");
            if let Some(before) = u.spec.namespace_parent.replace(parent.clone()) {
                index_remove(&mut self.namespace_children, &before, unit);
            }
            index_add(&mut self.namespace_children, &parent, unit);
            let mut dependencies = u.spec.depends_on.clone();
            dependencies.push(parent);
            self.sup.set_dependencies(unit, dependencies);
        }
    }

    /// A selector service's discovery round. While its engine cannot list
    /// instances and none is watched, a placeholder unit named after the
    /// service stands in, blind with the reason: status says `unknown` (and the
    /// blind alert fires) instead of "healthy" over nothing. It gives way to the
    /// instances once the engine answers. Changes are logged in one line.
    fn sight(&mut self, now: std::time::Instant, service: String, sight: Result<usize, String>) {
        let Some(config) = self.config.services.iter().find(|s| s.name == service) else {
            return;
        };
        let what = units::selector_words(config);
        let changed = match (self.sights.get(&service), &sight) {
            (Some(Ok(before)), Ok(count)) => before != count,
            (Some(Err(_)), Err(_)) => false,
            _ => true,
        };
        match &sight {
            Err(reason) => {
                if changed {
                    tracing::warn!(
                        "{service}: {reason}: medic cannot see the {what}, so it watches none of them \
                         until the engine answers (status: unknown)"
                    );
                }
                let prefix = format!("{service}/");
                if !self.units.keys().any(|u| u.starts_with(&prefix)) {
                    if !self.units.contains_key(&service) {
                        self.add_unit(units::placeholder(config));
                    }
                    let observation = Observation::blind(Duration::ZERO, reason.clone());
                    let input = Input::Observed {
                        unit: service.clone(),
                        probe: 0,
                        observation,
                    };
                    self.sup.handle_input(now, input).ok();
                }
            }
            Ok(count) => {
                if changed {
                    tracing::info!("{service}: watching {count} {what}");
                }
                if let Some(placeholder) = self.units.remove(&service) {
                    placeholder.probes.stop();
                    self.sup.remove_unit(now, &service);
                    self.metrics.forget(&service);
                }
            }
        }
        self.sights.insert(service, sight);
    }

    /// Every selector service's discovery has reported once: before that, no
    /// unit yet is not "all observed", and READY=1 would claim a watch that
    /// has not begun.
    fn discovered(&self) -> bool {
        self.discoveries.keys().all(|s| self.sights.contains_key(s))
    }

    /// What each selector service's last discovery round saw, for status.
    fn selector_status(&self) -> Vec<crate::status::SelectorStatus> {
        self.sights
            .iter()
            .filter_map(|(service, sight)| {
                let config = self.config.services.iter().find(|s| &s.name == service)?;
                let what = units::selector_words(config);
                Some(crate::status::SelectorStatus {
                    service: service.clone(),
                    watching: sight.as_ref().ok().copied(),
                    message: match sight {
                        Ok(count) => format!("watching {count} {what}"),
                        Err(reason) => format!("{reason}: watching none of the {what}"),
                    },
                })
            })
            .collect()
    }

    fn control(&mut self, request: ControlRequest) {
        let now = now();
        match request {
            ControlRequest::Status { only, reply } => {
                let answer = crate::status::render(
                    &self.sup,
                    &self.store,
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
                let mut report = StatusReport::new(&self.sup, &self.store, &self.clock, now);
                report.problems = self.storage_problems();
                let log = self.config.medic.recovery_log.clone();
                reply
                    .send(crate::page::PageSnapshot::new(report, &self.sup, now, log))
                    .ok();
            }
            ControlRequest::Metrics(reply) => {
                let units =
                    crate::metrics::unit_infos(&self.config, self.units.values().map(|u| &u.spec));
                let mut text = self.metrics.render(&self.sup, now, &units);
                self.sinks.render_metrics(&mut text);
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
                Action::Restart { ref unit, .. } | Action::Rollback { ref unit, .. } => {
                    self.store_changed.insert(unit.clone());
                    jobs.push(action);
                }
                action => self.act(action),
            }
        }
        if !jobs.is_empty() || std::mem::take(&mut self.save_urgent) {
            let persisted = self.persist_now();
            self.after_save
                .extend(jobs.into_iter().map(|job| (persisted, job)));
        }
    }

    /// Puts what changed on disk at once, without a whole save: the changed
    /// units go into a change line (the whole store follows within
    /// `SAVE_EVERY`). At start and after a reload, when every unit is taken
    /// into the store, the whole store is saved at once instead. The restarts
    /// and rollbacks waiting for it start when it is written.
    fn persist_now(&mut self) -> Persisted {
        if self.store_all {
            self.store_saver.urgent();
            return Persisted::Save(self.save_store());
        }
        let changed: Vec<_> = std::mem::take(&mut self.store_changed)
            .into_iter()
            .map(|name| {
                let snapshot = self.sup.unit_snapshot(&name);
                (name, snapshot)
            })
            .collect();
        // A storm that began or ended goes with the line, as it is now.
        let storm = std::mem::take(&mut self.storm_turned).then(|| {
            self.store.set_storm(self.storm.saved(), &self.clock);
            self.store.file.storm.clone().unwrap_or_default()
        });
        let line = self
            .store
            .change(changed, self.sup.next_incident(), storm, &self.clock);
        let number = self.store_changes.append(&line);
        self.save_soon();
        Persisted::Change(number)
    }

    /// Starts the restarts and rollbacks whose state the writer has put on
    /// disk (or failed to: a full disk must not stop recovery).
    fn start_saved_jobs(&mut self) {
        let written = *self.store_written.borrow_and_update();
        let changes = *self.changes_written.borrow_and_update();
        let ready: Vec<Action> = {
            let (ready, waiting) = std::mem::take(&mut self.after_save)
                .into_iter()
                .partition::<Vec<_>, _>(|(persisted, _)| match *persisted {
                    Persisted::Save(number) => number <= written,
                    Persisted::Change(number) => number <= changes,
                });
            self.after_save = waiting;
            ready.into_iter().map(|(_, job)| job).collect()
        };
        for job in ready {
            self.act(job);
        }
    }

    /// Takes the changed units into the state store and hands it to its
    /// writer; returns the save's number (see [`Saver::finished`]).
    fn save_store(&mut self) -> u64 {
        self.save_by = None;
        self.store_saved = Instant::now();
        if std::mem::take(&mut self.store_all) {
            self.store
                .update(self.sup.snapshot(), self.sup.next_incident(), &self.clock);
            self.store_changed.clear();
        }
        for name in std::mem::take(&mut self.store_changed) {
            let snapshot = self.sup.unit_snapshot(&name);
            self.store.update_unit(&name, snapshot, &self.clock);
        }
        self.store.set_next_incident(self.sup.next_incident());
        if self.storm.take_changed() {
            self.store.set_storm(self.storm.saved(), &self.clock);
        }
        self.store_saver.save(self.store.shared())
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Log(mut event) => {
                self.deploy_event(now(), &mut event);
                self.metrics.event(&event.service, event.kind);
                self.storm_track(&event);
                let (service, kind) = (&event.service, event.kind.as_str());
                let incident = event.incident.as_deref().unwrap_or("");
                if !self.loud() {
                    // In a storm, or past a few a second, the per-service lines are
                    // in the recovery log; stderr gets the counts (`storm_summary`, `held_lines`).
                    tracing::debug!(%service, event = kind, incident, "{}", event.message);
                } else if is_trouble(event.kind) {
                    tracing::warn!(%service, event = kind, incident, "{}", event.message);
                } else {
                    tracing::info!(%service, event = kind, incident, "{}", event.message);
                }
                self.store_changed.insert(event.service.clone());
                self.save_soon();
                // An incident opened or ended, an attempt or a pause must survive a
                // kill -9 at once (a resumed incident would act or alert again):
                // they go into a change line at the end of this drain (`persist_now`).
                self.save_urgent |= survives_a_crash_at_once(event.kind);
                let line = RecoveryLine::new(Timestamp::now(), event);
                self.recovery.append(&line);
            }
            Action::Alert(alert) => {
                let held = self.storm.holds(&alert.service, alert.resolved);
                if held || !self.loud() {
                    tracing::debug!(service = %alert.service, kind = alert.kind, "{}", alert.message);
                } else if alert.severity == Severity::Critical {
                    tracing::error!(service = %alert.service, kind = alert.kind, "{}", alert.message);
                } else {
                    tracing::warn!(service = %alert.service, kind = alert.kind, "{}", alert.message);
                }
                let line = self.alert_line(alert);
                self.alerts.append(&line);
                // In a storm the sinks get the storm's own alert, not one per service.
                if !held {
                    self.sinks.send(&line);
                }
            }
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
                if provisional && self.store.last_known_good(&unit).is_some() {
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

    /// Stamps an alert with the wall-clock time and a unique id.
    pub(super) fn alert_line(&mut self, alert: medic_core::Alert) -> AlertLine {
        self.alert_seq += 1;
        let ts = Timestamp::now();
        let id = format!("{}-{}", ts.as_millisecond(), self.alert_seq);
        AlertLine::new(ts, id, alert)
    }

    /// Writes one of medic's own alerts (a storm, a file it cannot write) and
    /// hands it to the sinks.
    fn medic_alert(
        &mut self,
        kind: &'static str,
        message: String,
        evidence: medic_core::Evidence,
        resolved: bool,
    ) {
        let alert = medic_core::Alert {
            service: MEDIC_UNIT.to_owned(),
            severity: if resolved {
                Severity::Info
            } else {
                Severity::Critical
            },
            kind,
            incident: None,
            message,
            evidence,
            resolved,
        };
        if resolved {
            tracing::info!(kind, "{}", alert.message);
        } else {
            tracing::warn!(kind, "{}", alert.message);
        }
        let line = self.alert_line(alert);
        self.alerts.append(&line);
        self.sinks.send(&line);
    }

    /// Feeds incidents opening and closing to the storm rule; says when a storm begins or ends.
    fn storm_track(&mut self, event: &medic_core::RecoveryEvent) {
        let services = self.units.len();
        let change = match event.kind {
            EventKind::Failing => {
                self.storm
                    .failed(now(), &event.service, &event.message, services)
            }
            EventKind::Recovered | EventKind::RolledBack | EventKind::Reset => {
                self.storm.recovered(&event.service, services)
            }
            _ => None,
        };
        self.storm_changed(change);
    }

    /// Continues the storm the state store kept, if any: its members stay
    /// held, and the sinks get its resolving line when it ends (at once when
    /// most incidents closed while medic was down).
    fn restore_storm(&mut self) {
        let Some(saved) = self.store.storm(&self.clock) else {
            return;
        };
        let failing: Vec<String> = self
            .store
            .open_incidents()
            .filter(|unit| self.units.contains_key(*unit))
            .map(str::to_owned)
            .collect();
        let change = self.storm.restore(now(), saved, failing, self.units.len());
        if let Some(active) = self.storm.active() {
            tracing::warn!(
                "A storm continues after a restart of medic: {}",
                self.storm_line(active)
            );
        }
        self.storm_changed(change);
    }

    /// Tells people that a storm began or ended.
    fn storm_changed(&mut self, change: Option<Change>) {
        if change.is_some() {
            // A restarted medic must find it at once, or it would alert again.
            self.storm_turned = true;
            self.save_urgent = true;
        }
        match change {
            Some(Change::Began(active)) => {
                let message = self.storm_line(&active);
                let mut evidence = medic_core::Evidence::new();
                evidence.insert("failing".into(), active.failing.into());
                let first: Vec<String> = active
                    .first
                    .iter()
                    .map(|(u, r)| format!("{u}: {r}"))
                    .collect();
                evidence.insert("first".into(), first.into());
                if let Some(page) = self.status_page() {
                    evidence.insert("status_page".into(), page.into());
                }
                self.medic_alert("storm", message, evidence, false);
            }
            Some(Change::Ended {
                since,
                failed,
                still_failing,
            }) => {
                let mut evidence = medic_core::Evidence::new();
                evidence.insert("failed".into(), failed.into());
                evidence.insert("still_failing".into(), still_failing.into());
                let message = format!(
                    "storm over: {} of {failed} services that failed since {} are back, {still_failing} still failing",
                    failed.saturating_sub(still_failing),
                    self.clock_time(since),
                );
                self.medic_alert("storm", message, evidence, true);
            }
            None => {}
        }
    }

    /// Whether a per-service line goes to stderr: not in a storm, and only
    /// within the budget of a few a second.
    fn loud(&mut self) -> bool {
        if self.storm.active().is_some() {
            return false;
        }
        let now = now();
        self.held_lines(now);
        self.lines.admit(now)
    }

    /// Tells stderr how many per-service lines it was spared, once their second is over.
    fn held_lines(&mut self, now: std::time::Instant) {
        if let Some(held) = self.lines.held(now) {
            tracing::warn!(
                "{} more service events since {} are in the recovery log only ({}; stderr shows {} a second)",
                held.lines,
                self.clock_time(held.since),
                self.config.medic.recovery_log.display(),
                medic_core::storm::LINES_PER_SECOND,
            );
        }
    }

    /// Repeats the storm's summary on stderr while its count changes, at most every 30 s.
    fn storm_summary(&mut self) {
        if let Some(active) = self.storm.summary_due(now()).cloned() {
            tracing::warn!("{}", self.storm_line(&active));
        }
    }

    /// "9482 services failing since 14:10:24 UTC: first ep17 (HTTP 404), …; status page http://…/"
    fn storm_line(&self, active: &medic_core::storm::Active) -> String {
        let first: Vec<String> = active
            .first
            .iter()
            .map(|(u, r)| format!("{u} ({r})"))
            .collect();
        let page = self
            .status_page()
            .map(|p| format!("; status page {p}"))
            .unwrap_or_default();
        format!(
            "{} services failing since {}: first {}, …{page}",
            active.failing,
            self.clock_time(active.since),
            first.join(", "),
        )
    }

    fn clock_time(&self, at: std::time::Instant) -> String {
        self.clock.to_wall(at).strftime("%H:%M:%S UTC").to_string()
    }

    fn status_page(&self) -> Option<String> {
        self.config
            .medic
            .metrics_listen
            .as_ref()
            .map(|l| format!("http://{l}/"))
    }

    /// Every file written in the background and whether it is writable.
    fn file_healths(&self) -> Vec<&FileHealth> {
        let mut out = vec![
            self.recovery.health().as_ref(),
            self.alerts.health().as_ref(),
            self.store_saver.health().as_ref(),
            self.store_changes.health().as_ref(),
            self.history_saver.health().as_ref(),
        ];
        out.extend(self.sinks.outbox().map(|o| o.health().as_ref()));
        out
    }

    /// "recovery log not writable: No space left on device", one per file that is not.
    fn storage_problems(&self) -> Vec<String> {
        let lock = self.lock.problem().map(str::to_owned);
        lock.into_iter()
            .chain(self.file_healths().iter().filter_map(|h| h.problem()))
            .collect()
    }

    /// Tells the alert sinks once when files become unwritable, and once when
    /// all are writable again.
    fn check_storage(&mut self) {
        let problems = self.storage_problems();
        match (problems.is_empty(), self.unwritable) {
            (false, false) => {
                self.unwritable = true;
                let mut evidence = medic_core::Evidence::new();
                evidence.insert("problems".into(), problems.clone().into());
                let message = format!(
                    "{}; medic keeps supervising and retries",
                    problems.join("; ")
                );
                self.medic_alert("storage", message, evidence, false);
            }
            (true, true) => {
                self.unwritable = false;
                let message = "medic's files are writable again; the lines that waited are written"
                    .to_owned();
                self.medic_alert("storage", message, medic_core::Evidence::new(), true);
            }
            _ => {}
        }
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
            if !self.units.contains_key(&unit) {
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
            last_known_good: self.store.last_known_good(&unit).cloned(),
            dependents: self.dependents_of(&unit),
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

    /// Units that share this one's network namespace and must follow it when it is recreated.
    fn dependents_of(&self, unit: &str) -> Vec<UnitSpec> {
        self.namespace_children
            .get(unit)
            .into_iter()
            .flatten()
            .filter_map(|child| self.units.get(child))
            .map(|u| u.spec.clone())
            .collect()
    }

    /// Stops probes, lets running actions finish within the grace period, logs
    /// the rest as interrupted, and saves the store.
    async fn shutdown(mut self, events_rx: &mut mpsc::Receiver<Event>) -> anyhow::Result<()> {
        tracing::info!(running_actions = self.in_flight.len(), "Shutting down");
        for unit in self.units.values() {
            unit.probes.stop();
        }
        let deadline = Instant::now() + self.shutdown_grace;
        while !self.in_flight.is_empty() {
            match tokio::time::timeout_at(deadline, events_rx.recv()).await {
                Ok(Some(event @ Event::Finished { .. })) => self.handle(event),
                Ok(Some(Event::LastKnownGood { unit, spec, .. })) => {
                    self.store.set_last_known_good(&unit, spec);
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
        self.store_all = true;
        self.save_store();
        self.save_history(true);
        // The writers write what they hold, then stop; the tracker waits for them.
        self.store_saver.close();
        self.store_changes.close();
        self.history_saver.close();
        self.recovery.close();
        self.alerts.close();
        if let Some(outbox) = self.sinks.outbox() {
            outbox.close();
        }
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

/// Adds `name` to the units filed under `key` (an index from a container or a
/// parent to units).
fn index_add(index: &mut HashMap<String, Vec<String>>, key: &str, name: &str) {
    index
        .entry(key.to_owned())
        .or_default()
        .push(name.to_owned());
}

/// Removes `name` from the units filed under `key`, and `key` once none is left.
fn index_remove(index: &mut HashMap<String, Vec<String>>, key: &str, name: &str) {
    if let Some(names) = index.get_mut(key) {
        names.retain(|n| n != name);
        if names.is_empty() {
            index.remove(key);
        }
    }
}

/// Recovery events whose state change a restarted medic must find at once
/// (a change line, see `persist_now`): an incident opened or closed, a step taken, a pause.
fn survives_a_crash_at_once(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::Failing
            | EventKind::RestartDone
            | EventKind::RestartFailed
            | EventKind::Recovered
            | EventKind::RollbackDone
            | EventKind::RollbackFailed
            | EventKind::RolledBack
            | EventKind::Escalated
            | EventKind::Paused
            | EventKind::Resumed
            | EventKind::Reset
            | EventKind::Removed
            | EventKind::DeployStarted
            | EventKind::DeployDone
            | EventKind::DeployFailed
            | EventKind::Deployed
            | EventKind::Flapping
            | EventKind::FlappingEnded
    )
}

/// Recovery events that mean something is wrong: logged as warnings, so they
/// reach the journal at priority 4 (`journalctl -p warning -u medic`).
fn is_trouble(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::Failing
            | EventKind::RestartFailed
            | EventKind::RollbackFailed
            | EventKind::Escalated
            | EventKind::Blind
            | EventKind::Stale
            | EventKind::Interrupted
            | EventKind::DeployFailed
            | EventKind::Flapping
    )
}
