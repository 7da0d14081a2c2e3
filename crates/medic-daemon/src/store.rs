//! The state store `state.json`: what a restarted daemon needs to continue an
//! incident (attempt counts, pauses, escalation) and the last known good specs.
//! The loop keeps the contents and hands a shared, copy-on-write snapshot to
//! its writer (`saver.rs`), which writes it compact, atomically (temp file,
//! fsync, rename, fsync the directory), at most once a second, so a kill -9
//! at any moment leaves either the old or the new file, never a torn one.
//!
//! What must survive a kill -9 at once (an incident opened or closed, an
//! attempt about to start) does not wait for that: the changed units are
//! appended to `state.changes.jsonl` ([`StoreChange`], a journal line each
//! batch), numbered; `state.json` records the newest change it includes, and
//! loading replays the newer ones. So 10,000 incidents opening in a storm cost
//! 10,000 short lines and one rewrite a second, not a rewrite per batch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;
use medic_core::Step;
use medic_core::snapshot::{SavedFlap, SavedIncident, SavedPhase, UnitSnapshot};
use medic_core::storm::{SavedActive, SavedStorm};
use serde::{Deserialize, Serialize};

use crate::clock::WallClock;

/// The file's format version; bumped on incompatible changes.
const VERSION: u32 = 1;

/// The whole store, as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreFile {
    /// Format version.
    pub version: u32,
    /// Prefix of incident ids, fixed when the store is first created.
    pub incident_prefix: String,
    /// The next incident number.
    pub next_incident: u64,
    /// Per unit. Shared: copying the store for its writer copies pointers,
    /// not 10,000 units (a change replaces the unit's entry).
    pub units: BTreeMap<String, Arc<StoredUnit>>,
    /// The storm in progress, or the services whose alerts it still holds
    /// (see `medic_core::storm`), so a restarted medic sends its resolving line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storm: Option<StoredStorm>,
    /// The newest change line (`state.changes.jsonl`) this file includes.
    #[serde(default)]
    pub seq: u64,
}

/// One line of `state.changes.jsonl`: the units that changed, whole (`null`:
/// no longer watched), and the incident counter, numbered after the last.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreChange {
    /// Its number: lines up to `StoreFile::seq` are in `state.json` already.
    pub seq: u64,
    /// The next incident number.
    pub next_incident: u64,
    /// The changed units.
    pub units: BTreeMap<String, Option<Arc<StoredUnit>>>,
    /// The storm rule's state when a storm began or ended (an empty one: none
    /// to keep), so a restarted medic does not announce it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storm: Option<StoredStorm>,
}

/// Where the change lines of the store in `dir` are appended.
pub fn changes_path(dir: &Path) -> PathBuf {
    dir.join("state.changes.jsonl")
}

/// Rewrites `state.changes.jsonl` with only the lines `state.json` beside it
/// does not include yet (a `Limit::Compact` of its journal).
pub fn compact_changes(path: &Path) -> anyhow::Result<()> {
    /// Only the field needed; the rest of the file is skipped.
    #[derive(Deserialize)]
    struct Seq {
        #[serde(default)]
        seq: u64,
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let included = match std::fs::read(dir.join("state.json")) {
        Ok(bytes) => serde_json::from_slice::<Seq>(&bytes).map_or(0, |s| s.seq),
        Err(_) => 0,
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    medic_records::files::replace(path, |out| {
        for line in text.lines() {
            let newer = serde_json::from_str::<Seq>(line).is_ok_and(|s| s.seq > included);
            if newer {
                use std::io::Write;
                writeln!(out, "{line}")?;
            }
        }
        Ok(())
    })
}

/// What the storm rule keeps across a restart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredStorm {
    /// When the storm in progress began; absent when none is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// Its first failures: `[unit, why]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub first: Vec<(String, String)>,
    /// How many services failed in it.
    #[serde(default)]
    pub failed: usize,
    /// Services whose alerts are held from the sinks.
    #[serde(default)]
    pub members: Vec<String>,
}

/// One unit's persisted state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredUnit {
    /// `fine`, `failing`, `recovering`, `rolling_back`, `escalated` or `deploying`.
    pub phase: String,
    /// The attempt being made, when recovering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Where the recovering or rolling back step stood: `waiting` (for `due`),
    /// `acting` (its result unknown) or `verifying` (until `due`). Absent in
    /// older files: then the step counts as acting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// When a waiting step is due, or a verification gives up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<Timestamp>,
    /// The open incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<StoredIncident>,
    /// Restart attempts of the open incident, as older files wrote them (read only).
    #[serde(default, skip_serializing)]
    pub attempts: Vec<Timestamp>,
    /// When recent incidents opened (for flapping).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_incidents: Vec<Timestamp>,
    /// Flapping with nothing different to roll back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flapping: Option<StoredFlap>,
    /// Paused by a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<StoredPause>,
    /// The target's last known good spec (container create spec, plist, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_known_good: Option<serde_json::Value>,
}

