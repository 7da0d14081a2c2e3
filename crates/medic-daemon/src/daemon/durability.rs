//! Durability: the state store's contents, its coalescing writer and its
//! change lines, and the availability history's writer. A change a restarted
//! medic must find goes into a numbered change line at the end of the drain;
//! the rest into the next line, at most once per `SAVE_EVERY`. The whole
//! store (`state.json`) is a checkpoint: written at start, after a reload,
//! at shutdown, and when the lines since the last one outweigh it, so a
//! storm's cost follows what changed, not the number of units watched.
//! Restarts and rollbacks wait here until what records them is on disk.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use medic_core::notice::Persist;
use medic_core::policy::Policy;
use medic_core::saved_times;
use medic_core::snapshot::UnitSnapshot;
use medic_core::{Action, RecoveryEvent, Supervisor};
use medic_records::files::FileHealth;
use medic_records::history::{HistoryFile, HistoryStore};
use medic_records::journal::{Journal, Limit, Mark};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::clock::WallClock;
use crate::saver::Saver;
use crate::store::{SharedStoreFile, Store};

/// Each state file is written at most this often: a change waits at most
/// this long, and 10,000 changes in a second are one write.
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// `state.changes.jsonl` is rewritten without the lines `state.json` holds
/// past this size; and a checkpoint is due once the lines appended since the
/// last one reach this or the checkpoint's own size, whichever is more (so
/// checkpoints cost at most as many bytes as the lines, and the file stays
/// within about twice the larger of the two).
const CHANGES_MAX_SIZE: u64 = 1024 * 1024;
/// How often the availability history is written.
const HISTORY_EVERY: Duration = Duration::from_secs(60);

/// What a restart or rollback waits for before it starts: the state that
/// records it on disk, in a whole save or in a change line (by number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persisted {
    Save(u64),
    Change(u64),
}

impl Persisted {
    /// Whether the writers have finished it: `saved` saves and `changes` change lines are done.
    fn done(self, saved: u64, changes: u64) -> bool {
        match self {
            Persisted::Save(number) => number <= saved,
            Persisted::Change(number) => number <= changes,
        }
    }
}

/// The state store and the history, and what is owed to their writers.
pub(super) struct Durability {
    store: Store,
    /// Units whose recovery state changed since the store was last handed to its writer.
    changed: BTreeSet<String>,
    /// Every unit must be taken into the store (start, reload).
    all: bool,
    /// When the store is next handed to its writer, if anything changed.
    save_by: Option<Instant>,
    /// When it was last handed over: at most once per `SAVE_EVERY`.
    saved: Instant,
    saver: Saver<SharedStoreFile>,
    /// The number of the newest store save the writer has finished.
    written: watch::Receiver<u64>,
    /// What must survive a kill -9 at once: the store's change lines.
    changes: Journal,
    /// The number of the newest change line its writer has finished.
    changes_written: watch::Receiver<u64>,
    /// `changes.appended_bytes()` at the last checkpoint.
    lines_at_checkpoint: u64,
    /// A storm began or ended since the last change line: the next one carries it.
    storm_turned: bool,
    /// Restarts and rollbacks waiting for the save or change line that records them.
    after_save: Vec<(Persisted, Action)>,
    /// The next drain writes a change line (the core said so: `Persist::AtOnce`).
    urgent: bool,
    /// The newest alert lines and outbox records: every state write after
    /// them reaches the disk after them, so a kill -9 never leaves a unit
    /// saved as alerted with its alert nowhere (see `follow`).
    records: Vec<Mark>,
    /// The availability history file and when it was last written.
    history: HistoryStore,
    history_saver: Saver<HistoryFile>,
    history_saved: Instant,
}

