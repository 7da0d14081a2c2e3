//! The availability history file `availability.json` in the state directory:
//! every unit's minute buckets (1 h) and hour buckets (30 d), keyed by wall-clock
//! minute and hour, so a restarted medic keeps its 24 h / 7 d / 30 d figures.
//! Consecutive buckets with the same figures are stored as one run (as the
//! core holds them, so a save converts run for run), so a unit
//! that was healthy for 30 days costs under 200 bytes, not 19 KB (10,000 units
//! with a few incidents: 2.9 MB instead of 195 MB, rewritten every minute). Bounded (at
//! most 61 + 721 runs per unit) and written like `state.json` (`saver.rs`: off
//! the loop, coalesced, replaced atomically).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use jiff::Timestamp;
use medic_core::Supervisor;
use medic_core::availability::{History, HistoryRun};
use serde::{Deserialize, Serialize};

/// The file's format version. Version 1 wrote one `[start, up_ms, known_ms]`
/// per bucket; it reads as runs of one bucket each.
const VERSION: u32 = 2;
/// Minute buckets kept: the last hour (and the one it starts in).
const MINUTES_KEPT: u64 = 61;
/// Hour buckets kept: the last 30 days (and the one they start in).
const HOURS_KEPT: u64 = 30 * 24 + 1;

/// The file as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryFile {
    /// Format version.
    pub version: u32,
    /// Per unit.
    pub units: BTreeMap<String, StoredHistory>,
}

/// One unit's buckets as runs, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredHistory {
    /// Minute buckets of the last hour.
    #[serde(default)]
    pub minutes: Vec<Run>,
    /// Hour buckets of the last 30 days.
    #[serde(default)]
    pub hours: Vec<Run>,
}

/// `count` consecutive buckets with the same figures, the first one `start`
/// minutes (or hours) since the Unix epoch. On disk `[start, up_ms, known_ms]`
/// for one bucket (as version 1 wrote every bucket) and `[start, count, up_ms,
/// known_ms]` for more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RunOnDisk", into = "RunOnDisk")]
pub struct Run {
    /// The first bucket's minute (or hour) since the Unix epoch.
    pub start: i64,
    /// How many buckets, at least 1.
    pub count: u32,
    /// Healthy milliseconds in each bucket.
    pub up_ms: u32,
    /// Milliseconds with a verdict in each bucket.
    pub known_ms: u32,
}

