//! The recovery ladder, the whole restart → rollback → escalate policy in one
//! place: an incident opens, gets `max_attempts` restarts with backoff (each
//! verified on fresh observations), then a rollback to the last known good,
//! then escalation to a person.

use std::sync::Arc;
use std::time::Instant;

use super::{ClosedIncident, Ctx, Incident, IncidentEvidence, Machine, Phase, millis, round_secs};
use crate::backoff;
use crate::event::{EventKind, RecoveryEvent, Severity};
use crate::notice::Notice;
use crate::observation::{ENGINE_GRACE, Evidence, Observation, RESTART_EXPECTED_FROM, Urgency};
use crate::time::after;
use crate::vocabulary::{Action, ActionResult, DeployEnd, Job, JobId, Step};

impl Machine {
    /// An incident opens: flapping (`flap_limit` incidents within `flap_window`
    /// before this one) sends it to rollback first, or, once flapping with
    /// nothing to roll back to, to a restart after the flap delay; otherwise
    /// its first restart.
    pub(super) fn open_incident(
        &mut self,
        now: Instant,
        observation: Arc<Observation>,
        ctx: &mut Ctx,
    ) {
        let removed_at = (observation.urgency == Urgency::Gone).then_some(now);
        self.open_incident_at(now, observation, removed_at, ctx);
    }

    /// [`Self::open_incident`] for a target removed at `removed_at`.
    pub(super) fn open_incident_at(
        &mut self,
        now: Instant,
        observation: Arc<Observation>,
        removed_at: Option<Instant>,
        ctx: &mut Ctx,
    ) {
        let mut evidence = IncidentEvidence::default();
        if observation.urgency == Urgency::EngineRestarts {
            // Beneath the failure: who the failure itself names wins.
            let who = (RESTART_EXPECTED_FROM.to_owned(), "the engine".into());
            evidence.add(Evidence::from_iter([who]));
        }
        let message = observation.message.clone();
        evidence.failure(observation);
        let failing = evidence.merged();
        let mut incident = Incident::open(now, removed_at, evidence, ctx);
        (incident.reason, incident.flap_delay) = self.judge_flapping(now);
        self.incident = Some(incident);
        let first = ctx.out.len();
        self.next_step(now, ctx);
        self.log_with(ctx, now, EventKind::Failing, message, failing);
        // The failing event comes first, before what the next step said (an escalation).
        if let Some(failing) = ctx.out.pop_back() {
            ctx.out.insert(first, failing);
        }
        self.drive(now, ctx);
    }

    /// Picks what follows a failure: the incident's next restart (with
    /// backoff; the first one after the flap delay once flapping with nothing
    /// to roll back to), a rollback once `max_attempts` restarts failed or the
    /// service is flapping, restarts with a growing delay when flapping with
    /// no rollback possible, or escalation: only once restarts failed and a
    /// rollback failed or was impossible.
    pub(super) fn next_step(&mut self, now: Instant, ctx: &mut Ctx) {
        if !self.policy.can_restart {
            self.set_phase(now, Phase::Failing);
            return;
        }
        let Some(incident) = &self.incident else {
            return;
        };
        let (used, rollback_tried) = (incident.attempts, incident.rollback_tried);
        let (reason, flap_delay) = (incident.reason.clone(), incident.flap_delay);
        let flapping = self.flapping_undelayed();
        if used < self.policy.max_attempts && !flapping {
            let attempt = used + 1;
            let p = &self.policy;
            let mut delay = backoff::delay(attempt, p.backoff_base, p.backoff_max, &self.name);
            if attempt == 1 {
                // The engine restarts it itself: it gets the first chance.
                if self.restart_expected_from().is_some() {
                    delay = delay.max(ENGINE_GRACE);
                }
                delay = delay.max(flap_delay.unwrap_or_default());
            }
            self.schedule(now, Step::Restart(attempt), after(now, delay));
        } else if self.policy.can_rollback && !rollback_tried {
            // A flapping incident waits one backoff step: `docker rm -f` reports the
            // kill before the removal, and a deploy's replacement must not be raced.
            let at = match flapping {
                true => after(now, self.policy.backoff_base),
                false => now,
            };
            self.schedule(now, Step::Rollback, at);
        } else if flapping {
            // Its restarts work: with nothing to roll back to, it is kept alive.
            self.keep_restarting(now, "no rollback is possible", Evidence::new(), ctx);
        } else {
            let why = if rollback_tried {
                "rollback did not bring it back"
            } else {
                "no rollback is possible"
            };
            let message = match reason {
                Some(reason) => format!("{reason}; {used} restart attempts failed and {why}"),
                None => format!("{used} restart attempts failed and {why}"),
            };
            self.escalate(now, message, Evidence::new(), ctx);
        }
    }