impl Durability {
    /// Loads the state store and the history from `state_dir` and starts their writers.
    pub(super) fn open(state_dir: &Path, tracker: &TaskTracker) -> anyhow::Result<Self> {
        let store = Store::open(state_dir, crate::clock::wall_now())?;
        let history = HistoryStore::open(state_dir)?;
        let saver = Saver::start(store.path().to_owned(), "state store", SAVE_EVERY, tracker);
        let changes = Journal::start(
            &crate::store::changes_path(state_dir),
            "state changes",
            Limit::Compact {
                max_size: CHANGES_MAX_SIZE,
                compact: crate::store::compact_changes,
            },
            tracker,
        );
        let history_saver = Saver::start(
            history.path().to_owned(),
            "availability history",
            SAVE_EVERY,
            tracker,
        );
        Ok(Self {
            store,
            changed: BTreeSet::new(),
            all: true,
            save_by: Some(Instant::now()),
            saved: Instant::now(),
            written: saver.finished(),
            saver,
            changes_written: changes.finished(),
            changes,
            lines_at_checkpoint: 0,
            storm_turned: false,
            after_save: Vec::new(),
            urgent: false,
            records: Vec::new(),
            history,
            history_saver,
            history_saved: Instant::now(),
        })
    }

    /// The store as it is in memory (ahead of the disk by at most `SAVE_EVERY`).
    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    /// The units the state store knows, watched or not (for `units::plan`).
    pub(super) fn known_units(&self) -> Vec<&str> {
        self.store.file.units.keys().map(String::as_str).collect()
    }

    /// Keeps a unit's last known good spec: when it differs from the one
    /// kept, the unit's next change line carries it.
    pub(super) fn set_last_known_good(&mut self, unit: &str, spec: serde_json::Value) {
        if self.store.set_last_known_good(unit, spec) {
            self.changed(unit);
        }
    }

    /// Hands a newly watched unit its saved availability, once.
    pub(super) fn restore_history(
        &mut self,
        sup: &mut Supervisor,
        unit: &str,
        now: std::time::Instant,
    ) {
        let wall = WallClock::now().to_wall(now);
        self.history.restore(sup, unit, now, wall);
    }

    /// A unit's saved state, for `Supervisor::restore_unit`, with the times a
    /// clock stepped back made implausible clamped to what `policy` allows
    /// (a warning each).
    pub(super) fn restored(
        &self,
        unit: &str,
        now: std::time::Instant,
        policy: &Policy,
    ) -> Option<UnitSnapshot> {
        let mut saved = self.store.snapshot(unit, &WallClock::now())?;
        #[cfg(feature = "planted")]
        if medic_core::planted::is(medic_core::planted::Defect::RestoredDeadlineTrusted) {
            return Some(saved);
        }
        let pause_left = self.store.pause_left(unit);
        for implausible in saved_times::clamp(now, &mut saved, policy, pause_left) {
            tracing::warn!(service = %unit, "Implausible saved time (was the clock stepped?): {implausible}");
        }
        Some(saved)
    }

    /// A unit's recovery state changed: it goes into the next save.
    pub(super) fn changed(&mut self, unit: &str) {
        self.changed.insert(unit.to_owned());
        self.save_soon();
    }

    /// Takes every unit into the next save (a reload).
    pub(super) fn all_changed(&mut self) {
        self.all = true;
        self.save_soon();
    }

    /// A recovery event was logged: its unit goes into the next save, and into
    /// a change line at the end of this drain if a restarted medic must find it.
    pub(super) fn logged(&mut self, event: &RecoveryEvent) {
        self.changed(&event.service);
        self.urgent |= event.notice.persist == Persist::AtOnce;
    }

    /// The alert lines and outbox records appended so far (`marks`): what
    /// the state store writes from now on lands after them.
    pub(super) fn follow(&mut self, marks: Vec<Mark>) {
        self.records.retain(|m| !m.finished());
        for mark in &marks {
            Mark::merge(&mut self.records, mark);
        }
    }

    /// A storm began or ended: a restarted medic must find it at once, or it would alert again.
    pub(super) fn storm_turned(&mut self) {
        self.storm_turned = true;
        self.urgent = true;
    }

    /// Writes what changed as soon as `SAVE_EVERY` allows.
    fn save_soon(&mut self) {
        let at = (self.saved + SAVE_EVERY).max(Instant::now());
        self.save_by.get_or_insert(at);
    }

