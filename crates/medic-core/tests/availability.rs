//! Property test of availability history held as runs: random months of
//! verdicts (gaps, long outages, restarts of medic that restore the history)
//! give the same ratios, bars and saved history as a plain model that keeps
//! every bucket on its own.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use medic_core::Health;
use medic_core::availability::{Availability, History, HistoryRun};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

const MINUTE: u64 = 60_000;
const HOUR: u64 = 3_600_000;
const DAY: Duration = Duration::from_secs(24 * 3600);
/// The core counts bucket times from 31 days before a history began.
const BASE: u64 = 31 * 24 * HOUR;

/// One bucket of the model: (up, known) ms.
type Figures = (u32, u32);

/// The last `len` buckets of `span` ms, each on its own, dropped once `len`
/// or more older than the newest.
#[derive(Debug, Clone)]
struct ModelRing {
    span: u64,
    len: u64,
    buckets: BTreeMap<u64, Figures>,
}

impl ModelRing {
    fn new(span: u64, len: u64) -> Self {
        Self {
            span,
            len,
            buckets: BTreeMap::new(),
        }
    }

    fn change(&mut self, index: u64, change: impl Fn(Figures) -> Figures) {
        let figures = change(self.buckets.get(&index).copied().unwrap_or_default());
        if figures.1 > 0 {
            self.buckets.insert(index, figures);
        }
        let newest = *self.buckets.keys().next_back().unwrap_or(&0);
        self.buckets = self
            .buckets
            .split_off(&(newest + 1).saturating_sub(self.len));
    }

    fn add(&mut self, start: u64, end: u64, up: bool) {
        // Buckets more than `len` before the last one would be dropped at once.
        let last = end.saturating_sub(1) / self.span;
        let mut at = start.max((last + 1).saturating_sub(self.len) * self.span);
        while at < end {
            let index = at / self.span;
            let ms = ((index + 1) * self.span).min(end) - at;
            let ms = u32::try_from(ms).unwrap();
            self.change(index, |(u, k)| (if up { u + ms } else { u }, k + ms));
            at = (index + 1) * self.span;
        }
    }

    fn sum(&self, first: u64, last: u64) -> (u64, u64) {
        self.buckets
            .range(first..=last)
            .fold((0, 0), |(u, k), (_, &(up, known))| {
                (u + u64::from(up), k + u64::from(known))
            })
    }

    /// The kept buckets as (age, up, known), oldest first.
    fn export(&self, to: u64) -> Vec<(u64, u32, u32)> {
        let current = to / self.span;
        self.buckets
            .range((current + 1).saturating_sub(self.len)..=current)
            .map(|(&index, &(up, known))| (current - index, up, known))
            .collect()
    }

    fn import(&mut self, to: u64, saved: &[(u64, u32, u32)]) {
        let current = to / self.span;
        let span = u32::try_from(self.span).unwrap();
        for &(age, up, known) in saved {
            if age >= self.len || age > current {
                continue;
            }
            self.change(current - age, |(u, k)| {
                let k = (k + known).min(span);
                ((u + up.min(known)).min(k), k)
            });
        }
    }
}

/// What `Availability` promises, computed the plain way: every bucket kept on
/// its own, the time not yet recorded counted by recording it on a copy.
#[derive(Debug, Clone)]
struct Model {
    origin: Instant,
    minutes: ModelRing,
    hours: ModelRing,
    current: (Instant, Health),
}

impl Model {
    fn new(now: Instant) -> Self {
        Self {
            origin: now,
            minutes: ModelRing::new(MINUTE, 61),
            hours: ModelRing::new(HOUR, 721),
            current: (now, Health::Unknown),
        }
    }

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.duration_since(self.origin).as_millis()).unwrap() + BASE
    }

    fn record(&mut self, now: Instant, health: Health) {
        let (since, previous) = self.current;
        if previous != Health::Unknown && now > since {
            let (start, end) = (self.ms(since), self.ms(now));
            self.minutes.add(start, end, previous == Health::Healthy);
            self.hours.add(start, end, previous == Health::Healthy);
        }
        self.current = (now, health);
    }

    fn recorded(&self, now: Instant) -> Self {
        let mut copy = self.clone();
        copy.record(now, self.current.1);
        copy
    }

    fn ring(&self, window: u64) -> &ModelRing {
        if window <= HOUR {
            &self.minutes
        } else {
            &self.hours
        }
    }

    /// The queries below read a model recorded up to `now` ([`Model::recorded`]).
    fn ratio(&self, now: Instant, window: Duration) -> Option<f64> {
        let to = self.ms(now);
        let window = u64::try_from(window.as_millis()).unwrap();
        let ring = self.ring(window);
        let from = to - window.min(30 * 24 * HOUR);
        let (up, known) = ring.sum(from / ring.span, to / ring.span);
        (known > 0).then(|| up as f64 / known as f64)
    }

    fn series(&self, now: Instant, window: Duration, bars: u64) -> Vec<Option<f64>> {
        let to = self.ms(now);
        let window = u64::try_from(window.as_millis()).unwrap();
        let ring = self.ring(window);
        let per = (window / ring.span / bars).max(1);
        let last = to / ring.span;
        (0..bars)
            .rev()
            .map(|k| {
                let end = last.saturating_sub(k * per);
                let (up, known) = ring.sum((end + 1).saturating_sub(per), end);
                (known > 0).then(|| up as f64 / known as f64)
            })
            .collect()
    }

    /// (minutes, hours) as (age, up, known) buckets, oldest first.
    fn history(&self, now: Instant) -> [Vec<(u64, u32, u32)>; 2] {
        let to = self.ms(now);
        [self.minutes.export(to), self.hours.export(to)]
    }

    fn restore(&mut self, now: Instant, saved: &[Vec<(u64, u32, u32)>; 2]) {
        let to = self.ms(now);
        self.minutes.import(to, &saved[0]);
        self.hours.import(to, &saved[1]);
    }
}

