//! Clockless exponential backoff with deterministic jitter.

use std::time::Duration;

/// The delay before restart attempt `attempt` (1-based): the first attempt runs at
/// once, then `base`, `2 × base`, `4 × base`, … capped at `max`, plus up to 10 %
/// jitter derived from `seed` (the service name) so that services failing
/// together do not restart in lockstep, while a given service stays reproducible.
pub fn delay(attempt: u32, base: Duration, max: Duration, seed: &str) -> Duration {
    if attempt <= 1 {
        return Duration::ZERO;
    }
    let doublings = (attempt - 2).min(31);
    let raw = base.saturating_mul(1u32 << doublings).min(max);
    let jitter = raw.mul_f64(f64::from(fraction(seed, attempt)) / 10.0);
    (raw + jitter).min(max)
}

/// A stable value in [0, 1) from the seed and attempt (FNV-1a; no RNG in the core).
fn fraction(seed: &str, attempt: u32) -> f32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in seed.bytes().chain(attempt.to_le_bytes()) {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    (hash % 1000) as f32 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[track_caller]
    fn check(attempt: u32, low: Duration, high: Duration) {
        let got = delay(attempt, S, Duration::from_secs(60), "web");
        assert!(
            low <= got && got <= high,
            "attempt {attempt}: {got:?} not in {low:?}..={high:?}"
        );
    }

    #[test]
    fn doubles_from_the_second_attempt() {
        check(1, Duration::ZERO, Duration::ZERO);
        check(2, S, S.mul_f64(1.1));
        check(3, 2 * S, (2 * S).mul_f64(1.1));
        check(4, 4 * S, (4 * S).mul_f64(1.1));
        check(40, 60 * S, 60 * S);
    }

    #[test]
    fn is_deterministic() {
        assert_eq!(delay(3, S, 60 * S, "a"), delay(3, S, 60 * S, "a"));
    }
}
