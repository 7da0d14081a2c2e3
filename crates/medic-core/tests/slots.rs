//! The action slots in virtual time: several units, `max_concurrent_actions`,
//! jobs decided → queued → launched → finished, timed out or dropped. Table
//! tests of issue #28's cases, then properties over random storms.

// Not every helper of the shared world is used here.
#[allow(dead_code)]
mod support;

use std::time::Duration;

use insta::assert_snapshot;
use medic_core::{ActionResult, Control, Input, Observation, Policy, Step, Urgency};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use support::{World, policy};

const UNITS: [&str; 4] = ["a", "b", "c", "d"];

/// A world of `UNITS` (besides the world's own unit, which stays quiet) with
/// at most `limit` jobs at once.
fn world(policy: Policy, limit: usize) -> World {
    let mut world = World::new(policy.clone());
    world.sup.set_max_concurrent_actions(limit);
    for unit in UNITS {
        world.sup.add_unit(world.now, unit, policy.clone());
        observe(&mut world, unit, Observation::ok(Duration::ZERO, "200"));
    }
    world.lines.clear();
    world
}

fn observe(world: &mut World, unit: &str, observation: Observation) {
    world.input(Input::Observed {
        unit: unit.into(),
        probe: 0,
        observation,
    });
}

fn died() -> Observation {
    Observation::fail(Duration::ZERO, "died").with_urgency(Urgency::Decisive)
}

fn done() -> ActionResult {
    ActionResult::Done {
        message: "exit 0".into(),
        evidence: Default::default(),
    }
}

/// The lines about `unit`, in order.
fn lines(world: &World, unit: &str) -> String {
    let of: Vec<&str> = world
        .lines
        .iter()
        .filter(|(u, _)| u == unit)
        .map(|(_, line)| line.as_str())
        .collect();
    of.join(" ")
}

/// Issue #28, case 1: four restarts of 8 s each, one slot, a 10 s timeout.
/// Each waits its turn for up to 24 s, and none times out: the timeout
/// starts at launch.
#[test]
fn a_queued_restart_never_times_out_while_it_waits() {
    let ten = Policy {
        action_timeout: Duration::from_secs(10),
        ..policy()
    };
    let mut world = world(ten, 1);
    for unit in UNITS {
        observe(&mut world, unit, died());
    }
    for unit in UNITS {
        assert_eq!(world.running.len(), 1, "one slot");
        assert_eq!(
            world.running[0].unit, unit,
            "in the order they were decided"
        );
        world.advance(Duration::from_secs(8));
        world.finish_unit(unit, done());
        observe(&mut world, unit, Observation::ok(Duration::ZERO, "200"));
    }
    for unit in UNITS {
        assert_eq!(
            lines(&world, unit),
            "failing(1) restart(1) →restart(1) restart_done(1) recovered !info:recovered"
        );
    }
}

/// Issue #28, case 2: a service that recovers while its restart waits for a
/// slot is not restarted: the queued job is dropped, saying so.
#[test]
fn a_queued_restart_is_dropped_when_its_service_recovers() {
    let mut world = world(policy(), 1);
    observe(&mut world, "a", died());
    observe(&mut world, "b", died());
    observe(&mut world, "b", Observation::ok(Duration::ZERO, "200"));
    world.finish_unit("a", done());
    assert_snapshot!(lines(&world, "b"), @"failing(1) restart(1) recovered !info:recovered dropped(1)");
    assert!(world.running.is_empty(), "b's restart never launched");
    assert_eq!(world.sup.jobs(), (0, 0));
}

/// A pause holds a queued job (it is dropped); resuming decides it again, at
/// the back of the queue.
#[test]
fn a_pause_drops_a_queued_job_and_resume_decides_it_again() {
    let mut world = world(policy(), 1);
    observe(&mut world, "a", died());
    observe(&mut world, "b", died());
    world.input(Input::Control {
        unit: "b".into(),
        control: Control::Pause { until: None },
    });
    assert_eq!(world.sup.jobs(), (1, 0));
    world.input(Input::Control {
        unit: "b".into(),
        control: Control::Resume,
    });
    world.finish_unit("a", done());
    assert_snapshot!(lines(&world, "b"), @"failing(1) restart(1) paused(1) dropped(1) resumed(1) restart(1) →restart(1)");
}

