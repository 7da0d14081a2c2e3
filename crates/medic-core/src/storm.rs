//! Storms: many services failing at once, almost always for one shared cause
//! (an upstream, the network, the engine). People get one summary instead of
//! one line per service, on stderr and from each alert sink.
//!
//! The rule: a storm begins when, within `window`, at least
//! `max(MIN_SERVICES, ceil(share × services))` services open an incident. It
//! lasts while incidents stay open and ends when fewer than half that many
//! are still failing. The services whose incidents opened in it are its
//! members: while it lasts their alerts go to the critical alerts file but
//! not to the sinks, and afterwards neither do the lines resolving those held
//! incidents (a sink never gets a "resolved" for what it was never sent). The
//! storm's own begin and end go to both. Pure: time comes in as `now`.
//!
//! What a restarted medic must know of it (the storm in progress and its
//! members) is kept in the state store ([`Storm::saved`], [`Storm::restore`]),
//! so the sinks that got a storm's alert also get its resolving line.
//!
//! The supervisor owns the rule and feeds it every incident that opens or
//! closes; what it decides comes out as typed outputs: [`Change`] as
//! `Action::Storm` (began, goes on, ended) and an alert's `held` flag.
//!
//! Per-service lines on stderr are rate-limited as well ([`LineBudget`]): the
//! failures before a storm is recognised and the recoveries after it ended are
//! a few lines a second and one count of the rest, never one line per service.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

pub use crate::event::{Active, Change};
use crate::event::{EventKind, RecoveryEvent};

/// Fewer failing services than this are never a storm, whatever the share:
/// on a host with 8 services, 2 failing together are two incidents.
pub const MIN_SERVICES: usize = 10;
/// Failures named in a storm's summary.
pub const FIRST_NAMED: usize = 5;
/// A storm's progress is summarised at most this often.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(30);

/// When failures count as a storm (`[medic] storm_share`, `storm_window`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StormRule {
    /// Share of all services (0 < share ≤ 1).
    pub share: f64,
    /// Within how long.
    pub window: Duration,
}

impl StormRule {
    /// A fifth of the services failing within a minute.
    pub const DEFAULT: StormRule = StormRule {
        share: 0.2,
        window: Duration::from_secs(60),
    };

    /// How many services must fail within the window, out of `services`.
    pub fn threshold(&self, services: usize) -> usize {
        // f64 holds any realistic service count exactly; the product is clamped.
        let share = (self.share * services as f64)
            .ceil()
            .clamp(0.0, usize::MAX as f64);
        MIN_SERVICES.max(share as usize)
    }
}

/// Tracks open incidents to spot storms; O(1) per incident opened or closed.
#[derive(Debug)]
pub struct Storm {
    rule: StormRule,
    /// Hash sets for O(1) per incident: only ever asked about one unit or
    /// their count, never walked for a decision (`saved` sorts its members).
    failing: HashSet<String>,
    /// Incidents opened within the window: when, which unit, why.
    recent: VecDeque<(Instant, String, String)>,
    active: Option<Active>,
    /// Services whose incident opened in the storm (see `holds`).
    members: HashSet<String>,
    /// Whether what [`Storm::saved`] returns changed since [`Storm::take_changed`].
    changed: bool,
}

/// What a restarted medic needs of the storm rule: the storm in progress
/// and whose alerts are held. Which services are failing is not kept: the
/// open incidents in the state store say it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SavedStorm {
    /// The storm in progress.
    pub active: Option<SavedActive>,
    /// Services whose alerts are held (see [`Storm::holds`]).
    pub members: Vec<String>,
}

/// A storm in progress, as saved.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedActive {
    /// When its first failure came.
    pub since: Instant,
    /// The first failures: unit and why.
    pub first: Vec<(String, String)>,
    /// Services that failed since it began.
    pub failed: usize,
}

impl Storm {
    /// No storm, nothing failing.
    pub fn new(rule: StormRule) -> Self {
        Self {
            rule,
            failing: HashSet::new(),
            recent: VecDeque::new(),
            active: None,
            members: HashSet::new(),
            changed: false,
        }
    }

