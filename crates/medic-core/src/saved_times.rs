//! Saved times a restarted medic cannot take as they are. The state store
//! keeps wall-clock times; a wall clock stepped back since they were saved
//! (NTP, a person, a laptop's clock fixed after a sleep) turns a deadline
//! into one far ahead, which would strand a unit (`recovering` for a day
//! with `recover_timeout = "5s"`), and a past moment into one in the future.
//! Each is clamped to what the policy allows from now, and said.

use std::fmt;
use std::time::{Duration, Instant};

use crate::policy::{FLAP_BACKOFF_MAX, Policy};
use crate::snapshot::{SavedPhase, UnitSnapshot};
use crate::time::after;

/// A saved time that was clamped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Implausible {
    /// Which time: "the verification deadline", "the pause's end", …
    pub what: &'static str,
    /// How far ahead of now it was.
    pub ahead: Duration,
    /// What it was clamped to, from now (zero for a past moment).
    pub allowed: Duration,
    /// The rule that allows that much: "recover_timeout", "now", …
    pub by: &'static str,
}

impl fmt::Display for Implausible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ahead = self.ahead.as_secs();
        if self.allowed.is_zero() {
            write!(f, "{} lay {ahead} s in the future; taken as now", self.what)
        } else {
            write!(
                f,
                "{} was {ahead} s ahead; clamped to {:.1} s from now ({})",
                self.what,
                self.allowed.as_secs_f64(),
                self.by
            )
        }
    }
}

/// Clamps the times of `saved`: a waiting step to the longest wait the
/// policy has (backoff, replace grace, flap delay), a verification to
/// `recover_timeout`, a pause's end to its own length (`pause_length`, as
/// saved; none for a file that did not say), and moments that already
/// happened to now. Returns what was clamped, for a log line each.
pub fn clamp(
    now: Instant,
    saved: &mut UnitSnapshot,
    policy: &Policy,
    pause_length: Option<Duration>,
) -> Vec<Implausible> {
    let mut out = Vec::new();
    let longest_wait = policy
        .backoff_max
        .max(policy.replace_grace)
        .max(FLAP_BACKOFF_MAX.max(policy.flap_backoff));
    match &mut saved.phase {
        SavedPhase::Waiting { at, .. } => bound(
            now,
            at,
            longest_wait,
            "the next step's time",
            "the policy's longest wait",
            &mut out,
        ),
        SavedPhase::Verifying { deadline, .. } => bound(
            now,
            deadline,
            policy.recover_timeout,
            "the verification deadline",
            "recover_timeout",
            &mut out,
        ),
        _ => {}
    }
    if let (Some(Some(until)), Some(length)) = (&mut saved.paused, pause_length) {
        bound(
            now,
            until,
            length,
            "the pause's end",
            "the pause's own length",
            &mut out,
        );
    }
    let past = |at: &mut Instant, what, out: &mut Vec<Implausible>| {
        bound(now, at, Duration::ZERO, what, "now", out);
    };
    if let Some(incident) = &mut saved.incident {
        past(&mut incident.opened, "the incident's opening", &mut out);
        if let Some(removed) = &mut incident.removed_at {
            past(removed, "the removal", &mut out);
        }
    }
    for opened in &mut saved.incidents {
        past(opened, "a recent incident's opening", &mut out);
    }
    if let Some(calm) = saved.flap.as_mut().and_then(|f| f.calm_since.as_mut()) {
        past(calm, "the last flapping incident's end", &mut out);
    }
    if let Some(since) = &mut saved.blind_since {
        past(since, "the blindness's start", &mut out);
    }
    out
}

/// Moves `at` back to `now + allowed` when it lies beyond.
fn bound(
    now: Instant,
    at: &mut Instant,
    allowed: Duration,
    what: &'static str,
    by: &'static str,
    out: &mut Vec<Implausible>,
) {
    let limit = after(now, allowed);
    if *at > limit {
        out.push(Implausible {
            what,
            ahead: at.saturating_duration_since(now),
            allowed,
            by,
        });
        *at = limit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{SavedIncident, SavedPhase};
    use crate::vocabulary::Step;

    const DAY: Duration = Duration::from_secs(86_400);

    fn unit(phase: SavedPhase, paused: Option<Option<Instant>>, opened: Instant) -> UnitSnapshot {
        UnitSnapshot {
            name: "web".into(),
            phase,
            incident: Some(SavedIncident {
                id: "t-1".into(),
                opened,
                alerted: false,
                rollback_tried: false,
                attempts: 1,
                reason: None,
                gone: false,
                removed_at: None,
                flap_delay: None,
            }),
            incidents: vec![opened],
            flap: None,
            paused,
            blind_since: Some(opened),
        }
    }

    fn policy() -> Policy {
        Policy {
            recover_timeout: Duration::from_secs(5),
            ..Policy::default()
        }
    }

    #[test]
    fn a_deadline_a_day_ahead_is_clamped_to_what_the_policy_allows() {
        let now = Instant::now();
        let step = Step::Restart(1);
        let mut saved = unit(
            SavedPhase::Verifying {
                step,
                deadline: now + DAY,
            },
            Some(Some(now + DAY)),
            now + DAY,
        );
        let said = clamp(now, &mut saved, &policy(), Some(Duration::from_secs(7200)));
        let deadline = now + Duration::from_secs(5);
        assert_eq!(saved.phase, SavedPhase::Verifying { step, deadline });
        assert_eq!(saved.paused, Some(Some(now + Duration::from_secs(7200))));
        assert_eq!(saved.incident.as_ref().map(|i| i.opened), Some(now));
        assert_eq!(saved.incidents, [now]);
        assert_eq!(saved.blind_since, Some(now));
        let lines: Vec<String> = said.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "the verification deadline was 86400 s ahead; clamped to 5.0 s from now (recover_timeout)",
                "the pause's end was 86400 s ahead; clamped to 7200.0 s from now (the pause's own length)",
                "the incident's opening lay 86400 s in the future; taken as now",
                "a recent incident's opening lay 86400 s in the future; taken as now",
                "the blindness's start lay 86400 s in the future; taken as now",
            ]
        );
    }

    #[test]
    fn plausible_times_are_left_alone() {
        let now = Instant::now() + DAY;
        let step = Step::Restart(2);
        let at = now + Duration::from_secs(2);
        let mut saved = unit(
            SavedPhase::Waiting { step, at },
            Some(Some(now + DAY)),
            now - Duration::from_secs(60),
        );
        let before = saved.clone();
        // A pause saved without its length keeps its end.
        assert_eq!(clamp(now, &mut saved, &policy(), None), []);
        assert_eq!(saved, before);
    }
}