/// A unit's next job waits until its previous one ended, even with slots
/// free: the core gave up on it, the shell still runs it.
#[test]
fn a_units_next_job_waits_for_the_one_given_up_on() {
    let mut world = world(policy(), 4);
    observe(&mut world, "a", died());
    world.advance(Duration::from_secs(305));
    assert_eq!(
        world.sup.jobs(),
        (1, 1),
        "attempt 2 waits for attempt 1 to end"
    );
    world.finish_unit(
        "a",
        ActionResult::TimedOut {
            after: Duration::from_secs(305),
        },
    );
    assert_snapshot!(lines(&world, "a"), @"failing(1) restart(1) →restart(1) restart_failed(1) restart(2) ignored →restart(2)");
}

/// A reload that stops watching a unit drops its queued job; a running one
/// keeps its slot until the shell reports it.
#[test]
fn a_removed_unit_keeps_its_slot_until_its_job_ends() {
    let mut world = world(policy(), 1);
    observe(&mut world, "a", died());
    observe(&mut world, "b", died());
    world.sup.remove_unit(world.now, "a");
    world.sup.remove_unit(world.now, "b");
    observe(&mut world, "c", died());
    assert_eq!(world.sup.jobs(), (1, 1), "a still runs; c waits");
    world.finish_unit("a", done());
    assert_eq!(world.running.len(), 1);
    assert_eq!(world.running[0].unit, "c");
}

fn storm_step() -> impl Strategy<Value = (usize, u8)> {
    (0..UNITS.len(), 0u8..10)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        rng_seed: RngSeed::Fixed(0x0073_6c6f_7473),
        ..ProptestConfig::default()
    })]

    /// For random storms: slots never exceed the limit, a queued job never
    /// times out, a dropped job never launches, and a result only counts for
    /// the job that carried it (never for a later step).
    #[test]
    fn the_action_life_cycle_holds_in_random_storms(
        limit in 1usize..3,
        script in prop::collection::vec(storm_step(), 1..150),
    ) {
        let mut world = world(policy(), limit);
        for (unit, what) in script {
            let unit = UNITS[unit];
            let before = world.lines.len();
            match what {
                0..=2 => observe(&mut world, unit, died()),
                3 => observe(&mut world, unit, Observation::fail(Duration::ZERO, "503")),
                4 => observe(&mut world, unit, Observation::ok(Duration::ZERO, "200")),
                5 | 6 => {
                    // The shell reports one of this unit's jobs (the oldest: a late one, maybe).
                    if let Some(at) = world.running.iter().position(|j| j.unit == unit) {
                        let job = world.running.remove(at);
                        let result = if what == 5 { done() } else {
                            ActionResult::Failed { message: "exit 1".into(), evidence: Default::default() }
                        };
                        world.input(Input::Finished { unit: unit.into(), job: job.id, result });
                        // Its result counts for its own step, or is ignored.
                        let first = world.lines[before..].iter().find(|(u, _)| u == unit).map(|(_, l)| l.clone());
                        let own = match job.step {
                            Step::Restart(k) => [format!("restart_done({k})"), format!("restart_failed({k})")],
                            Step::Rollback => ["rollback_done".to_owned(), "rollback_failed".to_owned()],
                        };
                        let first = first.unwrap_or_default();
                        prop_assert!(own.contains(&first) || first.starts_with("ignored"), "{:?} → {}", job.step, first);
                    }
                }
                7 => world.input(Input::Control { unit: unit.into(), control: Control::Reset }),
                8 => world.input(Input::Control { unit: unit.into(), control: Control::Pause { until: Some(world.now + Duration::from_secs(30)) } }),
                _ => world.advance(Duration::from_secs(100)),
            }
            let (running, queued) = world.sup.jobs();
            prop_assert!(running <= limit, "{running} jobs run, limit {limit}");
            prop_assert_eq!(running, world.running.len());
            prop_assert!(queued <= UNITS.len() + 1, "one queued job per unit at most");
        }
        // Every queued job either launched or was dropped: none ran after its drop,
        // and none timed out before it ran (a restart_failed needs a launch first).
        for unit in UNITS {
            let trace = lines(&world, unit);
            let mut decided = 0i64;
            for word in trace.split(' ') {
                if word.starts_with("restart(") || word == "rollback" { decided += 1; }
                let launched = ["→restart(", "→recreate(", "→rollback", "→finish-rollback"];
                if launched.iter().any(|l| word.starts_with(l)) || word.starts_with("dropped") {
                    decided -= 1;
                }
                prop_assert!((0..=1).contains(&decided), "{unit}: {trace}");
                if word.starts_with("restart_failed") || word.starts_with("rollback_failed") {
                    prop_assert_eq!(decided, 0, "{}: a queued job failed before it ran: {}", unit, trace);
                }
            }
        }
    }
}
