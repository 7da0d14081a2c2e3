//! Stopping medic: no new jobs, running ones get the grace period, the rest
//! are cut short and stay recorded as running, and the store is saved.

use std::time::Duration;

use medic_core::{Action, ActionResult, Input};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Daemon;
use crate::clock::now;
use crate::shell::Event;

impl Daemon {
    /// Carries out the log lines, alerts and storm news the core decided,
    /// and nothing else: medic is stopping.
    pub(super) fn record_only(&mut self) {
        while let Some(action) = self.sup.poll_action() {
            if let Action::Log(_) | Action::Alert(_) | Action::Storm(_) = action {
                self.act(action);
            }
        }
    }

    /// Launches nothing more (the core is told), stops probes, lets running
    /// jobs finish within the grace period, cuts the rest short (they stay
    /// running in the state store: the next medic verifies or finishes them),
    /// and saves the store.
    pub(super) async fn shutdown(
        mut self,
        events_rx: &mut mpsc::Receiver<Event>,
    ) -> anyhow::Result<()> {
        self.sup.shutdown();
        tracing::info!(running_actions = self.launcher.running(), "Shutting down");
        self.units.stop_probes();
        let deadline = Instant::now() + self.shutdown_grace;
        while self.launcher.running() > 0 {
            match tokio::time::timeout_at(deadline, events_rx.recv()).await {
                Ok(Some(event @ Event::Finished { .. })) => self.handle(event),
                Ok(Some(Event::LastKnownGood { unit, spec, .. })) => {
                    self.durability.set_last_known_good(&unit, spec);
                }
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
            self.record_only();
        }
        let now = now();
        // Jobs still waiting for their state to reach the disk never started.
        let unstarted = self
            .durability
            .unstarted()
            .into_iter()
            .filter_map(|action| match action {
                Action::Launch(job) => Some((job.id, job.unit)),
                _ => None,
            });
        for (job, unit) in self.launcher.cut().into_iter().chain(unstarted) {
            let result = ActionResult::Interrupted;
            let input = Input::Finished { unit, job, result };
            self.sup.handle_input(now, input).ok();
        }
        self.record_only();
        // The writers write what they hold, then stop; the tracker waits for them.
        self.durability.follow(self.announcer.records());
        self.durability.close(&mut self.sup, now);
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