    /// Who brings the open incident's target back by itself, when the failure
    /// that opened it said so ([`Urgency::EngineRestarts`]).
    pub(super) fn restart_expected_from(&self) -> Option<String> {
        let incident = self.incident.as_ref()?;
        let who = incident.evidence.get(RESTART_EXPECTED_FROM)?;
        Some(who.as_str().unwrap_or("the engine").to_owned())
    }

    /// Waits for `step` until `at`, and after a removal until `replace_grace`
    /// has passed since it, whatever the step: a deploy may be putting a
    /// replacement in place, and medic must not race it.
    pub(super) fn schedule(&mut self, now: Instant, step: Step, at: Instant) {
        let removed = self.incident.as_ref().and_then(|i| i.removed_at);
        let at = removed.map_or(at, |r| at.max(after(r, self.policy.replace_grace)));
        self.set_phase(now, Phase::Waiting { step, at });
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
        let resumed = step == Step::Rollback && self.resume_rollback;
        let job = Job {
            id: ctx.slots.next_id(),
            unit: self.name.clone(),
            incident: incident.id.clone(),
            step,
            recreate: incident.gone || resumed,
            resumed,
            timeout: self.policy.action_timeout,
        };
        incident.recreating = job.recreate;
        let (kind, message) = match step {
            Step::Restart(attempt) => {
                incident.attempts = incident.attempts.max(attempt);
                let waited = incident.flap_delay.filter(|_| attempt == 1);
                let max = self.policy.max_attempts;
                let message = match waited {
                    Some(delay) => format!(
                        "restart attempt {attempt} of {max}, after the flap delay of {}",
                        humantime::format_duration(delay)
                    ),
                    None => format!("restart attempt {attempt} of {max}"),
                };
                (EventKind::Restart, message)
            }
            Step::Rollback => {
                incident.rollback_tried = true;
                let what = match resumed {
                    true => "finishing the rollback a stop of medic cut short",
                    false => "rolling back to the last known good version",
                };
                let message = match &incident.reason {
                    Some(reason) => format!("{reason}: {what}"),
                    None => what.to_owned(),
                };
                (EventKind::Rollback, message)
            }
        };
        // Decided now; it runs when a slot is free (`Supervisor::launch`).
        self.set_phase(now, Phase::Queued { step, job: job.id });
        #[cfg(feature = "planted")]
        if crate::planted::is(crate::planted::Defect::QueueWaitCounted) {
            let deadline = Some(after(now, self.policy.action_timeout));
            let job = job.id;
            self.set_phase(
                now,
                Phase::Acting {
                    step,
                    job,
                    deadline,
                },
            );
        }
        self.log(ctx, now, kind, &message);
        ctx.slots.queue(job);
    }

