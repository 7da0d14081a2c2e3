//! Availability arithmetic: how much of a window a unit was healthy, counting
//! only time with a verdict (unknown time is neither up nor down), kept in
//! minute buckets for the last hour and hour buckets for the last 30 days —
//! up to about 12 KiB per unit, allocated as the history grows. The buckets can be taken out and put back as plain
//! data ([`History`]), so the shell can keep them across restarts.

use std::time::{Duration, Instant};

use crate::machine::Health;

#[cfg(feature = "test-support")]
pub mod sample;

const MINUTE: u64 = 60_000;
const HOUR: u64 = 3_600_000;
/// The longest window kept: 30 days of hour buckets.
pub const MAX_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);
const MINUTE_BUCKETS: usize = 61;
const HOUR_BUCKETS: usize = 30 * 24 + 1;
/// Bucket times are counted from this long before the history began (a whole
/// number of hours), so restored buckets up to 30 days old have an index.
const BASE: u64 = 31 * 24 * HOUR;

/// One bucket as plain data: `age` buckets before the one that holds `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryBucket {
    /// 0 for the bucket holding `now`, 1 for the one before, …
    pub age: u64,
    /// Healthy milliseconds.
    pub up_ms: u32,
    /// Milliseconds with a verdict.
    pub known_ms: u32,
}

/// A unit's availability buckets as plain data, for the shell to persist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Minute buckets (the last hour), non-empty ones only.
    pub minutes: Vec<HistoryBucket>,
    /// Hour buckets (the last 30 days), non-empty ones only.
    pub hours: Vec<HistoryBucket>,
}

/// Up and known milliseconds of one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bucket {
    /// Which minute or hour since the origin this bucket holds.
    index: u64,
    up: u32,
    known: u32,
}

/// The last `len` buckets of `span` milliseconds each, sparse and sorted by
/// index: a unit watched for an hour holds one hour bucket, not 721, so 10,000
/// fresh units cost little; a unit watched for 30 days holds them all.
#[derive(Debug, Clone)]
struct Ring {
    span: u64,
    len: u64,
    buckets: Vec<Bucket>,
}

impl Ring {
    fn new(span: u64, len: usize) -> Self {
        Self {
            span,
            len: len as u64,
            buckets: Vec::new(),
        }
    }

    /// The bucket with `index`, created empty; buckets `len` or more older than
    /// the newest are dropped.
    fn bucket(&mut self, index: u64) -> &mut Bucket {
        let at = match self.buckets.binary_search_by_key(&index, |b| b.index) {
            Ok(at) => at,
            Err(at) => {
                let empty = Bucket {
                    index,
                    up: 0,
                    known: 0,
                };
                self.buckets.insert(at, empty);
                let newest = self.buckets.last().map_or(index, |b| b.index);
                let oldest_kept = (newest + 1).saturating_sub(self.len);
                // Never the bucket just made, even if it is that old itself.
                let expired = self
                    .buckets
                    .partition_point(|b| b.index < oldest_kept)
                    .min(at);
                self.buckets.drain(..expired);
                at - expired
            }
        };
        &mut self.buckets[at]
    }

    /// Adds `[start, end)` (ms since origin) to the buckets it covers.
    fn add(&mut self, mut start: u64, end: u64, up: bool) {
        while start < end {
            let index = start / self.span;
            let chunk_end = ((index + 1) * self.span).min(end);
            let ms = u32::try_from(chunk_end - start).unwrap_or(u32::MAX);
            let slot = self.bucket(index);
            slot.known = slot.known.saturating_add(ms);
            if up {
                slot.up = slot.up.saturating_add(ms);
            }
            start = chunk_end;
        }
    }

    /// The non-empty buckets, aged relative to the bucket holding `now_ms`.
    fn export(&self, now_ms: u64) -> Vec<HistoryBucket> {
        let current = now_ms / self.span;
        let len = self.len;
        let mut out: Vec<HistoryBucket> = self
            .buckets
            .iter()
            .filter(|b| b.known > 0 && b.index <= current && current - b.index < len)
            .map(|b| HistoryBucket {
                age: current - b.index,
                up_ms: b.up,
                known_ms: b.known,
            })
            .collect();
        out.sort_by_key(|b| std::cmp::Reverse(b.age));
        out
    }

    /// Adds saved buckets, aged relative to the bucket holding `now_ms`; older than the ring holds are dropped.
    fn import(&mut self, now_ms: u64, saved: &[HistoryBucket]) {
        let current = now_ms / self.span;
        let span = u32::try_from(self.span).unwrap_or(u32::MAX);
        for b in saved {
            if b.age >= self.len || b.age > current {
                continue;
            }
            let slot = self.bucket(current - b.age);
            slot.known = slot.known.saturating_add(b.known_ms).min(span);
            slot.up = slot
                .up
                .saturating_add(b.up_ms.min(b.known_ms))
                .min(slot.known);
        }
    }

