//! Month: what 30 days of availability history cost in memory. 10,000 units
//! (`--size N`) are built in virtual time, in process (no daemon): 70 %
//! healthy throughout, 25 % with 1–3 incidents, 5 % flapping with 20
//! (`availability::sample`). Printed: the resident memory (VmRSS of this
//! process before and after) they take after 30 days beside the same units
//! after 1 hour, the time of one record (every unit's verdict recorded every
//! 10 s for 10 minutes more, as probes do), and the time of one `history()`
//! export of every unit (what the daemon does for each save of
//! `availability.json`, once a minute).

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
    let (mut hour, hour_built) = fleet(start, HOUR, size);
    let after_hour = rss();
    let (mut month, month_built) = fleet(start, MONTH, size);
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
    let hour_records = probe_for_ten_minutes(&mut hour, start + HOUR);
    let month_records = probe_for_ten_minutes(&mut month, start + MONTH);
    println!(
        "a verdict recorded every 10 s for 10 min: after 1 hour {:.0} ns, after 30 days {:.0} ns a record ({:.2}×)",
        hour_records * 1e9,
        month_records * 1e9,
        month_records / hour_records.max(1e-12)
    );
    let ten_minutes = Duration::from_secs(600);
    let hour_export = export(&hour, start + HOUR + ten_minutes);
    let month_export = export(&month, start + MONTH + ten_minutes);
    println!(
        "history() of every unit: 1 hour {} ({} entries), 30 days {} ({} entries) ({:.2}×)\n",
        ms(hour_export.0),
        hour_export.1,
        ms(month_export.0),
        month_export.1,
        month_export.0.as_secs_f64() / hour_export.0.as_secs_f64().max(1e-9)
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

/// Every unit's verdict recorded every 10 s for 10 minutes from `from`, as
/// probes do (the common case: time added to the newest bucket); seconds a record.
fn probe_for_ten_minutes(units: &mut [Availability], from: Instant) -> f64 {
    let began = Instant::now();
    for tick in 1..=60u32 {
        let now = from + Duration::from_secs(10) * tick;
        for a in units.iter_mut() {
            a.record(now, a.verdict());
        }
    }
    began.elapsed().as_secs_f64() / (60 * units.len().max(1)) as f64
}

/// One export of every unit as of `now`, as a save does it (one unit at a
/// time): how long it took, and how many entries (buckets or runs) it gave.
fn export(units: &[Availability], now: Instant) -> (Duration, usize) {
    let began = Instant::now();
    let entries: usize = units
        .iter()
        .map(|a| {
            let history = a.history(now);
            history.minutes.len() + history.hours.len()
        })
        .sum();
    (began.elapsed(), std::hint::black_box(entries))
}
