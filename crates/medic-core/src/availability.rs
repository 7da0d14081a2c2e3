//! Availability arithmetic: how much of a window a unit was healthy, counting
//! only time with a verdict (unknown time is neither up nor down), kept in
//! minute buckets for the last hour and hour buckets for the last week —
//! about 1.5 KiB per unit, so 10,000 units stay small.

use std::time::{Duration, Instant};

use crate::machine::Health;

const MINUTE: u64 = 60_000;
const HOUR: u64 = 3_600_000;

/// Up and known milliseconds of one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bucket {
    /// Which minute or hour since the origin this bucket holds.
    index: u64,
    up: u32,
    known: u32,
}

/// A ring of buckets of `span` milliseconds each.
#[derive(Debug, Clone)]
struct Ring {
    span: u64,
    buckets: Vec<Bucket>,
}

impl Ring {
    fn new(span: u64, len: usize) -> Self {
        Self {
            span,
            buckets: vec![Bucket::default(); len],
        }
    }

    /// Adds `[start, end)` (ms since origin) to the buckets it covers.
    fn add(&mut self, mut start: u64, end: u64, up: bool) {
        let len = self.buckets.len() as u64;
        while start < end {
            let index = start / self.span;
            let chunk_end = ((index + 1) * self.span).min(end);
            let slot = &mut self.buckets[(index % len) as usize];
            if slot.index != index {
                *slot = Bucket {
                    index,
                    up: 0,
                    known: 0,
                };
            }
            let ms = u32::try_from(chunk_end - start).unwrap_or(u32::MAX);
            slot.known = slot.known.saturating_add(ms);
            if up {
                slot.up = slot.up.saturating_add(ms);
            }
            start = chunk_end;
        }
    }

    /// Up and known ms over the buckets that overlap `[from, to]` (ms since origin).
    fn sum(&self, from: u64, to: u64) -> (u64, u64) {
        let (first, last) = (from / self.span, to / self.span);
        self.buckets
            .iter()
            .filter(|b| (first..=last).contains(&b.index) && b.known > 0)
            .fold((0, 0), |(up, known), b| {
                (up + u64::from(b.up), known + u64::from(b.known))
            })
    }
}

/// One unit's availability history.
#[derive(Debug, Clone)]
pub struct Availability {
    origin: Instant,
    minutes: Ring,
    hours: Ring,
    /// The verdict since the last record, and when it began.
    current: (Instant, Health),
}

impl Availability {
    /// An empty history starting `now`, with no verdict yet.
    pub fn new(now: Instant) -> Self {
        Self {
            origin: now,
            // One bucket more than the window: a window that does not start on a
            // bucket boundary overlaps one more bucket.
            minutes: Ring::new(MINUTE, 61),
            hours: Ring::new(HOUR, 24 * 7 + 1),
            current: (now, Health::Unknown),
        }
    }

    /// Closes the time since the last record under the previous verdict and starts `health`.
    pub fn record(&mut self, now: Instant, health: Health) {
        let (since, previous) = self.current;
        if previous != Health::Unknown && now > since {
            let (start, end) = (self.ms(since), self.ms(now));
            let up = previous == Health::Healthy;
            self.minutes.add(start, end, up);
            self.hours.add(start, end, up);
        }
        self.current = (now, health);
    }

    /// The share of known time that was healthy over the last `window`
    /// (≤ 1 h: minute precision; longer: hour precision, up to 7 days); None without any verdict.
    pub fn ratio(&self, now: Instant, window: Duration) -> Option<f64> {
        let mut copy = self.clone();
        copy.record(now, self.current.1);
        let to = copy.ms(now);
        let window = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let (up, known) = if window <= HOUR {
            copy.minutes.sum(to.saturating_sub(window), to)
        } else {
            copy.hours
                .sum(to.saturating_sub(window.min(24 * 7 * HOUR)), to)
        };
        (known > 0).then(|| up as f64 / known as f64)
    }

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_millis()).unwrap_or(u64::MAX)
    }
}

/// The SLO figures of one unit: how much of its error budget over `window` is left.
pub fn error_budget_left(availability: f64, slo: f64) -> f64 {
    let budget = 1.0 - slo;
    if budget <= 0.0 {
        return if availability >= 1.0 { 1.0 } else { 0.0 };
    }
    (1.0 - (1.0 - availability) / budget).clamp(0.0, 1.0)
}

/// A 0–100 health score: half for the verdict now (unknown counts half), half
/// for the last 24 hours' availability.
pub fn health_score(now: Health, availability_24h: Option<f64>) -> u8 {
    let verdict = match now {
        Health::Healthy => 1.0,
        Health::Unknown => 0.5,
        Health::Unhealthy => 0.0,
    };
    let history = availability_24h.unwrap_or(verdict);
    (50.0 * verdict + 50.0 * history).round() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn counts_only_known_time() {
        let start = Instant::now();
        let mut a = Availability::new(start);
        assert_eq!(a.ratio(start + MIN, MIN * 60), None);
        a.record(start, Health::Healthy);
        a.record(start + MIN * 30, Health::Unhealthy);
        a.record(start + MIN * 40, Health::Unknown);
        a.record(start + MIN * 50, Health::Healthy);
        // 30 + 10 healthy minutes of 50 known ones in the last hour.
        let hour = a.ratio(start + MIN * 60, MIN * 60).unwrap();
        assert!((hour - 40.0 / 50.0).abs() < 1e-9, "{hour}");
        let day = a.ratio(start + MIN * 60, MIN * 60 * 24).unwrap();
        assert!((day - 40.0 / 50.0).abs() < 1e-9, "{day}");
    }

    #[test]
    fn old_time_leaves_the_window() {
        let start = Instant::now();
        let mut a = Availability::new(start);
        a.record(start, Health::Unhealthy);
        a.record(start + MIN * 10, Health::Healthy);
        let later = start + MIN * 200;
        assert_eq!(a.ratio(later, MIN * 60), Some(1.0));
        assert!(a.ratio(later, MIN * 60 * 24).unwrap() < 1.0);
    }

    #[test]
    fn budget_and_score() {
        assert!((error_budget_left(0.9995, 0.999) - 0.5).abs() < 1e-9);
        assert_eq!(error_budget_left(0.99, 0.999), 0.0);
        assert_eq!(health_score(Health::Healthy, Some(1.0)), 100);
        assert_eq!(health_score(Health::Unhealthy, Some(0.5)), 25);
        assert_eq!(health_score(Health::Unknown, None), 50);
    }
}
