//! The supervisor: every unit's state machine behind one sans-IO interface.
//! Inputs and the current time go in; actions and the next deadline come out.
//! It owns the action slots: a decided restart or rollback waits in its queue
//! until a slot is free and comes out as [`Action::Launch`]; a queued one whose
//! reason went is dropped, and nothing launches once medic stops. It owns
//! the storm rule too: every incident opened or closed feeds it, its news
//! comes out as [`Action::Storm`] and the alerts it holds carry `held`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;

use crate::availability::{Availability, History};
use crate::machine::{Ctx, Machine, Phase, UnitStatus};
use crate::notice::Notice;
use crate::observation::Evidence;
use crate::policy::Policy;
use crate::slots::Slots;
use crate::snapshot::UnitSnapshot;
use crate::storm::{Change, SavedStorm, Storm, StormRule};
use crate::vocabulary::{Action, Control, Input, Step};
use crate::{Alert, EventKind, Health, RecoveryEvent};

/// An input named a unit the supervisor does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no service named `{0}`")]
pub struct UnknownUnit(pub String);

/// All units' state machines, their dependencies, and the output queue.
#[derive(Debug)]
pub struct Supervisor {
    /// Boxed: a B-tree node holds eleven slots, mostly empty ones for large values.
    units: BTreeMap<String, Box<Machine>>,
    /// unit → the units it depends on.
    dependencies: BTreeMap<String, Vec<String>>,
    /// Every unit's next deadline, so a timeout costs O(log n), not O(n).
    deadlines: BTreeSet<(Instant, String)>,
    scheduled: BTreeMap<String, Instant>,
    out: VecDeque<Action>,
    /// Restarts and rollbacks from decided to ended (`max_concurrent_actions`).
    slots: Slots,
    incident_prefix: String,
    next_incident: u64,
    blindness: Blindness,
    availability: BTreeMap<String, Availability>,
    /// How many units' last recorded verdict is each health, kept as verdicts
    /// are recorded (see [`Supervisor::health_counts`]).
    counts: HealthCounts,
    /// Many units failing at once (see [`crate::storm`]).
    storm: Storm,
}

/// Units by their last recorded health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthCounts {
    /// Healthy units.
    pub healthy: usize,
    /// Unhealthy units.
    pub unhealthy: usize,
    /// Units without a verdict (blind, stale, never observed).
    pub unknown: usize,
}

impl HealthCounts {
    fn slot(&mut self, health: Health) -> &mut usize {
        match health {
            Health::Healthy => &mut self.healthy,
            Health::Unhealthy => &mut self.unhealthy,
            Health::Unknown => &mut self.unknown,
        }
    }
}

/// medic-wide blindness: one alert when any unit stays blind too long (an
/// unreachable Docker engine blinds every container at once), one when it ends.
#[derive(Debug, Default)]
struct Blindness {
    units: BTreeSet<String>,
    since: Option<Instant>,
    alert_after: Option<std::time::Duration>,
    alerted: bool,
}

/// Actions the empty output queue keeps room for.
const QUEUE_KEPT: usize = 64;

/// The unit name alerts about medic itself carry.
pub const MEDIC_UNIT: &str = "medic";

impl Supervisor {
    /// An empty supervisor. Incident ids are `prefix` + a counter that continues
    /// from `next_incident` (persisted by the shell), so ids stay unique across restarts.
    pub fn new(incident_prefix: impl Into<String>, next_incident: u64) -> Self {
        Self {
            units: BTreeMap::new(),
            dependencies: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            scheduled: BTreeMap::new(),
            out: VecDeque::new(),
            slots: Slots::new(usize::MAX),
            incident_prefix: incident_prefix.into(),
            next_incident,
            blindness: Blindness::default(),
            availability: BTreeMap::new(),
            counts: HealthCounts::default(),
            storm: Storm::new(StormRule::DEFAULT),
        }
    }

    /// When failures count as a storm (`[medic] storm_share`, `storm_window`);
    /// a reload keeps what is failing.
    pub fn set_storm_rule(&mut self, rule: StormRule) {
        self.storm.set_rule(rule);
    }