impl Run {
    /// How many of this run's buckets lie in `first..=last`.
    pub fn overlap(&self, first: i64, last: i64) -> i64 {
        let end = self.start.saturating_add(i64::from(self.count)) - 1;
        end.min(last)
            .saturating_sub(self.start.max(first))
            .saturating_add(1)
            .max(0)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum RunOnDisk {
    One(i64, u32, u32),
    Many(i64, u32, u32, u32),
}

impl From<RunOnDisk> for Run {
    fn from(run: RunOnDisk) -> Self {
        let (start, count, up_ms, known_ms) = match run {
            RunOnDisk::One(start, up, known) => (start, 1, up, known),
            RunOnDisk::Many(start, count, up, known) => (start, count.max(1), up, known),
        };
        Self {
            start,
            count,
            up_ms,
            known_ms,
        }
    }
}

impl From<Run> for RunOnDisk {
    fn from(run: Run) -> Self {
        match run.count {
            1 => Self::One(run.start, run.up_ms, run.known_ms),
            count => Self::Many(run.start, count, run.up_ms, run.known_ms),
        }
    }
}

/// The history on disk, and what was loaded but not yet handed to a unit.
#[derive(Debug)]
pub struct HistoryStore {
    path: PathBuf,
    pending: BTreeMap<String, StoredHistory>,
}

impl HistoryStore {
    /// Loads `availability.json` from `dir` (version 1 or 2); an unreadable
    /// file is kept aside and history starts afresh.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("availability.json");
        let pending = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<HistoryFile>(&bytes) {
                Ok(file) => file.units,
                Err(error) => {
                    tracing::warn!(%error, path = %path.display(), "Availability history unreadable; kept aside, starting afresh");
                    std::fs::rename(&path, dir.join("availability.json.corrupt")).ok();
                    BTreeMap::new()
                }
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        Ok(Self { path, pending })
    }

    /// Hands a newly watched unit its saved buckets, once.
    pub fn restore(&mut self, sup: &mut Supervisor, unit: &str, now: Instant, wall: Timestamp) {
        if let Some(stored) = self.pending.remove(unit) {
            sup.restore_availability(now, unit, &to_history(&stored, wall));
        }
    }

    /// Where the file lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every unit's buckets as of `now` (= `wall`), for the writer (`saver.rs`).
    pub fn snapshot(&self, sup: &Supervisor, now: Instant, wall: Timestamp) -> HistoryFile {
        let mut units: BTreeMap<String, StoredHistory> = sup
            .availability_history(now)
            .map(|(name, history)| (name.to_owned(), to_stored(&history, wall)))
            .collect();
        // Units not watched (yet) keep their history while it is inside the
        // window: containers found late, an engine that is down at start.
        for (name, stored) in &self.pending {
            if units.contains_key(name) {
                continue;
            }
            let kept = to_stored(&to_history(stored, wall), wall);
            if !kept.minutes.is_empty() || !kept.hours.is_empty() {
                units.insert(name.clone(), kept);
            }
        }
        HistoryFile {
            version: VERSION,
            units,
        }
    }
}

fn epoch(wall: Timestamp, span_secs: i64) -> i64 {
    wall.as_second().div_euclid(span_secs)
}

fn to_stored(history: &History, wall: Timestamp) -> StoredHistory {
    let convert = |saved: &[HistoryRun], span: i64| {
        let current = epoch(wall, span);
        let mut runs: Vec<Run> = Vec::with_capacity(saved.len());
        // Oldest first, as the core gives them; neighbours with the same figures
        // (a version 1 file's single buckets) become one run.
        for saved in saved {
            let start = current.saturating_sub(i64::try_from(saved.age).unwrap_or(i64::MAX));
            match runs.last_mut() {
                Some(run)
                    if run.up_ms == saved.up_ms
                        && run.known_ms == saved.known_ms
                        && run.start.saturating_add(i64::from(run.count)) == start =>
                {
                    run.count = run.count.saturating_add(saved.count);
                }
                _ => runs.push(Run {
                    start,
                    count: saved.count,
                    up_ms: saved.up_ms,
                    known_ms: saved.known_ms,
                }),
            }
        }
        runs
    };
    StoredHistory {
        minutes: convert(&history.minutes, 60),
        hours: convert(&history.hours, 3600),
    }
}

fn to_history(stored: &StoredHistory, wall: Timestamp) -> History {
    // Buckets "from the future" (the clock was set back) and older than the
    // window are dropped, so a run's count never makes more than `keep` buckets.
    let convert = |runs: &[Run], span: i64, keep: u64| {
        let current = epoch(wall, span);
        let oldest = current.saturating_sub(i64::try_from(keep).unwrap_or(i64::MAX) - 1);
        runs.iter()
            .filter_map(|run| {
                let count = run.overlap(oldest, current);
                (count > 0).then(|| HistoryRun {
                    age: u64::try_from(current - run.start.max(oldest)).unwrap_or(u64::MAX),
                    count: u32::try_from(count).unwrap_or(u32::MAX),
                    up_ms: run.up_ms,
                    known_ms: run.known_ms,
                })
            })
            .collect()
    };
    History {
        minutes: convert(&stored.minutes, 60, MINUTES_KEPT),
        hours: convert(&stored.hours, 3600, HOURS_KEPT),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use medic_core::availability::sample;
    use medic_core::{Observation, Policy};

    use super::*;

    fn write_file(store: &HistoryStore, sup: &Supervisor, now: Instant, wall: Timestamp) {
        let file = store.snapshot(sup, now, wall);
        crate::files::replace(store.path(), |out| Ok(serde_json::to_writer(out, &file)?)).unwrap();
    }

    fn supervisor(now: Instant) -> Supervisor {
        let mut sup = Supervisor::new("t-", 1);
        sup.add_unit(now, "web", Policy::default());
        sup
    }

    /// `units` units after 30 days (70 % healthy throughout, 25 % with 1–3
    /// incidents, 5 % flapping with 20), written as the daemon writes it,
    /// beside the same buckets in version 1 (an entry per bucket); both read
    /// back to the same figures. Returns the sizes (version 1, version 2).
    fn thirty_days_of(units: usize) -> (u64, u64) {
        let start = Instant::now();
        let now = start + Duration::from_secs(30 * 24 * 3600 + 37 * 60 + 11);
        let wall = Timestamp::now();
        let month = Duration::from_secs(30 * 24 * 3600);
        let profiles: Vec<_> = (0..20u64)
            .map(|p| sample::unit(start, month, sample::incidents(p), p))
            .collect();
        let mut sup = Supervisor::new("t-", 1);
        let histories: Vec<_> = profiles.iter().map(|p| p.history(now)).collect();
        for i in 0..units {
            let name = format!("docker/app_web_{i}");
            sup.add_unit(now, &name, Policy::default());
            sup.restore_availability(now, &name, &histories[i % 20]);
        }
        let dir = tempfile::tempdir().unwrap();
        let store = HistoryStore::open(dir.path()).unwrap();
        write_file(&store, &sup, now, wall);
        let after = std::fs::metadata(store.path()).unwrap().len();

        // Version 1: the same buckets, one entry each.
        let file: HistoryFile =
            serde_json::from_slice(&std::fs::read(store.path()).unwrap()).unwrap();
        let one_each = |runs: &[Run]| -> Vec<Run> {
            runs.iter()
                .flat_map(|r| {
                    (0..r.count).map(move |k| Run {
                        start: r.start + i64::from(k),
                        count: 1,
                        ..*r
                    })
                })
                .collect()
        };
        let v1 = |keep: &dyn Fn(usize) -> bool| HistoryFile {
            version: 1,
            units: (0..units)
                .filter(|i| keep(*i))
                .map(|i| {
                    let name = format!("docker/app_web_{i}");
                    let h = &file.units[&name];
                    let h = StoredHistory {
                        minutes: one_each(&h.minutes),
                        hours: one_each(&h.hours),
                    };
                    (name, h)
                })
                .collect(),
        };
        let before = serde_json::to_vec(&v1(&|_| true)).unwrap().len() as u64;
        println!(
            "availability.json, {units} units after 30 days: version 1 (an entry per bucket) {:.1} MB, \
             version 2 (runs) {:.2} MB ({} bytes a unit)",
            before as f64 / 1e6,
            after as f64 / 1e6,
            after / units as u64
        );

        // Both versions read back to the figures users see.
        let sampled = |i: usize| i.is_multiple_of(97);
        let windows = [60, 24 * 3600, 7 * 24 * 3600, 30 * 24 * 3600].map(Duration::from_secs);
        let later = now + Duration::from_secs(1);
        for bytes in [
            std::fs::read(store.path()).unwrap(),
            serde_json::to_vec(&v1(&sampled)).unwrap(),
        ] {
            std::fs::write(store.path(), bytes).unwrap();
            let mut store = HistoryStore::open(dir.path()).unwrap();
            for i in (0..units).filter(|i| sampled(*i)) {
                let name = format!("docker/app_web_{i}");
                let mut again = Supervisor::new("t-", 1);
                again.add_unit(later, &name, Policy::default());
                store.restore(&mut again, &name, later, wall + Duration::from_secs(1));
                for window in windows {
                    assert_eq!(
                        again.availability(&name, later, window),
                        sup.availability(&name, now, window),
                        "{name} over {window:?}"
                    );
                }
            }
        }
        (before, after)
    }

    #[test]
    fn thirty_days_are_stored_as_runs_and_read_back_the_same() {
        let (before, after) = thirty_days_of(1_000);
        assert!(after < 400 * 1_000, "{after} bytes");
        assert!(before > 50 * after, "{before} vs {after}");
    }

    /// The measure behind docs/files.md's figure (`cargo test -p medic-daemon --lib
    /// -- --ignored --nocapture thirty_days`; half a minute in a debug build).
    #[test]
    #[ignore = "a measure at 10,000 units, half a minute in a debug build"]
    fn thirty_days_of_ten_thousand_units() {
        let (before, after) = thirty_days_of(10_000);
        assert!(after < 4_000_000, "{after} bytes");
        assert!(before > 50 * after, "{before} vs {after}");
    }

    #[test]
    fn survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let start = Instant::now();
        let wall = Timestamp::now();
        let mut sup = supervisor(start);
        let ok = Observation::ok(Duration::from_millis(3), "fine");
        for i in 0..4u64 {
            let at = start + Duration::from_secs(20 * i);
            sup.handle_input(
                at,
                medic_core::Input::Observed {
                    unit: "web".into(),
                    probe: 0,
                    observation: ok.clone(),
                },
            )
            .unwrap();
        }
        let saved_at = start + Duration::from_secs(60);
        let day = Duration::from_secs(24 * 3600);
        let before = sup.availability("web", saved_at, day);
        assert!(before.is_some());
        let store = HistoryStore::open(dir.path()).unwrap();
        write_file(&store, &sup, saved_at, wall);

        let later = saved_at + Duration::from_secs(120);
        let mut again = supervisor(later);
        let mut store = HistoryStore::open(dir.path()).unwrap();
        store.restore(&mut again, "web", later, wall + Duration::from_secs(120));
        assert_eq!(again.availability("web", later, day), before);
        // A unit not watched now keeps its history through a save; a month-old one does not.
        let mut file: HistoryFile =
            serde_json::from_slice(&std::fs::read(dir.path().join("availability.json")).unwrap())
                .unwrap();
        let recent = file.units["web"].clone();
        let hour = epoch(wall, 3600);
        file.units.insert("late".into(), recent);
        file.units.insert(
            "gone".into(),
            StoredHistory {
                minutes: vec![],
                hours: vec![Run {
                    start: hour - 24 * 31,
                    count: 1,
                    up_ms: 1000,
                    known_ms: 1000,
                }],
            },
        );
        std::fs::write(
            dir.path().join("availability.json"),
            serde_json::to_vec(&file).unwrap(),
        )
        .unwrap();
        let store = HistoryStore::open(dir.path()).unwrap();
        write_file(&store, &again, later, wall);
        let saved: HistoryFile =
            serde_json::from_slice(&std::fs::read(dir.path().join("availability.json")).unwrap())
                .unwrap();
        assert!(saved.units.contains_key("late"));
        assert!(!saved.units.contains_key("gone"));
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(files, vec![std::ffi::OsString::from("availability.json")]);
    }
}