    /// The healthy share of each of `bars` runs of `per` buckets ending with the one holding `to`, oldest first.
    fn series(&self, to: u64, per: u64, bars: u64, pending: Option<Segment>) -> Vec<Option<f64>> {
        let last = to / self.span;
        (0..bars)
            .rev()
            .map(|k| {
                let end = last.saturating_sub(k * per);
                let start = (end + 1).saturating_sub(per);
                let (up, known) = self.sum_buckets(start, end, pending);
                (known > 0).then(|| up as f64 / known as f64)
            })
            .collect()
    }

    /// Up and known ms over the buckets that overlap `[from, to]` (ms since origin).
    fn sum(&self, from: u64, to: u64, pending: Option<Segment>) -> (u64, u64) {
        self.sum_buckets(from / self.span, to / self.span, pending)
    }

    /// Up and known ms in buckets `first..=last`, with the `pending` time not
    /// yet recorded counted where it falls (as if recorded: no copy of the ring).
    fn sum_buckets(&self, first: u64, last: u64, pending: Option<Segment>) -> (u64, u64) {
        let (mut up, mut known) = self
            .buckets
            .iter()
            .filter(|b| (first..=last).contains(&b.index) && b.known > 0)
            .fold((0, 0), |(up, known), b| {
                (up + u64::from(b.up), known + u64::from(b.known))
            });
        if let Some(segment) = pending {
            let (from, to) = (first * self.span, (last + 1) * self.span);
            let ms = segment.end.min(to).saturating_sub(segment.start.max(from));
            known += ms;
            up += if segment.up { ms } else { 0 };
        }
        (up, known)
    }
}

/// Time not yet recorded in the buckets: `[start, end)` ms since origin, healthy or not.
#[derive(Debug, Clone, Copy)]
struct Segment {
    start: u64,
    end: u64,
    up: bool,
}

/// One unit's availability history.
#[derive(Debug, Clone)]
pub struct Availability {
    origin: Instant,
    minutes: Ring,
    hours: Ring,
    /// The verdict since the last record, and when it began.
    current: (Instant, Health),
    /// Milliseconds healthy and with a verdict since this history began (counters for metrics).
    totals: (u64, u64),
}

impl Availability {
    /// An empty history starting `now`, with no verdict yet.
    pub fn new(now: Instant) -> Self {
        Self {
            origin: now,
            // One bucket more than the window: a window that does not start on a
            // bucket boundary overlaps one more bucket.
            minutes: Ring::new(MINUTE, MINUTE_BUCKETS),
            hours: Ring::new(HOUR, HOUR_BUCKETS),
            current: (now, Health::Unknown),
            totals: (0, 0),
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
            let length = end - start;
            self.totals.0 += if up { length } else { 0 };
            self.totals.1 += length;
        }
        self.current = (now, health);
    }

    /// The verdict last recorded.
    pub fn verdict(&self) -> Health {
        self.current.1
    }

    /// Milliseconds healthy and with a verdict (healthy or unhealthy) since this
    /// history began, up to `now`: ever-growing counters, the availability SLI
    /// that Prometheus takes rates of.
    pub fn totals(&self, now: Instant) -> (u64, u64) {
        let (up, known) = self.totals;
        match self.pending(now) {
            Some(s) => (
                up + if s.up { s.end - s.start } else { 0 },
                known + s.end - s.start,
            ),
            None => (up, known),
        }
    }

    /// The share of known time that was healthy over the last `window`
    /// (≤ 1 h: minute precision; longer: hour precision, up to 30 days); None without any verdict.
    pub fn ratio(&self, now: Instant, window: Duration) -> Option<f64> {
        let to = self.ms(now);
        let pending = self.pending(now);
        let window = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let (up, known) = if window <= HOUR {
            self.minutes.sum(to.saturating_sub(window), to, pending)
        } else {
            self.hours
                .sum(to.saturating_sub(window.min(30 * 24 * HOUR)), to, pending)
        };
        (known > 0).then(|| up as f64 / known as f64)
    }

    /// The last `window` cut into `bars` equal bars, oldest first: each bar's
    /// healthy share of its known time, None where nothing was known. Windows up
    /// to 1 h use minute buckets, longer ones hour buckets (at least one per bar).
    pub fn series(&self, now: Instant, window: Duration, bars: usize) -> Vec<Option<f64>> {
        let to = self.ms(now);
        let window = u64::try_from(window.min(MAX_WINDOW).as_millis()).unwrap_or(u64::MAX);
        let bars = bars.max(1) as u64;
        let ring = if window <= HOUR {
            &self.minutes
        } else {
            &self.hours
        };
        let per = (window / ring.span / bars).max(1);
        ring.series(to, per, bars, self.pending(now))
    }

    /// The buckets as plain data as of `now` (the current verdict counted up to `now`).
    pub fn history(&self, now: Instant) -> History {
        let mut copy = self.clone();
        copy.record(now, self.current.1);
        let to = copy.ms(now);
        History {
            minutes: copy.minutes.export(to),
            hours: copy.hours.export(to),
        }
    }

