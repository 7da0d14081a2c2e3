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

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

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
    /// How many services must fail within the window, out of `services`.
    pub fn threshold(&self, services: usize) -> usize {
        // f64 holds any realistic service count exactly; the product is clamped.
        let share = (self.share * services as f64)
            .ceil()
            .clamp(0.0, usize::MAX as f64);
        MIN_SERVICES.max(share as usize)
    }
}

/// A storm in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Active {
    /// When its first failure (within the window that started it) came.
    pub since: Instant,
    /// The first failures: unit and why.
    pub first: Vec<(String, String)>,
    /// Services that failed since it began.
    pub failed: usize,
    /// Services failing now.
    pub failing: usize,
    /// The failing count last summarised, and when.
    summarised: (usize, Instant),
}

/// A storm began or ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Began: what to tell people.
    Began(Active),
    /// Ended: how it went.
    Ended {
        /// When it began.
        since: Instant,
        /// Services that failed during it.
        failed: usize,
        /// Services still failing as it ends.
        still_failing: usize,
    },
}

/// Tracks open incidents to spot storms; O(1) per incident opened or closed.
#[derive(Debug)]
pub struct Storm {
    rule: StormRule,
    failing: HashSet<String>,
    /// Incidents opened within the window: when, which unit, why.
    recent: VecDeque<(Instant, String, String)>,
    active: Option<Active>,
    /// Services whose incident opened in the storm (see `holds`).
    members: HashSet<String>,
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
        }
    }

    /// Takes a new rule (a reload); what is failing stays.
    pub fn set_rule(&mut self, rule: StormRule) {
        self.rule = rule;
    }

    /// The storm in progress.
    pub fn active(&self) -> Option<&Active> {
        self.active.as_ref()
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
            return None;
        }
        // An incident outside a storm is alerted as usual.
        self.members.remove(unit);
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
        if self.failing.len() * 2 >= self.rule.threshold(services) {
            return None;
        }
        let ended = self.active.take()?;
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
        false
    }

    /// Forgets a service no longer watched.
    pub fn forget(&mut self, unit: &str, services: usize) -> Option<Change> {
        self.members.remove(unit);
        self.recovered(unit, services)
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
}
