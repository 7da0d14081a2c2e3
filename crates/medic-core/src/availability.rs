//! Availability arithmetic: how much of a window a unit was healthy, counting
//! only time with a verdict (unknown time is neither up nor down), kept in
//! minute buckets for the last hour and hour buckets for the last 30 days.
//! Consecutive buckets with the same figures are held as one run, so a unit
//! healthy for 30 days costs about 0.4 KiB in all (a handful of runs), and one
//! that flaps at most 61 + 721 runs (about 12 KiB). The runs can be taken out and put
//! back as plain data ([`History`]), so the shell can keep them across restarts.

use std::collections::VecDeque;
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
/// Times are held up to here (about 8,000 years), so a minute's index fits a `u32`.
const LAST_MS: u64 = u32::MAX as u64 * MINUTE;

/// `count` consecutive buckets with the same figures as plain data, the
/// oldest `age` buckets before the one that holds `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRun {
    /// The oldest bucket's age: 0 for the bucket holding `now`, 1 for the one before, …
    pub age: u64,
    /// How many buckets, the youngest `age + 1 - count` buckets old.
    pub count: u32,
    /// Healthy milliseconds in each bucket.
    pub up_ms: u32,
    /// Milliseconds with a verdict in each bucket.
    pub known_ms: u32,
}

/// A unit's availability buckets as plain data, for the shell to persist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Minute buckets (the last hour) as runs, oldest first, non-empty ones only.
    pub minutes: Vec<HistoryRun>,
    /// Hour buckets (the last 30 days) as runs, oldest first, non-empty ones only.
    pub hours: Vec<HistoryRun>,
}

/// Up and known milliseconds of one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Figures {
    up: u32,
    known: u32,
}

/// `count` consecutive buckets with the same figures, the first one `first`
/// minutes (or hours) since the origin: 16 bytes for up to 721 buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    first: u32,
    count: u32,
    up: u32,
    known: u32,
}

impl Run {
    /// The index after the last bucket.
    fn end(&self) -> u64 {
        u64::from(self.first) + u64::from(self.count)
    }

    fn figures(&self) -> Figures {
        Figures {
            up: self.up,
            known: self.known,
        }
    }
}

/// The last `len` buckets of `span` milliseconds each, as sorted runs of equal
/// non-empty buckets (no two neighbours with the same figures): a unit watched
/// for an hour holds two or three runs, one healthy for 30 days a handful, one
/// that flaps at most `len`.
#[derive(Debug, Clone)]
struct Ring {
    span: u64,
    len: u64,
    /// The buckets, as runs, oldest first.
    buckets: VecDeque<Run>,
}

impl Ring {
    fn new(span: u64, len: usize) -> Self {
        Self {
            span,
            len: len as u64,
            buckets: VecDeque::new(),
        }
    }

    /// Adds `[start, end)` (ms since origin) to the buckets it covers: part of
    /// the first and the last, all of those between.
    fn add(&mut self, start: u64, end: u64, up: bool) {
        if start >= end {
            return;
        }
        let span = self.span;
        let (first, last) = (start / span, (end - 1) / span);
        let mut add = |index: u64, count: u64, ms: u64| {
            let ms = u32::try_from(ms).unwrap_or(u32::MAX);
            self.apply(index, count, |f| Figures {
                up: if up { f.up.saturating_add(ms) } else { f.up },
                known: f.known.saturating_add(ms),
            });
        };
        if first == last {
            add(first, 1, end - start);
        } else {
            add(first, 1, (first + 1) * span - start);
            add(first + 1, last - first - 1, span);
            add(last, 1, end - last * span);
        }
    }

