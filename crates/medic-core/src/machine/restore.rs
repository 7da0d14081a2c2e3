//! Across a restart of medic: what a unit saves, and how its open incident
//! resumes from it (issue #23: a restart never strands an incident).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Ctx, Incident, IncidentEvidence, Machine, Phase};
use crate::event::EventKind;
use crate::observation::Evidence;
use crate::policy::Policy;
use crate::snapshot::{SavedIncident, SavedPhase, UnitSnapshot};
use crate::time::after;
use crate::vocabulary::Step;

impl Machine {
    /// Rebuilds a machine from the state store. Health is never restored: it
    /// needs fresh observations. Every open incident resumes where it was (see
    /// [`Machine::resume_after_restart`], which the supervisor calls next): a due step keeps its
    /// time, an action that was running counts as finished with an unknown
    /// result and is verified on fresh observations, as is one being verified.
    pub(crate) fn restore(now: Instant, saved: UnitSnapshot, policy: Arc<Policy>) -> Self {
        let mut machine = Self::new(now, saved.name, policy);
        machine.incidents = saved.incidents.into_iter().collect();
        machine.restore_flap(saved.flap);
        machine.paused = saved.paused;
        machine.blind_since = saved.blind_since;
        machine.incident = saved.incident.map(|i| Incident {
            id: i.id,
            opened: i.opened,
            alerted: i.alerted,
            rollback_tried: i.rollback_tried,
            attempts: i.attempts,
            reason: i.reason,
            gone: i.gone,
            removed_at: i.removed_at,
            // A step of a removal's incident recreates.
            recreating: i.gone,
            flap_delay: i.flap_delay,
            // Like the evidence, not kept: the next failed restart says it again.
            last_restart_error: None,
            evidence: IncidentEvidence::default(),
        });
        let recover_timeout = machine.policy.recover_timeout;
        // At least one probe round to see the unit again, however little was left.
        let fresh = after(now, machine.verify_round());
        let verify = |step, deadline: Instant| Phase::Verifying {
            step,
            since: now,
            deadline: deadline.max(fresh),
            next_probe: now,
        };
        machine.phase = match (saved.phase, machine.incident.is_some()) {
            (SavedPhase::Deploying, _) => Phase::DeployRunning {
                // Failed by `resume`: the command's result can no longer arrive.
                deadline: now,
                verify_timeout: Duration::ZERO,
            },
            (_, false) | (SavedPhase::Fine, _) => Phase::Starting,
            (SavedPhase::Failing, true) => Phase::Failing,
            (SavedPhase::Waiting { step, at }, true) => Phase::Waiting { step, at },
            // A rollback cut short runs again, from the last known good spec.
            (SavedPhase::Acting(Step::Rollback), true) if machine.policy.rollback_resumes => {
                machine.resume_rollback = true;
                Phase::Waiting {
                    step: Step::Rollback,
                    at: now,
                }
            }
            (SavedPhase::Acting(step), true) => verify(step, after(now, recover_timeout)),
            (SavedPhase::Verifying { step, deadline }, true) => verify(step, deadline),
            (SavedPhase::Escalated, true) => Phase::Escalated,
        };
        machine
    }

    /// The first moves after a restore: one `resumed` event per open incident
    /// saying where it continues, a failed deploy rolled back as the guard says,
    /// and the ladder continued where it stood.
    pub(crate) fn resume_after_restart(&mut self, now: Instant, ctx: &mut Ctx) {
        if let Phase::DeployRunning { .. } = self.phase {
            self.set_phase(now, Phase::Starting);
            let message = "medic restarted while the deploy ran: its result is unknown".to_owned();
            return self.deploy_failed(now, message, Evidence::new(), ctx);
        }
        let Some(incident) = &self.incident else {
            return;
        };
        let max = self.policy.max_attempts;
        let at = match self.phase {
            Phase::Waiting {
                step: Step::Restart(k),
                ..
            } => format!("at attempt {k} of {max}"),
            Phase::Verifying {
                step: Step::Restart(k),
                ..
            } => format!("verifying attempt {k} of {max} on fresh observations"),
            Phase::Waiting {
                step: Step::Rollback,
                ..
            } if self.resume_rollback => "finishing the rollback it had begun".to_owned(),
            Phase::Waiting {
                step: Step::Rollback,
                ..
            } => "at the rollback".to_owned(),
            Phase::Verifying {
                step: Step::Rollback,
                ..
            } => "verifying the rollback on fresh observations".to_owned(),
            Phase::Escalated => "escalated, waiting for a person".to_owned(),
            _ => "watching".to_owned(),
        };
        let paused = if self.paused.is_some() {
            " (paused)"
        } else {
            ""
        };
        let message = format!(
            "resumed incident {} {at} after a restart of medic{paused}",
            incident.id
        );
        self.log(ctx, now, EventKind::Resumed, &message);
        if self.phase == Phase::Failing && self.policy.can_restart {
            self.next_step(now, ctx);
        }
        // A due step starts from the supervisor's next timeout, once dependencies are declared.
    }

    /// How long one verification probe round may take: the verify interval plus the slowest probe.
    pub(super) fn verify_round(&self) -> Duration {
        let slowest = self.policy.probes.iter().map(|p| p.timeout).max();
        self.policy
            .verify_interval
            .saturating_add(slowest.unwrap_or_default())
    }

    pub(crate) fn snapshot(&self) -> UnitSnapshot {
        let phase = match self.phase {
            // A restart or replacement under way is seen afresh by the next medic.
            Phase::Starting | Phase::Healthy | Phase::Expecting { .. } => SavedPhase::Fine,
            Phase::DeployRunning { .. } | Phase::DeployVerifying { .. } => SavedPhase::Deploying,
            Phase::Failing => SavedPhase::Failing,
            Phase::Escalated => SavedPhase::Escalated,
            // The rollback to finish stays one to finish until it runs.
            Phase::Waiting { step, .. } | Phase::Queued { step, .. } if self.resume_rollback => {
                SavedPhase::Acting(step)
            }
            Phase::Waiting { step, at } => SavedPhase::Waiting { step, at },
            // A queued job never ran: due again at once.
            Phase::Queued { step, .. } => SavedPhase::Waiting {
                step,
                at: self.since,
            },
            Phase::Acting { step, .. } => SavedPhase::Acting(step),
            Phase::Verifying { step, deadline, .. } => SavedPhase::Verifying { step, deadline },
        };
        UnitSnapshot {
            name: self.name.clone(),
            phase,
            incident: self.incident.as_ref().map(|i| SavedIncident {
                id: i.id.clone(),
                opened: i.opened,
                alerted: i.alerted,
                rollback_tried: i.rollback_tried,
                attempts: i.attempts,
                reason: i.reason.clone(),
                gone: i.gone,
                removed_at: i.removed_at,
                flap_delay: i.flap_delay,
            }),
            incidents: self.incidents.iter().copied().collect(),
            flap: self.saved_flap(),
            paused: self.paused,
            blind_since: self.blind_since,
        }
    }
}
