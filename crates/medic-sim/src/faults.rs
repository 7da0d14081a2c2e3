//! The faults a seed chooses, and when: the schedule one simulated run plays.
//! A schedule is a function of its seed; a shrunk one keeps a subset of the
//! seed's faults, named by their indexes (`--keep`), so any schedule replays
//! from one command line.

use std::fmt;
use std::time::Duration;

use crate::rng::Rng;

/// Services in an ordinary seed's config.
const UNITS: usize = 8;
/// Services in a storm seed's config, and how many of them fail at once.
const STORM_UNITS: usize = 200;
const STORM_FAILING: usize = 150;
/// Faults happen in this window after the first medic starts.
const FIRST_FAULT: u64 = 40;
const LAST_FAULT: u64 = 15 * 60;

/// One fault at one moment of simulated time.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Simulated time since the first medic started.
    pub at: Duration,
    /// What happens.
    pub kind: FaultKind,
}

/// What can go wrong.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// The service dies; a restart brings it back.
    Crash(usize),
    /// The service dies, and again 30 s after each of its next `n` recoveries.
    CrashLoop(usize, u32),
    /// The service dies and restarts do not help; a rollback does.
    Broken(usize),
    /// The service dies and nothing medic does helps.
    Dead(usize),
    /// The service fails for this long, then answers again by itself (an
    /// endpoint that flaps); a restart also brings it back.
    Flap(usize, Duration),
    /// The next action on the service takes this long (a slow engine).
    SlowEngine(usize, Duration),
    /// The next action on the service never answers (a hung engine call).
    HungEngine(usize),
    /// The next action on the service fails (the engine answers 500).
    FailingEngine(usize),
    /// The service's probes cannot see for this long (its engine is gone).
    Blind(usize, Duration),
    /// kill -9 of medic; a new one starts from the files at once, with a
    /// torn half line at the end of this file when one is named.
    Kill9(Option<Torn>),
    /// SIGTERM to medic while whatever runs runs; a new one starts 2 s after it stopped.
    Term,
    /// The wall clock steps by this many seconds (forwards or back).
    ClockStep(i64),
    /// The alert sink refuses every delivery for this long (connection refused).
    SinkDown(Duration),
    /// The alert sink takes no delivery and never answers for this long
    /// (medic's attempts end at the sink's timeout).
    SinkHangs(Duration),
    /// This many services die at once (a storm); every other one comes
    /// back by itself within two minutes, and the engine, under the load,
    /// takes `STORM_ACTION_TAKES` for every action from then on.
    Storm(usize),
}

/// What a kill -9 mid-write leaves at the end of a file: the start of a
/// line, no newline.
pub const TORN: &str = r#"{"ts":"2026-06-01T00:0"#;

/// A file a kill -9 tore mid-line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Torn {
    /// `recovery.jsonl`.
    RecoveryLog,
    /// `state.changes.jsonl`.
    ChangeLines,
}

impl FaultKind {
    /// A fault of the engine's next action on a service (slow, hung, failing).
    pub fn is_engine(&self) -> bool {
        matches!(
            self,
            FaultKind::SlowEngine(..) | FaultKind::HungEngine(_) | FaultKind::FailingEngine(_)
        )
    }
}

impl Torn {
    /// The file's name in the state directory.
    pub fn file(self) -> &'static str {
        match self {
            Torn::RecoveryLog => "recovery.jsonl",
            Torn::ChangeLines => "state.changes.jsonl",
        }
    }
}

/// What one seed plays: how many services and which faults when.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The seed it came from.
    pub seed: u64,
    /// Services in the config.
    pub units: usize,
    /// The faults (in time order, then the compound ones of
    /// `clock_fixed_then_crash`); `keep` names the ones played.
    pub faults: Vec<Fault>,
    /// The indexes of `faults` that are played (all, unless shrunk).
    pub keep: Vec<usize>,
}

