//! `--planted`: proves the simulator sees what it is for. Each defect class
//! medic had is re-planted in the real code (`medic_core::planted`, behind
//! the `planted` feature), and seeds are played until one shows a violation
//! that the same seed without the defect does not.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use medic_core::planted::{Defect, plant};

use crate::faults::Schedule;
use crate::run::play;

/// The most seeds played for one defect before it counts as missed.
const MAX_SEEDS: u64 = 400;

/// Plays seeds with each defect planted in turn; ends with `planted: K of N caught`.
pub fn run() -> ExitCode {
    let mut caught = 0;
    for defect in Defect::ALL {
        match first_failing_seed(defect) {
            Some((seed, violation)) => {
                caught += 1;
                println!("{defect:?}: caught by seed {seed}: {violation}");
            }
            None => println!("{defect:?}: NOT caught in {MAX_SEEDS} seeds"),
        }
    }
    let all = Defect::ALL.len();
    println!("planted: {caught} of {all} caught");
    if caught == all {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The lowest seed (on every core) whose run with `defect` planted shows a
/// violation its run without it does not, with that violation.
fn first_failing_seed(defect: Defect) -> Option<(u64, String)> {
    let next = AtomicU64::new(1);
    let found = AtomicBool::new(false);
    let best = std::sync::Mutex::new(None::<(u64, String)>);
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while !found.load(Ordering::Relaxed) {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed > MAX_SEEDS {
                        return;
                    }
                    let schedule = Schedule::of(seed);
                    plant(Some(defect));
                    let planted = play(&schedule);
                    plant(None);
                    if planted.violations.is_empty() {
                        continue;
                    }
                    let clean = play(&schedule).violations;
                    let new = planted.violations.into_iter().find(|v| !clean.contains(v));
                    if let Some(violation) = new {
                        found.store(true, Ordering::Relaxed);
                        let mut best = best
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        if best.as_ref().is_none_or(|(s, _)| seed < *s) {
                            *best = Some((seed, violation));
                        }
                    }
                }
            });
        }
    });
    best.into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
