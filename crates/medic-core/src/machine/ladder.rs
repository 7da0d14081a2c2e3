//! The recovery ladder, the whole restart → rollback → escalate policy in one
//! place: an incident opens, gets `max_attempts` restarts with backoff (each
//! verified on fresh observations), then a rollback to the last known good,
//! then escalation to a person.

use std::time::Instant;

use super::{ClosedIncident, Ctx, Incident, Machine, Phase, millis};
use crate::backoff;
use crate::event::{EventKind, Severity};
use crate::observation::{Evidence, Observation, Urgency};
use crate::time::after;
use crate::vocabulary::{Action, ActionResult, Step};

impl Machine {
    pub(super) fn attempts_in_window(&self, now: Instant) -> u32 {
        let window = self.policy.attempt_window;
        let count = self
            .attempts
            .iter()
            .filter(|at| now.saturating_duration_since(**at) < window)
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    pub(super) fn open_incident(&mut self, now: Instant, observation: Observation, ctx: &mut Ctx) {
        let mut evidence = observation.evidence.clone();
        evidence.insert("latency_ms".into(), millis(observation.latency).into());
        let gone = observation.urgency == Urgency::Gone;
        self.incident = Some(Incident::open(now, gone, evidence.clone(), ctx));
        self.next_step(now, gone, ctx);
        self.log_with(ctx, now, EventKind::Failing, observation.message, evidence);
        self.drive(now, ctx);
    }

    /// Picks what follows a failure: another restart inside the window, a rollback, or escalation.
    pub(super) fn next_step(&mut self, now: Instant, gone: bool, ctx: &mut Ctx) {
        if !self.policy.can_restart {
            self.set_phase(now, Phase::Failing);
            return;
        }
        let used = self.attempts_in_window(now);
        let rollback_tried = self.incident.as_ref().is_some_and(|i| i.rollback_tried);
        if used < self.policy.max_attempts {
            let attempt = used + 1;
            let p = &self.policy;
            let mut delay = backoff::delay(attempt, p.backoff_base, p.backoff_max, &self.name);
            if gone && attempt == 1 {
                delay = delay.max(p.replace_grace);
            }
            let step = Step::Restart(attempt);
            self.set_phase(
                now,
                Phase::Waiting {
                    step,
                    at: after(now, delay),
                },
            );
        } else if self.policy.can_rollback && !rollback_tried {
            self.set_phase(
                now,
                Phase::Waiting {
                    step: Step::Rollback,
                    at: now,
                },
            );
        } else {
            let why = if rollback_tried {
                "rollback did not bring it back"
            } else {
                "no rollback is possible"
            };
            let message = format!(
                "{} restart attempts failed and {why}",
                self.policy.max_attempts
            );
            self.escalate(now, message, Evidence::new(), ctx);
        }
    }

    /// Starts a due action unless paused, blind or waiting for a dependency.
    pub(super) fn drive(&mut self, now: Instant, ctx: &mut Ctx) {
        let Phase::Waiting { step, at } = self.phase else {
            return;
        };
        if at > now || self.paused.is_some() || self.blind {
            return;
        }
        if !ctx.dependencies_ready {
            if !self.held_for_dependency {
                self.held_for_dependency = true;
                // Held until the dependency is healthy; the supervisor drives it again then.
                let message = "held: a service this one depends on is not healthy";
                self.log(ctx, now, EventKind::WaitingForDependency, message);
            }
            return;
        }
        self.held_for_dependency = false;
        let Some(incident) = self.incident.as_mut() else {
            return;
        };
        let incident_id = incident.id.clone();
        let recreate = incident.gone;
        match step {
            Step::Restart(attempt) => {
                self.attempts.push_back(now);
                self.prune_attempts(now);
                self.set_phase(now, self.acting(now, step));
                let message = format!("restart attempt {attempt} of {}", self.policy.max_attempts);
                self.log(ctx, now, EventKind::Restart, &message);
                ctx.out.push_back(Action::Restart {
                    unit: self.name.clone(),
                    incident: incident_id,
                    attempt,
                    recreate,
                });
            }
            Step::Rollback => {
                incident.rollback_tried = true;
                self.set_phase(now, self.acting(now, step));
                self.log(
                    ctx,
                    now,
                    EventKind::Rollback,
                    "rolling back to the last known good version",
                );
                ctx.out.push_back(Action::Rollback {
                    unit: self.name.clone(),
                    incident: incident_id,
                });
            }
        }
    }

    pub(super) fn prune_attempts(&mut self, now: Instant) {
        let window = self.policy.attempt_window;
        while self
            .attempts
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) >= window)
        {
            self.attempts.pop_front();
        }
    }

    /// A restart's or rollback's result: verify it, or take the next step.
    pub(super) fn action_finished(&mut self, now: Instant, result: ActionResult, ctx: &mut Ctx) {
        if self.abandoned > 0 {
            // The late result of an action given up on: the ladder has moved on.
            self.abandoned -= 1;
            return;
        }
        let Phase::Acting { step, .. } = self.phase else {
            return; // a late result after a reset: the reset already decided
        };
        let (done, failed) = match step {
            Step::Restart(_) => (EventKind::RestartDone, EventKind::RestartFailed),
            Step::Rollback => (EventKind::RollbackDone, EventKind::RollbackFailed),
        };
        match result {
            ActionResult::Done { message, evidence } => {
                for probe in &mut self.probes {
                    probe.consecutive_ok = 0;
                }
                self.set_phase(
                    now,
                    self.verifying(step, now, after(now, self.policy.verify_interval)),
                );
                self.log_with(ctx, now, done, message, evidence);
                ctx.out.push_back(Action::Probe {
                    unit: self.name.clone(),
                });
            }
            // Removed while medic was about to restart it (`docker rm -f` reports
            // the kill before the removal): like any removal, a replacement gets
            // `replace_grace` before the next attempt recreates it.
            ActionResult::Gone { message, evidence }
                if matches!(step, Step::Restart(_))
                    && self.incident.as_ref().is_some_and(|i| !i.gone) =>
            {
                if let Some(incident) = self.incident.as_mut() {
                    incident.gone = true;
                }
                let grace = humantime::format_duration(self.policy.replace_grace);
                let message = format!("{message}: recreated after {grace} unless replaced");
                self.log_with(ctx, now, failed, message, evidence);
                self.next_step(now, false, ctx);
                if let Phase::Waiting { step, at } = self.phase {
                    let at = at.max(after(now, self.policy.replace_grace));
                    self.phase = Phase::Waiting { step, at };
                }
                self.drive(now, ctx);
            }
            ActionResult::Failed { message, evidence }
            | ActionResult::Gone { message, evidence } => {
                self.log_with(ctx, now, failed, message.clone(), evidence.clone());
                self.after_failed_step(now, step, message, evidence, ctx);
            }
            ActionResult::Interrupted => {
                self.set_phase(now, self.verifying(step, now, now));
                self.log(
                    ctx,
                    now,
                    EventKind::Interrupted,
                    "action interrupted by shutdown; it is verified at the next start",
                );
            }
        }
    }

    /// Verification of `step` from `now`, first probe round at `first_probe`.
    pub(super) fn verifying(&self, step: Step, now: Instant, first_probe: Instant) -> Phase {
        Phase::Verifying {
            step,
            since: now,
            deadline: after(now, self.policy.recover_timeout),
            next_probe: first_probe,
        }
    }

    /// `step`'s action starts now and must report back within `action_timeout`.
    pub(super) fn acting(&self, now: Instant, step: Step) -> Phase {
        Phase::Acting {
            step,
            deadline: after(now, self.policy.action_timeout),
        }
    }

    pub(super) fn verification_failed(
        &mut self,
        now: Instant,
        step: Step,
        message: String,
        evidence: Evidence,
        ctx: &mut Ctx,
    ) {
        let kind = match step {
            Step::Restart(_) => EventKind::RestartFailed,
            Step::Rollback => EventKind::RollbackFailed,
        };
        self.log_with(ctx, now, kind, message.clone(), evidence.clone());
        self.after_failed_step(now, step, message, evidence, ctx);
    }

    pub(super) fn after_failed_step(
        &mut self,
        now: Instant,
        step: Step,
        message: String,
        evidence: Evidence,
        ctx: &mut Ctx,
    ) {
        match step {
            Step::Restart(_) => {
                self.next_step(now, false, ctx);
                self.drive(now, ctx);
            }
            Step::Rollback => {
                self.escalate(now, format!("rollback failed: {message}"), evidence, ctx);
            }
        }
    }

    pub(super) fn escalate(
        &mut self,
        now: Instant,
        message: String,
        evidence: Evidence,
        ctx: &mut Ctx,
    ) {
        self.set_phase(now, Phase::Escalated);
        let mut all = self
            .incident
            .as_ref()
            .map(|i| i.evidence.clone())
            .unwrap_or_default();
        all.extend(evidence);
        all.insert("attempts".into(), self.attempts_in_window(now).into());
        all.insert("last_observations".into(), self.observation_summary());
        self.log_with(ctx, now, EventKind::Escalated, message.clone(), all.clone());
        self.alert_with(ctx, Severity::Critical, "escalated", &message, all, false);
    }

    pub(super) fn observation_summary(&self) -> serde_json::Value {
        self.probes
            .iter()
            .filter_map(|p| p.last.as_ref())
            .map(|l| {
                serde_json::json!({
                    "outcome": l.observation.outcome.as_str(),
                    "message": l.observation.message,
                    "latency_ms": millis(l.observation.latency),
                })
            })
            .collect()
    }

    /// Ends the incident with one alert line that resolves it: `rolled_back`
    /// (warning) after a rollback, `restored_removed` (warning) when a removed
    /// target was recreated, `resolved` (info) when an alerted incident
    /// recovered, `recovered` (info) otherwise.
    pub(super) fn close_incident(
        &mut self,
        now: Instant,
        kind: EventKind,
        message: &str,
        ctx: &mut Ctx,
    ) {
        self.set_phase(now, Phase::Healthy);
        self.log(ctx, now, kind, message);
        let (alerted, gone) = self
            .incident
            .as_ref()
            .map_or((false, false), |i| (i.alerted, i.gone));
        let (severity, alert_kind, text) = match kind {
            EventKind::RolledBack => (Severity::Warning, "rolled_back", message.to_owned()),
            _ if gone => (
                Severity::Warning,
                "restored_removed",
                format!("removed, then restored from its recorded spec: {message}"),
            ),
            _ if alerted => (Severity::Info, "resolved", message.to_owned()),
            _ => (Severity::Info, "recovered", message.to_owned()),
        };
        self.alert(ctx, severity, alert_kind, &text, true);
        self.end_incident(now, kind.as_str());
        self.record_last_known_good(ctx);
    }

    pub(crate) fn reset(&mut self, now: Instant, ctx: &mut Ctx) {
        if let Phase::Acting { .. } = self.phase {
            // Its result still comes, and must not count for a later action.
            self.abandoned = self.abandoned.saturating_add(1);
        }
        self.attempts.clear();
        for probe in &mut self.probes {
            probe.consecutive_ok = 0;
            if let Some(last) = probe.last.as_mut() {
                last.consecutive_failures = 0;
            }
        }
        self.started = now;
        self.set_phase(now, Phase::Starting);
        self.log(
            ctx,
            now,
            EventKind::Reset,
            "reset by a person: attempts and escalation cleared",
        );
        if self.incident.as_ref().is_some_and(|i| i.alerted) {
            self.alert(ctx, Severity::Info, "resolved", "reset by a person", true);
        }
        self.end_incident(now, "reset");
    }

    pub(super) fn end_incident(&mut self, now: Instant, outcome: &'static str) {
        if let Some(incident) = self.incident.take() {
            self.last_incident = Some(ClosedIncident {
                id: incident.id,
                outcome,
                ended: now,
            });
        }
    }

    /// A person asked for a restart now: a fresh attempt budget, even when paused or escalated.
    pub(crate) fn recover(&mut self, now: Instant, ctx: &mut Ctx) {
        if !self.can_deploy() || !self.policy.can_restart {
            return;
        }
        self.attempts.clear();
        if self.incident.is_none() {
            self.incident = Some(Incident::open(now, false, Evidence::new(), ctx));
            self.log(
                ctx,
                now,
                EventKind::Failing,
                "recovery requested by a person",
            );
        }
        self.set_phase(
            now,
            Phase::Waiting {
                step: Step::Restart(1),
                at: now,
            },
        );
        self.drive_for_a_person(now, ctx);
    }
}
