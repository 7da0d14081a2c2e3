//! The evidence an incident holds reads exactly as the old copy-and-extend
//! gave it (one owned map: the opening failure's evidence and latency, then
//! every failure counted while not acting, and a failed deploy's evidence,
//! each extending it), for random failures across probes, actions, deploys
//! and time jumps.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::RngSeed;

use super::super::{Ctx, Machine, Phase, millis};
use super::IncidentEvidence;
use crate::observation::{Evidence, Observation, RESTART_EXPECTED_FROM, Urgency};
use crate::policy::{Policy, ProbeTiming};
use crate::slots::Slots;
use crate::vocabulary::ActionResult;

/// Every key a probe or medic may write, `latency_ms` included.
const KEYS: [&str; 5] = [
    "status",
    "error",
    "body",
    "latency_ms",
    RESTART_EXPECTED_FROM,
];

#[derive(Debug, Clone)]
enum Step {
    Fail {
        probe: usize,
        urgency: Urgency,
        latency_ms: u64,
        evidence: Evidence,
    },
    Ok(usize),
    /// The running action's (or deploy command's) result.
    Done,
    Failed(Evidence),
    Deploy,
    Recover,
    Wait(u64),
}

fn evidence() -> impl Strategy<Value = Evidence> {
    prop::collection::btree_map(prop::sample::select(KEYS.to_vec()), 0u8..3, 0..4).prop_map(|map| {
        map.into_iter()
            .map(|(k, v)| (k.to_owned(), v.into()))
            .collect()
    })
}

fn step() -> impl Strategy<Value = Step> {
    let urgency = prop_oneof![
        4 => Just(Urgency::Normal),
        1 => Just(Urgency::Decisive),
        1 => Just(Urgency::Gone),
        1 => Just(Urgency::EngineRestarts),
        1 => Just(Urgency::Commanded),
    ];
    prop_oneof![
        8 => (0usize..3, urgency, 0u64..3, evidence()).prop_map(|(probe, urgency, latency_ms, evidence)| {
            Step::Fail { probe, urgency, latency_ms, evidence }
        }),
        3 => (0usize..3).prop_map(Step::Ok),
        2 => Just(Step::Done),
        2 => evidence().prop_map(Step::Failed),
        1 => Just(Step::Deploy),
        1 => Just(Step::Recover),
        2 => (0u64..120).prop_map(Step::Wait),
    ]
}

/// The old bookkeeping: the incident's own map, copied and extended.
#[derive(Default)]
struct CopyAndExtend {
    incident: Option<String>,
    evidence: Evidence,
    /// The last failure of a person's restart or a deploy's replacement under
    /// way: the incident's, should the target not come back in time.
    expected: Option<Observation>,
}

impl CopyAndExtend {
    /// What `open_incident` copied from the failure that opened an incident.
    fn opened_by(observation: &Observation) -> Evidence {
        let mut evidence = observation.evidence.clone();
        evidence.insert("latency_ms".into(), millis(observation.latency).into());
        if observation.urgency == Urgency::EngineRestarts {
            evidence
                .entry(RESTART_EXPECTED_FROM)
                .or_insert_with(|| "the engine".into());
        }
        evidence
    }

    /// Follows one step the machine took from `before`: what the old code
    /// extended the open incident with, and what a new incident started from.
    fn follow(&mut self, step: &Step, before: Phase, after: Phase, incident: Option<String>) {
        let acting = matches!(
            before,
            Phase::Acting { .. }
                | Phase::Verifying { .. }
                | Phase::DeployRunning { .. }
                | Phase::DeployVerifying { .. }
        );
        let observation = match step {
            Step::Fail { .. } => Some(observation(step)),
            _ => None,
        };
        // A failed deploy's evidence: a command that failed, or the new version dying.
        let deploy_failed = match (step, before) {
            (Step::Failed(evidence), Phase::DeployRunning { .. }) => Some(evidence.clone()),
            (
                Step::Fail {
                    urgency: Urgency::Decisive | Urgency::EngineRestarts,
                    evidence,
                    ..
                },
                Phase::DeployVerifying { .. },
            ) => Some(evidence.clone()),
            _ => None,
        };
        if let Some(observation) = observation.as_ref().filter(|_| !acting)
            && self.incident.is_some()
        {
            self.evidence.extend(observation.evidence.clone());
            let latency = millis(observation.latency);
            self.evidence.insert("latency_ms".into(), latency.into());
        }
        if self.incident.is_some() {
            self.evidence
                .extend(deploy_failed.clone().unwrap_or_default());
        }
        let on_purpose = |o: &&Observation| matches!(o.urgency, Urgency::Gone | Urgency::Commanded);
        match (after, observation.as_ref().filter(on_purpose)) {
            // The stop or removal that began it.
            (Phase::Expecting { .. }, Some(observation))
                if !matches!(before, Phase::Expecting { .. }) =>
            {
                self.expected = Some(observation.clone())
            }
            (Phase::Expecting { .. }, _) => {}
            _ if incident == self.incident => self.expected = None,
            _ => {}
        }
        if incident != self.incident {
            let not_back = matches!((step, before), (Step::Wait(_), Phase::Expecting { .. }));
            self.evidence = match (&incident, deploy_failed, &observation) {
                (None, _, _) => Evidence::new(),
                // Not back within its grace: the stop's failure, no longer awaited.
                (Some(_), None, None) if not_back => {
                    let mut failure = self.expected.take().expect("a failure while expecting");
                    if let Some(who) = failure.evidence.remove(RESTART_EXPECTED_FROM) {
                        failure.evidence.insert("stopped_by".into(), who);
                    }
                    failure.urgency = Urgency::Decisive;
                    Self::opened_by(&failure)
                }
                (Some(_), Some(deploy), _) => deploy,
                (Some(_), None, Some(observation)) => Self::opened_by(observation),
                // A person's recover, a deploy that timed out.
                (Some(_), None, None) => Evidence::new(),
            };
            self.incident = incident;
        }
    }
}

