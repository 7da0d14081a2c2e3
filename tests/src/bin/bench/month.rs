//! Month: what 30 days of availability history cost in memory. 10,000 units
//! (`--size N`) are built in virtual time, in process (no daemon): 70 %
//! healthy throughout, 25 % with 1–3 incidents, 5 % flapping with 20
//! (`availability::sample`). Printed: the resident memory (VmRSS of this
//! process before and after) they take after 30 days beside the same units
//! after 1 hour, and the time of one `history()` export of every unit (what
//! the daemon does for each save of `availability.json`, once a minute).

use std::time::{Duration, Instant};

use medic_core::availability::{Availability, sample};

use crate::util::{Usage, ms};

const HOUR: Duration = Duration::from_secs(3600);
const MONTH: Duration = Duration::from_secs(30 * 24 * 3600);

pub fn run(size: usize) {
    println!("## Month: availability history of {size} units in memory (in process, virtual time)");
    let start = Instant::now();
    let rss = || Usage::of(std::process::id()).rss_kib;
    let before = rss();
    let (hour, hour_built) = fleet(start, HOUR, size);
    let after_hour = rss();
    let (month, month_built) = fleet(start, MONTH, size);
    let after_month = rss();
    let hour_kib = after_hour.saturating_sub(before);
    let month_kib = after_month.saturating_sub(after_hour);
    let per_unit = |kib: u64| kib * 1024 / size.max(1) as u64;
    println!(
        "1 hour    RSS +{:>7.1} MiB ({:>6} bytes a unit), built in {}",
        hour_kib as f64 / 1024.0,
        per_unit(hour_kib),
        ms(hour_built)
    );
    println!(
        "30 days   RSS +{:>7.1} MiB ({:>6} bytes a unit), built in {}",
        month_kib as f64 / 1024.0,
        per_unit(month_kib),
        ms(month_built)
    );
    println!(
        "ratio 30 days / 1 hour (RSS): {:.2}×",
        month_kib as f64 / hour_kib.max(1) as f64
    );
    let hour_export = export(&hour, start + HOUR);
    let month_export = export(&month, start + MONTH);
    println!(
        "history() of every unit: 1 hour {}, 30 days {} ({:.2}×)\n",
        ms(hour_export),
        ms(month_export),
        month_export.as_secs_f64() / hour_export.as_secs_f64().max(1e-9)
    );
}

/// `size` units watched for `length` from `start`, and how long building them took.
fn fleet(start: Instant, length: Duration, size: usize) -> (Vec<Availability>, Duration) {
    let began = Instant::now();
    let units = (0..size as u64)
        .map(|i| {
            let mut a = sample::unit(start, length, sample::incidents(i), i);
            // Recorded up to the end, as the daemon does after every probe.
            a.record(start + length, a.verdict());
            a
        })
        .collect();
    (units, began.elapsed())
}

/// One export of every unit as of `now`, as a save does it (one unit at a time).
fn export(units: &[Availability], now: Instant) -> Duration {
    let began = Instant::now();
    let entries: usize = units
        .iter()
        .map(|a| {
            let history = a.history(now);
            history.minutes.len() + history.hours.len()
        })
        .sum();
    std::hint::black_box(entries);
    began.elapsed()
}