/// Runs as single buckets, checking they are sorted, bounded and merged
/// (no two neighbours with the same figures).
fn buckets(runs: &[HistoryRun], len: u64) -> Vec<(u64, u32, u32)> {
    assert!(runs.len() as u64 <= len, "{} runs", runs.len());
    for pair in runs.windows(2) {
        let (older, newer) = (pair[0], pair[1]);
        assert!(
            older.age + 1 - u64::from(older.count) > newer.age,
            "{runs:?}"
        );
        let touching = older.age - u64::from(older.count) == newer.age;
        let same = (older.up_ms, older.known_ms) == (newer.up_ms, newer.known_ms);
        assert!(!(touching && same), "not merged: {runs:?}");
    }
    runs.iter()
        .flat_map(|r| {
            assert!(r.count >= 1 && u64::from(r.count) <= r.age + 1, "{r:?}");
            (0..u64::from(r.count)).map(move |k| (r.age - k, r.up_ms, r.known_ms))
        })
        .collect()
}

fn expand(history: &History) -> [Vec<(u64, u32, u32)>; 2] {
    [buckets(&history.minutes, 61), buckets(&history.hours, 721)]
}

#[derive(Debug, Clone)]
enum Step {
    /// Time passes, then this verdict starts.
    Verdict(Duration, Health),
    /// Time passes, medic restarts after `gap` (nothing known meanwhile),
    /// records `early` under a verdict, then restores the history (twice:
    /// buckets added onto restored ones).
    Restart {
        pause: Duration,
        gap: Duration,
        early: Duration,
        health: Health,
        twice: bool,
    },
}

fn pause() -> impl Strategy<Value = Duration> {
    prop_oneof![
        4 => (0u64..120).prop_map(Duration::from_secs),
        4 => (0u64..180 * 60).prop_map(Duration::from_secs),
        2 => (0u64..72 * 3600).prop_map(Duration::from_secs),
        1 => (0u64..12 * 24 * 3600).prop_map(Duration::from_secs),
    ]
}

fn health() -> impl Strategy<Value = Health> {
    prop_oneof![
        5 => Just(Health::Healthy),
        3 => Just(Health::Unhealthy),
        2 => Just(Health::Unknown),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let restart = (pause(), pause(), pause(), health(), any::<bool>()).prop_map(
        |(pause, gap, early, health, twice)| Step::Restart {
            pause,
            gap,
            early,
            health,
            twice,
        },
    );
    prop_oneof![
        12 => (pause(), health()).prop_map(|(p, h)| Step::Verdict(p, h)),
        2 => restart,
    ]
}

/// Every figure users see, and the history saved, from both.
fn same_figures(real: &Availability, model: &Model, now: Instant) {
    let model = model.recorded(now);
    const MIN: Duration = Duration::from_secs(60);
    for window in [MIN, MIN * 17, MIN * 60, DAY, DAY * 7, DAY * 30, DAY * 45] {
        assert_eq!(
            real.ratio(now, window),
            model.ratio(now, window),
            "{window:?}"
        );
    }
    for (window, bars) in [
        (MIN * 60, 60),
        (MIN * 60, 7),
        (DAY, 24),
        (DAY * 7, 28),
        (DAY * 30, 30),
        (DAY * 30, 720),
    ] {
        let real = real.series(now, window, bars);
        let bars = u64::try_from(bars).unwrap();
        assert_eq!(real, model.series(now, window, bars), "{window:?}/{bars}");
    }
    assert_eq!(expand(&real.history(now)), model.history(now));
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        rng_seed: RngSeed::Fixed(0x6176_6169_6c21),
        ..ProptestConfig::default()
    })]

    #[test]
    fn runs_give_the_figures_of_single_buckets(
        first in prop_oneof![Just(Health::Healthy), Just(Health::Unhealthy)],
        steps in prop::collection::vec(step(), 1..60),
        tail in 0u64..3 * 24 * 3600,
    ) {
        let start = Instant::now();
        let mut now = start;
        let mut real = Availability::new(now);
        let mut model = Model::new(now);
        real.record(now, first);
        model.record(now, first);
        for step in steps {
            match step {
                Step::Verdict(pause, health) => {
                    now += pause;
                    real.record(now, health);
                    model.record(now, health);
                }
                Step::Restart { pause, gap, early, health, twice } => {
                    now += pause;
                    let (saved, model_saved) = (real.history(now), model.recorded(now).history(now));
                    // Put back at once (a new origin): the same history as the
                    // model's (a bucket holds at most its span once restored).
                    let (mut again, mut model_again) = (Availability::new(now), Model::new(now));
                    again.restore(now, &saved);
                    model_again.restore(now, &model_saved);
                    prop_assert_eq!(expand(&again.history(now)), model_again.history(now));
                    now += gap;
                    real = Availability::new(now);
                    model = Model::new(now);
                    real.record(now, health);
                    model.record(now, health);
                    now += early;
                    for _ in 0..1 + u8::from(twice) {
                        real.restore(now, &saved);
                        model.restore(now, &model_saved);
                    }
                }
            }
            same_figures(&real, &model, now);
        }
        // On to 31 days or more, under the first verdict.
        now = now.max(start + DAY * 31) + Duration::from_secs(tail);
        real.record(now, first);
        model.record(now, first);
        same_figures(&real, &model, now);
        // A while later, with the time since the last record not yet recorded.
        same_figures(&real, &model, now + Duration::from_secs(tail));
    }
}
