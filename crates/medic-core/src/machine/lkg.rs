//! When what runs becomes the last known good: judged healthy, then confirmed
//! by a round one probe interval later (at most 10 s), never a container
//! merely glimpsed running.

use std::time::Duration;

use super::{Ctx, Machine, Phase};
use crate::observation::Evidence;
use crate::policy::Policy;
use crate::time::after;
use crate::vocabulary::Action;

impl Machine {
    /// The unit was just judged healthy (at start, after a recovery, a
    /// rollback or a deploy). It becomes the last known good only once it has
    /// stayed healthy for [`stable_for`]: a crash-looping container that the
    /// container probe glimpsed running for 10 ms dies, opens an incident and
    /// never becomes what a rollback returns to.
    pub(super) fn judged_healthy(&mut self, ctx: &mut Ctx) {
        self.record_last_known_good(ctx, true);
        let judged_from = self
            .probes
            .iter()
            .filter_map(|p| p.last.as_ref())
            .map(|l| l.observation.started.unwrap_or(l.at))
            .min();
        self.lkg_due = judged_from.map(|from| after(from, stable_for(&self.policy)));
    }

    /// Asks the shell to record what runs as the last known good once every
    /// probe's last word is a success that began at or after `lkg_due`, as
    /// those observations saw it (a container's id), never looked up again by
    /// name: a container swapped in meanwhile must not become the last known
    /// good unverified.
    pub(super) fn confirm_last_known_good(&mut self, ctx: &mut Ctx) {
        let Some(due) = self.lkg_due.filter(|_| self.phase == Phase::Healthy) else {
            return;
        };
        let confirmed = self.probes.iter().all(|p| {
            p.consecutive_ok > 0
                && p.last
                    .as_ref()
                    .is_some_and(|l| l.observation.began_since(l.at, due))
        });
        if !confirmed {
            return;
        }
        self.lkg_due = None;
        self.record_last_known_good(ctx, false);
    }

    /// Asks the shell to record what the probes' last observations saw.
    pub(super) fn record_last_known_good(&self, ctx: &mut Ctx, provisional: bool) {
        if self.policy.can_rollback {
            let mut seen = Evidence::new();
            for last in self.probes.iter().filter_map(|p| p.last.as_ref()) {
                seen.extend(last.observation.evidence.clone());
            }
            ctx.out.push_back(Action::RecordLastKnownGood {
                unit: self.name.clone(),
                seen,
                provisional,
            });
        }
    }
}

/// How long a unit judged healthy must stay healthy before it is the last
/// known good: one probe interval (the next regular round confirms it), at
/// most [`LKG_STABLE_MAX`].
fn stable_for(policy: &Policy) -> Duration {
    policy
        .probes
        .iter()
        .map(|p| p.interval)
        .min()
        .map_or(LKG_STABLE_MAX, |interval| interval.min(LKG_STABLE_MAX))
}

/// Docker's own rule for "started successfully": up for 10 s.
const LKG_STABLE_MAX: Duration = Duration::from_secs(10);
