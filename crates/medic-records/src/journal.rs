//! The append-only JSON Lines files: the recovery log and the critical alerts
//! file people read (their line formats live here), and the alert outbox.
//! A writer task per file appends each batch with one `write` on an O_APPEND
//! file, so a crash never corrupts earlier lines (readers skip a torn last
//! line), and fsyncs once per batch, so a power loss loses at most that batch
//! and 10,000 units changing at once do not cost 10,000 fsyncs. Lines wait in
//! memory only until the writer takes them (it wakes at once), so a kill -9
//! loses at most the lines of that moment.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use medic_core::{Alert, Evidence, RecoveryEvent};
use serde::{Deserialize, Serialize};

use crate::files::{self, FileHealth};
pub use crate::journal_file::Limit;
use crate::journal_file::Output;

/// One line of `recovery.jsonl`: the documented contract of the recovery log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryLine {
    /// When medic recorded it (RFC 3339).
    pub ts: Timestamp,
    /// The unit.
    pub service: String,
    /// What happened: `failing`, `restart`, `recovered`, `escalated`, …
    pub event: String,
    /// The state after the event.
    pub state: String,
    /// The incident id, when part of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// The restart attempt, for restart events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// One human line.
    pub message: String,
    /// The facts behind it.
    #[serde(default, skip_serializing_if = "Evidence::is_empty")]
    pub evidence: Evidence,
}

impl RecoveryLine {
    /// Stamps a core event with the wall-clock time.
    pub fn new(ts: Timestamp, event: RecoveryEvent) -> Self {
        Self {
            ts,
            service: event.service,
            event: event.kind.as_str().to_owned(),
            state: event.state.to_owned(),
            incident: event.incident,
            attempt: event.attempt,
            message: event.message,
            evidence: event.evidence,
        }
    }
}

/// One line of `alerts/critical.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertLine {
    /// Unique id of this alert line.
    pub id: String,
    /// When medic raised it (RFC 3339).
    pub ts: Timestamp,
    /// The unit.
    pub service: String,
    /// `critical`, `warning` or `info`.
    pub severity: String,
    /// `escalated`, `rolled_back`, `resolved`, …
    pub kind: String,
    /// The incident id, when part of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// One human line.
    pub message: String,
    /// True on the line that ends an alerted incident.
    #[serde(default)]
    pub resolved: bool,
    /// The facts behind it.
    #[serde(default, skip_serializing_if = "Evidence::is_empty")]
    pub evidence: Evidence,
}

impl AlertLine {
    /// Stamps a core alert with the wall-clock time and an id.
    pub fn new(ts: Timestamp, id: String, alert: Alert) -> Self {
        Self {
            id,
            ts,
            service: alert.service,
            severity: alert.severity.as_str().to_owned(),
            kind: alert.kind.to_owned(),
            incident: alert.incident,
            message: alert.message,
            resolved: alert.resolved,
            evidence: alert.evidence,
        }
    }
}

/// Lines handed to a journal but not yet written, at most: beyond it the
/// oldest are dropped (and counted) while the disk refuses them.
const MAX_BUFFERED: usize = 16 * 1024 * 1024;
/// How long a failed write waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// After an fsync, the next waits at least this long unless something awaits
/// a line (a restart, another file's line that must follow): lines that come
/// meanwhile are written at once (a kill -9 keeps them) and fsynced together.
/// In a storm, each fsync would write the file's last 4 KiB page again; this
/// bounds that to 10 a second, and what a power cut can lose to 0.1 s of lines.
const SYNC_GAP: Duration = Duration::from_millis(100);

/// What a full write buffer does with one more line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Full {
    /// Drops the oldest lines waiting.
    DropOldest,
    /// Refuses the new line.
    Refuse,
}

/// An append-only JSON Lines file written off the supervisor loop: `append`
/// encodes a line into a bounded buffer and returns; one blocking task per
/// file writes what is buffered in one `write`, fsyncs once per batch,
/// rotates or compacts by size, reopens the file when something else renamed
/// it away, and on a failed write (a full disk) keeps the lines and retries,
/// reporting through `FileHealth`. Cheap to clone: clones share the writer.
#[derive(Debug, Clone)]
pub struct Journal {
    shared: Arc<Shared>,
    /// Every append waits until it is written (see `writers`).
    in_step: bool,
    /// Closes the writer when the last handle goes, so no writer outlives its users.
    _last: Arc<CloseOnDrop>,
}