impl Schedule {
    /// The schedule of `seed`.
    pub fn of(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let storm = rng.chance(8);
        let units = if storm { STORM_UNITS } else { UNITS };
        let count = 1 + rng.below(8) as usize;
        let mut faults: Vec<Fault> = (0..count)
            .map(|_| Fault {
                at: Duration::from_secs(FIRST_FAULT + rng.below(LAST_FAULT - FIRST_FAULT)),
                kind: kind(&mut rng, units),
            })
            .collect();
        if storm {
            let at = Duration::from_secs(FIRST_FAULT + rng.below(LAST_FAULT - FIRST_FAULT));
            faults.push(Fault {
                at,
                kind: FaultKind::Storm(STORM_FAILING),
            });
            // Half the storms meet a SIGTERM while their actions wait for a slot.
            if rng.chance(50) {
                faults.push(Fault {
                    at: at + Duration::from_secs(30 + rng.below(300)),
                    kind: FaultKind::Term,
                });
            }
        }
        faults.sort_by_key(|f| f.at);
        faults.extend(clock_fixed_then_crash(seed, units));
        faults.extend(sink_fault(seed));
        let keep = (0..faults.len()).collect();
        Self {
            seed,
            units,
            faults,
            keep,
        }
    }

    /// The faults played, in time order.
    pub fn played(&self) -> Vec<Fault> {
        let mut played: Vec<Fault> = self
            .keep
            .iter()
            .filter_map(|&i| self.faults.get(i))
            .cloned()
            .collect();
        played.sort_by_key(|f| f.at);
        played
    }

    /// The same schedule playing only the faults at `keep`.
    pub fn keeping(&self, keep: Vec<usize>) -> Self {
        Self {
            keep,
            ..self.clone()
        }
    }

    /// The command that replays this schedule.
    pub fn replay_command(&self) -> String {
        let all = self.keep.len() == self.faults.len();
        let keep = self
            .keep
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",");
        match (all, self.keep.is_empty()) {
            (true, _) => format!("scripts/sim --seed {}", self.seed),
            (false, true) => format!("scripts/sim --seed {} --keep none", self.seed),
            (false, false) => format!("scripts/sim --seed {} --keep {keep}", self.seed),
        }
    }
}

/// One seed in six: a service breaks, and while medic verifies its
/// restarts the wall clock is set back hours and medic is killed seconds
/// later (a clock fixed by hand, then a crash), so the next medic restores
/// deadlines saved before the step. Drawn apart from the seed's other
/// faults and listed after them, so their indexes stay what they were.
fn clock_fixed_then_crash(seed: u64, units: usize) -> Vec<Fault> {
    let mut rng = Rng::new(seed.rotate_left(17) ^ 0x636c_6f63_6b5f_6b39);
    if !rng.chance(17) {
        return Vec::new();
    }
    let unit = rng.below(units as u64) as usize;
    let broken = Duration::from_secs(FIRST_FAULT + rng.below(LAST_FAULT - FIRST_FAULT));
    let step = broken + Duration::from_secs(40 + rng.below(160));
    let back = 3600 + rng.below(2 * 3600) as i64;
    let killed = step + Duration::from_secs(1 + rng.below(5));
    vec![
        Fault {
            at: broken,
            kind: FaultKind::Broken(unit),
        },
        Fault {
            at: step,
            kind: FaultKind::ClockStep(-back),
        },
        Fault {
            at: killed,
            kind: FaultKind::Kill9(None),
        },
    ]
}

/// One seed in five: the alert sink refuses or hangs for half a minute to
/// ten minutes, while the seed's incidents escalate or not. Drawn apart from
/// the other faults and listed last, so their indexes stay what they were.
fn sink_fault(seed: u64) -> Option<Fault> {
    let mut rng = Rng::new(seed.rotate_left(29) ^ 0x7369_6e6b_5f66_6c74);
    if !rng.chance(20) {
        return None;
    }
    let at = Duration::from_secs(FIRST_FAULT + rng.below(LAST_FAULT - FIRST_FAULT));
    let lasts = Duration::from_secs(30 + rng.below(570));
    let kind = if rng.chance(50) {
        FaultKind::SinkDown(lasts)
    } else {
        FaultKind::SinkHangs(lasts)
    };
    Some(Fault { at, kind })
}

