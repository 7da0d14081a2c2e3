//! The deploy guard: while a person's `medic deploy` runs and its new version
//! is verified, no automatic action; a failed deploy is rolled back.

use std::time::{Duration, Instant};

use super::{Ctx, Incident, IncidentEvidence, Machine, Phase};
use crate::event::{EventKind, Severity};
use crate::observation::Evidence;
use crate::time::after;
use crate::vocabulary::{Action, ActionResult, DeployEnd, Step};

/// A person's deploy in progress, from `medic deploy` to its end.
#[derive(Debug, Clone, Default)]
pub(super) struct DeployRun {
    /// Why it failed, once it did: the rollback that follows ends it, and
    /// its end carries this (see [`Action::DeployEnded`]).
    failure: Option<String>,
}

impl Machine {
    /// Whether a deploy may begin: not while a recovery action or another deploy runs.
    pub(crate) fn can_deploy(&self) -> bool {
        !matches!(
            self.phase,
            Phase::Acting { .. } | Phase::DeployRunning { .. } | Phase::DeployVerifying { .. }
        )
    }

    /// A person's deploy begins: no automatic action until its command reports
    /// back (within `command_timeout`) and the new version is verified (within
    /// `verify_timeout`).
    pub(crate) fn deploy(
        &mut self,
        now: Instant,
        command_timeout: Duration,
        verify_timeout: Duration,
        ctx: &mut Ctx,
    ) {
        if !self.can_deploy() {
            return;
        }
        self.deploy = Some(DeployRun::default());
        self.set_phase(
            now,
            Phase::DeployRunning {
                deadline: after(now, command_timeout),
                verify_timeout,
            },
        );
        self.log(
            ctx,
            now,
            EventKind::DeployStarted,
            "deploy started: automatic recovery held until the new version is verified",
        );
    }

    /// The deploy command's result: verify the new version, or roll back.
    /// One that comes after the deploy timed out (its rollback may be running)
    /// is logged and ignored: it is not the rollback's result.
    pub(crate) fn on_deploy_finished(&mut self, now: Instant, result: ActionResult, ctx: &mut Ctx) {
        let Phase::DeployRunning { verify_timeout, .. } = self.phase else {
            return self.ignored("deploy command", &result, ctx);
        };
        match result {
            ActionResult::Done { message, evidence } => {
                for probe in &mut self.probes {
                    probe.consecutive_ok = 0;
                }
                self.set_phase(
                    now,
                    Phase::DeployVerifying {
                        since: now,
                        deadline: after(now, verify_timeout),
                        next_probe: after(now, self.policy.verify_interval),
                    },
                );
                self.log_with(ctx, now, EventKind::DeployDone, message, evidence);
                ctx.out.push_back(Action::Probe {
                    unit: self.name.clone(),
                });
            }
            ActionResult::Failed { message, evidence }
            | ActionResult::Impossible { message, evidence }
            | ActionResult::Gone { message, evidence } => {
                self.deploy_failed(
                    now,
                    format!("deploy command failed: {message}"),
                    evidence,
                    ctx,
                );
            }
            ActionResult::TimedOut { .. } | ActionResult::Interrupted => {
                let message = "deploy interrupted".to_owned();
                self.deploy_failed(now, message, Evidence::new(), ctx);
            }
        }
    }

    /// The new version is healthy on fresh observations: it becomes the last
    /// known good once it has stayed healthy (see `judged_healthy`).
    pub(super) fn deploy_promoted(&mut self, now: Instant, ctx: &mut Ctx) {
        let message = "deploy verified healthy: the new version becomes the last known good once it stays healthy";
        self.deploy_ended(DeployEnd::Promoted, ctx);
        if self.incident.is_some() {
            self.close_incident(now, EventKind::Deployed, message, ctx);
        } else {
            self.set_phase(now, Phase::Healthy);
            self.log(ctx, now, EventKind::Deployed, message);
            self.judged_healthy(ctx);
        }
    }

    /// The deploy in progress, if any, ended so: one [`Action::DeployEnded`].
    pub(super) fn deploy_ended(&mut self, end: DeployEnd, ctx: &mut Ctx) {
        if let Some(run) = self.deploy.take() {
            ctx.out.push_back(Action::DeployEnded {
                unit: self.name.clone(),
                end,
                failure: run.failure,
            });
        }
    }

    /// The deploy failed: a critical alert, then a rollback to the version from
    /// before the deploy (even when paused: a person asked for the guard), or
    /// escalation when there is nothing to roll back to.
    pub(super) fn deploy_failed(
        &mut self,
        now: Instant,
        message: String,
        evidence: Evidence,
        ctx: &mut Ctx,
    ) {
        match self.incident.as_mut() {
            Some(incident) => {
                incident.rollback_tried = false;
                incident.evidence.add(evidence.clone());
            }
            None => {
                let added = IncidentEvidence::added(evidence.clone());
                self.incident = Some(Incident::open(now, None, added, ctx));
            }
        }
        self.set_phase(now, Phase::Failing);
        if let Some(run) = self.deploy.as_mut() {
            run.failure = Some(message.clone());
        }
        self.log_with(ctx, now, EventKind::DeployFailed, message.clone(), evidence);
        if !self.policy.can_rollback {
            let message = format!("{message}; no rollback is possible");
            return self.escalate(now, message, Evidence::new(), ctx);
        }
        let mut all = self
            .incident
            .as_ref()
            .map(|i| i.evidence.merged())
            .unwrap_or_default();
        all.insert("last_observations".into(), self.observation_summary());
        self.alert_with(
            ctx,
            Severity::Critical,
            "deploy_failed",
            &message,
            all,
            false,
        );
        self.set_phase(
            now,
            Phase::Waiting {
                step: Step::Rollback,
                at: now,
            },
        );
        self.drive_for_a_person(now, ctx);
    }

    /// Starts the due action a person asked for (recover, a failed deploy's
    /// rollback): neither a pause nor a dependency holds it; the pause stays.
    pub(super) fn drive_for_a_person(&mut self, now: Instant, ctx: &mut Ctx) {
        let paused = self.paused.take();
        let ready = std::mem::replace(&mut ctx.dependencies_ready, true);
        self.drive(now, ctx);
        ctx.dependencies_ready = ready;
        self.paused = paused;
    }
}