    /// When what changed is next due at a writer.
    pub(super) fn save_by(&self) -> Option<Instant> {
        self.save_by
    }

    /// Holds the drain's restarts and rollbacks (`jobs`) until the state that
    /// says they run is on disk: a change line of the units that changed, or
    /// (at start and after a reload, when every unit is taken into the store)
    /// a whole save. A drain without jobs writes a change line only when a
    /// logged event or a storm asked for one.
    pub(super) fn persist(&mut self, jobs: Vec<Action>, sup: &mut Supervisor) {
        for job in &jobs {
            if let Action::Launch(job) = job {
                self.changed.insert(job.unit.clone());
            }
        }
        if jobs.is_empty() && !std::mem::take(&mut self.urgent) {
            return;
        }
        let persisted = self.persist_now(sup);
        if !jobs.is_empty() {
            // A restart waits for this line: no grouping with later ones.
            self.changes.awaited();
        }
        self.after_save
            .extend(jobs.into_iter().map(|job| (persisted, job)));
    }

    /// Puts what changed on disk at once, without a whole save: the changed
    /// units go into a change line. When every unit is to be taken, a whole
    /// save instead.
    fn persist_now(&mut self, sup: &mut Supervisor) -> Persisted {
        if self.all {
            self.saver.urgent();
            return Persisted::Save(self.checkpoint(sup));
        }
        // Only a storm that began or ended: one that took members (10,000
        // names) waits for the next line within `SAVE_EVERY`, not every drain.
        let storm = std::mem::take(&mut self.storm_turned);
        self.append_line(sup, storm)
    }

    /// What changed, put on disk when `save_by` came: a change line of the
    /// changed units, or a checkpoint when every unit is due or the lines
    /// since the last one outweigh it.
    pub(super) fn save(&mut self, sup: &mut Supervisor) {
        if self.all || self.checkpoint_due() {
            self.checkpoint(sup);
            return;
        }
        self.save_by = None;
        self.saved = Instant::now();
        let storm = self.storm_moved(sup);
        if !self.changed.is_empty() || storm {
            self.append_line(sup, storm);
        }
    }

    /// Whether the storm began, ended or took members since the last line
    /// or checkpoint (then the next line carries it, as it is now).
    fn storm_moved(&mut self, sup: &mut Supervisor) -> bool {
        std::mem::take(&mut self.storm_turned) | sup.take_storm_changed()
    }

    /// Whether the change lines appended since the last checkpoint weigh at
    /// least `CHANGES_MAX_SIZE` and the checkpoint itself.
    fn checkpoint_due(&self) -> bool {
        let lines = self.changes.appended_bytes() - self.lines_at_checkpoint;
        lines >= CHANGES_MAX_SIZE.max(self.saver.size())
    }

    /// Appends the changed units (and the storm, when `storm`) as a change
    /// line; when its buffer is full, a whole save instead.
    fn append_line(&mut self, sup: &mut Supervisor, storm: bool) -> Persisted {
        // Wall times read now, not derived from the start: the monotonic clock
        // stops while a laptop sleeps and ignores a stepped clock.
        let clock = &WallClock::now();
        let changed: Vec<_> = std::mem::take(&mut self.changed)
            .into_iter()
            .map(|name| {
                let snapshot = sup.unit_snapshot(&name);
                (name, snapshot)
            })
            .collect();
        let turned = storm.then(|| {
            self.store.set_storm(sup.storm().saved(), clock);
            self.store.file.storm.clone().unwrap_or_default()
        });
        let line = self
            .store
            .change(changed, sup.next_incident(), turned, clock);
        match self.changes.try_append_after(&line, &self.records) {
            Some(number) => {
                if self.checkpoint_due() {
                    self.save_soon();
                }
                Persisted::Change(number)
            }
            // The line's buffer is full (the disk cannot keep up): what it
            // held goes into a whole save, which the jobs wait for instead.
            None => {
                self.saver.urgent();
                Persisted::Save(self.checkpoint(sup))
            }
        }
    }

