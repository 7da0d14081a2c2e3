//! The availability history file `availability.json` in the state directory:
//! every unit's minute buckets (1 h) and hour buckets (30 d), keyed by wall-clock
//! minute and hour, so a restarted medic keeps its 24 h / 7 d / 30 d figures.
//! Bounded (at most 61 + 721 buckets per unit) and written like `state.json`
//! (`saver.rs`: off the loop, coalesced, replaced atomically).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use jiff::Timestamp;
use medic_core::Supervisor;
use medic_core::availability::{History, HistoryBucket};
use serde::{Deserialize, Serialize};

/// The file's format version.
const VERSION: u32 = 1;
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

/// One unit's buckets: `[start, up_ms, known_ms]`, where `start` counts
/// minutes (or hours) since the Unix epoch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredHistory {
    /// Minute buckets of the last hour.
    #[serde(default)]
    pub minutes: Vec<(i64, u32, u32)>,
    /// Hour buckets of the last 30 days.
    #[serde(default)]
    pub hours: Vec<(i64, u32, u32)>,
}

/// The history on disk, and what was loaded but not yet handed to a unit.
#[derive(Debug)]
pub struct HistoryStore {
    path: PathBuf,
    pending: BTreeMap<String, StoredHistory>,
}

impl HistoryStore {
    /// Loads `availability.json` from `dir`; an unreadable file is kept aside and history starts afresh.
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
            .into_iter()
            .map(|(name, history)| (name, to_stored(&history, wall)))
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
    let convert = |buckets: &[HistoryBucket], span: i64| {
        let current = epoch(wall, span);
        buckets
            .iter()
            .map(|b| {
                let age = i64::try_from(b.age).unwrap_or(i64::MAX);
                (current.saturating_sub(age), b.up_ms, b.known_ms)
            })
            .collect()
    };
    StoredHistory {
        minutes: convert(&history.minutes, 60),
        hours: convert(&history.hours, 3600),
    }
}

fn to_history(stored: &StoredHistory, wall: Timestamp) -> History {
    // Buckets "from the future" (the clock was set back) and older than the
    // window are dropped.
    let convert = |buckets: &[(i64, u32, u32)], span: i64, keep: u64| {
        let current = epoch(wall, span);
        buckets
            .iter()
            .filter_map(|&(start, up_ms, known_ms)| {
                let age = u64::try_from(current.checked_sub(start)?).ok()?;
                (age < keep).then_some(HistoryBucket {
                    age,
                    up_ms,
                    known_ms,
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
                hours: vec![(hour - 24 * 31, 1000, 1000)],
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
