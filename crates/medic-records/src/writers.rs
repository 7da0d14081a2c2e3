//! Where the writers of medic's files run. On a host: one blocking task per
//! file on the daemon's tracker, so the loop never waits for the disk. In a
//! deterministic simulation (`medic-sim`), set for the simulating thread with
//! [`write_in_step`]: each writer runs on a thread of its own and every
//! append or save waits until it is finished, so what is on disk, and when
//! the loop learns it, never depends on how threads were scheduled.

use std::cell::Cell;

thread_local! {
    static IN_STEP: Cell<bool> = const { Cell::new(false) };
}

/// Writers started on this thread from now on run in step with their users
/// (a simulation) or off them (`false`, the default).
pub fn write_in_step(on: bool) {
    IN_STEP.set(on);
}

/// Whether writers started on this thread now run in step with their users.
pub fn in_step() -> bool {
    IN_STEP.get()
}

/// Starts a writer's blocking loop: on `tracker`'s blocking pool, or on a
/// thread of its own in step mode (a blocking task would stop a paused
/// clock from advancing).
pub fn spawn(tracker: &tokio_util::task::TaskTracker, run: impl FnOnce() + Send + 'static) {
    if in_step() {
        std::thread::spawn(run);
    } else {
        tracker.spawn_blocking(run);
    }
}

/// Waits until `finished` reaches `number` (a writer in step mode reports
/// it before its user goes on).
pub fn wait_for(finished: &tokio::sync::watch::Sender<u64>, number: u64) {
    let mut seen = finished.subscribe();
    let mut spins = 0_u32;
    while *seen.borrow_and_update() < number {
        // A write to a tmpfs takes microseconds: yield first, then sleep.
        spins += 1;
        if spins < 200 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::journal::{Journal, Limit};

    /// In step, an append returns with its line on disk and the line's
    /// number reported finished: the loop learns it at the same point of every run.
    #[tokio::test(start_paused = true)]
    async fn in_step_an_append_returns_once_its_line_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let tracker = tokio_util::task::TaskTracker::new();
        super::write_in_step(true);
        let journal = Journal::start(
            &path,
            "log",
            Limit::Rotate {
                max_size: 1 << 20,
                keep: 1,
            },
            &tracker,
        );
        super::write_in_step(false);
        let finished = journal.finished();
        for n in 1..=3_u64 {
            assert_eq!(journal.append(&serde_json::json!({ "n": n })), n);
            assert_eq!(*finished.borrow(), n);
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(text.lines().count() as u64, n);
        }
    }
}
