//! Made-up availability histories for tests and benchmarks (feature
//! `test-support`): a fleet's worth of units watched for an hour or a month.

use std::time::{Duration, Instant};

use super::Availability;
use crate::machine::Health;

/// `length` of one unit's history in virtual time from `start`: healthy, a
/// restart of medic (3 min unknown) two fifths in (day 12 of 30), and
/// `incidents` outages of 1 to 20 minutes spread over the length.
pub fn unit(start: Instant, length: Duration, incidents: u64, seed: u64) -> Availability {
    let min = Duration::from_secs(60);
    let total = length.as_secs() / 60;
    let restart = total * 2 / 5;
    let slot = total / (incidents + 1);
    let mut events = vec![
        (Duration::ZERO, Health::Healthy),
        (min * restart as u32, Health::Unknown),
        (min * (restart + 3) as u32, Health::Healthy),
    ];
    for k in 0..incidents {
        let at = k * slot + (seed * 7919 + k * 104_729) % (slot / 2).max(1) + 1;
        let minutes = 1 + (seed + k) % 20;
        events.push((min * at as u32, Health::Unhealthy));
        events.push((min * (at + minutes) as u32, Health::Healthy));
    }
    events.sort_by_key(|(at, _)| *at);
    let mut a = Availability::new(start);
    for (at, health) in events {
        a.record(start + at, health);
    }
    a
}

/// The incidents of unit `i` of a fleet, in a pattern of 20 units: 70 %
/// healthy throughout, 25 % with 1–3 incidents, 5 % flapping with 20.
pub fn incidents(i: u64) -> u64 {
    match i % 20 {
        0..14 => 0,
        p @ 14..19 => 1 + p % 3,
        _ => 20,
    }
}
