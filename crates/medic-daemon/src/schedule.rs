//! Probe scheduling: one task per probe, running on its interval (fixed rate,
//! with a per-probe offset so thousands of probes do not fire together), or at
//! once when the supervisor asks for a verification round.

use std::sync::Arc;
use std::time::Duration;

use medic_core::Observation;
use medic_core::backoff::stable_fraction;
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::checks::Check;
use crate::daemon::Event;

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
        tracker: &TaskTracker,
        parent: &CancellationToken,
        unit: &str,
        checks: Vec<(Check, Duration)>,
        events: &mpsc::Sender<Event>,
    ) -> Self {
        let cancel = parent.child_token();
        let mut triggers = Vec::new();
        for (probe, (check, interval)) in checks.into_iter().enumerate() {
            let trigger = Arc::new(Notify::new());
            triggers.push((trigger.clone(), matches!(check, Check::Container(_))));
            let task = ProbeTask {
                unit: unit.to_owned(),
                probe,
                check,
                interval,
                trigger,
                cancel: cancel.clone(),
                events: events.clone(),
            };
            tracker.spawn(task.run());
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
    cancel: CancellationToken,
    events: mpsc::Sender<Event>,
}

impl ProbeTask {
    async fn run(self) {
        // The first round runs at once (medic reports on fresh evidence quickly);
        // later rounds keep a per-probe offset inside the interval to spread load.
        let offset = self
            .interval
            .mul_f64(stable_fraction(&self.unit, self.probe as u64));
        let mut ticks = tokio::time::interval_at(Instant::now() + offset, self.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut first = true;
        loop {
            if !first {
                tokio::select! {
                    () = self.cancel.cancelled() => return,
                    _ = ticks.tick() => {}
                    () = self.trigger.notified() => {}
                }
            }
            first = false;
            let started = Instant::now().into_std();
            // Boxed: the task then holds the probe's (large) future only while it
            // runs, so 10,000 idle probe tasks stay small.
            let observation = tokio::select! {
                () = self.cancel.cancelled() => return,
                observation = Box::pin(self.check.run()) => observation.started_at(started),
            };
            if self.send(observation).await.is_err() {
                return;
            }
        }
    }

    async fn send(&self, observation: Observation) -> Result<(), ()> {
        let event = Event::Observed {
            unit: self.unit.clone(),
            probe: self.probe,
            observation,
        };
        self.events.send(event).await.map_err(|_| ())
    }
}
