//! What a person or a deploy does on purpose is not a failure (issue #35): a
//! `docker restart` or `podman restart` (a [`Urgency::Commanded`] stop), or a
//! removal followed by a new target under the same name (a deploy's `docker
//! rm -f` and `docker run`, Compose recreating it). While the target has its
//! grace to come back ([`ENGINE_GRACE`], `replace_grace` after a removal) no
//! incident opens, so nothing counts toward flapping or a storm; back healthy,
//! one `restarted` or `replaced` event says so; not back in time, an incident
//! opens then and medic restores it. A crash meanwhile is an incident at once.

use std::sync::Arc;
use std::time::Instant;

use super::{Ctx, Machine, Phase};
use crate::event::EventKind;
use crate::observation::{ENGINE_GRACE, Evidence, Observation, RESTART_EXPECTED_FROM, Urgency};
use crate::time::after;

/// A restart or a replacement under way that medic did not start.
#[derive(Debug, Clone)]
pub(super) struct Expected {
    /// Who restarts it (`` `docker restart` (a person or a script) ``), when the stop said.
    who: Option<String>,
    /// When it was first seen stopped: only observations begun since then count.
    since: Instant,
    /// When its removal was seen: then a replacement is awaited.
    removed_at: Option<Instant>,
    /// The container it was (its id), to tell a replacement from a restart.
    before: Option<String>,
    /// The stop or removal that began it: the incident's failure, should it not come back.
    failure: Arc<Observation>,
}

impl Expected {
    /// Takes in what one more failed observation of the stop or removal says.
    fn note(&mut self, now: Instant, observation: &Arc<Observation>) {
        if observation.urgency == Urgency::Gone {
            self.removed_at.get_or_insert(now);
        }
        if self.who.is_none() {
            self.who = text(&observation.evidence, RESTART_EXPECTED_FROM);
        }
        if self.before.is_none() {
            self.before = text(&observation.evidence, CONTAINER_ID);
        }
    }
}

/// The evidence key of a container's id.
const CONTAINER_ID: &str = "container_id";

fn text(evidence: &Evidence, key: &str) -> Option<String> {
    evidence.get(key)?.as_str().map(str::to_owned)
}

impl Machine {
    /// Takes a failed observation as part of a restart or a replacement under
    /// way, when it is one: true when it was decided here.
    pub(super) fn expect(
        &mut self,
        now: Instant,
        observation: &Arc<Observation>,
        ctx: &mut Ctx,
    ) -> bool {
        let on_purpose = matches!(observation.urgency, Urgency::Commanded | Urgency::Gone);
        match (self.phase, self.expected.as_mut()) {
            (Phase::Healthy | Phase::Starting, _) if on_purpose => {
                let mut expected = Expected {
                    who: None,
                    since: now,
                    removed_at: None,
                    before: None,
                    failure: Arc::clone(observation),
                };
                expected.note(now, observation);
                self.expected = Some(expected);
                self.expect_until(now);
                true
            }
            (Phase::Expecting { .. }, Some(expected)) => {
                let since = expected.since;
                if on_purpose {
                    expected.note(now, observation);
                    self.expect_until(now);
                } else if observation.urgency != Urgency::Normal
                    && observation.began_since(now, since)
                {
                    // It died again after it came back: a crash, not the command.
                    self.expected = None;
                    self.open_incident(now, Arc::clone(observation), ctx);
                }
                // Booting again (a probe that cannot connect yet): the grace decides.
                true
            }
            _ => false,
        }
    }

    /// Waits until the grace of the restart (or of the replacement, once a
    /// removal was seen) ends.
    fn expect_until(&mut self, now: Instant) {
        let Some(expected) = &self.expected else {
            return;
        };
        let until = match expected.removed_at {
            Some(removed) => after(removed, self.policy.replace_grace),
            None => after(expected.since, ENGINE_GRACE),
        };
        let replacing = expected.removed_at.is_some();
        self.set_phase(now, Phase::Expecting { until, replacing });
    }

    /// Since when observations judge a restart or replacement under way.
    pub(super) fn expected_since(&self) -> Option<Instant> {
        self.expected.as_ref().map(|e| e.since)
    }

    /// Back on fresh successes: one `restarted` or `replaced` event, no incident.
    pub(super) fn expected_back(&mut self, now: Instant, ctx: &mut Ctx) {
        let Some(expected) = self.expected.take() else {
            return;
        };
        let after_it = self
            .probes
            .iter()
            .filter_map(|p| p.last.as_ref())
            .find_map(|l| text(&l.observation.evidence, CONTAINER_ID));
        let new_one = match (&expected.before, &after_it) {
            (Some(before), Some(now)) => before != now,
            _ => false,
        };
        let mut evidence = Evidence::new();
        let (kind, message) = if expected.removed_at.is_some() || new_one {
            if let Some(before) = &expected.before {
                evidence.insert("replaced".into(), before.clone().into());
            }
            let message = match &after_it {
                Some(id) => {
                    evidence.insert("replacement".into(), id.clone().into());
                    format!("replaced: new container {}… under the same name", short(id))
                }
                None => "replaced under the same name".to_owned(),
            };
            (EventKind::Replaced, message)
        } else {
            let who = expected.who.unwrap_or_else(|| "a command".to_owned());
            let message = format!("restarted by {who}");
            evidence.insert("restarted_by".into(), who.into());
            (EventKind::Restarted, message)
        };
        self.set_phase(now, Phase::Healthy);
        self.log_with(ctx, now, kind, message, evidence);
        self.judged_healthy(ctx);
    }

    /// Not back within its grace: now it is an incident, and medic restores it
    /// (recreates it if it was removed: the replacement's grace has passed).
    pub(super) fn not_back(&mut self, now: Instant, ctx: &mut Ctx) {
        let Some(expected) = self.expected.take() else {
            return;
        };
        let mut failure = (*expected.failure).clone();
        // Waited for already: the restore is not held back for it a second time.
        if let Some(who) = failure.evidence.remove(RESTART_EXPECTED_FROM) {
            failure.evidence.insert("stopped_by".into(), who);
        }
        let grace = humantime::format_duration(self.policy.replace_grace);
        let removed_later = failure.urgency != Urgency::Gone;
        failure.message = match expected.removed_at {
            Some(_) if removed_later => format!(
                "{}; then removed: no healthy replacement within {grace}",
                failure.message
            ),
            Some(_) => format!("{}: no healthy replacement within {grace}", failure.message),
            None => format!(
                "{}: not back within {}s",
                failure.message,
                ENGINE_GRACE.as_secs()
            ),
        };
        failure.urgency = match expected.removed_at {
            Some(_) => Urgency::Gone,
            None => Urgency::Decisive,
        };
        self.open_incident_at(now, Arc::new(failure), expected.removed_at, ctx);
    }
}

/// The first 12 characters of an id, as `docker ps` shows it.
fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.get(..12).unwrap_or(id)
}