    /// What to keep across a restart of medic; None when nothing is held.
    pub fn saved(&self) -> Option<SavedStorm> {
        if self.active.is_none() && self.members.is_empty() {
            return None;
        }
        let mut members: Vec<String> = self.members.iter().cloned().collect();
        members.sort_unstable();
        Some(SavedStorm {
            active: self.active.as_ref().map(|a| SavedActive {
                since: a.since,
                first: a.first.clone(),
                failed: a.failed,
            }),
            members,
        })
    }

    /// Whether [`Storm::saved`] changed since this was last asked; clears it.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Continues a storm saved before a restart of medic. `failing` are the
    /// units whose incident is still open, out of `services` watched. A storm
    /// that was over by then ends at once (its resolving line is due).
    pub fn restore(
        &mut self,
        now: Instant,
        saved: SavedStorm,
        failing: impl IntoIterator<Item = String>,
        services: usize,
    ) -> Option<Change> {
        self.failing = failing.into_iter().collect();
        self.members = saved.members.into_iter().collect();
        let saved = saved.active?;
        self.active = Some(Active {
            since: saved.since,
            first: saved.first,
            failed: saved.failed,
            failing: self.failing.len(),
            summarised: (self.failing.len(), now),
        });
        self.end_when_most_are_back(services)
    }

    /// Takes a new rule (a reload); what is failing stays.
    pub fn set_rule(&mut self, rule: StormRule) {
        self.rule = rule;
    }

    /// The storm in progress.
    pub fn active(&self) -> Option<&Active> {
        self.active.as_ref()
    }

    /// Feeds one recovery event, out of `services` watched: an incident
    /// opened (`failing`) or closed (`recovered`, `rolled_back`, `reset`).
    pub fn track(
        &mut self,
        now: Instant,
        event: &RecoveryEvent,
        services: usize,
    ) -> Option<Change> {
        match event.kind {
            EventKind::Failing => self.failed(now, &event.service, &event.message, services),
            EventKind::Recovered | EventKind::RolledBack | EventKind::Reset => {
                self.recovered(&event.service, services)
            }
            _ => None,
        }
    }

    /// `unit` opened an incident (`reason`: its first failure), out of `services` watched.
    pub fn failed(
        &mut self,
        now: Instant,
        unit: &str,
        reason: &str,
        services: usize,
    ) -> Option<Change> {
        if !self.failing.insert(unit.to_owned()) {
            return None;
        }
        while self
            .recent
            .front()
            .is_some_and(|(at, _, _)| now.saturating_duration_since(*at) > self.rule.window)
        {
            self.recent.pop_front();
        }
        if let Some(active) = &mut self.active {
            active.failed += 1;
            active.failing = self.failing.len();
            self.members.insert(unit.to_owned());
            self.changed = true;
            return None;
        }
        // An incident outside a storm is alerted as usual.
        self.changed |= self.members.remove(unit);
        self.recent
            .push_back((now, unit.to_owned(), reason.to_owned()));
        if self.recent.len() < self.rule.threshold(services) {
            return None;
        }
        let since = self.recent.front().map_or(now, |(at, _, _)| *at);
        let first = self
            .recent
            .iter()
            .take(FIRST_NAMED)
            .map(|(_, unit, reason)| (unit.clone(), reason.clone()))
            .collect();
        let active = Active {
            since,
            first,
            failed: self.recent.len(),
            failing: self.failing.len(),
            summarised: (self.failing.len(), now),
        };
        self.members
            .extend(self.recent.drain(..).map(|(_, unit, _)| unit));
        self.active = Some(active.clone());
        self.changed = true;
        Some(Change::Began(active))
    }

    /// `unit`'s incident closed (recovered, reset, or the unit is no longer
    /// watched), out of `services` watched.
    pub fn recovered(&mut self, unit: &str, services: usize) -> Option<Change> {
        if !self.failing.remove(unit) {
            return None;
        }
        let active = self.active.as_mut()?;
        active.failing = self.failing.len();
        self.end_when_most_are_back(services)
    }

    /// Ends the storm when fewer than half its threshold are still failing.
    fn end_when_most_are_back(&mut self, services: usize) -> Option<Change> {
        if self.failing.len() * 2 >= self.rule.threshold(services) {
            return None;
        }
        let ended = self.active.take()?;
        self.changed = true;
        Some(Change::Ended {
            since: ended.since,
            failed: ended.failed,
            still_failing: self.failing.len(),
        })
    }

