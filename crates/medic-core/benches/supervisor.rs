//! State machine steps per second, in virtual time: the hot path (an ok
//! observation of a healthy unit among 10,000), a whole incident (failure,
//! restart, verification, recovery), and the deadline index (`handle_timeout`
//! with 10,000 units). `cargo bench -p medic-core` (scripts/bench runs it).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use medic_core::{ActionResult, Input, Observation, Policy, ProbeTiming, Supervisor, Urgency};

const UNITS: usize = 10_000;

fn policy() -> Policy {
    Policy {
        probes: vec![ProbeTiming {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
        }],
        ..Policy::default()
    }
}

fn observed(unit: &str, observation: Observation) -> Input {
    Input::Observed {
        unit: unit.to_owned(),
        probe: 0,
        observation,
    }
}

/// A supervisor with `UNITS` healthy units; the names and the clock it was built at.
fn healthy_fleet() -> (Supervisor, Vec<String>, Instant) {
    let now = Instant::now();
    let mut sup = Supervisor::new("b", 0);
    let names: Vec<String> = (0..UNITS).map(|i| format!("svc-{i}")).collect();
    for name in &names {
        sup.add_unit(now, name, policy());
        sup.handle_input(
            now,
            observed(name, Observation::ok(Duration::from_millis(1), "200")),
        )
        .expect("the unit exists");
    }
    while sup.poll_action().is_some() {}
    (sup, names, now)
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("supervisor");
    group.throughput(Throughput::Elements(1));

    let (mut sup, names, start) = healthy_fleet();
    let mut i = 0usize;
    group.bench_function("ok observation, 10k healthy units", |b| {
        b.iter(|| {
            i += 1;
            let now = start + Duration::from_millis(i as u64 % 5_000);
            let name = &names[i % UNITS];
            let input = observed(name, Observation::ok(Duration::from_millis(1), "200"));
            sup.handle_input(now, black_box(input))
                .expect("the unit exists");
            while let Some(action) = sup.poll_action() {
                black_box(action);
            }
        });
    });

    let mut at = start;
    group.bench_function("handle_timeout + poll_timeout, 10k units", |b| {
        b.iter(|| {
            at += Duration::from_millis(1);
            sup.handle_timeout(black_box(at));
            black_box(sup.poll_timeout());
        });
    });

    group.bench_function("whole incident: died, restart, verified, recovered", |b| {
        b.iter_batched(
            || {
                let now = Instant::now();
                let mut one = Supervisor::new("b", 0);
                one.add_unit(now, "web", policy());
                one.handle_input(
                    now,
                    observed("web", Observation::ok(Duration::from_millis(1), "200")),
                )
                .expect("the unit exists");
                while one.poll_action().is_some() {}
                (one, now)
            },
            |(mut one, now)| {
                let died = Observation::fail(Duration::from_millis(1), "died")
                    .with_urgency(Urgency::Decisive);
                let steps = [
                    observed("web", died),
                    Input::Finished {
                        unit: "web".into(),
                        // The first job of a new supervisor.
                        job: medic_core::JobId(1),
                        result: ActionResult::Done {
                            message: "restarted".into(),
                            evidence: Default::default(),
                        },
                    },
                    observed("web", Observation::ok(Duration::from_millis(1), "200")),
                ];
                for (k, input) in steps.into_iter().enumerate() {
                    one.handle_input(now + Duration::from_millis(k as u64), input)
                        .expect("the unit exists");
                    while let Some(action) = one.poll_action() {
                        black_box(action);
                    }
                }
                black_box(one)
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(supervisor, benches);
criterion_main!(supervisor);
