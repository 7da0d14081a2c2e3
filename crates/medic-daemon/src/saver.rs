//! Saves whole-file snapshots (`state.json`, `availability.json`) off the
//! supervisor loop. The loop hands over the newest snapshot and goes on; one
//! blocking task per file writes it as compact JSON through a buffer,
//! atomically (`files::replace`). Saves coalesce: at most one write of a file
//! in flight, at most one per `min_gap`, and a snapshot handed over while one
//! waits replaces it (the newest wins). A slow or full disk delays
//! persistence, never the loop; a failed write is retried with the newest
//! snapshot and reported through `FileHealth`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use medic_records::files::{self, FileHealth};
use medic_records::journal::Mark;
use serde::Serialize;

/// How long a failed write waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The loop's handle on one file's writer.
#[derive(Debug)]
pub struct Saver<T> {
    shared: Arc<Shared<T>>,
    /// Every save waits until it is written (see `medic_records::writers`).
    in_step: bool,
}

#[derive(Debug)]
struct Shared<T> {
    path: PathBuf,
    min_gap: Duration,
    slot: Mutex<Slot<T>>,
    wake: Condvar,
    health: Arc<FileHealth>,
    /// The number of the newest save handed over that the writer has finished
    /// (written, or failed and kept for a retry).
    done: tokio::sync::watch::Sender<u64>,
    /// The size of the file as last written, in bytes.
    size: AtomicU64,
}

#[derive(Debug)]
struct Slot<T> {
    next: Option<T>,
    /// Journal lines the next snapshot must follow onto the disk.
    after: Vec<Mark>,
    closed: bool,
    /// Snapshots written since start, for tests and metrics.
    written: u64,
    /// The number of the newest save handed over.
    handed: u64,
    /// Write the next save without waiting for `min_gap`.
    urgent: bool,
}

impl<T: Serialize + Send + 'static> Saver<T> {
    /// Starts the writer of `path` on `tracker`'s blocking pool.
    pub fn start(
        path: PathBuf,
        what: &'static str,
        min_gap: Duration,
        tracker: &tokio_util::task::TaskTracker,
    ) -> Self {
        let in_step = medic_records::writers::in_step();
        let shared = Arc::new(Shared {
            path,
            // In step, the loop's own deadline is the only gap (the writer's
            // clock is the host's).
            min_gap: if in_step { Duration::ZERO } else { min_gap },
            slot: Mutex::new(Slot {
                next: None,
                after: Vec::new(),
                closed: false,
                written: 0,
                handed: 0,
                urgent: false,
            }),
            wake: Condvar::new(),
            health: Arc::new(FileHealth::new(what)),
            done: tokio::sync::watch::Sender::new(0),
            size: AtomicU64::new(0),
        });
        let writer = shared.clone();
        medic_records::writers::spawn(tracker, move || writer.run());
        Self { shared, in_step }
    }

    /// Hands over the newest snapshot; never waits for the disk.
    pub fn save(&self, snapshot: T) -> u64 {
        self.save_after(snapshot, &[])
    }

    /// Hands over the newest snapshot, to be written only once the journal
    /// lines `after` names are finished (the writer waits, not the caller).
    pub fn save_after(&self, snapshot: T, after: &[Mark]) -> u64 {
        let mut slot = self.shared.lock();
        slot.next = Some(snapshot);
        for mark in after {
            Mark::merge(&mut slot.after, mark);
        }
        slot.handed += 1;
        self.shared.wake.notify_one();
        let number = slot.handed;
        drop(slot);
        if self.in_step {
            medic_records::writers::wait_for(&self.shared.done, number);
        }
        number
    }

    /// The next save is written at once, not after `min_gap`: something waits for it.
    pub fn urgent(&self) {
        self.shared.lock().urgent = true;
    }

    /// Follows the number of the newest save the writer has finished (the number [`Saver::save`] returned).
    pub fn finished(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.done.subscribe()
    }

    /// Writes what is pending at once, then stops the writer.
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
    }

    /// Whether the file is writable.
    pub fn health(&self) -> &Arc<FileHealth> {
        &self.shared.health
    }

    /// The size of the file as last written (0 before the first write), for
    /// the loop to weigh a rewrite without touching the disk.
    pub fn size(&self) -> u64 {
        self.shared.size.load(Ordering::Relaxed)
    }

    /// Snapshots written since start.
    #[cfg(test)]
    fn written(&self) -> u64 {
        self.shared.lock().written
    }
}

impl<T> Drop for Saver<T> {
    /// No writer outlives its user (an early error return, a test).
    fn drop(&mut self) {
        self.shared
            .slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .closed = true;
        self.shared.wake.notify_one();
    }
}