#[derive(Debug)]
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    limit: Limit,
    queue: Mutex<Queue>,
    wake: Condvar,
    health: Arc<FileHealth>,
    /// How many lines the writer has finished: written and fsynced, dropped,
    /// or tried and refused (kept for a retry: a full disk must not hold up
    /// what waits for a line, see [`Journal::finished`]).
    finished: tokio::sync::watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Queue {
    lines: VecDeque<Vec<u8>>,
    bytes: usize,
    /// Lines of other journals that the queued lines must follow onto the disk.
    after: Vec<Mark>,
    closed: bool,
    /// Lines appended since start (dropped ones included).
    appended: u64,
    /// Their bytes.
    appended_bytes: u64,
    /// Lines written and fsynced (or dropped) since start.
    done: u64,
    /// Lines written (maybe not yet fsynced), dropped or refused since start:
    /// what a kill -9 keeps, for another writer's line to follow (`Mark::wait_written`).
    written: u64,
    /// The newest line something awaits: fsynced without waiting out the gap.
    awaited: u64,
    /// The shortest time between two fsyncs nothing awaited (`SYNC_GAP`).
    sync_gap: Duration,
}

impl Journal {
    /// Opens `path` (creating it and its parents, private) and starts its
    /// writer on `tracker`'s blocking pool.
    pub fn start(
        path: &Path,
        what: &'static str,
        limit: Limit,
        tracker: &tokio_util::task::TaskTracker,
    ) -> Self {
        let health = Arc::new(FileHealth::new(what));
        // A file that cannot be opened (read-only state_dir) is reported at
        // once; the writer opens it with the first line it can write.
        let file = files::open_append(path)
            .inspect_err(|error| health.failed(error))
            .ok();
        let shared = Arc::new(Shared {
            path: path.to_owned(),
            limit,
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            health,
            finished: tokio::sync::watch::Sender::new(0),
        });
        // In step, every append waits for its fsync: no gap (see `writers`).
        if !crate::writers::in_step() {
            shared.lock().sync_gap = SYNC_GAP;
        }
        let writer = shared.clone();
        crate::writers::spawn(tracker, move || writer.run(file));
        Self {
            in_step: crate::writers::in_step(),
            _last: Arc::new(CloseOnDrop(shared.clone())),
            shared,
        }
    }

    /// Appends one value as one line; never waits for the disk. Returns the
    /// line's number (see [`Journal::finished`]).
    pub fn append(&self, value: &impl Serialize) -> u64 {
        self.append_after(value, &[])
    }

    /// Appends one value as one line that reaches the disk only after the
    /// lines `after` names (of other journals) are finished: the state that
    /// says an alert was sent never lands before the alert. The writer waits;
    /// this never does. A full buffer drops its oldest lines (counted in
    /// `FileHealth`): for logs, whose newest lines matter most.
    pub fn append_after(&self, value: &impl Serialize, after: &[Mark]) -> u64 {
        let appended = self.push(value, after, Full::DropOldest);
        appended.unwrap_or_else(|| self.shared.lock().appended)
    }

    /// Like [`Journal::append_after`], but a full buffer refuses the line
    /// (None, counted in `FileHealth` and logged) and keeps every line it
    /// has: for lines something waits for, which must never count as
    /// written when they were not.
    pub fn try_append_after(&self, value: &impl Serialize, after: &[Mark]) -> Option<u64> {
        self.push(value, after, Full::Refuse)
    }

