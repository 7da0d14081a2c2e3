//! Plays one schedule: the real daemon loop (`medic_daemon::run_in`) with
//! the real core and store on a temporary state directory, one life of
//! medic after another (a kill -9 drops its runtime mid-step; SIGTERM lets it
//! stop), in paused tokio time on this thread, against the simulated world.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use medic_daemon::clock::{simulate_wall, wall_now};
use tokio::time::Instant;

use crate::checks::{self, Played};
use crate::ends::{self, Allowed, End};
use crate::faults::{Fault, FaultKind, Schedule, TORN, Torn, unit_name};
use crate::world::{Met, SINK, SimWorld};

/// How long the world stays quiet after the last fault before the end is
/// judged: longer than any incident's bound under the default policy
/// (three restarts with backoff and verification, a rollback, the flap delay).
const QUIET: Duration = Duration::from_secs(30 * 60);
/// A stopped medic is started again this long after it stopped.
const RESTART_GAP: Duration = Duration::from_secs(2);
/// The default policy's attempts (the config sets none: defaults are exercised).
const MAX_ATTEMPTS: u32 = 3;
/// The default `blind_alert_after`.
const BLIND_ALERT_AFTER: Duration = Duration::from_secs(300);

/// What one run found.
#[derive(Debug)]
pub struct Outcome {
    /// Every broken invariant, in the order found.
    pub violations: Vec<String>,
    /// What happened, for the determinism digest and a failing seed's story.
    pub trace: Vec<String>,
}

