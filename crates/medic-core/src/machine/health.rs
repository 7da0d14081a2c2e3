//! Health and sight: what the probes' last words say (healthy only on fresh
//! successes), staleness, and the blind overlay.

use std::time::Instant;

use super::{Ctx, Machine, Phase};
use crate::event::EventKind;
use crate::observation::{Observation, Outcome};
use crate::time::after;
use crate::vocabulary::Action;

/// What a person or a status page needs to know about a unit's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Healthy on fresh observations.
    Healthy,
    /// Observed broken, or an incident is open.
    Unhealthy,
    /// Blind, stale or never observed: no claim either way.
    Unknown,
}

/// The last observation of one probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeStatus {
    /// When it was made.
    pub at: Instant,
    /// Its verdict and details; shared, so a status of 10,000 units copies
    /// pointers, not every probe's evidence.
    pub observation: std::sync::Arc<Observation>,
    /// Consecutive failures up to it.
    pub consecutive_failures: u32,
}

/// What the machine keeps of one probe.
#[derive(Debug, Clone, Default)]
pub(super) struct ProbeState {
    pub(super) last: Option<ProbeStatus>,
    pub(super) consecutive_ok: u32,
}

impl Machine {
    /// (consecutive failures, threshold) while a healthy unit fails below its
    /// threshold on fresh observations: not plain healthy, not an incident yet.
    pub(super) fn below_threshold(&self, now: Instant) -> Option<(u32, u32)> {
        if self.phase != Phase::Healthy || self.health(now) != Health::Healthy {
            return None;
        }
        let streak = self
            .probes
            .iter()
            .filter_map(|p| p.last.as_ref())
            .map(|l| l.consecutive_failures)
            .max()?;
        (streak > 0).then_some((streak, self.policy.failure_threshold))
    }

    /// Every probe has reported at least once.
    pub(crate) fn observed_every_probe(&self) -> bool {
        self.probes.iter().all(|p| p.last.is_some())
    }

    /// Healthy only on fresh successes with no incident; unknown when blind or stale.
    pub(crate) fn health(&self, now: Instant) -> Health {
        if self.blind || self.is_stale(now) {
            return Health::Unknown;
        }
        match self.phase {
            Phase::Healthy => Health::Healthy,
            Phase::Starting if self.probes.iter().all(|p| p.last.is_none()) => Health::Unknown,
            // Mid-deploy nothing is claimed until the new version is verified.
            Phase::DeployRunning { .. } | Phase::DeployVerifying { .. } => Health::Unknown,
            _ => Health::Unhealthy,
        }
    }

    pub(super) fn is_stale(&self, now: Instant) -> bool {
        self.stale_deadline().is_some_and(|at| now >= at)
    }

    /// The earliest moment a probe's last word goes stale.
    pub(super) fn stale_deadline(&self) -> Option<Instant> {
        self.probes
            .iter()
            .zip(&self.policy.probes)
            .map(|(probe, timing)| {
                after(
                    probe.last.as_ref().map_or(self.started, |l| l.at),
                    timing.stale_after(),
                )
            })
            .min()
    }

    /// Tracks the blind overlay; true while blind (the observation then decides nothing).
    pub(super) fn update_blind(
        &mut self,
        now: Instant,
        observation: &Observation,
        ctx: &mut Ctx,
    ) -> bool {
        let any_blind = self.probes.iter().any(|p| {
            p.last
                .as_ref()
                .is_some_and(|l| l.observation.outcome == Outcome::Blind)
        });
        if any_blind && !self.blind {
            self.blind = true;
            // A blindness the previous medic saw began when it saw it begin.
            self.blind_since = Some(self.blind_since.map_or(now, |since| since.min(now)));
            let message = format!("cannot see: {}", observation.message);
            self.log_with(
                ctx,
                now,
                EventKind::Blind,
                message,
                observation.evidence.clone(),
            );
        } else if !any_blind && self.blind {
            self.blind = false;
            self.blind_since = None;
            self.log(ctx, now, EventKind::SightRestored, "probes can see again");
        } else if !any_blind && self.probes.iter().all(|p| p.last.is_some()) {
            // Every probe seen since a restore: a saved blindness is over.
            self.blind_since = None;
        }
        self.blind
    }

    pub(super) fn all_ok_since(&self, since: Option<Instant>) -> bool {
        let threshold = self.policy.success_threshold;
        self.probes.iter().all(|p| {
            p.consecutive_ok >= threshold
                && p.last
                    .as_ref()
                    .is_some_and(|l| since.is_none_or(|s| l.observation.began_since(l.at, s)))
        })
    }

    /// A verification's timers at `now`: the next (deadline, next probe round),
    /// asking for a probe round when one is due; None once the deadline passed.
    /// While blind the deadline moves: medic cannot verify what it cannot see,
    /// and waits for sight rather than burn an attempt.
    pub(super) fn verification_timers(
        &self,
        now: Instant,
        deadline: Instant,
        next_probe: Instant,
        ctx: &mut Ctx,
    ) -> Option<(Instant, Instant)> {
        let interval = self.policy.verify_interval;
        if now >= deadline && self.blind {
            return Some((after(now, interval), next_probe));
        }
        if now >= deadline {
            return None;
        }
        if now >= next_probe {
            ctx.out.push_back(Action::Probe {
                unit: self.name.clone(),
            });
            return Some((deadline, after(now, interval)));
        }
        Some((deadline, next_probe))
    }

    /// Why a probe cannot see (the message of its blind observation).
    pub(crate) fn blind_reason(&self) -> Option<String> {
        self.probes
            .iter()
            .filter_map(|p| p.last.as_ref())
            .find(|l| l.observation.outcome == Outcome::Blind)
            .map(|l| l.observation.message.clone())
    }

    /// Whether a probe of this unit cannot see.
    pub(crate) fn is_blind(&self) -> bool {
        self.blind
    }

    /// When this unit's blindness began, while it is blind.
    pub(crate) fn blind_since(&self) -> Option<Instant> {
        self.blind_since.filter(|_| self.blind)
    }
}