    fn push(&self, value: &impl Serialize, after: &[Mark], full: Full) -> Option<u64> {
        let mut line = match serde_json::to_vec(value) {
            Ok(line) => line,
            Err(error) => {
                tracing::error!(%error, path = %self.shared.path.display(), "Cannot encode a journal line");
                return None;
            }
        };
        line.push(b'\n');
        let mut queue = self.shared.lock();
        if full == Full::Refuse && queue.bytes + line.len() > MAX_BUFFERED {
            self.shared.health.dropped(1);
            tracing::warn!(path = %self.shared.path.display(), buffered = queue.bytes, "Write buffer full: line refused");
            return None;
        }
        let mut dropped = 0;
        while queue.bytes + line.len() > MAX_BUFFERED {
            let Some(old) = queue.lines.pop_front() else {
                break;
            };
            queue.bytes -= old.len();
            dropped += 1;
        }
        if dropped > 0 {
            self.shared.health.dropped(dropped);
            queue.done += dropped;
            queue.written += dropped;
        }
        queue.appended += 1;
        queue.appended_bytes += line.len() as u64;
        queue.bytes += line.len();
        queue.lines.push_back(line);
        for mark in after {
            Mark::merge(&mut queue.after, mark);
        }
        // All: writers of other journals may wait on this condvar too (`Mark::wait`).
        self.shared.wake.notify_all();
        let number = queue.appended;
        drop(queue);
        if self.in_step {
            crate::writers::wait_for(&self.shared.finished, number);
        }
        Some(number)
    }

    /// The newest line appended so far, for another writer to follow (see
    /// [`Journal::append_after`]).
    pub fn mark(&self) -> Mark {
        Mark {
            upto: self.shared.lock().appended,
            shared: self.shared.clone(),
        }
    }

    /// Something awaits the lines appended so far (a restart waits for its
    /// change line): the writer fsyncs them as soon as they are written,
    /// without waiting out the gap that groups a storm's fsyncs.
    pub fn awaited(&self) {
        let appended = self.shared.lock().appended;
        self.shared.await_line(appended);
    }

    /// The bytes of every line appended since start (dropped ones included):
    /// what its owner has added to the file, to weigh against a checkpoint.
    pub fn appended_bytes(&self) -> u64 {
        self.shared.lock().appended_bytes
    }

    /// The number of the newest line the writer has finished (written, or
    /// tried and refused), for the loop to await without blocking.
    pub fn finished(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.finished.subscribe()
    }

    /// Whether the file is writable.
    pub fn health(&self) -> &Arc<FileHealth> {
        &self.shared.health
    }

    /// Writes what is buffered (one attempt if the disk refuses), then stops the writer.
    pub fn close(&self) {
        self.shared.close();
    }

    /// Waits until everything appended so far is written and fsynced, or `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let target = self.shared.lock().appended;
        self.shared.await_line(target);
        let mut queue = self.shared.lock();
        while queue.done < target {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            queue = self
                .shared
                .wait_at_most(queue, left.min(Duration::from_millis(50)));
        }
        true
    }
}