    /// The storm rule and the storm in progress, if any.
    pub fn storm(&self) -> &Storm {
        &self.storm
    }

    /// Whether what a restarted medic must know of the storm changed since
    /// this was last asked (see [`Storm::saved`]); clears it.
    pub fn take_storm_changed(&mut self) -> bool {
        self.storm.take_changed()
    }

    /// Continues the storm the state store kept (after the units are
    /// restored): the units with an open incident are its failing ones. A
    /// storm that was over by then ends at once, with its [`Action::Storm`].
    pub fn restore_storm(&mut self, now: Instant, saved: SavedStorm) {
        let failing: Vec<String> = self
            .units
            .iter()
            .filter(|(_, m)| m.in_incident())
            .map(|(name, _)| name.clone())
            .collect();
        let change = self.storm.restore(now, saved, failing, self.units.len());
        self.out.extend(change.map(Action::Storm));
    }

    /// Raise one critical alert when units stay blind longer than `after`.
    pub fn set_blind_alert_after(&mut self, after: std::time::Duration) {
        self.blindness.alert_after = Some(after);
    }

    /// At most `limit` restarts and rollbacks run at once (at least one); the
    /// others wait in the order they were decided. Unlimited until set.
    pub fn set_max_concurrent_actions(&mut self, limit: usize) {
        self.slots.set_limit(limit);
    }

    /// medic stops: no job launches from now on. Queued ones stay due (the
    /// state store says so, and the next medic starts them); running ones
    /// end or are cut short ([`ActionResult::Interrupted`](crate::ActionResult::Interrupted)).
    pub fn shutdown(&mut self) {
        self.slots.stop();
    }

    /// Whether [`Supervisor::shutdown`] was called.
    pub fn stopping(&self) -> bool {
        self.slots.stopping()
    }

    /// How many jobs run (launched, not reported finished) and how many wait for a slot.
    pub fn jobs(&self) -> (usize, usize) {
        (self.slots.running(), self.slots.queued())
    }

    /// The incident counter to persist.
    pub fn next_incident(&self) -> u64 {
        self.next_incident
    }

    /// Starts watching a unit (or updates its policy, keeping its state, if it exists).
    pub fn add_unit(&mut self, now: Instant, name: &str, policy: impl Into<Arc<Policy>>) {
        let policy = policy.into();
        if let Some(machine) = self.units.get_mut(name) {
            machine.set_policy(policy);
        } else {
            let machine = Machine::new(now, name.to_owned(), policy);
            self.units.insert(name.to_owned(), Box::new(machine));
            self.with_unit(now, name, |machine, ctx| machine.watching(now, ctx));
        }
        self.reschedule(now, name);
        self.launch(now);
    }

    /// Continues a unit from the state store: its incident resumes where it
    /// stood (one `resumed` event), with its attempt count.
    pub fn restore_unit(
        &mut self,
        now: Instant,
        saved: UnitSnapshot,
        policy: impl Into<Arc<Policy>>,
    ) {
        let policy = policy.into();
        let name = saved.name.clone();
        self.units
            .insert(name.clone(), Box::new(Machine::restore(now, saved, policy)));
        self.with_unit(now, &name, |machine, ctx| {
            machine.watching(now, ctx);
            machine.resume_after_restart(now, ctx);
        });
        self.reschedule(now, &name);
        self.launch(now);
    }

    /// Stops watching a unit.
    pub fn remove_unit(&mut self, now: Instant, name: &str) {
        self.retire_unit(now, name, "no longer watched");
    }

