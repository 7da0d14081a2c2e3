//! Converts between the monotonic instants the core reasons in and the
//! wall-clock timestamps people and files read, and reads the wall clock
//! (`wall_now`): the host's, or a simulated one set for this thread.

use std::cell::Cell;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::time::Instant;

/// The monotonic time now, as the core takes it: read from tokio's clock, so
/// that a test with paused time controls it.
pub fn now() -> std::time::Instant {
    Instant::now().into_std()
}

thread_local! {
    /// A simulated wall clock on this thread: the wall time at a monotonic
    /// instant (see [`simulate_wall`]).
    static SIMULATED: Cell<Option<(Instant, Timestamp)>> = const { Cell::new(None) };
}

/// The wall-clock time now: the host's, or the simulated one of this thread
/// (tokio's clock, paused in a simulation, plus the set offset).
pub fn wall_now() -> Timestamp {
    match SIMULATED.get() {
        Some((at, wall)) => WallClock { instant: at, wall }.to_wall(now()),
        None => Timestamp::now(),
    }
}

/// Makes [`wall_now`] on this thread read `wall` now and move with tokio's
/// clock from here (a simulation; setting it again steps the clock); None
/// returns to the host's clock.
pub fn simulate_wall(wall: Option<Timestamp>) {
    SIMULATED.set(wall.map(|wall| (Instant::now(), wall)));
}

/// A pairing of one monotonic instant with the wall-clock time it happened at.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    instant: Instant,
    wall: Timestamp,
}

impl WallClock {
    /// Reads both clocks now.
    pub fn now() -> Self {
        Self {
            instant: Instant::now(),
            wall: wall_now(),
        }
    }

    /// The monotonic instant both clocks were read at.
    pub fn instant(&self) -> std::time::Instant {
        self.instant.into_std()
    }

    /// The wall-clock time of a monotonic instant.
    pub fn to_wall(&self, at: std::time::Instant) -> Timestamp {
        let at = Instant::from_std(at);
        let offset = if at >= self.instant {
            SignedDuration::try_from(at - self.instant).unwrap_or(SignedDuration::MAX)
        } else {
            -SignedDuration::try_from(self.instant - at).unwrap_or(SignedDuration::MAX)
        };
        self.wall.saturating_add(offset).unwrap_or(self.wall)
    }

    /// The monotonic instant of a wall-clock time (clamped to what an Instant can hold).
    pub fn to_instant(&self, at: Timestamp) -> std::time::Instant {
        let delta = at.duration_since(self.wall);
        let base = self.instant.into_std();
        if delta.is_negative() {
            let back = Duration::try_from(delta.abs()).unwrap_or(Duration::ZERO);
            base.checked_sub(back).unwrap_or(base)
        } else {
            medic_core::time::after(base, Duration::try_from(delta).unwrap_or(Duration::ZERO))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A simulated wall clock moves with tokio's paused clock, and setting
    /// it again steps it.
    #[tokio::test(start_paused = true)]
    async fn a_simulated_wall_clock_follows_tokio_and_steps() {
        let start: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        simulate_wall(Some(start));
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(wall_now(), "2026-06-01T00:01:30Z".parse().unwrap());
        simulate_wall(Some(start));
        assert_eq!(wall_now(), start, "stepped back 90 s");
        simulate_wall(None);
        assert!(wall_now() > start, "the host's clock again");
    }
}