impl Outcome {
    /// A digest of the whole run: equal digests, equal runs.
    pub fn digest(&self) -> u64 {
        // FNV-1a: stable everywhere, unlike std's RandomState.
        let mut hash = 0xcbf2_9ce4_8422_2325_u64;
        for line in self.trace.iter().chain(&self.violations) {
            for byte in line.bytes().chain([b'\n']) {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        hash
    }
}

/// How a life of medic ends.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Kill9(Option<Torn>),
    Term,
}

/// Plays `schedule` and checks it. A schedule that stops medic (kill -9,
/// SIGTERM) is played a second time without those stops, and both runs
/// must reach the same end (`ends::compare`). In the second run each engine
/// fault meets the action it met in the first (a restart of medic shifts
/// when its actions run, so "the next action" would be another one), and
/// one that met none does not happen: the same world answers both.
pub fn play(schedule: &Schedule) -> Outcome {
    let played = schedule.played();
    let end = played.last().map_or(Duration::ZERO, |f| f.at) + QUIET;
    let mut with = simulate(schedule.units, &played, Vec::new(), end);
    let stops = |f: &&Fault| matches!(f.kind, FaultKind::Kill9(_) | FaultKind::Term);
    if played.iter().any(|f| stops(&f)) {
        let calm: Vec<Fault> = played
            .iter()
            .filter(|f| !stops(f) && !f.kind.is_engine())
            .cloned()
            .collect();
        let without = simulate(schedule.units, &calm, with.met, end);
        let allowed = Allowed {
            unseen_ends: with.unseen_ends.iter().map(|&i| unit_name(i)).collect(),
            blind_alert: blind_alert_judged(&played),
        };
        if let (Some(a), Some(b)) = (&with.end, &without.end) {
            with.outcome
                .violations
                .extend(ends::compare(a, b, &allowed));
        }
    }
    with.outcome
}

/// Whether the blindness of `played` must raise medic's `blind` alert in
/// both runs: some stretch of it outlasts `blind_alert_after` by more than
/// the probes' freshness, and the wall clock was never set back.
fn blind_alert_judged(played: &[Fault]) -> bool {
    let mut stretches: Vec<(Duration, Duration)> = played
        .iter()
        .filter_map(|f| match f.kind {
            FaultKind::Blind(_, d) => Some((f.at, f.at + d)),
            _ => None,
        })
        .collect();
    stretches.sort();
    let mut longest = Duration::ZERO;
    let mut current: Option<(Duration, Duration)> = None;
    for (from, to) in stretches {
        current = match current {
            Some((start, end)) if from <= end => Some((start, end.max(to))),
            _ => Some((from, to)),
        };
        if let Some((start, end)) = current {
            longest = longest.max(end - start);
        }
    }
    let set_back = played
        .iter()
        .any(|f| matches!(f.kind, FaultKind::ClockStep(s) if s < 0));
    longest > BLIND_ALERT_AFTER + checks::FRESH.unsigned_abs() && !set_back
}

/// What one simulated run left.
struct Ran {
    outcome: Outcome,
    /// The end it reached (None when the state store does not load).
    end: Option<End>,
    /// The engine faults its actions met.
    met: Vec<Met>,
    /// The units whose step's end medic could not see: a rollback a stop
    /// of medic cut short, a relapse while blind.
    unseen_ends: std::collections::BTreeSet<usize>,
}

/// Plays `played` (and the `pinned` engine faults) until `end` (and the
/// last SIGTERM), checks the run, and reads what it left.
fn simulate(units: usize, played: &[Fault], pinned: Vec<Met>, end: Duration) -> Ran {
    // On a tmpfs when there is one: the files are real, and the fsync of
    // every line written in step costs nothing.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    };
    let dir = match dir {
        Ok(dir) => dir,
        Err(error) => {
            let outcome = Outcome {
                violations: vec![format!("no temporary directory: {error}")],
                trace: Vec::new(),
            };
            return Ran {
                outcome,
                end: None,
                met: Vec::new(),
                unseen_ends: Default::default(),
            };
        }
    };
    let world = SimWorld::new(
        units,
        played.to_vec(),
        pinned,
        MAX_ATTEMPTS,
        dir.path().join("recovery.jsonl"),
    );
    let config = config(dir.path(), units);
    let mut stops: Vec<(Duration, Stop)> = played
        .iter()
        .filter_map(|f| match f.kind {
            FaultKind::Kill9(torn) => Some((f.at, Stop::Kill9(torn))),
            FaultKind::Term => Some((f.at, Stop::Term)),
            _ => None,
        })
        .collect();
    stops.push((end, Stop::Term));
    let steps: Vec<(Duration, i64)> = played
        .iter()
        .filter_map(|f| match f.kind {
            FaultKind::ClockStep(s) => Some((f.at, s)),
            _ => None,
        })
        .collect();
    let mut at = Duration::ZERO;
    let mut wall: Timestamp = "2026-06-01T00:00:00Z"
        .parse()
        .unwrap_or(Timestamp::UNIX_EPOCH);
    for (stop_at, stop) in stops {
        // A stop due while medic was down (stopping took a while) comes at its start.
        let life = Life {
            world: &world,
            config: &config,
            from: at,
            wall,
            until: stop_at.max(at),
            stop,
            steps: steps
                .iter()
                .filter(|(t, _)| *t >= at && *t < stop_at)
                .copied()
                .collect(),
        };
        let (ended, ended_wall) = life.live();
        at = ended;
        wall = ended_wall;
        match stop {
            Stop::Kill9(torn) => {
                if let Some(torn) = torn {
                    tear(&dir.path().join(torn.file()));
                }
            }
            Stop::Term => {
                at += RESTART_GAP;
                wall = wall.saturating_add(RESTART_GAP).unwrap_or(wall);
            }
        }
    }
    let settled = world.settle();
    let mut record = world.take_record();
    let names: Vec<String> = (0..units).map(unit_name).collect();
    let found = checks::files(
        dir.path(),
        &names,
        &settled,
        &record,
        Played {
            clock_stepped: !steps.is_empty(),
            killed: played.iter().any(|f| matches!(f.kind, FaultKind::Kill9(_))),
            storm: played.iter().any(|f| matches!(f.kind, FaultKind::Storm(_))),
        },
    );
    record.violations.extend(found);
    let ended = ends::read(dir.path(), &names);
    Ran {
        outcome: Outcome {
            violations: record.violations,
            trace: record.trace,
        },
        end: ended,
        met: record.met,
        unseen_ends: &record.cut_rollbacks | &record.relapsed_unseen,
    }
}

/// One life of medic, from `from` to its stop at `until`.
struct Life<'a> {
    world: &'a SimWorld,
    config: &'a str,
    from: Duration,
    wall: Timestamp,
    until: Duration,
    stop: Stop,
    /// Wall clock steps due in this life.
    steps: Vec<(Duration, i64)>,
}