    /// Adds buckets saved by [`Availability::history`], aged relative to `now`.
    pub fn restore(&mut self, now: Instant, history: &History) {
        let to = self.ms(now);
        self.minutes.import(to, &history.minutes);
        self.hours.import(to, &history.hours);
    }

    /// The time since the last record under the verdict then, not yet in the
    /// buckets; None while that verdict is unknown (it counts neither way).
    fn pending(&self, now: Instant) -> Option<Segment> {
        let (since, verdict) = self.current;
        (verdict != Health::Unknown && now > since).then(|| Segment {
            start: self.ms(since),
            end: self.ms(now),
            up: verdict == Health::Healthy,
        })
    }

    fn ms(&self, at: Instant) -> u64 {
        let since = u64::try_from(at.saturating_duration_since(self.origin).as_millis())
            .unwrap_or(u64::MAX);
        since.saturating_add(BASE)
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
    use proptest::prelude::*;

    fn health(n: u8) -> Health {
        match n % 3 {
            0 => Health::Healthy,
            1 => Health::Unhealthy,
            _ => Health::Unknown,
        }
    }

    proptest! {
        /// The queries count the time not yet recorded exactly as if it had
        /// been recorded (what they did before, on a copy of every bucket).
        #[test]
        fn queries_count_the_unrecorded_time_as_recorded(
            steps in proptest::collection::vec((0u64..200_000, any::<u8>()), 1..40),
            last in 0u64..100_000,
        ) {
            let start = Instant::now();
            let mut a = Availability::new(start);
            let mut now = start;
            for (secs, n) in steps {
                now += Duration::from_secs(secs);
                a.record(now, health(n));
            }
            now += Duration::from_secs(last);
            let mut recorded = a.clone();
            recorded.record(now, a.verdict());
            prop_assert_eq!(a.totals(now), recorded.totals(now));
            for window in [MIN, MIN * 60, MIN * 60 * 24, MIN * 60 * 24 * 7, MAX_WINDOW] {
                prop_assert_eq!(a.ratio(now, window), recorded.ratio(now, window));
                prop_assert_eq!(a.series(now, window, 24), recorded.series(now, window, 24));
            }
        }
    }

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
        // The counters behind the SLI: 40 healthy of 50 known minutes, still growing.
        let minute = 60_000;
        assert_eq!(a.totals(start + MIN * 60), (40 * minute, 50 * minute));
        assert_eq!(a.totals(start + MIN * 61), (41 * minute, 51 * minute));
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
    fn thirty_days_and_bars() {
        let start = Instant::now();
        let mut a = Availability::new(start);
        let day = MIN * 60 * 24;
        a.record(start, Health::Unhealthy);
        a.record(start + day, Health::Healthy);
        let now = start + day * 20;
        let month = a.ratio(now, day * 30).unwrap();
        assert!((month - 19.0 / 20.0).abs() < 1e-3, "{month}");
        assert_eq!(a.ratio(now, day * 7), Some(1.0));
        let bars = a.series(now, day * 30, 30);
        assert_eq!(bars.len(), 30);
        // Bars end with the bucket holding `now`: the first day's bars are one hour late.
        assert_eq!(&bars[..9], &[None; 9]);
        assert_eq!(bars[9], Some(0.0));
        assert!((bars[10].unwrap() - 1.0 / 24.0).abs() < 1e-9);
        assert_eq!(bars[29], Some(1.0));
    }

    #[test]
    fn history_survives_a_new_origin() {
        let start = Instant::now();
        let mut a = Availability::new(start);
        a.record(start, Health::Healthy);
        a.record(start + MIN * 90, Health::Unhealthy);
        let saved_at = start + MIN * 120;
        let history = a.history(saved_at);
        assert!(history.minutes.len() <= MINUTE_BUCKETS);
        assert!(!history.hours.is_empty());
        // A restarted medic: a new origin, 10 minutes later, nothing known in between.
        let restart = saved_at + MIN * 10;
        let mut b = Availability::new(restart);
        b.restore(restart, &history);
        let day = b.ratio(restart, MIN * 60 * 24).unwrap();
        let before = a.ratio(saved_at, MIN * 60 * 24).unwrap();
        assert!((day - before).abs() < 1e-9, "{day} vs {before}");
        assert_eq!(b.history(restart).hours.len(), history.hours.len());
    }

    #[test]
    fn buckets_are_kept_only_as_history_grows_and_expire_after_the_window() {
        let start = Instant::now();
        let mut a = Availability::new(start);
        a.record(start, Health::Healthy);
        a.record(start + MIN * 90, Health::Healthy);
        assert!(a.hours.buckets.len() <= 3, "{}", a.hours.buckets.len());
        assert!(a.minutes.buckets.len() <= 61);
        let month = MIN * 60 * 24 * 31;
        a.record(start + month, Health::Healthy);
        assert!(
            a.hours.buckets.len() <= HOUR_BUCKETS,
            "{}",
            a.hours.buckets.len()
        );
        assert_eq!(a.ratio(start + month, MIN * 60), Some(1.0));
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
