//! The action slots: every restart and rollback from decided to ended. At
//! most `limit` jobs run at once; the others wait in the order they were
//! decided; a unit's next job waits for its previous one to end; nothing
//! launches once medic stops. The supervisor drops a queued job whose reason
//! went (see `Supervisor::settle_job`).

use std::collections::BTreeMap;

use crate::vocabulary::{Job, JobId};

/// The queue and the running jobs, with the limit on how many run at once.
#[derive(Debug)]
pub(crate) struct Slots {
    limit: usize,
    next_id: u64,
    /// Decided, waiting for a slot; ids grow, so this is decision order.
    queued: BTreeMap<JobId, Job>,
    /// Each unit's queued job (at most one).
    queued_by_unit: BTreeMap<String, JobId>,
    /// Handed to the shell and not reported finished, by unit (one per unit).
    running: BTreeMap<String, JobId>,
    /// Medic stops: nothing new launches.
    stopping: bool,
}

impl Slots {
    /// No job, at most `limit` (at least one) running at once.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            next_id: 0,
            queued: BTreeMap::new(),
            queued_by_unit: BTreeMap::new(),
            running: BTreeMap::new(),
            stopping: false,
        }
    }

    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
    }

    /// The next job's identity.
    pub(crate) fn next_id(&mut self) -> JobId {
        self.next_id += 1;
        JobId(self.next_id)
    }

    /// Queues a decided job; it replaces the unit's queued one, if any.
    pub(crate) fn queue(&mut self, job: Job) {
        if let Some(old) = self.queued_by_unit.insert(job.unit.clone(), job.id) {
            self.queued.remove(&old);
        }
        self.queued.insert(job.id, job);
    }

    /// The unit's queued job, if any.
    pub(crate) fn queued_for(&self, unit: &str) -> Option<&Job> {
        self.queued.get(self.queued_by_unit.get(unit)?)
    }

    /// Takes the unit's queued job out of the queue: it will never run.
    pub(crate) fn drop_queued(&mut self, unit: &str) -> Option<Job> {
        let id = self.queued_by_unit.remove(unit)?;
        self.queued.remove(&id)
    }

    /// The first queued job that may start now: a slot is free, its unit has
    /// no job running, and medic is not stopping. It counts as running from now.
    /// At most `limit` queued jobs are passed over (one per running unit).
    pub(crate) fn next_launch(&mut self) -> Option<Job> {
        #[cfg(feature = "planted")]
        let stopping =
            self.stopping && !crate::planted::is(crate::planted::Defect::LaunchDuringShutdown);
        #[cfg(not(feature = "planted"))]
        let stopping = self.stopping;
        if stopping || self.running.len() >= self.limit {
            return None;
        }
        let id = self
            .queued
            .values()
            .find(|job| !self.running.contains_key(&job.unit))?
            .id;
        let job = self.queued.remove(&id)?;
        self.queued_by_unit.remove(&job.unit);
        self.running.insert(job.unit.clone(), job.id);
        Some(job)
    }

    /// A job ended: its slot is free. False when it was not running (a
    /// result reported twice, or from before a restart of medic).
    pub(crate) fn finished(&mut self, unit: &str, job: JobId) -> bool {
        if self.running.get(unit) != Some(&job) {
            return false;
        }
        self.running.remove(unit);
        true
    }

    /// Medic stops: no job launches any more.
    pub(crate) fn stop(&mut self) {
        self.stopping = true;
    }

    /// Whether medic stops.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping
    }

    /// How many jobs run.
    pub(crate) fn running(&self) -> usize {
        self.running.len()
    }

    /// How many jobs wait for a slot.
    pub(crate) fn queued(&self) -> usize {
        self.queued.len()
    }
}