    /// A checkpoint: takes the changed units into the state store and hands
    /// the whole of it to its writer; returns the save's number (see
    /// [`Saver::finished`]). Wall times are read now (see `append_line`).
    fn checkpoint(&mut self, sup: &mut Supervisor) -> u64 {
        let clock = &WallClock::now();
        self.save_by = None;
        self.saved = Instant::now();
        // Every line appended so far is in it (its `seq`).
        self.lines_at_checkpoint = self.changes.appended_bytes();
        if std::mem::take(&mut self.all) {
            self.store
                .update(sup.snapshot(), sup.next_incident(), clock);
            self.changed.clear();
        }
        for name in std::mem::take(&mut self.changed) {
            let snapshot = sup.unit_snapshot(&name);
            self.store.update_unit(&name, snapshot, clock);
        }
        self.store.set_next_incident(sup.next_incident());
        if self.storm_moved(sup) {
            self.store.set_storm(sup.storm().saved(), clock);
        }
        self.saver.save_after(self.store.shared(), &self.records)
    }

    /// Resolves when a writer has finished a save or a change line (then
    /// `ready` may have jobs); never, once both writers are gone.
    pub(super) async fn written(&mut self) {
        tokio::select! {
            Ok(()) = self.written.changed() => {}
            Ok(()) = self.changes_written.changed() => {}
            else => std::future::pending().await,
        }
    }

    /// The jobs still waiting for their state to reach the disk, taken out:
    /// medic stops, and they never start.
    pub(super) fn unstarted(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.after_save)
            .into_iter()
            .map(|(_, job)| job)
            .collect()
    }

    /// The restarts and rollbacks whose state the writers have put on disk
    /// (or failed to: a full disk must not stop recovery).
    pub(super) fn ready(&mut self) -> Vec<Action> {
        let saved = *self.written.borrow_and_update();
        let changes = *self.changes_written.borrow_and_update();
        let (ready, waiting) = std::mem::take(&mut self.after_save)
            .into_iter()
            .partition::<Vec<_>, _>(|(persisted, _)| persisted.done(saved, changes));
        self.after_save = waiting;
        ready.into_iter().map(|(_, job)| job).collect()
    }

    /// Hands the availability history to its writer at most once a minute, or now when `force`d.
    pub(super) fn save_history(&mut self, sup: &Supervisor, now: std::time::Instant, force: bool) {
        if !force && self.history_saved.elapsed() < HISTORY_EVERY {
            return;
        }
        self.history_saved = Instant::now();
        let file = self
            .history
            .snapshot(sup, now, WallClock::now().to_wall(now));
        self.history_saver.save(file);
    }

    /// Each file this room writes and whether it is writable.
    pub(super) fn healths(&self) -> [&FileHealth; 3] {
        [
            self.saver.health().as_ref(),
            self.changes.health().as_ref(),
            self.history_saver.health().as_ref(),
        ]
    }

    /// Saves everything once more and lets the writers finish what they hold
    /// and stop (shutdown; the tracker waits for them).
    pub(super) fn close(&mut self, sup: &mut Supervisor, now: std::time::Instant) {
        self.all = true;
        self.checkpoint(sup);
        self.save_history(sup, now, true);
        self.saver.close();
        self.changes.close();
        self.history_saver.close();
    }
}

#[cfg(test)]
mod tests {
    use medic_core::EventKind;
    use medic_core::policy::Policy;

    use super::*;

    /// A durability room in a fresh state_dir, with a core that watches `web`.
    struct World {
        dir: tempfile::TempDir,
        tracker: TaskTracker,
        durability: Durability,
        sup: Supervisor,
    }

    impl World {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("a temp dir");
            let tracker = TaskTracker::new();
            let durability =
                Durability::open(dir.path(), &tracker).expect("an empty state_dir opens");
            let mut sup = Supervisor::new("t", 1);
            sup.add_unit(crate::clock::now(), "web", Policy::default());
            Self {
                dir,
                tracker,
                durability,
                sup,
            }
        }

        /// A whole save: from then on, what changes goes into change lines.
        fn save(&mut self) {
            self.durability.save(&mut self.sup);
        }