    /// Sets buckets `first..first + count` (empty ones included) to `change`
    /// of their figures, then drops buckets `len` or more older than the
    /// newest. Changing the newest run, or buckets after it (time added to the
    /// newest bucket, the common case), moves no other run and allocates
    /// nothing once the ring has room for its runs.
    fn apply(&mut self, first: u64, count: u64, change: impl Fn(Figures) -> Figures) {
        let end = first + count;
        // Older buckets would be dropped at once.
        let first = first.max(end.saturating_sub(self.len));
        if first >= end {
            return;
        }
        let at = self.buckets.partition_point(|r| r.end() <= first);
        // The runs from `at` on are taken out and put back changed.
        let older = if self.buckets.len() > at + 1 {
            self.buckets.split_off(at)
        } else {
            VecDeque::new()
        };
        let newest = if self.buckets.len() == at + 1 {
            self.buckets.pop_back()
        } else {
            None
        };
        let mut cursor = first;
        for run in newest.into_iter().chain(older) {
            let (a, b) = (u64::from(run.first), run.end());
            if cursor < end && a > cursor {
                let gap_end = a.min(end);
                self.push(cursor, gap_end - cursor, change(Figures::default()));
                cursor = gap_end;
            }
            let (lo, hi) = (first.clamp(a, b), end.clamp(a, b));
            self.push(a, lo - a, run.figures());
            self.push(lo, hi - lo, change(run.figures()));
            self.push(hi, b - hi, run.figures());
            cursor = cursor.max(b);
        }
        if cursor < end {
            self.push(cursor, end - cursor, change(Figures::default()));
        }
        self.expire();
    }

    /// Appends `count` buckets from `first` (after every run), merged into the
    /// newest run if they continue it with the same figures; empty ones are not kept.
    fn push(&mut self, first: u64, count: u64, figures: Figures) {
        if count == 0 || figures.known == 0 {
            return;
        }
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        match self.buckets.back_mut() {
            Some(newest) if newest.end() == first && newest.figures() == figures => {
                newest.count = newest.count.saturating_add(count);
                return;
            }
            _ => {}
        }
        self.buckets.push_back(Run {
            first: u32::try_from(first).unwrap_or(u32::MAX),
            count,
            up: figures.up,
            known: figures.known,
        });
    }

    /// Drops the buckets `len` or more older than the newest (the oldest run,
    /// or part of it), and gives back room a unit that stopped flapping no longer needs.
    fn expire(&mut self) {
        let Some(end) = self.buckets.back().map(Run::end) else {
            return;
        };
        let oldest = end.saturating_sub(self.len);
        while let Some(run) = self.buckets.front_mut() {
            if run.end() <= oldest {
                self.buckets.pop_front();
                continue;
            }
            if u64::from(run.first) < oldest {
                run.count = u32::try_from(run.end() - oldest).unwrap_or(u32::MAX);
                run.first = u32::try_from(oldest).unwrap_or(u32::MAX);
            }
            break;
        }
        if self.buckets.capacity() > 4 * self.buckets.len().max(4) {
            self.buckets.shrink_to(2 * self.buckets.len());
        }
    }

    /// The non-empty buckets as runs, aged relative to the bucket holding
    /// `now_ms`, with the `pending` time not yet recorded counted where it falls.
    fn export(&self, now_ms: u64, pending: Option<Segment>) -> Vec<HistoryRun> {
        let mut ring = Self {
            buckets: VecDeque::with_capacity(self.buckets.len() + 3),
            ..*self
        };
        ring.buckets.extend(self.buckets.iter().copied());
        if let Some(segment) = pending {
            ring.add(segment.start, segment.end, segment.up);
        }
        let current = now_ms / self.span;
        let oldest = (current + 1).saturating_sub(self.len);
        ring.buckets
            .iter()
            .filter_map(|r| {
                let (first, end) = (u64::from(r.first).max(oldest), r.end().min(current + 1));
                (first < end).then(|| HistoryRun {
                    age: current - first,
                    count: u32::try_from(end - first).unwrap_or(u32::MAX),
                    up_ms: r.up,
                    known_ms: r.known,
                })
            })
            .collect()
    }