/// An open incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredIncident {
    /// Its id.
    pub id: String,
    /// When it opened.
    pub opened: Timestamp,
    /// Whether it was alerted.
    pub alerted: bool,
    /// Whether a rollback was tried.
    pub rollback_tried: bool,
    /// Restarts started in it (older files: the length of the unit's `attempts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Why its restarts were skipped (`flapping: 4 incidents in 10 min`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Opened by a removal (its restart recreates the target).
    #[serde(default)]
    pub gone: bool,
    /// When the removal was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<Timestamp>,
    /// Flapping with nothing to roll back to: its first restart waits this many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flap_delay_ms: Option<u64>,
}

/// A unit flapping with nothing different to roll back to: the delay goes on
/// growing across a restart of medic, and its alert still gets its `resolved`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredFlap {
    /// The delay the next incident's first restart waits, in milliseconds.
    pub next_delay_ms: u64,
    /// The incident whose critical alert said it flaps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerted: Option<String>,
    /// When its last incident closed (absent while one is open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calm_since: Option<Timestamp>,
}

/// A pause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPause {
    /// When it ends; absent for an open-ended pause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

/// The store on disk.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    /// The current contents; shared with the writer until it has written them.
    pub file: Arc<StoreFile>,
}

/// A snapshot of the store for its writer: sharing it costs nothing, and the
/// loop's next change copies it only if the writer still holds it.
#[derive(Debug, Clone)]
pub struct SharedStoreFile(Arc<StoreFile>);

