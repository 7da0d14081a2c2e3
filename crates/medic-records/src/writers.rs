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
