//! Failed password attempts per client address, so a client that keeps
//! guessing is refused without a bcrypt check (`429 Too Many Requests`) until
//! its window is over, and one client's guesses cannot hold every other's
//! checks back. IPv6 clients count by their /64, the block one host holds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

/// Failed attempts a client address may make within [`WINDOW`].
pub const FAILURES: u32 = 5;
/// How long a client's failed attempts count, from its first.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Client addresses tracked at most; when full, ended windows go, then all.
const CLIENTS: usize = 4096;

/// Who counts as one client: an IPv4 address, an IPv6 /64, or "unknown"
/// (a request that came without its peer's address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    V4(u32),
    V6(u64),
    Unknown,
}

impl Client {
    fn of(address: Option<IpAddr>) -> Self {
        match address.map(|a| a.to_canonical()) {
            Some(IpAddr::V4(v4)) => Self::V4(v4.to_bits()),
            Some(IpAddr::V6(v6)) => Self::V6((v6.to_bits() >> 64) as u64),
            None => Self::Unknown,
        }
    }
}

/// One client's failed attempts in its current window.
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Failed attempts by client.
#[derive(Debug, Default)]
pub struct Attempts {
    windows: HashMap<Client, Window>,
}

impl Attempts {
    /// How long `address` must wait before its password is checked again;
    /// None while it has failed fewer than [`FAILURES`] times in its window.
    pub fn refused_for(&self, address: Option<IpAddr>, now: Instant) -> Option<Duration> {
        let window = self.windows.get(&Client::of(address))?;
        let ends = window.started + WINDOW;
        (window.failures >= FAILURES && now < ends).then(|| ends - now)
    }

    /// Counts a failed attempt of `address`; true when it has just reached the limit.
    pub fn failed(&mut self, address: Option<IpAddr>, now: Instant) -> bool {
        let client = Client::of(address);
        if self.windows.len() >= CLIENTS && !self.windows.contains_key(&client) {
            self.windows.retain(|_, w| now < w.started + WINDOW);
            if self.windows.len() >= CLIENTS {
                self.windows.clear();
            }
        }
        let window = self.windows.entry(client).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now >= window.started + WINDOW {
            *window = Window {
                started: now,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
        window.failures == FAILURES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn a_client_is_refused_after_its_failures_until_its_window_ends() {
        let start = Instant::now();
        let mut attempts = Attempts::default();
        for n in 1..FAILURES {
            assert!(!attempts.failed(ip("10.0.0.1"), start), "failure {n}");
            assert_eq!(attempts.refused_for(ip("10.0.0.1"), start), None);
        }
        assert!(attempts.failed(ip("10.0.0.1"), start));
        let later = start + Duration::from_secs(20);
        assert_eq!(
            attempts.refused_for(ip("10.0.0.1"), later),
            Some(WINDOW - Duration::from_secs(20))
        );
        // Another address, and the same one once its window is over, are checked.
        assert_eq!(attempts.refused_for(ip("10.0.0.2"), later), None);
        assert_eq!(attempts.refused_for(ip("10.0.0.1"), start + WINDOW), None);
        assert!(
            !attempts.failed(ip("10.0.0.1"), start + WINDOW),
            "a new window"
        );
    }

    #[test]
    fn an_ipv6_host_counts_by_its_64_and_a_mapped_ipv4_as_itself() {
        let now = Instant::now();
        let mut attempts = Attempts::default();
        for n in 0..FAILURES {
            attempts.failed(ip(&format!("2001:db8::{n}")), now);
        }
        assert!(attempts.refused_for(ip("2001:db8::ffff"), now).is_some());
        assert!(attempts.refused_for(ip("2001:db8:0:1::1"), now).is_none());
        for _ in 0..FAILURES {
            attempts.failed(ip("::ffff:192.0.2.7"), now);
        }
        assert!(attempts.refused_for(ip("192.0.2.7"), now).is_some());
    }

    #[test]
    fn the_table_stays_bounded() {
        let now = Instant::now();
        let mut attempts = Attempts::default();
        for n in 0..(CLIENTS as u32 * 2) {
            attempts.failed(Some(IpAddr::from(n.to_be_bytes())), now);
            assert!(attempts.windows.len() <= CLIENTS);
        }
    }
}