        fn persist(&mut self, jobs: Vec<Action>) {
            self.durability.persist(jobs, &mut self.sup);
        }

        /// Waits (with a deadline) until the writers release a job, and returns them.
        async fn released(&mut self) -> Vec<Action> {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let ready = self.durability.ready();
                if !ready.is_empty() {
                    return ready;
                }
                tokio::time::timeout_at(deadline, self.durability.written())
                    .await
                    .expect("the writer reports within 10 s");
            }
        }

        /// Waits (with a deadline) until the writers finished `saves` whole
        /// saves and `lines` change lines.
        async fn settled(&mut self, saves: u64, lines: u64) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while *self.durability.written.borrow() < saves
                || *self.durability.changes_written.borrow() < lines
            {
                tokio::time::timeout_at(deadline, self.durability.written())
                    .await
                    .expect("the writers report within 10 s");
            }
        }

        fn state(&self) -> String {
            std::fs::read_to_string(self.dir.path().join("state.json")).unwrap_or_default()
        }

        fn changes(&self) -> String {
            let path = crate::store::changes_path(self.dir.path());
            std::fs::read_to_string(path).unwrap_or_default()
        }

        async fn close(mut self) -> tempfile::TempDir {
            let now = crate::clock::now();
            self.durability.close(&mut self.sup, now);
            self.tracker.close();
            self.tracker.wait().await;
            self.dir
        }
    }

    /// A recovery event about `web` as the core stamps it.
    fn event(kind: EventKind) -> RecoveryEvent {
        RecoveryEvent {
            service: "web".to_owned(),
            kind,
            incident: None,
            state: "healthy",
            attempt: None,
            message: String::new(),
            evidence: Default::default(),
            notice: medic_core::notice::Notice::of(kind),
        }
    }

    fn restart(unit: &str) -> Action {
        Action::Launch(medic_core::Job {
            id: medic_core::JobId(1),
            unit: unit.to_owned(),
            incident: "t-1".to_owned(),
            step: medic_core::Step::Restart(1),
            recreate: false,
            resumed: false,
            timeout: std::time::Duration::from_secs(300),
        })
    }

    #[tokio::test]
    async fn at_start_a_job_waits_for_a_whole_save() {
        let mut world = World::new();
        world.persist(vec![restart("web")]);
        assert_eq!(world.released().await, [restart("web")]);
        assert!(world.dir.path().join("state.json").exists());
        assert_eq!(
            world.changes(),
            "",
            "no change line while every unit is due"
        );
        world.close().await;
    }

    #[tokio::test]
    async fn a_job_waits_for_the_change_line_that_records_it() {
        let mut world = World::new();
        world.save();
        world.persist(vec![restart("web")]);
        assert_eq!(world.released().await, [restart("web")]);
        let changes = world.changes();
        assert_eq!(changes.lines().count(), 1, "{changes}");
        assert!(changes.contains("\"web\""), "{changes}");
        let dir = world.close().await;
        let store = Store::open(dir.path(), jiff::Timestamp::now()).expect("the store reopens");
        assert!(store.file.units.contains_key("web"));
    }

    #[tokio::test]
    async fn only_an_event_a_restart_must_find_writes_a_line_at_once() {
        let mut world = World::new();
        world.save();
        world.durability.logged(&event(EventKind::Healthy));
        world.persist(Vec::new());
        world.durability.logged(&event(EventKind::Failing));
        world.persist(Vec::new());
        world.persist(Vec::new());
        world.durability.storm_turned();
        world.persist(Vec::new());
        let dir = world.close().await;
        let changes = std::fs::read_to_string(crate::store::changes_path(dir.path()))
            .expect("change lines were written");
        assert_eq!(
            changes.lines().count(),
            2,
            "failing, then the storm: {changes}"
        );
    }

    #[test]
    fn a_save_or_a_line_is_done_once_its_writer_reached_it() {
        assert!(Persisted::Save(3).done(3, 0));
        assert!(!Persisted::Save(4).done(3, 9));
        assert!(Persisted::Change(2).done(0, 2));
        assert!(!Persisted::Change(3).done(9, 2));
    }

    /// After the checkpoint at start, what changes goes into change lines
    /// (one per `SAVE_EVERY`, none when nothing changed); `state.json` is
    /// written again only at shutdown, and the two load back together.
    #[tokio::test]
    async fn a_change_goes_into_a_line_not_a_whole_save() {
        let mut world = World::new();
        world.save();
        world.settled(1, 0).await;
        assert!(world.state().starts_with("{\"version\":1,\"seq\":0,"));
        world.durability.changed("web");
        assert!(world.durability.save_by().is_some());
        world.save();
        world.settled(1, 1).await;
        world.save();
        assert_eq!(world.durability.save_by(), None);
        let changes = world.changes();
        assert_eq!(changes.lines().count(), 1, "{changes}");
        assert!(changes.starts_with("{\"seq\":1,"), "{changes}");
        assert!(world.state().starts_with("{\"version\":1,\"seq\":0,"));
        let dir = world.close().await;
        let state = std::fs::read_to_string(dir.path().join("state.json")).unwrap();
        assert!(state.starts_with("{\"version\":1,\"seq\":1,"), "{state}");
        let store = Store::open(dir.path(), jiff::Timestamp::now()).expect("the store reopens");
        assert_eq!(store.file.seq, 1);
        assert!(store.file.units.contains_key("web"));
    }

    /// Once the lines since the checkpoint outweigh it (and 1 MiB), the next
    /// save is a checkpoint, and the next line's compaction drops what it includes.
    #[tokio::test]
    async fn a_checkpoint_follows_once_the_lines_outweigh_it() {
        let mut world = World::new();
        let now = crate::clock::now();
        let names: Vec<String> = (0..3000).map(|i| format!("unit-number-{i:04}")).collect();
        for name in &names {
            world.sup.add_unit(now, name, Policy::default());
        }
        world.save();
        world.settled(1, 0).await;
        let checkpoint = world.state().len() as u64;
        let mut lines = 0;
        while !world.durability.checkpoint_due() {
            for name in &names {
                world.durability.changed(name);
            }
            world.save();
            lines += 1;
        }
        world.settled(1, lines).await;
        let size = world.changes().len() as u64;
        assert!(size >= CHANGES_MAX_SIZE.max(checkpoint), "{size}");
        assert!(world.durability.save_by().is_some(), "a checkpoint is due");
        world.save();
        world.settled(2, lines).await;
        let head = format!("{{\"version\":1,\"seq\":{lines},");
        assert!(world.state().starts_with(&head));
        world.durability.changed("web");
        world.save();
        world.settled(2, lines + 1).await;
        let changes = world.changes();
        assert_eq!(
            changes.lines().count(),
            1,
            "compacted to the line after the checkpoint"
        );
        let dir = world.close().await;
        let store = Store::open(dir.path(), jiff::Timestamp::now()).expect("the store reopens");
        assert_eq!(store.file.units.len(), names.len() + 1);
    }

    /// A new last known good spec reaches the disk in the unit's next change
    /// line; the same spec again (a recovery to what ran) writes nothing.
    #[tokio::test]
    async fn a_new_spec_goes_into_a_line_and_the_same_one_costs_nothing() {
        let mut world = World::new();
        world.save();
        world.settled(1, 0).await;
        let spec = serde_json::json!({"image": "sha256:1"});
        world.durability.set_last_known_good("web", spec.clone());
        world.save();
        world.settled(1, 1).await;
        assert!(world.changes().contains("sha256:1"));
        world.durability.set_last_known_good("web", spec.clone());
        assert_eq!(world.durability.save_by(), None);
        world.save();
        assert_eq!(world.changes().lines().count(), 1);
        let store =
            Store::open(world.dir.path(), jiff::Timestamp::now()).expect("the store reopens");
        assert_eq!(
            store.last_known_good("web"),
            Some(&spec),
            "from the line, as after a kill -9"
        );
        world.close().await;
    }
}