fn kind(rng: &mut Rng, units: usize) -> FaultKind {
    let unit = rng.below(units as u64) as usize;
    match rng.below(100) {
        0..12 => FaultKind::Crash(unit),
        12..20 => FaultKind::Flap(unit, Duration::from_secs(5 + rng.below(120))),
        20..28 => FaultKind::CrashLoop(unit, 1 + rng.below(4) as u32),
        28..36 => FaultKind::Broken(unit),
        36..41 => FaultKind::Dead(unit),
        41..49 => FaultKind::SlowEngine(unit, Duration::from_secs(5 + rng.below(120))),
        49..55 => FaultKind::HungEngine(unit),
        55..62 => FaultKind::FailingEngine(unit),
        62..68 => FaultKind::Blind(unit, Duration::from_secs(10 + rng.below(300))),
        68..82 => FaultKind::Kill9(match rng.below(3) {
            0 => None,
            1 => Some(Torn::RecoveryLog),
            _ => Some(Torn::ChangeLines),
        }),
        82..92 => FaultKind::Term,
        _ => {
            let secs = 30 + rng.below(3 * 3600) as i64;
            FaultKind::ClockStep(if rng.chance(50) { secs } else { -secs })
        }
    }
}

/// The service name of unit `i`.
pub fn unit_name(i: usize) -> String {
    format!("svc-{i:03}")
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {:>4}s: ", self.at.as_secs())?;
        match &self.kind {
            FaultKind::Crash(u) => write!(f, "{} crashes", unit_name(*u)),
            FaultKind::CrashLoop(u, n) => {
                write!(f, "{} crash-loops ({n} relapses)", unit_name(*u))
            }
            FaultKind::Broken(u) => write!(f, "{} breaks (only a rollback helps)", unit_name(*u)),
            FaultKind::Dead(u) => write!(f, "{} dies for good", unit_name(*u)),
            FaultKind::Flap(u, d) => write!(
                f,
                "{} fails for {}s, then comes back by itself",
                unit_name(*u),
                d.as_secs()
            ),
            FaultKind::SlowEngine(u, d) => write!(
                f,
                "the next action on {} takes {}s",
                unit_name(*u),
                d.as_secs()
            ),
            FaultKind::HungEngine(u) => write!(f, "the next action on {} hangs", unit_name(*u)),
            FaultKind::FailingEngine(u) => {
                write!(f, "the next action on {} fails (500)", unit_name(*u))
            }
            FaultKind::Blind(u, d) => {
                write!(f, "{} cannot be seen for {}s", unit_name(*u), d.as_secs())
            }
            FaultKind::Kill9(None) => write!(f, "kill -9 of medic"),
            FaultKind::Kill9(Some(torn)) => {
                write!(f, "kill -9 of medic, {} torn mid-line", torn.file())
            }
            FaultKind::Term => write!(f, "SIGTERM to medic (a new one starts 2s after it stops)"),
            FaultKind::ClockStep(s) => write!(f, "the wall clock steps {s:+}s"),
            FaultKind::SinkDown(d) => {
                write!(f, "the alert sink refuses for {}s", d.as_secs())
            }
            FaultKind::SinkHangs(d) => {
                write!(f, "the alert sink never answers for {}s", d.as_secs())
            }
            FaultKind::Storm(n) => write!(
                f,
                "{n} services crash at once (every other one comes back by itself; the engine slows)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_is_one_schedule() {
        let (a, b) = (Schedule::of(7), Schedule::of(7));
        assert_eq!(a.faults, b.faults);
        assert!(a.played().windows(2).all(|w| w[0].at <= w[1].at));
        assert_eq!(
            a.keeping(vec![0]).replay_command(),
            "scripts/sim --seed 7 --keep 0"
        );
    }
}