impl Serialize for SharedStoreFile {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl Store {
    /// Loads `state.json` from `dir`, or starts a new one. A file that does not
    /// parse is kept aside as `state.json.corrupt` rather than silently lost.
    pub fn open(dir: &Path, now: Timestamp) -> anyhow::Result<Self> {
        // No create_dir_all: the lock made state_dir if it could; a missing
        // one reads as an empty store and its writer retries.
        let path = dir.join("state.json");
        let mut file = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<StoreFile>(&bytes) {
                Ok(file) => file,
                Err(error) => {
                    let aside = dir.join("state.json.corrupt");
                    tracing::warn!(%error, path = %path.display(), "State store unreadable; kept aside, starting fresh");
                    std::fs::rename(&path, &aside).ok();
                    StoreFile::default()
                }
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => StoreFile::default(),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        replay_changes(&changes_path(dir), &mut file);
        let mut store = Self {
            path,
            file: Arc::new(file),
        };
        if store.file.incident_prefix.is_empty() {
            let file = Arc::make_mut(&mut store.file);
            file.version = VERSION;
            file.incident_prefix = incident_prefix(now);
        }
        Ok(store)
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The contents as they are now, for the writer.
    pub fn shared(&self) -> SharedStoreFile {
        SharedStoreFile(self.file.clone())
    }

    /// Replaces the units' recovery state from the supervisor, keeping their last known good specs.
    pub fn update(&mut self, snapshots: Vec<UnitSnapshot>, next_incident: u64, clock: &WallClock) {
        let file = Arc::make_mut(&mut self.file);
        file.next_incident = next_incident;
        let mut units = BTreeMap::new();
        for snapshot in snapshots {
            let mut unit = to_stored(&snapshot, clock);
            unit.last_known_good = file
                .units
                .get_mut(&snapshot.name)
                .and_then(take_last_known_good);
            units.insert(snapshot.name, Arc::new(unit));
        }
        file.units = units;
    }

    /// Replaces one unit's recovery state (keeping its last known good spec),
    /// or forgets the unit when it is no longer watched (`None`).
    pub fn update_unit(&mut self, name: &str, snapshot: Option<UnitSnapshot>, clock: &WallClock) {
        let file = Arc::make_mut(&mut self.file);
        match snapshot {
            Some(snapshot) => {
                let mut stored = to_stored(&snapshot, clock);
                match file.units.get_mut(name) {
                    Some(unit) => {
                        stored.last_known_good = take_last_known_good(unit);
                        *unit = Arc::new(stored);
                    }
                    None => {
                        file.units.insert(name.to_owned(), Arc::new(stored));
                    }
                }
            }
            None => {
                file.units.remove(name);
            }
        }
    }

    /// Takes the changed units (`None`: no longer watched) and the incident
    /// counter into the store, and returns them as the next change line.
    pub fn change(
        &mut self,
        changed: impl IntoIterator<Item = (String, Option<UnitSnapshot>)>,
        next_incident: u64,
        storm: Option<StoredStorm>,
        clock: &WallClock,
    ) -> StoreChange {
        let mut units = BTreeMap::new();
        for (name, snapshot) in changed {
            self.update_unit(&name, snapshot, clock);
            let unit = self.file.units.get(&name).cloned();
            units.insert(name, unit);
        }
        self.set_next_incident(next_incident);
        let file = Arc::make_mut(&mut self.file);
        file.seq += 1;
        StoreChange {
            seq: file.seq,
            next_incident,
            units,
            storm,
        }
    }

    /// The next incident number.
    pub fn set_next_incident(&mut self, next: u64) {
        if self.file.next_incident != next {
            Arc::make_mut(&mut self.file).next_incident = next;
        }
    }

    /// The saved state of a unit, for `Supervisor::restore_unit`.
    pub fn snapshot(&self, name: &str, clock: &WallClock) -> Option<UnitSnapshot> {
        self.file
            .units
            .get(name)
            .map(|unit| from_stored(name, unit, clock))
    }

    /// Records a unit's last known good spec.
    pub fn set_last_known_good(&mut self, name: &str, spec: serde_json::Value) {
        let unit = Arc::make_mut(&mut self.file)
            .units
            .entry(name.to_owned())
            .or_default();
        Arc::make_mut(unit).last_known_good = Some(spec);
    }

    /// Keeps the storm rule's state (None: nothing to keep).
    pub fn set_storm(&mut self, storm: Option<SavedStorm>, clock: &WallClock) {
        let stored = storm.map(|saved| {
            let active = saved.active.as_ref();
            StoredStorm {
                since: active.map(|a| clock.to_wall(a.since)),
                first: active.map(|a| a.first.clone()).unwrap_or_default(),
                failed: active.map_or(0, |a| a.failed),
                members: saved.members,
            }
        });
        Arc::make_mut(&mut self.file).storm = stored;
    }

    /// The storm rule's state as saved.
    pub fn storm(&self, clock: &WallClock) -> Option<SavedStorm> {
        let stored = self.file.storm.as_ref()?;
        Some(SavedStorm {
            active: stored.since.map(|since| SavedActive {
                since: clock.to_instant(since),
                first: stored.first.clone(),
                failed: stored.failed,
            }),
            members: stored.members.clone(),
        })
    }

    /// A unit's last known good spec.
    pub fn last_known_good(&self, name: &str) -> Option<&serde_json::Value> {
        self.file.units.get(name)?.last_known_good.as_ref()
    }
}

/// Applies the change lines `file` does not include yet, in order (a torn
/// last line, from a crash mid-append, is skipped).
fn replay_changes(path: &Path, file: &mut StoreFile) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    for change in medic_records::journal::parse_lines::<StoreChange>(&text) {
        if change.seq <= file.seq {
            continue;
        }
        file.seq = change.seq;
        file.next_incident = file.next_incident.max(change.next_incident);
        for (name, unit) in change.units {
            match unit {
                Some(unit) => file.units.insert(name, unit),
                None => file.units.remove(&name),
            };
        }
        if let Some(storm) = change.storm {
            file.storm = (storm != StoredStorm::default()).then_some(storm);
        }
    }
}

/// A unit's last known good spec, moved out unless the writer still holds the unit.
fn take_last_known_good(unit: &mut Arc<StoredUnit>) -> Option<serde_json::Value> {
    match Arc::get_mut(unit) {
        Some(unit) => unit.last_known_good.take(),
        None => unit.last_known_good.clone(),
    }
}

/// A short, time-based prefix so incident ids stay unique even if the store is deleted.
fn incident_prefix(now: Timestamp) -> String {
    let mut n = u64::try_from(now.as_second()).unwrap_or(0);
    let mut digits = Vec::new();
    while n > 0 {
        digits.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
        n /= 36;
    }
    digits.reverse();
    format!("{}-", String::from_utf8_lossy(&digits))
}

fn to_stored(snapshot: &UnitSnapshot, clock: &WallClock) -> StoredUnit {
    let step = |step: Step| match step {
        Step::Restart(k) => ("recovering", Some(k)),
        Step::Rollback => ("rolling_back", None),
    };
    let ((phase, attempt), stage, due) = match snapshot.phase {
        SavedPhase::Fine => (("fine", None), None, None),
        SavedPhase::Failing => (("failing", None), None, None),
        SavedPhase::Escalated => (("escalated", None), None, None),
        SavedPhase::Deploying => (("deploying", None), None, None),
        SavedPhase::Waiting { step: s, at } => (step(s), Some("waiting"), Some(at)),
        SavedPhase::Acting(s) => (step(s), Some("acting"), None),
        SavedPhase::Verifying { step: s, deadline } => (step(s), Some("verifying"), Some(deadline)),
    };
    StoredUnit {
        phase: phase.to_owned(),
        attempt,
        stage: stage.map(str::to_owned),
        due: due.map(|at| clock.to_wall(at)),
        incident: snapshot.incident.as_ref().map(|i| StoredIncident {
            id: i.id.clone(),
            opened: clock.to_wall(i.opened),
            alerted: i.alerted,
            rollback_tried: i.rollback_tried,
            attempts: Some(i.attempts),
            reason: i.reason.clone(),
            gone: i.gone,
            removed_at: i.removed_at.map(|at| clock.to_wall(at)),
            flap_delay_ms: i.flap_delay.map(millis),
        }),
        attempts: Vec::new(),
        recent_incidents: snapshot
            .incidents
            .iter()
            .map(|a| clock.to_wall(*a))
            .collect(),
        flapping: snapshot.flap.as_ref().map(|f| StoredFlap {
            next_delay_ms: millis(f.next),
            alerted: f.alerted.clone(),
            calm_since: f.calm_since.map(|at| clock.to_wall(at)),
        }),
        paused: snapshot.paused.map(|until| StoredPause {
            until: until.map(|u| clock.to_wall(u)),
        }),
        last_known_good: None,
    }
}

fn from_stored(name: &str, unit: &StoredUnit, clock: &WallClock) -> UnitSnapshot {
    let step = match (unit.phase.as_str(), unit.attempt) {
        ("recovering", k) => Some(Step::Restart(k.unwrap_or(1).max(1))),
        ("rolling_back", _) => Some(Step::Rollback),
        _ => None,
    };
    let due = unit.due.map(|at| clock.to_instant(at));
    let phase = match (unit.phase.as_str(), step, unit.stage.as_deref(), due) {
        (_, Some(step), Some("waiting"), Some(at)) => SavedPhase::Waiting { step, at },
        (_, Some(step), Some("verifying"), Some(deadline)) => {
            SavedPhase::Verifying { step, deadline }
        }
        (_, Some(step), _, _) => SavedPhase::Acting(step),
        ("failing", ..) => SavedPhase::Failing,
        ("escalated", ..) => SavedPhase::Escalated,
        ("deploying", ..) => SavedPhase::Deploying,
        _ => SavedPhase::Fine,
    };
    UnitSnapshot {
        name: name.to_owned(),
        phase,
        incident: unit.incident.as_ref().map(|i| SavedIncident {
            id: i.id.clone(),
            opened: clock.to_instant(i.opened),
            alerted: i.alerted,
            rollback_tried: i.rollback_tried,
            attempts: i
                .attempts
                .unwrap_or_else(|| u32::try_from(unit.attempts.len()).unwrap_or(u32::MAX)),
            reason: i.reason.clone(),
            gone: i.gone,
            removed_at: i.removed_at.map(|at| clock.to_instant(at)),
            flap_delay: i.flap_delay_ms.map(Duration::from_millis),
        }),
        incidents: unit
            .recent_incidents
            .iter()
            .map(|a| clock.to_instant(*a))
            .collect(),
        flap: unit.flapping.as_ref().map(|f| SavedFlap {
            next: Duration::from_millis(f.next_delay_ms),
            alerted: f.alerted.clone(),
            calm_since: f.calm_since.map(|at| clock.to_instant(at)),
        }),
        paused: unit
            .paused
            .as_ref()
            .map(|p| p.until.map(|u| clock.to_instant(u))),
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn round_trips_a_unit_mid_incident() {
        let dir = tempfile::tempdir().unwrap();
        let clock = WallClock::now();
        let now = std::time::Instant::now();
        let snapshot = UnitSnapshot {
            name: "web".into(),
            phase: SavedPhase::Acting(Step::Restart(2)),
            incident: Some(SavedIncident {
                id: "x-1".into(),
                opened: now,
                alerted: false,
                rollback_tried: false,
                attempts: 2,
                reason: None,
                gone: true,
                removed_at: Some(now),
                flap_delay: Some(Duration::from_secs(20)),
            }),
            incidents: vec![now, now],
            flap: Some(SavedFlap {
                next: Duration::from_secs(40),
                alerted: Some("x-0".into()),
                calm_since: None,
            }),
            paused: Some(None),
        };
        let mut store = Store::open(dir.path(), Timestamp::now()).unwrap();
        store.set_last_known_good("web", serde_json::json!({"image": "sha256:1"}));
        store.update(vec![snapshot.clone()], 7, &clock);
        medic_records::files::replace(store.path(), |out| {
            Ok(serde_json::to_writer(out, &store.shared())?)
        })
        .unwrap();

        let again = Store::open(dir.path(), Timestamp::now()).unwrap();
        assert_eq!(again.file.next_incident, 7);
        let restored = again.snapshot("web", &clock).unwrap();
        assert_eq!(restored.phase, snapshot.phase);
        assert!(restored.incident.as_ref().unwrap().gone);
        assert_eq!(restored.incidents.len(), 2);
        assert_eq!(restored.incident.as_ref().unwrap().attempts, 2);
        assert_eq!(restored.flap, snapshot.flap);
        let flap_delay = restored.incident.as_ref().unwrap().flap_delay;
        assert_eq!(flap_delay, Some(Duration::from_secs(20)));
        assert_eq!(restored.incident.unwrap().id, "x-1");
        assert_eq!(again.last_known_good("web").unwrap()["image"], "sha256:1");
        assert_eq!(again.storm(&clock), None);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("state.json")]);
    }