impl Shared {
    fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
    }

    /// Reports lines up to `upto` finished; the number never goes back.
    fn finish(&self, upto: u64) {
        self.finished.send_if_modified(|n| {
            let newer = upto > *n;
            *n = (*n).max(upto);
            newer
        });
    }

    /// Something waits until line `upto` is fsynced: the writer does not wait out the gap.
    fn await_line(&self, upto: u64) {
        let mut queue = self.lock();
        if upto > queue.awaited {
            queue.awaited = upto;
            self.wake.notify_all();
        }
    }

    /// Waits for a wake-up, or `timeout` at most.
    fn wait_at_most<'a>(
        &self,
        queue: std::sync::MutexGuard<'a, Queue>,
        timeout: Duration,
    ) -> std::sync::MutexGuard<'a, Queue> {
        self.wake
            .wait_timeout(queue, timeout)
            .unwrap_or_else(|p| p.into_inner())
            .0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A writer that panicked left a queue that is still consistent.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The writer: each batch is written as soon as it is taken (one
    /// `write`), and fsynced at once when nothing was fsynced for the gap or
    /// something awaits it, else together with what comes within the gap.
    fn run(&self, file: Option<File>) {
        let mut out = Output::new(self.path.clone(), self.limit, file);
        let mut pending: Vec<u8> = Vec::new();
        let mut batch_lines = 0;
        let mut after: Vec<Mark> = Vec::new();
        // Lines written and not yet fsynced, and the lines of other files they follow.
        let mut unsynced = 0;
        let mut sync_after: Vec<Mark> = Vec::new();
        let mut last_sync: Option<Instant> = None;
        loop {
            let (closed, awaited, gap) = {
                let mut queue = self.lock();
                while queue.lines.is_empty() && pending.is_empty() && !queue.closed {
                    if unsynced > 0 {
                        let due = last_sync.map_or(Instant::now(), |at| at + queue.sync_gap);
                        let left = due.saturating_duration_since(Instant::now());
                        if left.is_zero() || queue.awaited > queue.done {
                            break;
                        }
                        queue = self.wait_at_most(queue, left);
                        continue;
                    }
                    if out.is_open() {
                        queue = self.wake.wait(queue).unwrap_or_else(|p| p.into_inner());
                        continue;
                    }
                    // Never opened (a read-only state_dir at start): try now and
                    // then without a line, so the problem clears when it can.
                    queue = self.wait_at_most(queue, RETRY_AFTER);
                    if queue.lines.is_empty() && !queue.closed {
                        break;
                    }
                }
                let idle = queue.lines.is_empty() && pending.is_empty() && unsynced == 0;
                if idle && queue.closed {
                    return;
                }
                // While a batch is refused, new lines wait in the bounded queue.
                if pending.is_empty() && !queue.lines.is_empty() {
                    after = std::mem::take(&mut queue.after);
                    batch_lines = queue.lines.len() as u64;
                    for line in queue.lines.drain(..) {
                        pending.extend_from_slice(&line);
                    }
                    queue.bytes = 0;
                }
                (queue.closed, queue.awaited > queue.done, queue.sync_gap)
            };
            // A kill -9 keeps what was written: another file's lines that
            // must come first are written first; before the fsync, fsynced.
            for mark in after.drain(..) {
                mark.wait_written();
                Mark::merge(&mut sync_after, &mark);
            }
            #[cfg(debug_assertions)]
            slow_write_fault(&self.path);
            if !pending.is_empty() || !out.is_open() {
                match out.append(&mut pending) {
                    Ok(()) => {
                        self.health.ok();
                        unsynced += std::mem::take(&mut batch_lines);
                        let mut queue = self.lock();
                        queue.written = queue.written.max(queue.done + unsynced);
                        drop(queue);
                        self.wake.notify_all();
                    }
                    Err(error) => {
                        self.health.failed(&error);
                        let tried = {
                            let mut queue = self.lock();
                            queue.written = queue.written.max(queue.done + unsynced + batch_lines);
                            queue.written
                        };
                        self.finish(tried);
                        self.wake.notify_all();
                        if closed {
                            tracing::warn!(lines = pending.iter().filter(|b| **b == b'\n').count(), path = %self.path.display(), "Stopping with lines that could not be written");
                            return;
                        }
                        let queue = self.lock();
                        if !queue.closed {
                            drop(self.wake.wait_timeout(queue, RETRY_AFTER));
                        }
                        continue;
                    }
                }
            }
            let gap_over = last_sync.is_none_or(|at| at.elapsed() >= gap);
            if unsynced > 0 && (closed || awaited || gap_over) {
                for mark in sync_after.drain(..) {
                    mark.wait();
                }
                if let Err(error) = out.sync() {
                    // The lines were written: a kill -9 keeps them, a power cut may not.
                    self.health.failed(&error);
                }
                last_sync = Some(Instant::now());
                let done = {
                    let mut queue = self.lock();
                    queue.done += std::mem::take(&mut unsynced);
                    queue.done
                };
                self.finish(done);
                self.wake.notify_all();
            }
        }
    }
}

/// A line of a journal, by number: what another journal's line must follow
/// onto the disk (see [`Journal::append_after`]).
#[derive(Debug, Clone)]
pub struct Mark {
    shared: Arc<Shared>,
    upto: u64,
}

impl Mark {
    /// Whether the writer has finished the line (fsynced, or tried and refused).
    pub fn finished(&self) -> bool {
        *self.shared.finished.borrow() >= self.upto
    }

    /// Keeps the newest mark of each journal in `marks`.
    pub fn merge(marks: &mut Vec<Mark>, mark: &Mark) {
        match marks
            .iter_mut()
            .find(|m| Arc::ptr_eq(&m.shared, &mark.shared))
        {
            Some(kept) => kept.upto = kept.upto.max(mark.upto),
            None => marks.push(mark.clone()),
        }
    }

