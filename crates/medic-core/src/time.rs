//! Instant arithmetic that cannot panic: a deadline too far to represent
//! becomes "as far as representable", never an overflow.

use std::time::{Duration, Instant};

/// `at + by`, saturating: a century, a year, a day, or `at` itself when even that
/// overflows the platform's `Instant` (no config or input can panic the core).
pub fn after(at: Instant, by: Duration) -> Instant {
    const FALLBACKS: [u64; 3] = [100 * 365 * 86_400, 365 * 86_400, 86_400];
    at.checked_add(by)
        .or_else(|| {
            FALLBACKS
                .iter()
                .find_map(|secs| at.checked_add(Duration::from_secs(*secs).min(by)))
        })
        .unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_panics() {
        let now = Instant::now();
        assert_eq!(
            after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        assert!(after(now, Duration::MAX) > now);
    }
}