    /// A job's result: verify its step, or take the next one. The result of
    /// a job the unit no longer waits for (timed out, reset meanwhile) is
    /// logged and ignored: the ladder has moved on.
    pub(crate) fn on_finished(
        &mut self,
        now: Instant,
        job: JobId,
        result: ActionResult,
        ctx: &mut Ctx,
    ) {
        let (step, launched) = match self.phase {
            Phase::Acting {
                step,
                job: current,
                deadline,
            } if current == job => (step, deadline.is_some()),
            #[cfg(feature = "planted")]
            Phase::Acting { step, .. } | Phase::Queued { step, .. }
                if crate::planted::is(crate::planted::Defect::ResultToSupersededStep) =>
            {
                (step, true)
            }
            _ => return self.ignored("job", &result, ctx),
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
            // Removed while medic was about to act on it (`docker rm -f` reports
            // the kill before the removal): not a failed step. Like any removal, a
            // replacement gets `replace_grace`; then the same step runs again.
            // A job that may recreate never reports Gone; one that did not
            // may find the target removed after a removal was already seen.
            ActionResult::Gone { message, evidence }
                if self.incident.as_ref().is_some_and(|i| !i.recreating) =>
            {
                self.removed_while_acting(now, now, step, message, evidence, ctx);
            }
            // Nothing different to roll back to: a flapping service whose
            // restarts work is kept alive with a growing delay.
            ActionResult::Impossible { message, evidence }
                if step == Step::Rollback && self.flapping_undelayed() =>
            {
                self.log_with(ctx, now, failed, message.clone(), evidence.clone());
                self.keep_restarting(now, &message, evidence, ctx);
            }
            ActionResult::Failed { message, evidence }
            | ActionResult::Impossible { message, evidence }
            | ActionResult::Gone { message, evidence } => {
                self.log_with(ctx, now, failed, message.clone(), evidence.clone());
                self.after_failed_step(now, step, message, evidence, ctx);
            }
            ActionResult::TimedOut { after } => {
                let after = humantime::format_duration(round_secs(after));
                let message = format!("cancelled after {after} without a result");
                self.log(ctx, now, failed, &message);
                self.after_failed_step(now, step, message, Evidence::new(), ctx);
            }
            ActionResult::Interrupted if !ctx.slots.stopping() => {
                // Only a stop of medic interrupts a job: anything else is a failure.
                let message = "interrupted".to_owned();
                self.log(ctx, now, failed, &message);
                self.after_failed_step(now, step, message, Evidence::new(), ctx);
            }
            ActionResult::Interrupted if !launched => {
                // Stopped before it started: due again at the next start.
                self.set_phase(now, Phase::Waiting { step, at: now });
                let message = "action not started before shutdown; it runs at the next start";
                self.log(ctx, now, EventKind::Interrupted, message);
            }
            ActionResult::Interrupted => {
                // Still acting, as the state store says: the next medic finishes
                // a resumable rollback, and verifies anything else.
                let next = match (step, self.policy.rollback_resumes) {
                    (Step::Rollback, true) => "the next start of medic finishes it",
                    _ => "it is verified at the next start of medic",
                };
                let message = format!("action interrupted by shutdown; {next}");
                self.log(ctx, now, EventKind::Interrupted, &message);
            }
        }
    }

    /// The target was removed while `step` acted on it (removed at
    /// `removed_at`): not a failed step. Like any removal, a replacement gets
    /// `replace_grace`; then the same step runs again, recreating it.
    pub(super) fn removed_while_acting(
        &mut self,
        now: Instant,
        removed_at: Instant,
        step: Step,
        message: String,
        evidence: Evidence,
        ctx: &mut Ctx,
    ) {
        if let Some(incident) = self.incident.as_mut() {
            incident.gone = true;
            incident.removed_at = Some(removed_at);
            match step {
                Step::Restart(k) => incident.attempts = k.saturating_sub(1),
                Step::Rollback => incident.rollback_tried = false,
            }
        }
        let failed = match step {
            Step::Restart(_) => EventKind::RestartFailed,
            Step::Rollback => EventKind::RollbackFailed,
        };
        let grace = humantime::format_duration(self.policy.replace_grace);
        let message = format!("{message}: restored after {grace} unless replaced");
        self.log_with(ctx, now, failed, message, evidence);
        self.schedule(now, step, now);
    }

    /// A result nobody waits for: one `ignored` line says so.
    pub(super) fn ignored(&self, what: &str, result: &ActionResult, ctx: &mut Ctx) {
        let outcome = match result {
            ActionResult::Done { message, .. }
            | ActionResult::Failed { message, .. }
            | ActionResult::Impossible { message, .. }
            | ActionResult::Gone { message, .. } => message.clone(),
            ActionResult::TimedOut { .. } => "timed out".to_owned(),
            ActionResult::Interrupted => "interrupted".to_owned(),
        };
        // No attempt number: the unit's current step is not the one that reported.
        ctx.out.push_back(Action::Log(RecoveryEvent {
            service: self.name.clone(),
            kind: EventKind::Ignored,
            incident: self.incident.as_ref().map(|i| i.id.clone()),
            state: self.phase.name(),
            attempt: None,
            message: format!("a late result of a {what} medic no longer waits for: {outcome}"),
            evidence: Evidence::new(),
            notice: Notice::of(EventKind::Ignored),
        }));
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
                // Kept for the escalation: a person reading it sees what stopped the restarts.
                if let Some(incident) = self.incident.as_mut() {
                    incident.last_restart_error = Some(message);
                }
                self.next_step(now, ctx);
                self.drive(now, ctx);
            }
            Step::Rollback => {
                let message = match self.incident.as_ref().and_then(|i| i.reason.as_deref()) {
                    Some(reason) => format!("{reason}; rollback failed: {message}"),
                    None => format!("rollback failed: {message}"),
                };
                self.escalate(now, message, evidence, ctx);
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
        let mut all = self.incident_evidence_with(evidence);
        let attempts = self.incident.as_ref().map_or(0, |i| i.attempts);
        all.insert("attempts".into(), attempts.into());
        if let Some(error) = self
            .incident
            .as_ref()
            .and_then(|i| i.last_restart_error.clone())
        {
            all.insert("last_restart_error".into(), error.into());
        }
        all.insert("last_observations".into(), self.observation_summary());
        self.deploy_ended(DeployEnd::Escalated, ctx);
        self.log_with(ctx, now, EventKind::Escalated, message.clone(), all.clone());
        self.alert_with(ctx, Severity::Critical, "escalated", &message, all, false);
    }