fn observation(step: &Step) -> Observation {
    match step {
        Step::Fail {
            urgency,
            latency_ms,
            evidence,
            ..
        } => {
            let mut observation = Observation::fail(Duration::from_millis(*latency_ms), "HTTP 404")
                .with_urgency(*urgency);
            observation.evidence = evidence.clone();
            observation
        }
        _ => Observation::ok(Duration::from_millis(1), "200 OK"),
    }
}

fn policy(can_restart: bool, can_rollback: bool, failure_threshold: u32) -> Policy {
    let probe = ProbeTiming {
        interval: Duration::from_secs(3600),
        timeout: Duration::from_secs(1),
    };
    Policy {
        can_restart,
        can_rollback,
        failure_threshold,
        probes: vec![probe; 3],
        ..Policy::default()
    }
}

/// Runs `steps` on one machine and checks the incident's evidence after each.
fn check(policy: Policy, steps: &[Step]) {
    let start = Instant::now();
    let mut now = start;
    let mut machine = Machine::new(now, "web".into(), Arc::new(policy));
    let (mut out, mut next_incident) = (VecDeque::new(), 0);
    let mut slots = Slots::new(1);
    let mut ctx = Ctx {
        out: &mut out,
        slots: &mut slots,
        next_incident: &mut next_incident,
        incident_prefix: "i",
        dependencies_ready: true,
    };
    let mut old = CopyAndExtend::default();
    for step in steps {
        let before = machine.phase;
        match step {
            Step::Fail { probe, .. } => {
                machine.on_observation(now, *probe, observation(step), &mut ctx)
            }
            Step::Ok(probe) => machine.on_observation(now, *probe, observation(step), &mut ctx),
            Step::Done => finish(
                &mut machine,
                now,
                ActionResult::Done {
                    message: "exit 0".into(),
                    evidence: Evidence::new(),
                },
                &mut ctx,
            ),
            Step::Failed(evidence) => finish(
                &mut machine,
                now,
                ActionResult::Failed {
                    message: "exit 1".into(),
                    evidence: evidence.clone(),
                },
                &mut ctx,
            ),
            Step::Deploy => machine.deploy(
                now,
                Duration::from_secs(60),
                Duration::from_secs(30),
                &mut ctx,
            ),
            Step::Recover => machine.recover(now, &mut ctx),
            Step::Wait(secs) => {
                let end = now + Duration::from_secs(*secs);
                while let Some(at) = machine.next_deadline().filter(|at| *at <= end) {
                    now = now.max(at);
                    machine.on_timeout(now, &mut ctx);
                }
                now = end;
            }
        }
        ctx.out.clear();
        // As the supervisor would: a decided job launches at once.
        if let Some(job) = ctx.slots.next_launch() {
            machine.launching(now, job.id);
            machine.on_launched(now, job.id);
            ctx.slots.finished(&job.unit, job.id);
        }
        let incident = machine.incident.as_ref();
        old.follow(step, before, machine.phase, incident.map(|i| i.id.clone()));
        let Some(incident) = incident else { continue };
        assert_eq!(
            incident.evidence.merged(),
            old.evidence,
            "after {step:?} from {before:?}"
        );
        for key in KEYS {
            assert_eq!(incident.evidence.get(key).as_ref(), old.evidence.get(key));
        }
        // At most one write per key, plus the newest.
        assert!(incident.evidence.layers.len() <= KEYS.len() + 1);
    }
}

/// One write per key set, in random order, read back as one map extended in turn.
fn writes() -> impl Strategy<Value = Vec<(bool, Evidence, u64)>> {
    prop::collection::vec((any::<bool>(), evidence(), 0u64..3), 0..30)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 500,
        rng_seed: RngSeed::Fixed(0x6d65_6469_6365),
        ..ProptestConfig::default()
    })]

    /// An incident's evidence is what the old copy-and-extend carried, step by step.
    #[test]
    fn reads_as_the_old_copy_and_extend(
        can_restart in any::<bool>(),
        can_rollback in any::<bool>(),
        failure_threshold in 1u32..3,
        steps in prop::collection::vec(step(), 1..80),
    ) {
        check(policy(can_restart, can_rollback, failure_threshold), &steps);
    }

    /// Failures and added keys in any order read as one map extended in turn,
    /// and no more writes are kept than keys they set last, plus the newest.
    #[test]
    fn writes_read_as_one_map_extended_in_turn(writes in writes()) {
        let mut held = IncidentEvidence::default();
        let mut map = Evidence::new();
        for (failure, evidence, latency) in writes {
            map.extend(evidence.clone());
            if failure {
                let mut observation = Observation::fail(Duration::from_millis(latency), "HTTP 404");
                observation.evidence = evidence;
                map.insert("latency_ms".into(), latency.into());
                held.failure(Arc::new(observation));
            } else {
                held.add(evidence);
            }
            prop_assert_eq!(held.merged(), map.clone());
            prop_assert!(held.layers.len() <= map.len() + 1);
        }
    }
}

/// A result: the deploy command's while one runs, else the running job's.
fn finish(machine: &mut Machine, now: Instant, result: ActionResult, ctx: &mut Ctx) {
    match (machine.phase, machine.job()) {
        (Phase::DeployRunning { .. }, _) | (_, None) => {
            machine.on_deploy_finished(now, result, ctx)
        }
        (_, Some(job)) => machine.on_finished(now, job, result, ctx),
    }
}