impl Life<'_> {
    /// Runs medic until its stop; returns the simulated and wall time it ended at.
    fn live(self) -> (Duration, Timestamp) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                self.world.note(format!("VIOLATION no runtime: {error}"));
                return (self.until, self.wall);
            }
        };
        let ended = runtime.block_on(self.run());
        // kill -9: every task of this medic goes, mid-step, with the runtime.
        drop(runtime);
        ended
    }

    async fn run(&self) -> (Duration, Timestamp) {
        self.world.begin_life(self.from);
        simulate_wall(Some(self.wall));
        medic_records::writers::write_in_step(true);
        let start = Instant::now();
        let stop_at = start + (self.until - self.from);
        let config = match medic_core::config::parse(self.config, "sim.toml") {
            Ok(config) => config,
            Err(error) => {
                self.world
                    .note(format!("VIOLATION the sim's config: {error}"));
                return (self.until, self.wall);
            }
        };
        let world = self.world.clone();
        let term = matches!(self.stop, Stop::Term);
        let shutdown = async move {
            if !term {
                return std::future::pending().await;
            }
            tokio::time::sleep_until(stop_at).await;
            world.terminate();
        };
        let daemon =
            medic_daemon::run_in(Some(Arc::new(self.world.clone())), config, None, shutdown);
        let steps = async {
            for (at, secs) in &self.steps {
                tokio::time::sleep_until(start + (*at - self.from)).await;
                let step = SignedDuration::from_secs(*secs);
                simulate_wall(Some(wall_now().saturating_add(step).unwrap_or(wall_now())));
                self.world.note(format!("the wall clock steps {secs:+}s"));
            }
            std::future::pending::<()>().await;
        };
        let killed = async {
            if term {
                return std::future::pending().await;
            }
            tokio::time::sleep_until(stop_at).await;
        };
        tokio::select! {
            biased;
            () = killed => self.world.kill(),
            result = daemon => {
                if let Err(error) = result {
                    self.world.note(format!("VIOLATION medic stopped with an error: {error:#}"));
                }
            }
            () = steps => {}
        }
        (self.world.now(), wall_now())
    }
}

/// A kill -9 mid-write: half a line at the end of `path`, no newline.
fn tear(path: &std::path::Path) {
    use std::io::Write;
    let Ok(mut file) = std::fs::OpenOptions::new().append(true).open(path) else {
        return;
    };
    file.write_all(TORN.as_bytes()).ok();
}

