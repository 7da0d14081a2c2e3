//! Shrinks a failing schedule until it is 1-minimal: removing any single
//! one of its faults makes the run pass.

use crate::faults::Schedule;
use crate::run::play;

/// The smallest subset of `schedule`'s faults found that still fails,
/// removing one fault at a time until none can go.
pub fn shrink(schedule: &Schedule) -> Schedule {
    let mut current = schedule.clone();
    'outer: loop {
        for drop in 0..current.keep.len() {
            let mut keep = current.keep.clone();
            keep.remove(drop);
            let smaller = current.keeping(keep);
            if !play(&smaller).violations.is_empty() {
                current = smaller;
                continue 'outer;
            }
        }
        return current;
    }
}