    /// Stops watching a unit for a reason the recovery log's `removed` event
    /// gives (an instance retired by a deploy, `medic forget`, a selector change).
    pub fn retire_unit(&mut self, now: Instant, name: &str, why: &str) {
        self.with_unit(now, name, |machine, ctx| machine.removed(now, why, ctx));
        self.units.remove(name);
        // A queued job goes with it; a running one keeps its slot until it ends.
        self.slots.drop_queued(name);
        self.dependencies.remove(name);
        self.blindness.units.remove(name);
        if let Some(gone) = self.availability.remove(name) {
            *self.counts.slot(gone.verdict()) -= 1;
        }
        if let Some(at) = self.scheduled.remove(name) {
            self.deadlines.remove(&(at, name.to_owned()));
        }
        let change = self.storm.forget(name, self.units.len());
        self.out.extend(change.map(Action::Storm));
        // The last blind unit gone ends the blindness (and resolves its alert).
        self.update_blindness(now);
    }

    /// Declares that `unit` is not restarted while any of `on` is not healthy.
    pub fn set_dependencies(&mut self, unit: &str, on: Vec<String>) {
        if on.is_empty() {
            self.dependencies.remove(unit);
        } else {
            self.dependencies.insert(unit.to_owned(), on);
        }
    }

    /// The units' names, sorted.
    pub fn unit_names(&self) -> impl Iterator<Item = &str> {
        self.units.keys().map(String::as_str)
    }

    /// Whether a unit exists.
    pub fn contains(&self, unit: &str) -> bool {
        self.units.contains_key(unit)
    }

    /// Whether a deploy of `unit` may begin now (no recovery action or other deploy running).
    pub fn can_deploy(&self, unit: &str) -> bool {
        self.units.get(unit).is_some_and(|m| m.can_deploy())
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, now: Instant, input: Input) -> Result<(), UnknownUnit> {
        if let Input::Finished { unit, job, .. } = &input {
            // Its slot is free, whoever still waits for the result (the unit may be gone).
            self.slots.finished(unit, *job);
        }
        let result = self.handle_unit_input(now, input);
        self.launch(now);
        result
    }

    fn handle_unit_input(&mut self, now: Instant, input: Input) -> Result<(), UnknownUnit> {
        let unit = input.unit().to_owned();
        if !self.units.contains_key(&unit) {
            return Err(UnknownUnit(unit));
        }
        let was_healthy = self.is_healthy_phase(&unit);
        self.with_unit(now, &unit, |machine, ctx| match input {
            Input::Observed {
                probe, observation, ..
            } => machine.on_observation(now, probe, observation, ctx),
            Input::Launched { job, .. } => machine.on_launched(now, job),
            Input::Finished { job, result, .. } => machine.on_finished(now, job, result, ctx),
            Input::DeployFinished { result, .. } => machine.on_deploy_finished(now, result, ctx),
            Input::Control { control, .. } => match control {
                Control::Pause { until } => machine.pause(now, until, ctx),
                Control::Resume => machine.resume(now, ctx),
                Control::Reset => machine.reset(now, ctx),
                Control::Recover => machine.recover(now, ctx),
                Control::Deploy {
                    command_timeout,
                    verify_timeout,
                } => machine.deploy(now, command_timeout, verify_timeout, ctx),
            },
        });
        if !was_healthy && self.is_healthy_phase(&unit) {
            self.release_dependents(now, &unit);
        }
        self.reschedule(now, &unit);
        self.update_blindness(now);
        Ok(())
    }

    /// Tracks medic-wide blindness after any change: starts the clock, or ends it (resolving its alert).
    fn update_blindness(&mut self, now: Instant) {
        let b = &mut self.blindness;
        match (b.units.is_empty(), b.since) {
            (false, None) => b.since = Some(now),
            (true, Some(_)) => {
                b.since = None;
                if std::mem::take(&mut b.alerted) {
                    self.out.push_back(Action::Alert(Alert {
                        service: MEDIC_UNIT.to_owned(),
                        severity: crate::Severity::Info,
                        kind: "blind",
                        incident: None,
                        message: "every probe can see again".to_owned(),
                        evidence: Evidence::new(),
                        resolved: true,
                        held: false,
                    }));
                }
            }
            _ => {}
        }
    }

    /// When blindness has lasted long enough to alert, if it has not alerted yet.
    fn blind_deadline(&self) -> Option<Instant> {
        let b = &self.blindness;
        if b.alerted {
            return None;
        }
        Some(crate::time::after(b.since?, b.alert_after?))
    }

