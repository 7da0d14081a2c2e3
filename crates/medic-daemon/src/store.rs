//! The state store `state.json`: what a restarted daemon needs to continue an
//! incident (attempt counts, pauses, escalation) and the last known good specs.
//! The loop keeps the contents and hands a shared, copy-on-write snapshot to
//! its writer (`saver.rs`), which writes it compact, atomically (temp file,
//! fsync, rename, fsync the directory), so a kill -9 at any moment leaves
//! either the old or the new file, never a torn one.
//!
//! That whole file is a checkpoint, written rarely (see
//! `daemon/durability.rs`): every change goes to `state.changes.jsonl`
//! ([`StoreChange`], a journal line per batch), numbered; `state.json`
//! records the newest change it includes, and loading replays the newer ones.
//! So 10,000 incidents opening in a storm cost 10,000 short lines, not a
//! rewrite of every unit per batch or per second.

use std::collections::{BTreeMap, HashSet};
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
    /// The newest change line (`state.changes.jsonl`) this file includes.
    /// Written first, so compaction reads it without parsing the file
    /// (`included_seq`); older files have it last.
    #[serde(default)]
    pub seq: u64,
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
}

/// One line of `state.changes.jsonl`: the units that changed (`null`: no
/// longer watched) without their last known good spec unless it changed
/// since the last line that carried the unit (replay keeps the one it has),
/// and the incident counter, numbered after the last.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreChange {
    /// Its number: lines up to `StoreFile::seq` are in `state.json` already.
    pub seq: u64,
    /// The next incident number.
    pub next_incident: u64,
    /// The changed units (older medics wrote each with its spec).
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

/// Only the field needed; the rest is skipped.
#[derive(Deserialize)]
struct Seq {
    #[serde(default)]
    seq: u64,
}

/// The `seq` of a state file or change line: read from its first bytes when
/// it comes first (`{"version":1,"seq":42,…`, `{"seq":42,…`), else parsed.
fn seq_of(text: &[u8]) -> Option<u64> {
    let head = &text[..text.len().min(64)];
    let quick = head
        .windows(6)
        .position(|w| w == b"\"seq\":")
        .and_then(|at| {
            let at = at + 6;
            let end = at + head[at..].iter().take_while(|b| b.is_ascii_digit()).count();
            let leads = matches!(head.get(end), Some(b',' | b'}'));
            let digits = std::str::from_utf8(&head[at..end]).ok().filter(|_| leads)?;
            digits.parse().ok()
        });
    quick.or_else(|| serde_json::from_slice::<Seq>(text).ok().map(|s| s.seq))
}

/// The first bytes of the file at `path` (none when it cannot be read).
fn head_of(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut head = Vec::with_capacity(64);
    if let Ok(file) = std::fs::File::open(path) {
        file.take(64).read_to_end(&mut head).ok();
    }
    head
}

/// The newest change line `state.json` in `dir` includes, from its first
/// bytes (a file written before `seq` came first is parsed whole, once).
fn included_seq(dir: &Path) -> u64 {
    let head = head_of(&dir.join("state.json"));
    if head.is_empty() {
        return 0;
    }
    let quick = std::str::from_utf8(&head)
        .ok()
        .filter(|h| h.starts_with("{\"version\":") && h.contains("\"seq\":"))
        .and_then(|h| seq_of(h.as_bytes()));
    quick.unwrap_or_else(|| {
        std::fs::read(dir.join("state.json"))
            .ok()
            .and_then(|bytes| seq_of(&bytes))
            .unwrap_or(0)
    })
}

