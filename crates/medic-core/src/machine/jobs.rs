//! A unit's side of its jobs' life: a decided step waits queued for a slot,
//! becomes acting when the supervisor hands its job to the shell, and starts
//! its timeout when the shell reports it launched. The queue itself is the
//! supervisor's (`slots.rs`).

use std::time::Instant;

use super::{Machine, Phase};
use crate::time::after;
use crate::vocabulary::JobId;

impl Machine {
    /// The shell started `job`: its timeout runs from now.
    pub(crate) fn on_launched(&mut self, now: Instant, job: JobId) {
        if let Phase::Acting {
            step,
            job: current,
            deadline: None,
        } = self.phase
            && current == job
        {
            let deadline = Some(after(now, self.policy.action_timeout));
            self.phase = Phase::Acting {
                step,
                job,
                deadline,
            };
        }
    }

    /// The supervisor took `job` out of the queue for the shell to start.
    pub(crate) fn launching(&mut self, now: Instant, job: JobId) {
        if let Phase::Queued { step, job: queued } = self.phase
            && queued == job
        {
            self.set_phase(
                now,
                Phase::Acting {
                    step,
                    job,
                    deadline: None,
                },
            );
        }
    }

    /// A queued action waits no more while paused or blind: it goes back to
    /// being due (the supervisor drops its job) and is decided again when the
    /// unit may act.
    pub(super) fn hold_queued(&mut self, now: Instant) {
        if let Phase::Queued { step, .. } = self.phase
            && self.gated()
        {
            self.set_phase(now, Phase::Waiting { step, at: now });
        }
    }

    /// The job this unit's phase waits for: queued or running.
    pub(crate) fn job(&self) -> Option<JobId> {
        match self.phase {
            Phase::Queued { job, .. } | Phase::Acting { job, .. } => Some(job),
            _ => None,
        }
    }
}