    /// Blocks the calling writer (never the loop) until the line is
    /// finished, or its writer has stopped with nothing left to try; its
    /// writer fsyncs it without waiting out its gap.
    pub fn wait(&self) {
        self.shared.await_line(self.upto);
        self.wait_until(|_| self.finished());
    }

    /// Blocks the calling writer until the line is written (a kill -9 keeps
    /// it; it may not be fsynced yet), or its writer has stopped.
    fn wait_written(&self) {
        self.wait_until(|queue| queue.written >= self.upto || self.finished());
    }

    fn wait_until(&self, done: impl Fn(&Queue) -> bool) {
        let mut queue = self.shared.lock();
        loop {
            let stopped = queue.closed && queue.lines.is_empty();
            if done(&queue) || stopped {
                return;
            }
            queue = self.shared.wait_at_most(queue, Duration::from_millis(10));
        }
    }
}

/// Debug builds only, for the e2e tests that kill medic between two files'
/// writes: `MEDIC_TEST_SLOW_WRITES=critical.jsonl:3000` makes the writer of
/// every file with that name wait 3 s before each write.
#[cfg(debug_assertions)]
fn slow_write_fault(path: &Path) {
    let Ok(fault) = std::env::var("MEDIC_TEST_SLOW_WRITES") else {
        return;
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    if let Some((file, ms)) = fault.split_once(':')
        && file == name
        && let Ok(ms) = ms.parse()
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: u32) -> RecoveryLine {
        RecoveryLine {
            ts: Timestamp::UNIX_EPOCH,
            service: "web".into(),
            event: "restart".into(),
            state: "recovering".into(),
            incident: Some("i1".into()),
            attempt: Some(n),
            message: "restart".into(),
            evidence: Evidence::new(),
        }
    }

    fn read(path: &Path) -> Vec<RecoveryLine> {
        crate::lines::read(path).unwrap().values
    }

    #[tokio::test]
    async fn appends_lines_that_parse_back_and_survive_an_outside_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/recovery.jsonl");
        let tracker = tokio_util::task::TaskTracker::new();
        let limit = Limit::Rotate {
            max_size: u64::MAX,
            keep: 1,
        };
        let journal = Journal::start(&path, "recovery log", limit, &tracker);
        journal.append(&line(1));
        assert!(journal.flush(Duration::from_secs(10)));
        std::fs::rename(&path, dir.path().join("logs/elsewhere.jsonl")).unwrap();
        journal.append(&line(2));
        journal.close();
        tracker.close();
        tracker.wait().await;
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"torn\":");
        let lines = crate::lines::parse::<RecoveryLine>(&text);
        assert_eq!(lines.values, vec![line(2)]);
        assert_eq!(lines.bad, []);
    }

    /// While the file cannot be written, lines wait in the bounded buffer:
    /// once it is full, `try_append_after` refuses (and counts) the next
    /// line instead of dropping one that something may be waiting for.
    #[tokio::test]
    async fn a_full_buffer_refuses_a_line_and_keeps_the_ones_it_has() {
        let dir = tempfile::tempdir().unwrap();
        // A file where a directory should be: every open fails.
        std::fs::write(dir.path().join("blocked"), b"").unwrap();
        let path = dir.path().join("blocked/state.changes.jsonl");
        let tracker = tokio_util::task::TaskTracker::new();
        let limit = Limit::Rotate {
            max_size: u64::MAX,
            keep: 1,
        };
        let journal = Journal::start(&path, "state changes", limit, &tracker);
        let big = "x".repeat(1024 * 1024);
        // The writer takes the first line into the batch it retries: from
        // then on, new lines wait in the buffer.
        let mut numbers = vec![journal.try_append_after(&big, &[]).unwrap()];
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !journal.shared.lock().lines.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the writer never took its batch"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        while let Some(number) = journal.try_append_after(&big, &[]) {
            numbers.push(number);
        }
        assert_eq!(numbers, (1..=numbers.len() as u64).collect::<Vec<_>>());
        assert!(numbers.len() >= 15, "{}", numbers.len());
        assert_eq!(journal.health().dropped_total(), 1);
        assert_eq!(
            journal.shared.lock().lines.len(),
            numbers.len() - 1,
            "none dropped: all but the one being retried wait in the buffer"
        );
        journal.close();
        tracker.close();
        tracker.wait().await;
    }

    /// Waits (with a deadline) until a writer reports line `n` finished.
    async fn finished_within(finished: &mut tokio::sync::watch::Receiver<u64>, n: u64) {
        let reached = finished.wait_for(|done| *done >= n);
        tokio::time::timeout(Duration::from_secs(10), reached)
            .await
            .expect("the writer reports within 10 s")
            .expect("the writer is running");
    }

    fn rotate_never() -> Limit {
        Limit::Rotate {
            max_size: u64::MAX,
            keep: 1,
        }
    }

    /// Within the gap after an fsync, lines are written at once (a kill -9
    /// keeps them) and fsynced later, together; lines something awaits are
    /// fsynced without waiting out the gap.
    #[tokio::test]
    async fn lines_within_the_gap_are_written_at_once_and_fsynced_together() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery.jsonl");
        let tracker = tokio_util::task::TaskTracker::new();
        let journal = Journal::start(&path, "recovery log", rotate_never(), &tracker);
        journal.shared.lock().sync_gap = Duration::from_secs(3600);
        let mut finished = journal.finished();
        journal.append(&line(1));
        finished_within(&mut finished, 1).await;
        journal.append(&line(2));
        journal.append(&line(3));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while read(&path).len() < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "lines 2 and 3 never written"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(*finished.borrow(), 1, "written, not yet fsynced");
        journal.awaited();
        finished_within(&mut finished, 3).await;
        journal.close();
        tracker.close();
        tracker.wait().await;
        assert_eq!(read(&path), [line(1), line(2), line(3)]);
    }

    /// A line that must follow another file's line is written once that line
    /// is written, and fsynced once it is fsynced: the other writer fsyncs
    /// it without waiting out its gap.
    #[tokio::test]
    async fn a_line_after_another_files_line_hurries_its_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let tracker = tokio_util::task::TaskTracker::new();
        let alerts = dir.path().join("critical.jsonl");
        let alerts = Journal::start(&alerts, "alerts file", rotate_never(), &tracker);
        alerts.shared.lock().sync_gap = Duration::from_secs(3600);
        let mut alerts_done = alerts.finished();
        alerts.append(&line(1));
        finished_within(&mut alerts_done, 1).await;
        alerts.append(&line(2));
        let changes = dir.path().join("state.changes.jsonl");
        let changes = Journal::start(&changes, "state changes", rotate_never(), &tracker);
        let number = changes.append_after(&line(1), &[alerts.mark()]);
        finished_within(&mut changes.finished(), number).await;
        assert_eq!(*alerts_done.borrow(), 2, "the alert was fsynced first");
        alerts.close();
        changes.close();
        tracker.close();
        tracker.wait().await;
    }

    #[tokio::test]
    async fn rotates_by_size_and_keeps_every_line_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery.jsonl");
        let tracker = tokio_util::task::TaskTracker::new();
        let size = serde_json::to_vec(&line(1)).unwrap().len() as u64 + 1;
        let limit = Limit::Rotate {
            max_size: 3 * size,
            keep: 5,
        };
        let journal = Journal::start(&path, "recovery log", limit, &tracker);
        for n in 1..=10 {
            journal.append(&line(n));
            // One batch per line, as lines come one by one in a quiet daemon.
            assert!(journal.flush(Duration::from_secs(10)));
        }
        journal.close();
        tracker.close();
        tracker.wait().await;
        let files = crate::rotation::files(&path, None);
        assert_eq!(files.len(), 4, "{files:?}");
        let all: Vec<u32> = files
            .iter()
            .flat_map(|f| read(f))
            .filter_map(|l| l.attempt)
            .collect();
        assert_eq!(all, (1..=10).collect::<Vec<_>>());
        assert_eq!(read(&crate::rotation::rotated(&path, 1)).len(), 3);
    }
}