    fn unit(name: &str, attempts: u32) -> UnitSnapshot {
        let now = std::time::Instant::now();
        UnitSnapshot {
            name: name.into(),
            phase: SavedPhase::Acting(Step::Restart(attempts)),
            incident: Some(SavedIncident {
                id: format!("x-{name}"),
                opened: now,
                alerted: false,
                rollback_tried: false,
                attempts,
                reason: None,
                gone: false,
                removed_at: None,
                flap_delay: None,
            }),
            incidents: vec![now],
            flap: None,
            paused: None,
        }
    }

    fn append(path: &Path, change: &StoreChange) {
        let mut file = medic_records::files::open_append(path).unwrap();
        writeln!(file, "{}", serde_json::to_string(change).unwrap()).unwrap();
    }

    fn attempts(store: &Store, name: &str) -> Option<u32> {
        let clock = WallClock::now();
        Some(store.snapshot(name, &clock)?.incident?.attempts)
    }

    /// A kill -9 between whole saves: what the change lines hold comes back,
    /// lines the file already includes are not applied again, and a torn last
    /// line is skipped.
    #[test]
    fn change_lines_newer_than_the_file_are_replayed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let clock = WallClock::now();
        let changes = changes_path(dir.path());
        let mut store = Store::open(dir.path(), Timestamp::now()).unwrap();
        store.set_last_known_good("api", serde_json::json!({"image": "sha256:1"}));
        let first = store.change([("api".into(), Some(unit("api", 1)))], 3, None, &clock);
        append(&changes, &first);
        // The whole store is saved here (it includes line 1) …
        medic_records::files::replace(store.path(), |out| {
            Ok(serde_json::to_writer(out, &store.shared())?)
        })
        .unwrap();
        // … then more changes, only as lines: api's next attempt, web new, db gone.
        let second = store.change(
            [
                ("api".into(), Some(unit("api", 2))),
                ("web".into(), Some(unit("web", 1))),
            ],
            5,
            None,
            &clock,
        );
        append(&changes, &second);
        let third = store.change([("web".into(), None)], 6, None, &clock);
        append(&changes, &third);
        // Line 1 again (as after a compaction raced a save): older than the file, skipped.
        append(&changes, &first);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&changes)
            .unwrap()
            .write_all(b"{\"seq\":9,\"next_incident\":99,\"units\":{\"api\":nu")
            .unwrap();