    /// Whether an alert about `unit` stays off the sinks: any alert of a
    /// member while the storm lasts; afterwards only the line resolving a held
    /// incident. A member's alert that is sent makes it an ordinary service.
    pub fn holds(&mut self, unit: &str, resolved: bool) -> bool {
        if !self.members.contains(unit) {
            return false;
        }
        if self.active.is_some() || resolved {
            return true;
        }
        self.members.remove(unit);
        self.changed = true;
        false
    }

    /// Forgets a service no longer watched.
    pub fn forget(&mut self, unit: &str, services: usize) -> Option<Change> {
        self.changed |= self.members.remove(unit);
        self.recovered(unit, services)
    }

    /// When a summary is next due: the failing count changed since the last
    /// one, which was [`SUMMARY_EVERY`] before that.
    pub fn next_summary(&self) -> Option<Instant> {
        let active = self.active.as_ref()?;
        let (count, at) = active.summarised;
        (count != active.failing).then(|| crate::time::after(at, SUMMARY_EVERY))
    }

    /// The storm, when its failing count changed since it was last
    /// summarised at least `SUMMARY_EVERY` ago; marks it summarised.
    pub fn summary_due(&mut self, now: Instant) -> Option<&Active> {
        let active = self.active.as_mut()?;
        let (count, at) = active.summarised;
        if count == active.failing || now.saturating_duration_since(at) < SUMMARY_EVERY {
            return None;
        }
        active.summarised = (active.failing, now);
        Some(active)
    }
}

/// Per-service lines a second on stderr before the rest are only counted.
pub const LINES_PER_SECOND: usize = 10;

/// Rate-limits per-service lines on stderr (the recovery log keeps them all):
/// at most [`LINES_PER_SECOND`] each second; the rest are counted, and the
/// count is told once their second is over. 2,000 services failing within
/// two seconds are about twenty lines and two counts.
#[derive(Debug, Default)]
pub struct LineBudget {
    /// When the current second began, and the lines written in it.
    second: Option<(Instant, usize)>,
    held: Option<Held>,
}

/// Lines kept off stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// How many.
    pub lines: usize,
    /// When the first of them came.
    pub since: Instant,
}

const SECOND: Duration = Duration::from_secs(1);

impl LineBudget {
    /// Whether a per-service line at `now` may go to stderr; one that may not is counted.
    pub fn admit(&mut self, now: Instant) -> bool {
        let (start, used) = match self.second {
            Some((start, used)) if now.saturating_duration_since(start) < SECOND => (start, used),
            _ => (now, 0),
        };
        if used < LINES_PER_SECOND {
            self.second = Some((start, used + 1));
            return true;
        }
        self.second = Some((start, used));
        let held = self.held.get_or_insert(Held {
            lines: 0,
            since: now,
        });
        held.lines += 1;
        false
    }

