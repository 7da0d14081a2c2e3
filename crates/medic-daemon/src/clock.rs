//! Converts between the monotonic instants the core reasons in and the
//! wall-clock timestamps people and files read.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::time::Instant;

/// The monotonic time now, as the core takes it: read from tokio's clock, so
/// that a test with paused time controls it.
pub fn now() -> std::time::Instant {
    Instant::now().into_std()
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
            wall: Timestamp::now(),
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
