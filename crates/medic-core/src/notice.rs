//! What the shell does with a recovery event beyond the recovery log,
//! decided here so that the shell never reads an event kind back as a control
//! signal: whether it is trouble (stderr at warn, so journald priority 4, and
//! `journalctl -p warning -u medic`), and whether the state change behind it
//! must reach the disk at once (a change line) or may wait for the next whole
//! save. The machine stamps each [`RecoveryEvent`](crate::RecoveryEvent) with
//! its [`Notice`] as it emits it.

use crate::event::EventKind;
pub use crate::event::{Level, Notice, Persist};

impl Notice {
    /// The rule for each kind. Trouble: an incident opened, a step failed, a
    /// person must act, medic cannot see or was cut short, a deploy failed, a
    /// service flaps. At once: whatever opens or closes an incident, finishes a
    /// step, or is a person's command (a lost pause would let medic act).
    pub fn of(kind: EventKind) -> Self {
        use EventKind as K;
        let level = match kind {
            K::Failing
            | K::RestartFailed
            | K::RollbackFailed
            | K::Escalated
            | K::Blind
            | K::Stale
            | K::Interrupted
            | K::DeployFailed
            | K::Flapping => Level::Trouble,
            K::Watching
            | K::Healthy
            | K::Restart
            | K::RestartDone
            | K::Recovered
            | K::Rollback
            | K::RollbackDone
            | K::RolledBack
            | K::Paused
            | K::Resumed
            | K::Reset
            | K::SightRestored
            | K::Dropped
            | K::Ignored
            | K::WaitingForDependency
            | K::Removed
            | K::DeployStarted
            | K::DeployDone
            | K::Deployed
            | K::Restarted
            | K::Replaced
            | K::FlappingEnded => Level::Routine,
        };
        let persist = match kind {
            K::Failing
            | K::RestartDone
            | K::RestartFailed
            | K::Recovered
            | K::RollbackDone
            | K::RollbackFailed
            | K::RolledBack
            | K::Escalated
            | K::Paused
            | K::Resumed
            | K::Reset
            | K::Removed
            | K::DeployStarted
            | K::DeployDone
            | K::DeployFailed
            | K::Deployed
            | K::Flapping
            | K::FlappingEnded => Persist::AtOnce,
            // A started action is on disk before it launches anyway (the
            // launch waits for its change line); the rest is news.
            K::Watching
            | K::Healthy
            | K::Restart
            | K::Rollback
            | K::Blind
            | K::SightRestored
            | K::Stale
            | K::Interrupted
            | K::Dropped
            | K::Ignored
            | K::WaitingForDependency
            | K::Restarted
            | K::Replaced => Persist::WithNextSave,
        };
        Self { level, persist }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind's notice, one line each, so a new kind or a changed rule shows in review.
    #[test]
    fn each_kind_has_its_notice() {
        let table: String = EventKind::ALL
            .iter()
            .map(|kind| {
                let notice = Notice::of(*kind);
                let level = format!("{:?}", notice.level);
                format!("{:<24}{level:<9}{:?}\n", kind.as_str(), notice.persist)
            })
            .collect();
        insta::assert_snapshot!(table);
    }
}