/// The config: `units` command services with one exec probe each, every
/// policy at its default, one alert sink (`SINK`, the world takes its
/// deliveries); the servers the simulation does not exercise off.
fn config(dir: &std::path::Path, units: usize) -> String {
    let dir = dir.display();
    let mut text = format!(
        "[medic]\nstate_dir = \"{dir}\"\ncontrol_socket = \"{dir}/control.sock\"\nmetrics_listen = \"\"\n\n[[alert]]\nname = \"{SINK}\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/medic\"\n"
    );
    for i in 0..units {
        text.push_str(&format!(
            "\n[[service]]\nname = \"{}\"\ncommand = {{ restart = [\"sim-restart\"], rollback = [\"sim-rollback\"] }}\n  [[service.probe]]\n  kind = \"exec\"\n  command = [\"sim-probe\"]\n",
            unit_name(i)
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One seed, one run: the same schedule plays the same way twice.
    #[test]
    fn a_seed_plays_the_same_twice() {
        let schedule = Schedule::of(6);
        let (a, b) = (play(&schedule), play(&schedule));
        assert_eq!(a.trace, b.trace);
        assert_eq!(a.digest(), b.digest());
        assert!(a.trace.iter().any(|l| l.contains("job ")), "{:#?}", a.trace);
    }

    /// Found by seed 15: the next medic's first line glued to the line a
    /// kill -9 tore, so neither parsed (fixed by ending a torn line first).
    #[test]
    fn a_torn_line_is_not_glued_to_the_next_one() {
        let outcome = play(&Schedule::of(15).keeping(vec![0]));
        assert_eq!(outcome.violations, Vec::<String>::new());
    }

    /// Found by seed 149: after the wall clock stepped back, a kill -9 left a
    /// verification deadline that the next medic restored hours ahead, so
    /// the incident stayed open and the service down (fixed by saved times
    /// that follow the monotonic clock).
    #[test]
    fn a_restored_deadline_survives_a_clock_step() {
        let outcome = play(&Schedule::of(149).keeping(vec![2, 5, 6]));
        assert_eq!(outcome.violations, Vec::<String>::new());
    }

    /// Found by seed 16: a kill -9 before a storm shifted when the probes
    /// ran, so a service that came back within a few probes had an incident
    /// (and its info alert) in one run and none in the other; the runs are
    /// compared on warning and critical alerts.
    #[test]
    fn a_restart_before_a_storm_reaches_the_same_end() {
        let outcome = play(&Schedule::of(16).keeping(vec![0, 1]));
        assert_eq!(outcome.violations, Vec::<String>::new());
    }

    /// Found by seed 160: a SIGTERM while a service was blind, and the next
    /// medic counted the blindness from its own start, so its critical
    /// `blind` alert never came (fixed by saving when a unit went blind).
    #[test]
    fn a_restart_while_blind_still_alerts_the_blindness() {
        let outcome = play(&Schedule::of(160).keeping(vec![3, 4]));
        assert_eq!(outcome.violations, Vec::<String>::new());
    }

    /// Found by seed 133: after the clock stepped back, a kill -9 left a
    /// verification deadline the next medic clamped to the whole
    /// `recover_timeout` (it cannot know how much was left), so its rollback
    /// came after the engine hung and met the hang, which the run without
    /// the kill never met; the run without restarts now meets each engine
    /// fault on the action it met with them.
    #[test]
    fn an_engine_fault_meets_the_same_action_in_both_runs() {
        let outcome = play(&Schedule::of(133).keeping(vec![5, 6, 9, 10]));
        assert_eq!(outcome.violations, Vec::<String>::new());
    }

    /// Found by seeds 503 and 952: a kill -9 cut a rollback short; the next
    /// medic verified it (a command's rollback is not repeated), found the
    /// service down and escalated, where the run without the kill rolled
    /// back: allowed, and the escalation must still reach the sink.
    #[test]
    fn a_rollback_cut_by_a_kill_may_escalate() {
        let outcome = play(&Schedule::of(503).keeping(vec![2, 8]));
        assert_eq!(outcome.violations, Vec::<String>::new());
        assert!(
            outcome
                .trace
                .iter()
                .any(|l| l.contains("pager takes alert")),
            "{:#?}",
            outcome.trace
        );
    }

    /// Found by seed 3022: a crash-looping service relapsed while its
    /// probes were blind during a rollback's verification, so medic saw the
    /// rollback fail and escalated; the run without the restart had
    /// verified that rollback before the blindness.
    #[test]
    fn a_relapse_while_blind_may_escalate() {
        let outcome = play(&Schedule::of(3022).keeping(vec![0, 2, 3, 5, 8]));
        assert_eq!(outcome.violations, Vec::<String>::new());
    }

    /// Found by seeds 1102 and 2760: a blindness a few seconds longer than
    /// `blind_alert_after` is alerted or not as the probes' phase falls (a
    /// restart shifts it), and after the clock was set back a restarted
    /// medic counts it from its own start; the `blind` alert is compared
    /// only beyond both.
    #[test]
    fn a_blindness_at_the_probes_mercy_is_not_compared() {
        for (seed, keep) in [(1102, vec![2, 3]), (2760, (0..7).collect())] {
            let outcome = play(&Schedule::of(seed).keeping(keep));
            assert_eq!(outcome.violations, Vec::<String>::new(), "seed {seed}");
        }
        let long = [Fault {
            at: Duration::from_secs(60),
            kind: FaultKind::Blind(0, Duration::from_secs(400)),
        }];
        assert!(blind_alert_judged(&long));
    }

    /// A service that dies for good escalates, and its alert reaches the
    /// sink (exactly once: the invariant `checks::delivered`).
    #[test]
    fn an_escalation_reaches_the_sink() {
        let schedule = Schedule {
            seed: 0,
            units: 2,
            faults: vec![Fault {
                at: Duration::from_secs(60),
                kind: FaultKind::Dead(1),
            }],
            keep: vec![0],
        };
        let outcome = play(&schedule);
        assert_eq!(outcome.violations, Vec::<String>::new());
        let mut taken = outcome
            .trace
            .iter()
            .filter(|l| l.contains("pager takes alert"));
        assert!(taken.next().is_some(), "{:#?}", outcome.trace);
    }

    /// An escalation while the sink refuses, or hangs, for ten minutes
    /// reaches it once it answers again, exactly once (a hung attempt ends
    /// at the sink's timeout: without that bound, seen here first, one hang
    /// stalled the simulated sink's deliveries for good).
    #[test]
    fn an_escalation_outlasts_a_sink_that_refuses_or_hangs() {
        for sink in [FaultKind::SinkDown, FaultKind::SinkHangs] {
            let lasts = Duration::from_secs(600);
            let schedule = Schedule {
                seed: 0,
                units: 2,
                faults: vec![
                    Fault {
                        at: Duration::from_secs(50),
                        kind: sink(lasts),
                    },
                    Fault {
                        at: Duration::from_secs(60),
                        kind: FaultKind::Dead(1),
                    },
                ],
                keep: vec![0, 1],
            };
            let outcome = play(&schedule);
            assert_eq!(outcome.violations, Vec::<String>::new());
            let taken: Vec<f64> = outcome
                .trace
                .iter()
                .filter(|l| l.contains("pager takes alert"))
                .filter_map(|l| l.split_whitespace().next()?.parse().ok())
                .collect();
            assert!(
                !taken.is_empty() && taken.iter().all(|&at| at >= 650.0),
                "{:#?}",
                outcome.trace
            );
        }
    }

    /// A quiet world: medic starts, watches, stops, and nothing is violated.
    #[test]
    fn a_quiet_world_breaks_nothing() {
        let outcome = play(&Schedule::of(4).keeping(Vec::new()));
        assert_eq!(outcome.violations, Vec::<String>::new());
    }
}