impl<T: Serialize> Shared<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot<T>> {
        // A writer that panicked mid-write left a slot that is still consistent.
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self) {
        let mut last: Option<Instant> = None;
        loop {
            let mut slot = self.lock();
            // Wait for a snapshot, then for the gap since the last write to pass;
            // snapshots arriving meanwhile replace the one waiting.
            loop {
                let due = last.map(|at| at + self.min_gap);
                let now = Instant::now();
                match (&slot.next, slot.closed) {
                    (None, true) => return,
                    (Some(_), true) => break,
                    (Some(_), false) if slot.urgent || due.is_none_or(|due| due <= now) => break,
                    (Some(_), false) => {
                        let wait = due.map_or(self.min_gap, |due| due - now);
                        slot = self
                            .wake
                            .wait_timeout(slot, wait)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                    (None, false) => {
                        slot = self.wake.wait(slot).unwrap_or_else(|p| p.into_inner());
                    }
                }
            }
            let Some(snapshot) = slot.next.take() else {
                continue;
            };
            let (closed, number) = (slot.closed, slot.handed);
            slot.urgent = false;
            let after = std::mem::take(&mut slot.after);
            drop(slot);
            for mark in after {
                mark.wait();
            }
            last = Some(Instant::now());
            let result = files::replace(&self.path, |out| {
                serde_json::to_writer(&mut *out, &snapshot)?;
                out.write_all(b"\n")?;
                Ok(())
            });
            if result.is_ok() {
                // Read here, not under the slot's lock, which the loop takes.
                let size = std::fs::metadata(&self.path).map_or(0, |m| m.len());
                self.size.store(size, Ordering::Relaxed);
            }
            let mut slot = self.lock();
            // Finished either way: a full disk must not hold back what waits for it.
            self.done.send_replace(number);
            match result {
                Ok(()) => {
                    slot.written += 1;
                    self.health.ok();
                }
                Err(error) => {
                    self.health.failed(&error);
                    if closed {
                        return;
                    }
                    // Retry with the newest snapshot: this one unless a newer came.
                    slot.next.get_or_insert(snapshot);
                    last = Some(Instant::now() + RETRY_AFTER.saturating_sub(self.min_gap));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct State {
        n: u32,
    }

    /// A saver of `state.json` in a fresh directory whose writes are an hour apart.
    fn hourly() -> (
        tempfile::TempDir,
        PathBuf,
        tokio_util::task::TaskTracker,
        Saver<State>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let tracker = tokio_util::task::TaskTracker::new();
        let saver = Saver::start(
            path.clone(),
            "state store",
            Duration::from_secs(3600),
            &tracker,
        );
        (dir, path, tracker, saver)
    }

    #[tokio::test]
    async fn a_burst_of_saves_is_one_write_of_the_newest() {
        let (_dir, path, tracker, saver) = hourly();
        saver.save(State { n: 0 });
        // The first write goes at once; everything after it waits out the gap.
        let deadline = Instant::now() + Duration::from_secs(10);
        while saver.written() < 1 {
            assert!(Instant::now() < deadline, "first save never written");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for n in 1..=1000 {
            saver.save(State { n });
        }
        assert_eq!(saver.written(), 1, "the burst waits for the gap");
        saver.close();
        tracker.close();
        tracker.wait().await;
        assert_eq!(saver.written(), 2, "the burst became one write");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"n\":1000}\n");
    }

    #[tokio::test]
    async fn an_urgent_save_skips_the_gap_and_reports_its_number() {
        let (_dir, path, tracker, saver) = hourly();
        let mut finished = saver.finished();
        let first = saver.save(State { n: 0 });
        finished.wait_for(|n| *n >= first).await.unwrap();
        // Inside the hour-long gap: only an urgent save is written now.
        saver.urgent();
        let second = saver.save(State { n: 1 });
        assert_eq!(second, first + 1);
        let done =
            tokio::time::timeout(Duration::from_secs(10), finished.wait_for(|n| *n >= second));
        assert!(done.await.is_ok(), "the urgent save waited for the gap");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"n\":1}\n");
        saver.close();
        tracker.close();
        tracker.wait().await;
    }

    /// A snapshot whose encoding dies half-way, as a crash mid-write would.
    struct Torn;

    impl Serialize for Torn {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::{Error, SerializeMap};
            let mut map = s.serialize_map(None)?;
            map.serialize_entry("n", &1)?;
            Err(S::Error::custom("killed"))
        }
    }

    #[tokio::test]
    async fn a_write_that_dies_half_way_leaves_the_previous_complete_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        medic_records::files::replace(&path, |out| Ok(out.write_all(b"{\"n\":0}\n")?)).unwrap();
        let tracker = tokio_util::task::TaskTracker::new();
        let saver = Saver::start(path.clone(), "state store", Duration::ZERO, &tracker);
        saver.save(Torn);
        saver.close();
        tracker.close();
        tracker.wait().await;
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"n\":0}\n");
        assert_eq!(
            saver.health().problem().unwrap(),
            "state store not writable: killed"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