    /// The open incident's evidence, merged, and `evidence` over it: for an alert.
    pub(super) fn incident_evidence_with(&self, evidence: Evidence) -> Evidence {
        let mut all = self
            .incident
            .as_ref()
            .map(|i| i.evidence.merged())
            .unwrap_or_default();
        all.extend(evidence);
        all
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
        self.close_incident_with(now, kind, message, Evidence::new(), ctx);
    }

    /// [`Self::close_incident`] with evidence on its recovery-log line.
    pub(super) fn close_incident_with(
        &mut self,
        now: Instant,
        kind: EventKind,
        message: &str,
        evidence: Evidence,
        ctx: &mut Ctx,
    ) {
        self.set_phase(now, Phase::Healthy);
        if kind == EventKind::RolledBack {
            self.deploy_ended(DeployEnd::RolledBack, ctx);
        }
        self.log_with(ctx, now, kind, message.to_owned(), evidence);
        let (alerted, gone) = self
            .incident
            .as_ref()
            .map_or((false, false), |i| (i.alerted, i.gone));
        let reason = self.incident.as_ref().and_then(|i| i.reason.as_deref());
        let (severity, alert_kind, text) = match (kind, reason) {
            (EventKind::RolledBack, Some(reason)) => (
                Severity::Warning,
                "rolled_back",
                format!("{reason}: {message}"),
            ),
            (EventKind::RolledBack, None) => (Severity::Warning, "rolled_back", message.to_owned()),
            _ if gone => (
                Severity::Warning,
                "restored_removed",
                format!("removed, then restored from its recorded spec: {message}"),
            ),
            _ if alerted => (Severity::Info, "resolved", message.to_owned()),
            _ => (Severity::Info, "recovered", message.to_owned()),
        };
        // The incident that said it flaps stays open in the sinks until the flapping ends.
        if !self.holds_flap_alert() {
            self.alert(ctx, severity, alert_kind, &text, true);
        }
        self.end_incident(now, kind.as_str());
        self.judged_healthy(ctx);
    }

    pub(crate) fn reset(&mut self, now: Instant, ctx: &mut Ctx) {
        // A running job's result still comes; it is ignored (no job is awaited).
        self.incidents.clear();
        for probe in &mut self.probes {
            probe.consecutive_ok = 0;
            if let Some(last) = probe.last.as_mut() {
                last.consecutive_failures = 0;
            }
        }
        self.started = now;
        self.set_phase(now, Phase::Starting);
        self.deploy_ended(DeployEnd::Reset, ctx);
        self.log(
            ctx,
            now,
            EventKind::Reset,
            "reset by a person: attempts, flapping and escalation cleared",
        );
        if self.incident.as_ref().is_some_and(|i| i.alerted) {
            self.alert(ctx, Severity::Info, "resolved", "reset by a person", true);
        }
        self.end_flapping("reset by a person".to_owned(), ctx);
        self.end_incident(now, "reset");
    }

    pub(super) fn end_incident(&mut self, now: Instant, outcome: &'static str) {
        self.flap_calm_from(now);
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
        if let Some(incident) = self.incident.as_mut() {
            incident.attempts = 0;
            incident.reason = None;
            incident.flap_delay = None;
        }
        if self.incident.is_none() {
            let evidence = IncidentEvidence::default();
            self.incident = Some(Incident::open(now, None, evidence, ctx));
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