    fn alert_blindness(&mut self, now: Instant) {
        if self.blind_deadline().is_none_or(|at| at > now) {
            return;
        }
        let b = &mut self.blindness;
        b.alerted = true;
        let units: Vec<&str> = b.units.iter().map(String::as_str).collect();
        let mut evidence = Evidence::new();
        evidence.insert("units".into(), units.clone().into());
        for unit in &units {
            if let Some(reason) = self.units.get(*unit).and_then(|m| m.blind_reason()) {
                evidence.insert("reason".into(), reason.into());
            }
        }
        let minutes = b.alert_after.map_or(0, |a| a.as_secs() / 60);
        self.out.push_back(Action::Alert(Alert {
            service: MEDIC_UNIT.to_owned(),
            severity: crate::Severity::Critical,
            kind: "blind",
            incident: None,
            message: format!(
                "{} service(s) blind for over {minutes} min: medic cannot protect them: {}",
                units.len(),
                units.join(", ")
            ),
            evidence,
            resolved: false,
            held: false,
        }));
    }

    /// Advances every unit whose deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.alert_blindness(now);
        if let Some(active) = self.storm.summary_due(now) {
            self.out
                .push_back(Action::Storm(Change::Summary(active.clone())));
        }
        while let Some((at, name)) = self.deadlines.first().cloned() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            self.scheduled.remove(&name);
            self.with_unit(now, &name, |machine, ctx| machine.on_timeout(now, ctx));
            self.reschedule(now, &name);
        }
        self.update_blindness(now);
        self.launch(now);
    }

    /// Hands the shell every queued job a slot is free for, in decision order.
    fn launch(&mut self, now: Instant) {
        while let Some(job) = self.slots.next_launch() {
            if let Some(machine) = self.units.get_mut(&job.unit) {
                machine.launching(now, job.id);
            }
            self.out.push_back(Action::Launch(job));
        }
    }

    /// Drops the unit's queued job when the unit no longer waits for it: it
    /// recovered, a person paused, reset or deployed it, it went blind.
    fn settle_job(&mut self, name: &str) {
        let Some(queued) = self.slots.queued_for(name).map(|job| job.id) else {
            return;
        };
        let machine = self.units.get(name);
        if machine.and_then(|m| m.job()) == Some(queued) {
            return;
        }
        #[cfg(feature = "planted")]
        if crate::planted::is(crate::planted::Defect::StaleQueuedRun) {
            return;
        }
        let Some(job) = self.slots.drop_queued(name) else {
            return;
        };
        let state = machine.map_or("removed", |m| m.phase().name());
        let (what, attempt) = match job.step {
            Step::Restart(k) => (format!("restart attempt {k}"), Some(k)),
            Step::Rollback => ("rollback".to_owned(), None),
        };
        self.out.push_back(Action::Log(RecoveryEvent {
            service: job.unit,
            kind: EventKind::Dropped,
            incident: Some(job.incident),
            state,
            attempt,
            message: format!(
                "the queued {what} was dropped before it ran: the service is {state} now"
            ),
            evidence: Evidence::new(),
            notice: Notice::of(EventKind::Dropped),
        }));
    }

    /// The next action to carry out, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        let action = self.out.pop_front();
        if action.is_none() && self.out.capacity() > QUEUE_KEPT {
            // A burst (10,000 units starting) leaves a large empty queue behind.
            self.out.shrink_to(QUEUE_KEPT);
        }
        action
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let unit = self.deadlines.first().map(|(at, _)| *at);
        [unit, self.blind_deadline(), self.storm.next_summary()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Every unit's status as of `now`.
    pub fn status(&self, now: Instant) -> Vec<UnitStatus> {
        self.statuses(now).collect()
    }

    /// Every unit's status as of `now`, made one at a time as it is asked for.
    pub fn statuses(&self, now: Instant) -> impl Iterator<Item = UnitStatus> + '_ {
        self.units.values().map(move |m| m.status(now))
    }

    /// Every unit's health, without building whole statuses.
    pub fn healths(&self, now: Instant) -> impl Iterator<Item = Health> + '_ {
        self.units.values().map(move |m| m.health(now))
    }

    /// How many units are healthy, unhealthy and unknown, in O(1) (the STATUS
    /// line): each unit's health as of its last input or deadline, so a unit
    /// counts as stale once its staleness deadline was handled.
    pub fn health_counts(&self) -> HealthCounts {
        self.counts
    }

    /// Every unit has reported on every probe at least once.
    pub fn all_observed(&self) -> bool {
        self.units.values().all(|m| m.observed_every_probe())
    }

    /// One unit's status.
    pub fn unit_status(&self, now: Instant, unit: &str) -> Option<UnitStatus> {
        self.units.get(unit).map(|m| m.status(now))
    }

    /// The share of known time a unit was healthy over the last `window` (up to 30 days).
    pub fn availability(
        &self,
        unit: &str,
        now: Instant,
        window: std::time::Duration,
    ) -> Option<f64> {
        self.availability.get(unit)?.ratio(now, window)
    }

    /// A unit's milliseconds healthy and with a verdict since medic started
    /// watching it (see [`crate::availability::Availability::totals`]).
    pub fn availability_totals(&self, unit: &str, now: Instant) -> Option<(u64, u64)> {
        Some(self.availability.get(unit)?.totals(now))
    }

    /// The last `window` (up to 30 days) of a unit cut into `bars` bars, oldest
    /// first: each one's healthy share of its known time.
    pub fn availability_series(
        &self,
        unit: &str,
        now: Instant,
        window: std::time::Duration,
        bars: usize,
    ) -> Option<Vec<Option<f64>>> {
        Some(self.availability.get(unit)?.series(now, window, bars))
    }

    /// Every unit's availability buckets as plain data, for the shell to persist;
    /// one unit at a time, so 10,000 units' 30 days are never all copied at once.
    pub fn availability_history(&self, now: Instant) -> impl Iterator<Item = (&str, History)> + '_ {
        self.availability
            .iter()
            .map(move |(name, a)| (name.as_str(), a.history(now)))
    }

    /// Puts back a unit's saved availability buckets (after `add_unit` or `restore_unit`).
    pub fn restore_availability(&mut self, now: Instant, unit: &str, history: &History) {
        if let Some(a) = self.availability.get_mut(unit) {
            a.restore(now, history);
        }
    }

    /// What to persist of one unit, when it is watched.
    pub fn unit_snapshot(&self, unit: &str) -> Option<UnitSnapshot> {
        self.units.get(unit).map(|m| m.snapshot())
    }

    /// Everything to persist, one entry per unit.
    pub fn snapshot(&self) -> Vec<UnitSnapshot> {
        self.units.values().map(|m| m.snapshot()).collect()
    }

    /// Overall health: healthy only when every unit is.
    pub fn overall(&self, now: Instant) -> Health {
        let mut overall = Health::Healthy;
        for machine in self.units.values() {
            match machine.health(now) {
                Health::Unhealthy => return Health::Unhealthy,
                Health::Unknown => overall = Health::Unknown,
                Health::Healthy => {}
            }
        }
        overall
    }

    fn is_healthy_phase(&self, unit: &str) -> bool {
        self.units
            .get(unit)
            .is_some_and(|m| m.phase() == Phase::Healthy)
    }

    fn dependencies_ready(&self, unit: &str) -> bool {
        self.dependencies
            .get(unit)
            .is_none_or(|deps| deps.iter().all(|d| self.dependency_ready(d)))
    }

    /// A dependency is a unit, or a selector service whose units are its
    /// instances (`db/app-db-1`, …): then it is ready when it has at least one
    /// instance and every instance is healthy.
    fn dependency_ready(&self, dependency: &str) -> bool {
        if self.units.contains_key(dependency) {
            return self.is_healthy_phase(dependency);
        }
        let mut instances = self
            .units
            .range::<str, _>((Bound::Excluded(dependency), Bound::Unbounded))
            .take_while(|(name, _)| name.starts_with(dependency))
            .filter(|(name, _)| is_instance_of(name, dependency))
            .peekable();
        instances.peek().is_some() && instances.all(|(_, m)| m.phase() == Phase::Healthy)
    }

    /// A unit became healthy: actions held for it may go now.
    fn release_dependents(&mut self, now: Instant, unit: &str) {
        let dependents: Vec<String> = self
            .dependencies
            .iter()
            .filter(|(_, deps)| deps.iter().any(|d| d == unit || is_instance_of(unit, d)))
            .map(|(name, _)| name.clone())
            .filter(|name| {
                self.units
                    .get(name)
                    .is_some_and(|m| m.is_held_for_dependency())
            })
            .collect();
        for name in dependents {
            self.with_unit(now, &name, |machine, ctx| machine.resume_held(now, ctx));
            self.reschedule(now, &name);
        }
    }

    fn with_unit(&mut self, now: Instant, name: &str, f: impl FnOnce(&mut Machine, &mut Ctx)) {
        let dependencies_ready = self.dependencies_ready(name);
        let Some(machine) = self.units.get_mut(name) else {
            return;
        };
        let first = self.out.len();
        let mut ctx = Ctx {
            out: &mut self.out,
            slots: &mut self.slots,
            next_incident: &mut self.next_incident,
            incident_prefix: &self.incident_prefix,
            dependencies_ready,
        };
        f(machine, &mut ctx);
        self.storm_track(now, first);
    }

    /// Feeds the storm rule what one unit's step emitted (from `first` on):
    /// incidents opened and closed, in order; each storm change goes out
    /// right after the event that made it, and each alert says whether the
    /// storm holds it. O(actions emitted).
    fn storm_track(&mut self, now: Instant, first: usize) {
        let services = self.units.len();
        let mut changes = Vec::new();
        for (at, action) in self.out.iter_mut().enumerate().skip(first) {
            match action {
                Action::Log(event) => {
                    if let Some(change) = self.storm.track(now, event, services) {
                        changes.push((at + 1, change));
                    }
                }
                Action::Alert(alert) => {
                    alert.held = self.storm.holds(&alert.service, alert.resolved);
                }
                _ => {}
            }
        }
        // From the back, so the earlier positions stay right.
        for (at, change) in changes.into_iter().rev() {
            self.out.insert(at, Action::Storm(change));
        }
    }

    fn reschedule(&mut self, now: Instant, name: &str) {
        self.settle_job(name);
        if let Some(machine) = self.units.get(name) {
            let health = machine.health(now);
            let counts = &mut self.counts;
            let availability = self.availability.entry(name.to_owned()).or_insert_with(|| {
                counts.unknown += 1;
                Availability::new(now)
            });
            *counts.slot(availability.verdict()) -= 1;
            *counts.slot(health) += 1;
            availability.record(now, health);
        }
        let blind = self.units.get(name).filter(|m| m.is_blind());
        if let Some(machine) = blind {
            let b = &mut self.blindness;
            b.units.insert(name.to_owned());
            // A unit blind since before this medic started (the state store
            // said so) moves the start back: restarts never reset the count.
            if let Some(since) = machine.blind_since() {
                b.since = Some(b.since.map_or(since, |s| s.min(since)));
            }
        } else {
            self.blindness.units.remove(name);
        }
        if let Some(at) = self.scheduled.remove(name) {
            self.deadlines.remove(&(at, name.to_owned()));
        }
        if let Some(at) = self.units.get(name).and_then(|m| m.next_deadline()) {
            self.scheduled.insert(name.to_owned(), at);
            self.deadlines.insert((at, name.to_owned()));
        }
    }
}

/// Whether `unit` is one instance (`service/instance`) of the selector service `service`.
fn is_instance_of(unit: &str, service: &str) -> bool {
    unit.strip_prefix(service)
        .is_some_and(|rest| rest.starts_with('/'))
}
