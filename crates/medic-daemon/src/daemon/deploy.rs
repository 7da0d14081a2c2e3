//! `medic deploy` in the daemon: the core holds recovery while the person's
//! command runs and judges the new version; this side records the versions
//! before and after, and answers the waiting CLI when the deploy has ended
//! (promoted, rolled back, or escalated).

use std::time::{Duration, Instant};

use medic_core::{ActionResult, Control, DeployEnd, Input, RecoveryEvent};
use tokio::sync::oneshot;

use super::Daemon;
use crate::shell::DeployOutcome;
use crate::status::version;

/// A deploy in progress.
#[derive(Debug, Default)]
pub(super) struct PendingDeploy {
    before: Option<serde_json::Value>,
    /// Why the deploy failed, once it has.
    failure: Option<String>,
    /// How it ended, as the core said; the next log line of the unit says why.
    end: Option<DeployEnd>,
    reply: Option<oneshot::Sender<DeployOutcome>>,
    /// The deploy of several instances this one is part of (it answers the CLI).
    rollout: Option<String>,
}

impl PendingDeploy {
    /// One instance of a deploy of several.
    pub(super) fn member(before: Option<serde_json::Value>, rollout: String) -> Self {
        Self {
            before,
            rollout: Some(rollout),
            ..Self::default()
        }
    }

    /// The deploy of several instances this one is part of.
    pub(super) fn rollout(&self) -> Option<&str> {
        self.rollout.as_deref()
    }
}

impl Daemon {
    /// Begins a deploy of one unit, or of every instance a name means (see
    /// `rollout.rs`); Ok carries the version from before it.
    pub(super) fn deploy_begin(
        &mut self,
        now: Instant,
        unit: String,
        command_timeout: Duration,
        verify_timeout: Duration,
    ) -> Result<Option<serde_json::Value>, String> {
        let units = self.resolve(&unit);
        if units.is_empty() && !self.discovers(&unit) {
            return Err(format!("no service or instance named `{unit}`"));
        }
        if units != [unit.as_str()] {
            return self.rollout_begin(now, unit, units, command_timeout, verify_timeout);
        }
        if !self.sup.can_deploy(&unit) {
            return Err(format!(
                "`{unit}` is busy: a recovery action or another deploy is running; try again shortly"
            ));
        }
        let before = self
            .durability
            .store()
            .last_known_good(&unit)
            .and_then(|spec| spec.as_object())
            .and_then(version);
        self.deploys.insert(
            unit.clone(),
            PendingDeploy {
                before: before.clone(),
                ..PendingDeploy::default()
            },
        );
        let control = Control::Deploy {
            command_timeout,
            verify_timeout,
        };
        self.sup
            .handle_input(now, Input::Control { unit, control })
            .map_err(|e| e.to_string())?;
        Ok(before)
    }

    /// The deploy command ended: the core verifies the new version or rolls
    /// back; `reply` is answered when the deploy has ended.
    pub(super) fn deploy_finish(
        &mut self,
        now: Instant,
        unit: String,
        result: ActionResult,
        reply: oneshot::Sender<DeployOutcome>,
    ) {
        if self.is_rollout(&unit) {
            self.rollout_finish(now, &unit, result, reply);
            return;
        }
        let Some(pending) = self.deploys.get_mut(&unit) else {
            let outcome = DeployOutcome {
                promoted: false,
                message: format!(
                    "no deploy of `{unit}` is in progress (it timed out or medic restarted)"
                ),
                before: None,
                after: None,
                incident: None,
                instances: Vec::new(),
            };
            reply.send(outcome).ok();
            return;
        };
        pending.reply = Some(reply);
        self.sup
            .handle_input(now, Input::DeployFinished { unit, result })
            .ok();
    }

    /// Adds the versions to a deploy's recovery-log events, and answers the
    /// waiting `medic deploy` once the deploy has ended.
    pub(super) fn deploy_event(&mut self, now: Instant, event: &mut RecoveryEvent) {
        let Some(pending) = self.deploys.get_mut(&event.service) else {
            return;
        };
        if let Some(before) = &pending.before {
            event.evidence.insert("before".into(), before.clone());
        }
        let Some(end) = pending.end else {
            return;
        };
        let message = match end {
            DeployEnd::Promoted => "deployed: the new version is healthy; it becomes the last known good once it stays healthy".to_owned(),
            DeployEnd::RolledBack => "rolled back to the version from before the deploy".to_owned(),
            DeployEnd::Escalated => format!(
                "the rollback did not bring it back: escalated ({})",
                event.message
            ),
            DeployEnd::Reset | DeployEnd::Removed => {
                format!("the deploy ended by {}", event.kind.as_str())
            }
        };
        let promoted = end == DeployEnd::Promoted;
        let after = self
            .sup
            .unit_status(now, &event.service)
            .into_iter()
            .flat_map(|status| status.probes)
            .flatten()
            .find_map(|probe| version(&probe.observation.evidence));
        if let Some(after) = &after {
            event.evidence.insert("after".into(), after.clone());
        }
        let Some(pending) = self.deploys.remove(&event.service) else {
            return;
        };
        if let Some(rollout) = pending.rollout {
            let failure = pending.failure.or(Some(message));
            self.rollout_member_ended(&rollout, &event.service, end, after, failure);
            return;
        }
        let message = match pending.failure {
            Some(failure) if !promoted => format!("{failure}; {message}"),
            _ => message,
        };
        if let Some(reply) = pending.reply {
            let outcome = DeployOutcome {
                promoted,
                message,
                before: pending.before,
                after,
                incident: event.incident.clone(),
                instances: Vec::new(),
            };
            reply.send(outcome).ok();
        }
    }

    /// The core says how the unit's deploy ended, and why it failed if it
    /// did; the log line that follows says why it ended and answers the
    /// waiting CLI (see `deploy_event`).
    pub(super) fn deploy_ended(&mut self, unit: &str, end: DeployEnd, failure: Option<String>) {
        if let Some(pending) = self.deploys.get_mut(unit) {
            pending.end = Some(end);
            pending.failure = failure;
        }
    }

    /// Whether a rollback of `unit` undoes a deploy (then being on the last
    /// known good already is fine: the deploy changed nothing).
    pub(super) fn deploying(&self, unit: &str) -> bool {
        self.deploys.contains_key(unit)
    }
}
