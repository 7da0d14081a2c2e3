//! Probe scheduling: one task per probe, running on its interval (fixed rate,
//! with a per-probe offset so thousands of probes do not fire together), or at
//! once when the supervisor asks for a verification round. See [`Pacing`] for
//! what the tasks share.

use std::sync::Arc;
use std::time::Duration;

use medic_core::backoff::stable_fraction;
use tokio::sync::{Notify, Semaphore, SemaphorePermit, mpsc};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::probe::Check;
use crate::shell::{Event, Shell};

/// Rounds start on this grid (from a common epoch), so one wake-up of the
/// process serves every probe due in the same tenth of a second: 10,000
/// endpoints cost a third less CPU than with each probe on its own instant.
const GRID: Duration = Duration::from_millis(100);

/// How probe tasks share the host: a probe runs only while it holds one of
/// the slots (`max_concurrent_probes`), so the first round of 10,000 probes,
/// or thousands hanging until their timeout, never hold 10,000 connections
/// and their buffers at once; and rounds start on one [`GRID`].
#[derive(Debug)]
pub struct Pacing {
    slots: Semaphore,
    epoch: Instant,
}

impl Pacing {
    pub fn new(max_concurrent_probes: usize) -> Self {
        Self {
            slots: Semaphore::new(max_concurrent_probes),
            epoch: Instant::now(),
        }
    }

    /// The first round after now of a probe at `fraction` of its interval,
    /// the offset rounded down to the grid.
    fn first_round(&self, interval: Duration, fraction: f64) -> Instant {
        let steps = interval.mul_f64(fraction).as_nanos() / GRID.as_nanos();
        let offset = GRID * u32::try_from(steps).unwrap_or(u32::MAX);
        let now = Instant::now();
        let mut at = self.epoch + offset;
        if at <= now && !interval.is_zero() {
            // Whole intervals since the epoch, so `at` lands just after now.
            let behind = (now - at).as_nanos() / interval.as_nanos() + 1;
            at += interval * u32::try_from(behind).unwrap_or(u32::MAX);
        }
        at
    }
}

/// The running probes of one unit.
#[derive(Debug)]
pub struct UnitProbes {
    /// One trigger per probe, so a Docker event can run just the container check.
    triggers: Vec<(Arc<Notify>, bool)>,
    cancel: CancellationToken,
}

impl UnitProbes {
    /// Starts one task per check of `unit`.
    pub fn spawn(
        shell: &Shell,
        pacing: &Arc<Pacing>,
        unit: &str,
        checks: Vec<(Check, Duration)>,
    ) -> Self {
        let cancel = shell.cancel.child_token();
        let mut triggers = Vec::with_capacity(checks.len());
        for (probe, (check, interval)) in checks.into_iter().enumerate() {
            let trigger = Arc::new(Notify::new());
            triggers.push((trigger.clone(), matches!(check, Check::Container(_))));
            if let Check::SystemdUnit(check) = &check {
                check.follow(&trigger);
            }
            let task = ProbeTask {
                unit: unit.to_owned(),
                probe,
                check,
                interval,
                trigger,
                pacing: pacing.clone(),
                cancel: cancel.clone(),
                events: shell.events.clone(),
            };
            shell.tracker.spawn(task.run());
        }
        Self { triggers, cancel }
    }

    /// Runs every probe of the unit now (a verification round).
    pub fn probe_now(&self) {
        for (trigger, _) in &self.triggers {
            trigger.notify_one();
        }
    }

    /// Runs the unit's container check now (Docker reported a change).
    pub fn check_container(&self) {
        for (trigger, container) in &self.triggers {
            if *container {
                trigger.notify_one();
            }
        }
    }

    /// Stops the unit's probe tasks.
    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

impl Drop for UnitProbes {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

struct ProbeTask {
    unit: String,
    probe: usize,
    check: Check,
    interval: Duration,
    trigger: Arc<Notify>,
    pacing: Arc<Pacing>,
    cancel: CancellationToken,
    events: mpsc::Sender<Event>,
}

impl ProbeTask {
    async fn run(self) {
        // One cancellation point for the whole loop keeps the task's state small.
        tokio::select! {
            () = self.cancel.cancelled() => {}
            () = self.rounds() => {}
        }
    }

    /// Runs the probe on its interval, or at once when triggered, until the
    /// daemon stops listening.
    async fn rounds(&self) {
        // The first round runs at once (medic reports on fresh evidence quickly);
        // later rounds keep a per-probe offset inside the interval to spread load.
        let fraction = stable_fraction(&self.unit, self.probe as u64);
        let mut ticks = tokio::time::interval_at(
            self.pacing.first_round(self.interval, fraction),
            self.interval,
        );
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut first = true;
        loop {
            if !first {
                tokio::select! {
                    _ = ticks.tick() => {}
                    () = self.trigger.notified() => {}
                }
            }
            first = false;
            // The semaphore is never closed, so acquiring only waits.
            let Ok(slot) = self.pacing.slots.acquire().await else {
                return;
            };
            // Boxed: the task holds the probe's (large) future only while it
            // runs, so 10,000 idle (or waiting) probe tasks stay small.
            if Box::pin(self.probe_and_report(slot)).await.is_err() {
                return;
            }
        }
    }

    /// Runs the check in its slot, then hands the observation to the daemon.
    async fn probe_and_report(&self, slot: SemaphorePermit<'_>) -> Result<(), ()> {
        let started = Instant::now().into_std();
        let observation = self.check.run().await.started_at(started);
        // The daemon may be busy: waiting for it needs no probe slot.
        drop(slot);
        let permit = self.events.reserve().await.map_err(|_| ())?;
        permit.send(Event::Observed {
            unit: self.unit.clone(),
            probe: self.probe,
            observation,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rounds_start_on_the_grid_just_after_now() {
        let pacing = Pacing::new(1);
        let interval = Duration::from_secs(10);
        tokio::time::advance(Duration::from_millis(23_456)).await;
        let now = Instant::now();
        for fraction in [0.0, 0.123_45, 0.5, 0.999_99] {
            let at = pacing.first_round(interval, fraction);
            assert!(at > now && at <= now + interval, "{fraction}: {at:?}");
            let offset = (at - pacing.epoch).as_nanos() % interval.as_nanos();
            assert_eq!(offset % GRID.as_nanos(), 0, "{fraction}: on the grid");
            let wanted = interval.mul_f64(fraction).as_nanos();
            assert!(offset <= wanted && wanted - offset < GRID.as_nanos());
        }
        // Probes with nearby offsets share a round, so one wake-up serves them.
        assert_eq!(
            pacing.first_round(interval, 0.501),
            pacing.first_round(interval, 0.505)
        );
    }
}