/// Rewrites `state.changes.jsonl` with only the lines `state.json` beside it
/// does not include yet (a `Limit::Compact` of its journal). Until a new
/// checkpoint includes its first line there is nothing to drop: it reads
/// the first bytes of both files and leaves the file as it is (false).
pub fn compact_changes(path: &Path) -> anyhow::Result<bool> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let included = included_seq(dir);
    let first = seq_of(&head_of(path));
    if first.is_some_and(|seq| seq > included) {
        return Ok(false);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    medic_records::files::replace(path, |out| {
        for line in text.lines() {
            let newer = seq_of(line.as_bytes()).is_some_and(|seq| seq > included);
            if newer {
                use std::io::Write;
                writeln!(out, "{line}")?;
            }
        }
        Ok(())
    })?;
    Ok(true)
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
    /// When its probes stopped seeing, while they cannot (`blind_alert_after`
    /// counts from here across restarts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blind_since: Option<Timestamp>,
    /// The target's last known good spec (container create spec, plist, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_known_good: Option<serde_json::Value>,
}

impl StoredUnit {
    /// The unit's recovery state without its last known good spec, for a change line.
    fn without_spec(&self) -> Self {
        Self {
            phase: self.phase.clone(),
            attempt: self.attempt,
            stage: self.stage.clone(),
            due: self.due,
            incident: self.incident.clone(),
            attempts: Vec::new(),
            recent_incidents: self.recent_incidents.clone(),
            flapping: self.flapping.clone(),
            paused: self.paused.clone(),
            blind_since: self.blind_since,
            last_known_good: None,
        }
    }
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
    /// Milliseconds it had left when saved: a restored `until` further
    /// ahead than this (a clock stepped back) is clamped. Absent in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_ms: Option<u64>,
}

/// The store on disk.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    /// The current contents; shared with the writer until it has written them.
    pub file: Arc<StoreFile>,
    /// Units whose last known good spec changed since a change line last
    /// carried them: the next line that carries one carries its spec too.
    spec_changed: HashSet<String>,
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
            spec_changed: HashSet::new(),
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
            let with_spec = self.spec_changed.remove(&name);
            let unit = self.file.units.get(&name).map(|unit| match with_spec {
                true => unit.clone(),
                false => Arc::new(unit.without_spec()),
            });
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

    /// How long a unit's pause had left when it was saved, when the file says.
    pub fn pause_left(&self, name: &str) -> Option<Duration> {
        let pause = self.file.units.get(name)?.paused.as_ref()?;
        pause.left_ms.map(Duration::from_millis)
    }

    /// Records a unit's last known good spec; false when it is the one kept
    /// already (a unit recovering to the same spec), which then costs no write.
    pub fn set_last_known_good(&mut self, name: &str, spec: serde_json::Value) -> bool {
        if self.last_known_good(name) == Some(&spec) {
            return false;
        }
        self.spec_changed.insert(name.to_owned());
        let unit = Arc::make_mut(&mut self.file)
            .units
            .entry(name.to_owned())
            .or_default();
        Arc::make_mut(unit).last_known_good = Some(spec);
        true
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
/// last line, from a crash mid-append, is skipped; any other bad line is
/// logged with its number).
fn replay_changes(path: &Path, file: &mut StoreFile) {
    let changes = match medic_records::lines::read::<StoreChange>(path) {
        Ok(lines) => lines.reported(path),
        Err(error) => {
            tracing::warn!(%error, path = %path.display(), "Cannot read the state store's change lines");
            return;
        }
    };
    for change in changes {
        if change.seq <= file.seq {
            continue;
        }
        file.seq = change.seq;
        file.next_incident = file.next_incident.max(change.next_incident);
        for (name, unit) in change.units {
            match unit {
                // A line without the spec keeps the one the unit has.
                Some(mut unit) if unit.last_known_good.is_none() => {
                    let spec = file
                        .units
                        .get(&name)
                        .and_then(|u| u.last_known_good.clone());
                    Arc::make_mut(&mut unit).last_known_good = spec;
                    file.units.insert(name, unit)
                }
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
            left_ms: until.map(|u| millis(u.saturating_duration_since(clock.instant()))),
        }),
        blind_since: snapshot.blind_since.map(|at| clock.to_wall(at)),
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
        blind_since: unit.blind_since.map(|at| clock.to_instant(at)),
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
