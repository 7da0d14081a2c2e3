//! The STATUS line's counts are kept as verdicts change: they always equal a
//! tally of every unit's health, without walking the units.

use std::time::{Duration, Instant};

use medic_core::supervisor::HealthCounts;
use medic_core::{Health, Input, Observation, Policy, ProbeTiming, Supervisor};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Ok(usize),
    Fail(usize),
    Blind(usize),
    Wait(u64),
    Remove(usize),
    Add(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..6usize).prop_map(Step::Ok),
        (0..6usize).prop_map(Step::Fail),
        (0..6usize).prop_map(Step::Blind),
        (1..40u64).prop_map(Step::Wait),
        (0..6usize).prop_map(Step::Remove),
        (0..6usize).prop_map(Step::Add),
    ]
}

fn policy() -> Policy {
    Policy {
        probes: vec![ProbeTiming {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
        }],
        ..Policy::default()
    }
}

fn tally(sup: &Supervisor, now: Instant) -> HealthCounts {
    let mut counts = HealthCounts::default();
    for health in sup.healths(now) {
        match health {
            Health::Healthy => counts.healthy += 1,
            Health::Unhealthy => counts.unhealthy += 1,
            Health::Unknown => counts.unknown += 1,
        }
    }
    counts
}

proptest! {
    #[test]
    fn counts_equal_a_tally_of_every_unit(steps in proptest::collection::vec(step(), 1..120)) {
        let mut now = Instant::now();
        let mut sup = Supervisor::new("t-", 1);
        for n in 0..4 {
            sup.add_unit(now, &format!("u{n}"), policy());
        }
        for step in steps {
            let observe = |sup: &mut Supervisor, unit: usize, observation| {
                let input = Input::Observed { unit: format!("u{unit}"), probe: 0, observation };
                sup.handle_input(now, input).ok();
            };
            match step {
                Step::Ok(u) => observe(&mut sup, u, Observation::ok(Duration::ZERO, "fine")),
                Step::Fail(u) => observe(&mut sup, u, Observation::fail(Duration::ZERO, "down")),
                Step::Blind(u) => observe(&mut sup, u, Observation::blind(Duration::ZERO, "no engine")),
                Step::Wait(secs) => {
                    now += Duration::from_secs(secs);
                    sup.handle_timeout(now);
                }
                Step::Remove(u) => sup.remove_unit(now, &format!("u{u}")),
                Step::Add(u) => sup.add_unit(now, &format!("u{u}"), policy()),
            }
            while sup.poll_action().is_some() {}
            prop_assert_eq!(sup.health_counts(), tally(&sup, now));
        }
    }
}
