//! `medic-sim`: runs the whole daemon in deterministic simulation (see
//! docs/simulation.md). `--seeds N` plays N seeds on every core and ends
//! with `N seeds, V violations`; a failing seed is printed with its
//! violations, its 1-minimal fault schedule and the command that replays
//! it. `--seed S [--keep I,J]` replays one. `--planted` (with the `planted`
//! feature) proves each re-planted defect class is caught.

#![forbid(unsafe_code)]

mod checks;
mod ends;
mod faults;
#[cfg(feature = "planted")]
mod planted;
mod rng;
mod run;
mod shrink;
mod world;

use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Parser;

use faults::Schedule;
use run::{Outcome, play};

/// Deterministic simulation of medic: the real core, loop and store against
/// a simulated world, faults chosen by a seed.
#[derive(Debug, Parser)]
#[command(name = "medic-sim")]
struct Args {
    /// Play this many seeds (from --from).
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed of --seeds.
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// Replay one seed, printing its schedule and what happened.
    #[arg(long)]
    seed: Option<u64>,
    /// With --seed: play only the faults at these indexes (`none` for none).
    #[arg(long)]
    keep: Option<String>,
    /// Play each seed twice and fail when the runs differ.
    #[arg(long)]
    twice: bool,
    /// Run the re-planted defect classes until each is caught (needs the `planted` feature).
    #[arg(long)]
    planted: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.planted {
        return planted_run();
    }
    match args.seed {
        Some(seed) => replay(seed, args.keep.as_deref()),
        None => seeds(args.from, args.seeds, args.twice),
    }
}

#[cfg(feature = "planted")]
fn planted_run() -> ExitCode {
    planted::run()
}

#[cfg(not(feature = "planted"))]
fn planted_run() -> ExitCode {
    eprintln!("--planted needs the `planted` feature: scripts/sim --planted builds it");
    ExitCode::from(2)
}

/// Replays one seed and tells its story.
fn replay(seed: u64, keep: Option<&str>) -> ExitCode {
    let mut schedule = Schedule::of(seed);
    if let Some(keep) = keep {
        let picked: Result<Vec<usize>, _> = match keep {
            "none" => Ok(Vec::new()),
            list => list.split(',').map(str::parse).collect(),
        };
        match picked {
            Ok(picked) => schedule = schedule.keeping(picked),
            Err(error) => {
                eprintln!("--keep: {error}");
                return ExitCode::from(2);
            }
        }
    }
    print_schedule(&schedule);
    let outcome = play(&schedule);
    for line in &outcome.trace {
        println!("{line}");
    }
    println!("digest {:016x}", outcome.digest());
    if outcome.violations.is_empty() {
        println!("seed {seed}: no violation");
        ExitCode::SUCCESS
    } else {
        for violation in &outcome.violations {
            println!("violation: {violation}");
        }
        ExitCode::FAILURE
    }
}

fn print_schedule(schedule: &Schedule) {
    println!("seed {}: {} services", schedule.seed, schedule.units);
    for &i in &schedule.keep {
        if let Some(fault) = schedule.faults.get(i) {
            println!("  [{i}] {fault}");
        }
    }
}

/// Plays seeds `from..from + count` on every core.
fn seeds(from: u64, count: u64, twice: bool) -> ExitCode {
    let next = AtomicU64::new(from);
    let failed: Mutex<Vec<(Schedule, Outcome)>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= from + count {
                        return;
                    }
                    let schedule = Schedule::of(seed);
                    let mut outcome = play(&schedule);
                    if twice {
                        let again = play(&schedule);
                        if again.digest() != outcome.digest() {
                            outcome.violations.push(format!(
                                "not deterministic: digests {:016x} and {:016x}",
                                outcome.digest(),
                                again.digest()
                            ));
                        }
                    }
                    if !outcome.violations.is_empty() {
                        eprintln!("seed {seed}: {} violations", outcome.violations.len());
                        failed
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push((schedule, outcome));
                    }
                }
            });
        }
    });
    let mut failed = failed
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    failed.sort_by_key(|(s, _)| s.seed);
    // Shrinking replays the seed many times: the first few failures tell enough.
    for (schedule, outcome) in failed.iter().take(3) {
        println!("\nseed {} failed:", schedule.seed);
        for violation in &outcome.violations {
            println!("  violation: {violation}");
        }
        let minimal = shrink::shrink(schedule);
        println!("1-minimal schedule:");
        print_schedule(&minimal);
        println!("replay: {}", minimal.replay_command());
    }
    let violations: usize = failed.iter().map(|(_, o)| o.violations.len()).sum();
    if failed.len() > 3 {
        let rest: Vec<String> = failed[3..]
            .iter()
            .map(|(s, _)| s.seed.to_string())
            .collect();
        println!("\nalso failed: seeds {}", rest.join(", "));
    }
    println!("{count} seeds, {violations} violations");
    if violations == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