    /// The lines held back, once the second that held the last of them is
    /// over (ask before each line and on a timer); then counting starts anew.
    pub fn held(&mut self, now: Instant) -> Option<Held> {
        let open = self
            .second
            .is_some_and(|(start, _)| now.saturating_duration_since(start) < SECOND);
        if open { None } else { self.held.take() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: StormRule = StormRule {
        share: 0.2,
        window: Duration::from_secs(60),
    };

    #[test]
    fn threshold_is_a_share_with_a_floor() {
        assert_eq!(RULE.threshold(8), MIN_SERVICES);
        assert_eq!(RULE.threshold(100), 20);
        assert_eq!(RULE.threshold(10_001), 2001);
    }

    #[test]
    fn many_failures_within_the_window_are_one_storm_that_ends_when_most_are_back() {
        let t0 = Instant::now();
        let mut storm = Storm::new(RULE);
        let mut changes = Vec::new();
        for n in 0..100 {
            let now = t0 + Duration::from_millis(100 * n);
            changes.extend(storm.failed(now, &format!("ep{n}"), "HTTP 404", 100));
        }
        let [Change::Began(active)] = changes.as_slice() else {
            panic!("one storm: {changes:?}");
        };
        assert_eq!(active.since, t0);
        assert_eq!(active.failed, 20);
        assert_eq!(active.first[0], ("ep0".to_owned(), "HTTP 404".to_owned()));
        assert_eq!(active.first.len(), FIRST_NAMED);
        assert_eq!(storm.active().unwrap().failed, 100);
        let later = t0 + SUMMARY_EVERY + Duration::from_secs(10);
        assert_eq!(storm.summary_due(later).unwrap().failing, 100);
        assert!(storm.summary_due(later).is_none(), "rate-limited");
        for n in 0..90 {
            assert_eq!(storm.recovered(&format!("ep{n}"), 100), None);
        }
        assert_eq!(
            storm.recovered("ep90", 100),
            Some(Change::Ended {
                since: t0,
                failed: 100,
                still_failing: 9
            })
        );
        assert!(storm.active().is_none());
        // The sinks never got ep95's incident, so not its resolution either;
        // an escalation after the storm does go out, and then its resolution too.
        assert!(storm.holds("ep95", true));
        assert!(!storm.holds("ep96", false));
        assert!(!storm.holds("ep96", true));
        assert!(!storm.holds("elsewhere", false));
    }

    #[test]
    fn failures_spread_wider_than_the_window_are_no_storm() {
        let t0 = Instant::now();
        let mut storm = Storm::new(RULE);
        for n in 0..50u64 {
            let now = t0 + Duration::from_secs(10 * n);
            assert_eq!(storm.failed(now, &format!("ep{n}"), "down", 100), None);
            storm.recovered(&format!("ep{n}"), 100);
        }
        // Failing again while failing counts once.
        for _ in 0..30 {
            assert_eq!(storm.failed(t0, "ep1", "down", 100), None);
        }
    }

    #[test]
    fn a_restarted_storm_goes_on_and_ends_with_its_resolving_line() {
        let t0 = Instant::now();
        let mut storm = Storm::new(RULE);
        assert_eq!(storm.saved(), None);
        for n in 0..30 {
            storm.failed(t0, &format!("ep{n}"), "HTTP 404", 100);
        }
        assert!(storm.take_changed());
        assert!(!storm.take_changed(), "cleared");
        let saved = storm.saved().expect("a storm to keep");
        assert_eq!(saved.members.len(), 30);
        let active = saved.active.clone().expect("in progress");
        assert_eq!((active.since, active.failed), (t0, 30));

        // medic restarts: 25 incidents are still open.
        let later = t0 + Duration::from_secs(5);
        let mut storm = Storm::new(RULE);
        let open = (0..25).map(|n| format!("ep{n}"));
        assert_eq!(storm.restore(later, saved.clone(), open, 100), None);
        assert_eq!(storm.active().map(|a| a.failing), Some(25));
        assert!(storm.holds("ep3", false), "members stay held");
        assert!(!storm.holds("ep40", false));
        for n in 0..15 {
            assert_eq!(storm.recovered(&format!("ep{n}"), 100), None);
        }
        assert_eq!(
            storm.recovered("ep15", 100),
            Some(Change::Ended {
                since: t0,
                failed: 30,
                still_failing: 9
            })
        );
        assert!(
            storm.holds("ep1", true),
            "its resolution stays off the sinks"
        );

        // Restarted after most came back: the storm ends at once.
        let mut storm = Storm::new(RULE);
        let open = (0..3).map(|n| format!("ep{n}"));
        let ended = storm.restore(later, saved, open, 100);
        assert!(matches!(
            ended,
            Some(Change::Ended {
                still_failing: 3,
                ..
            })
        ));
        assert!(
            storm.saved().is_some_and(|s| s.active.is_none()),
            "members kept"
        );
    }

    #[test]
    fn stderr_gets_ten_lines_a_second_and_a_count_of_the_rest() {
        let t0 = Instant::now();
        let mut budget = LineBudget::default();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        // 2,000 lines within two seconds.
        let mut written = 0;
        let mut counts = Vec::new();
        for n in 0..2000u64 {
            let now = ms(n);
            counts.extend(budget.held(now));
            written += usize::from(budget.admit(now));
        }
        assert_eq!(written, 2 * LINES_PER_SECOND);
        assert_eq!(
            counts,
            [Held {
                lines: 1000 - LINES_PER_SECOND,
                since: ms(LINES_PER_SECOND as u64)
            }]
        );
        // The rest is told once its second is over, not before.
        assert_eq!(budget.held(ms(1999)), None);
        assert_eq!(budget.held(ms(2000)).map(|h| h.lines), Some(990));
        assert_eq!(budget.held(ms(9000)), None);
        // A quiet host writes every line.
        assert!((0..5).all(|n| budget.admit(ms(10_000 + 300 * n))));
    }
}
