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
    let jitter = raw.mul_f64(stable_fraction(seed, u64::from(attempt)) / 10.0);
    (raw + jitter).min(max)
}

/// A stable value in [0, 1) from a seed and a salt (FNV-1a): jitter and
/// schedule offsets that spread load without an RNG, reproducibly.
pub fn stable_fraction(seed: &str, salt: u64) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in seed.bytes().chain(salt.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % 10_000) as f64 / 10_000.0
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