    /// Adds saved runs, aged relative to the bucket holding `now_ms`; buckets
    /// older than the ring holds, or from the future, are dropped.
    fn import(&mut self, now_ms: u64, saved: &[HistoryRun]) {
        let current = now_ms / self.span;
        let span = u32::try_from(self.span).unwrap_or(u32::MAX);
        for run in saved {
            let oldest = run.age.min(self.len - 1).min(current);
            let youngest = (run.age.saturating_add(1)).saturating_sub(u64::from(run.count));
            if youngest > oldest {
                continue;
            }
            let (up, known) = (run.up_ms.min(run.known_ms), run.known_ms);
            self.apply(current - oldest, oldest - youngest + 1, |f| {
                let known = f.known.saturating_add(known).min(span);
                Figures {
                    up: f.up.saturating_add(up).min(known),
                    known,
                }
            });
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
        let from = self.buckets.partition_point(|r| r.end() <= first);
        let (mut up, mut known) = self
            .buckets
            .range(from..)
            .take_while(|r| u64::from(r.first) <= last)
            .fold((0, 0), |(up, known), r| {
                let count = r.end().min(last + 1) - u64::from(r.first).max(first);
                (
                    up + count * u64::from(r.up),
                    known + count * u64::from(r.known),
                )
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

    /// The buckets as plain data (runs) as of `now`, the current verdict
    /// counted up to `now` (without recording it).
    pub fn history(&self, now: Instant) -> History {
        let (to, pending) = (self.ms(now), self.pending(now));
        History {
            minutes: self.minutes.export(to, pending),
            hours: self.hours.export(to, pending),
        }
    }

    /// Adds runs saved by [`Availability::history`], aged relative to `now`.
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
        since.saturating_add(BASE).min(LAST_MS)
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

/// A health score from 0 to 1 (a ratio, as Prometheus wants ratios): half for
/// the verdict now (unknown counts half), half for the last 24 hours'
/// availability.
pub fn health_score(now: Health, availability_24h: Option<f64>) -> f64 {
    let verdict = match now {
        Health::Healthy => 1.0,
        Health::Unknown => 0.5,
        Health::Unhealthy => 0.0,
    };
    let history = availability_24h.unwrap_or(verdict);
    (0.5 * verdict + 0.5 * history).clamp(0.0, 1.0)
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

    /// A month healthy, probed every 10 s (with a restart of medic), is a
    /// handful of runs; a month flapping is at most a run per bucket; a month
    /// healthy again gives the room back.
    #[test]
    fn runs_stay_few_for_a_healthy_unit_and_bounded_for_a_flapping_one() {
        let start = Instant::now();
        let mut a = Availability::new(start);
        let month = 31 * 24 * 60 * 6;
        for tick in 0..month {
            let health = match tick % (12 * 24 * 60 * 6) {
                0..18 => Health::Unknown,
                _ => Health::Healthy,
            };
            a.record(start + Duration::from_secs(10) * tick, health);
        }
        assert!(a.minutes.buckets.len() <= 3, "{:?}", a.minutes.buckets);
        assert!(a.hours.buckets.len() <= 6, "{:?}", a.hours.buckets);
        // Down for 7 minutes in every 25: hours differ from their neighbours.
        let flapping = start + Duration::from_secs(10) * month;
        for k in 0..31 * 24 * 60 / 25 {
            let at = flapping + MIN * 25 * k;
            a.record(at, Health::Unhealthy);
            a.record(at + MIN * 7, Health::Healthy);
        }
        assert!(a.minutes.buckets.len() <= MINUTE_BUCKETS);
        assert!(a.hours.buckets.len() <= HOUR_BUCKETS);
        assert!(a.hours.buckets.len() > 100, "{}", a.hours.buckets.len());
        let healthy = flapping + MIN * 31 * 24 * 60;
        for hour in 1..=31 * 24 {
            a.record(healthy + MIN * 60 * hour, Health::Healthy);
        }
        assert!(a.hours.buckets.len() <= 2, "{:?}", a.hours.buckets);
        assert!(
            a.hours.buckets.capacity() <= 16,
            "{}",
            a.hours.buckets.capacity()
        );
    }

    #[test]
    fn budget_and_score() {
        assert!((error_budget_left(0.9995, 0.999) - 0.5).abs() < 1e-9);
        assert_eq!(error_budget_left(0.99, 0.999), 0.0);
        assert_eq!(health_score(Health::Healthy, Some(1.0)), 1.0);
        assert_eq!(health_score(Health::Unhealthy, Some(0.5)), 0.25);
        assert_eq!(health_score(Health::Unknown, None), 0.5);
    }
}