        let again = Store::open(dir.path(), Timestamp::now()).unwrap();
        assert_eq!(attempts(&again, "api"), Some(2));
        assert_eq!(attempts(&again, "web"), None, "web was forgotten");
        assert_eq!(again.file.next_incident, 6);
        assert_eq!(again.file.seq, 3);
        assert_eq!(again.last_known_good("api").unwrap()["image"], "sha256:1");
        // Numbering continues after a restart.
        let mut again = again;
        assert_eq!(again.change([], 6, None, &clock).seq, 4);
    }

    /// A storm that began is kept by its change line; one that ended (an empty
    /// storm) is forgotten by the next.
    #[test]
    fn a_storm_that_began_or_ended_comes_with_its_change_line() {
        let dir = tempfile::tempdir().unwrap();
        let clock = WallClock::now();
        let changes = changes_path(dir.path());
        let mut store = Store::open(dir.path(), Timestamp::now()).unwrap();
        let began = StoredStorm {
            since: Some(Timestamp::now()),
            first: vec![("ep1".into(), "HTTP 404".into())],
            failed: 9482,
            members: vec!["ep1".into()],
        };
        append(&changes, &store.change([], 1, Some(began.clone()), &clock));
        let again = Store::open(dir.path(), Timestamp::now()).unwrap();
        assert_eq!(again.file.storm, Some(began));
        append(
            &changes,
            &store.change([], 1, Some(StoredStorm::default()), &clock),
        );
        let again = Store::open(dir.path(), Timestamp::now()).unwrap();
        assert_eq!(again.file.storm, None);
    }

    /// Past its size the file keeps only what `state.json` does not include.
    #[test]
    fn compaction_keeps_only_lines_newer_than_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let clock = WallClock::now();
        let changes = changes_path(dir.path());
        let mut store = Store::open(dir.path(), Timestamp::now()).unwrap();
        for k in 1..=3 {
            let line = store.change([("api".into(), Some(unit("api", k)))], 1, None, &clock);
            append(&changes, &line);
        }
        medic_records::files::replace(store.path(), |out| {
            Ok(serde_json::to_writer(out, &store.shared())?)
        })
        .unwrap();
        let fourth = store.change([("api".into(), Some(unit("api", 4)))], 1, None, &clock);
        append(&changes, &fourth);
        compact_changes(&changes).unwrap();
        let kept: Vec<StoreChange> =
            medic_records::journal::parse_lines(&std::fs::read_to_string(&changes).unwrap());
        assert_eq!(kept, vec![fourth]);
        assert_eq!(
            attempts(&Store::open(dir.path(), Timestamp::now()).unwrap(), "api"),
            Some(4)
        );
    }

    #[test]
    fn round_trips_a_storm() {
        let dir = tempfile::tempdir().unwrap();
        let clock = WallClock::now();
        let since = std::time::Instant::now();
        let saved = SavedStorm {
            active: Some(SavedActive {
                since,
                first: vec![("ep1".into(), "HTTP 404".into())],
                failed: 9482,
            }),
            members: vec!["ep1".into(), "ep2".into()],
        };
        let mut store = Store::open(dir.path(), Timestamp::now()).unwrap();
        store.set_storm(Some(saved.clone()), &clock);
        medic_records::files::replace(store.path(), |out| {
            Ok(serde_json::to_writer(out, &store.shared())?)
        })
        .unwrap();
        let again = Store::open(dir.path(), Timestamp::now()).unwrap();
        let restored = again.storm(&clock).unwrap();
        assert_eq!(restored.members, saved.members);
        let active = restored.active.unwrap();
        assert_eq!(
            (active.first, active.failed),
            (saved.active.clone().unwrap().first, 9482)
        );
        // Wall-clock time in the file: the instant comes back within a millisecond.
        assert!(
            active.since.max(since) - active.since.min(since) < std::time::Duration::from_millis(1)
        );
    }
}
