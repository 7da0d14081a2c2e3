//! The simulated world medic watches: services that die, crash-loop, break
//! and come back; an engine whose calls are slow, hang or fail; probes that
//! go blind. It stands behind `medic_daemon::world::World`, so the real
//! loop probes and acts on it, and it checks at every action that medic
//! never acts twice at once on a unit, after SIGTERM, or past
//! `max_attempts`. Its clock is tokio's (paused): nothing here waits for
//! real time, so one seed plays one way.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use medic_core::{ActionResult, Evidence, Observation, Step};
use medic_daemon::clock::wall_now;
use medic_daemon::job::{Job, JobContext};
use medic_daemon::world::{CheckRun, Post, PostRun, World};
use tokio::time::Instant;

use crate::faults::{Fault, FaultKind, unit_name};

/// How long a service stays up after a recovery, when it crash-loops.
const RELAPSE_AFTER: Duration = Duration::from_secs(30);
/// How long an ordinary restart or rollback takes.
const ACTION_TAKES: Duration = Duration::from_secs(2);
/// How long every action takes once a storm loads the engine: longer than
/// the default action timeout divided among the queue, so a storm's
/// actions wait for their slots.
const STORM_ACTION_TAKES: Duration = Duration::from_secs(30);
/// How long a failing engine takes to answer 500.
const FAILURE_TAKES: Duration = Duration::from_secs(1);
/// The one alert sink of the config (a webhook; the world stands in for it).
pub const SINK: &str = "pager";
/// How long a sink takes to answer a delivery.
const POST_TAKES: Duration = Duration::from_millis(50);
/// How long a probe takes.
const PROBE_TAKES: Duration = Duration::from_millis(5);

/// The world, shared by the probes and jobs medic runs on it and the driver.
#[derive(Debug, Clone)]
pub struct SimWorld(Arc<Mutex<State>>);

/// What the world saw medic do, for the checks after the run.
#[derive(Debug, Default)]
pub struct Record {
    /// Every action medic started, in order.
    pub jobs: Vec<JobRecord>,
    /// Per unit, the wall times of the successful observations it served.
    pub oks: Vec<Vec<Timestamp>>,
    /// Every alert a sink took: the sink and the alert's id.
    pub deliveries: Vec<(String, String)>,
    /// The engine faults and the actions they met, in order.
    pub met: Vec<Met>,
    /// The units whose rollback a stop of medic cut short (kill -9, SIGTERM).
    pub cut_rollbacks: BTreeSet<usize>,
    /// The units that relapsed (crash-loop) while their probes were blind.
    pub relapsed_unseen: BTreeSet<usize>,
    /// What broke an invariant, as it happened.
    pub violations: Vec<String>,
    /// What happened, one line per thing, for the determinism digest.
    pub trace: Vec<String>,
}

/// One action medic started.
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// The unit's index.
    pub unit: usize,
    /// The incident it acted for.
    pub incident: String,
    /// Which step.
    pub step: Step,
    /// How long the recovery log was then: the lines before this offset
    /// came before the job, whatever the wall clock did.
    pub log_offset: u64,
}

/// An engine fault and the action it met: the unit's `nth` action of `step`
/// (counted from 0 over the whole run). A run without medic's restarts is
/// given these, so each action meets what it met in the run with them (see
/// `run::play`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Met {
    unit: usize,
    step: Step,
    nth: usize,
    engine: Engine,
}

#[derive(Debug)]
struct State {
    /// The tokio instant and the simulated time at which this life of medic began.
    life: (Instant, Duration),
    /// Faults on services not yet applied, in time order.
    faults: VecDeque<Fault>,
    /// Engine faults tied to the actions they are to meet, whenever those come.
    pinned: Vec<Met>,
    units: Vec<Unit>,
    /// medic was told to stop in this life: nothing may start any more.
    terminated: bool,
    /// medic is being killed: what it runs is cut.
    killed: bool,
    max_attempts: u32,
    /// How long an ordinary action takes now (longer once a storm loads the engine).
    takes: Duration,
    /// The alert sink refuses (false) or hangs (true) until then.
    sink_fault: Option<(bool, Duration)>,
    next_job: u64,
    record: Record,
    /// medic's recovery log.
    log: std::path::PathBuf,
}

#[derive(Debug)]
struct Unit {
    up: bool,
    cure: Cure,
    relapses: u32,
    relapse_at: Option<Duration>,
    /// It comes back by itself then, unless something worse happened meanwhile.
    heal_at: Option<Duration>,
    /// How the next actions on it go (none: as usual).
    engine: VecDeque<Engine>,
    blind_until: Duration,
    /// The action on it now, if any.
    running: Option<u64>,
    version: u64,
}

/// What brings a dead service back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cure {
    Restart,
    Rollback,
    Nothing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Slow(Duration),
    Hung,
    Failing,
}

impl SimWorld {
    /// A world of `units` healthy services that will suffer `faults` (the
    /// services' own; medic's are the driver's), and `pinned` engine faults
    /// on the actions they name.
    pub fn new(
        units: usize,
        faults: Vec<Fault>,
        pinned: Vec<Met>,
        max_attempts: u32,
        log: std::path::PathBuf,
    ) -> Self {
        let units = (0..units)
            .map(|_| Unit {
                up: true,
                cure: Cure::Restart,
                relapses: 0,
                relapse_at: None,
                heal_at: None,
                engine: VecDeque::new(),
                blind_until: Duration::ZERO,
                running: None,
                version: 1,
            })
            .collect::<Vec<_>>();
        let record = Record {
            oks: vec![Vec::new(); units.len()],
            ..Record::default()
        };
        Self(Arc::new(Mutex::new(State {
            life: (Instant::now(), Duration::ZERO),
            faults: faults.into(),
            pinned,
            units,
            terminated: false,
            killed: false,
            max_attempts,
            takes: ACTION_TAKES,
            sink_fault: None,
            next_job: 0,
            record,
            log,
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The world's state stays consistent across a panic in a check.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new medic starts at simulated time `at` (call inside its runtime).
    pub fn begin_life(&self, at: Duration) {
        let mut s = self.state();
        s.life = (Instant::now(), at);
        s.terminated = false;
        s.killed = false;
        s.record
            .trace
            .push(format!("{:>8.3} medic starts", at.as_secs_f64()));
    }

    /// The simulated time now.
    pub fn now(&self) -> Duration {
        self.state().now()
    }

    /// medic was sent SIGTERM: from now on it may start nothing.
    pub fn terminate(&self) {
        let mut s = self.state();
        let now = s.now();
        s.terminated = true;
        s.record
            .trace
            .push(format!("{:>8.3} SIGTERM", now.as_secs_f64()));
    }

    /// medic is killed (kill -9): its runtime goes next, with every job in it.
    pub fn kill(&self) {
        self.state().killed = true;
        self.note("kill -9".into());
    }

    /// Notes a line of the trace.
    pub fn note(&self, line: String) {
        let mut s = self.state();
        let now = s.now();
        s.record
            .trace
            .push(format!("{:>8.3} {line}", now.as_secs_f64()));
    }

    /// Applies the faults due by now, and tells whether unit `i` is down
    /// for good and whether it is down.
    pub fn settle(&self) -> Vec<(bool, bool)> {
        let mut s = self.state();
        let now = s.now();
        s.catch_up(now);
        s.units
            .iter()
            .map(|u| (u.cure == Cure::Nothing, !u.up))
            .collect()
    }

    /// Takes what the world recorded.
    pub fn take_record(&self) -> Record {
        std::mem::take(&mut self.state().record)
    }
}

impl State {
    fn now(&self) -> Duration {
        self.life.1 + self.life.0.elapsed()
    }

    fn violation(&mut self, what: String) {
        let now = self.now();
        self.record
            .trace
            .push(format!("{:>8.3} VIOLATION {what}", now.as_secs_f64()));
        self.record.violations.push(what);
    }

    /// Applies every fault due by `now`, and relapses of crash-looping services.
    fn catch_up(&mut self, now: Duration) {
        while self.faults.front().is_some_and(|f| f.at <= now) {
            let Some(fault) = self.faults.pop_front() else {
                break;
            };
            self.record
                .trace
                .push(format!("{:>8.3} {fault}", now.as_secs_f64()));
            self.apply(&fault.kind, now);
        }
        for (i, unit) in self.units.iter_mut().enumerate() {
            if unit.relapse_at.is_some_and(|at| at <= now) {
                unit.relapse_at = None;
                unit.up = false;
                if unit.blind_until > now {
                    self.record.relapsed_unseen.insert(i);
                }
            }
            if unit.heal_at.is_some_and(|at| at <= now) {
                unit.heal_at = None;
                if unit.cure == Cure::Restart {
                    unit.up = true;
                }
            }
        }
    }

    fn apply(&mut self, kind: &FaultKind, now: Duration) {
        let (i, down, cure) = match *kind {
            FaultKind::Crash(i) => (i, true, Cure::Restart),
            FaultKind::CrashLoop(i, n) => {
                if let Some(u) = self.units.get_mut(i) {
                    u.relapses = n;
                }
                (i, true, Cure::Restart)
            }
            FaultKind::Broken(i) => (i, true, Cure::Rollback),
            FaultKind::Dead(i) => (i, true, Cure::Nothing),
            FaultKind::Flap(i, d) => {
                if let Some(u) = self.units.get_mut(i) {
                    u.heal_at = Some(now + d);
                }
                (i, true, Cure::Restart)
            }
            FaultKind::SlowEngine(i, d) => self.engine(i, Engine::Slow(d)),
            FaultKind::HungEngine(i) => self.engine(i, Engine::Hung),
            FaultKind::FailingEngine(i) => self.engine(i, Engine::Failing),
            FaultKind::Blind(i, d) => {
                if let Some(u) = self.units.get_mut(i) {
                    u.blind_until = now + d;
                }
                return;
            }
            FaultKind::Storm(n) => {
                self.takes = STORM_ACTION_TAKES;
                for i in 0..n.min(self.units.len()) {
                    let heals = Duration::from_secs(20 + (i as u64 * 7) % 100);
                    let kind = match i % 2 {
                        0 => FaultKind::Crash(i),
                        _ => FaultKind::Flap(i, heals),
                    };
                    self.apply(&kind, now);
                }
                return;
            }
            FaultKind::SinkDown(d) => {
                self.sink_fault = Some((false, now + d));
                return;
            }
            FaultKind::SinkHangs(d) => {
                self.sink_fault = Some((true, now + d));
                return;
            }
            FaultKind::Kill9(_) | FaultKind::Term | FaultKind::ClockStep(_) => return,
        };
        if let Some(u) = self.units.get_mut(i)
            && down
        {
            u.up = false;
            // A worse fault wins over a milder one still present.
            let worse = matches!(
                (u.cure, cure),
                (_, Cure::Nothing) | (Cure::Restart, Cure::Rollback)
            );
            if u.cure == Cure::Restart || worse {
                u.cure = cure;
            }
        }
    }

    fn engine(&mut self, i: usize, engine: Engine) -> (usize, bool, Cure) {
        if let Some(u) = self.units.get_mut(i) {
            u.engine.push_back(engine);
        }
        (i, false, Cure::Restart)
    }

    /// An action ended on unit `i`: what it did to the service.
    fn finish(&mut self, i: usize, id: u64, step: Step, engine: Option<Engine>) -> ActionResult {
        let now = self.now();
        self.catch_up(now);
        self.record.trace.push(format!(
            "{:>8.3} job {id} on {} ends",
            now.as_secs_f64(),
            unit_name(i)
        ));
        let Some(u) = self.units.get_mut(i) else {
            return failed("no such service");
        };
        if matches!(engine, Some(Engine::Failing)) {
            return failed("the engine answered 500");
        }
        let cured = match step {
            Step::Restart(_) => u.cure == Cure::Restart,
            Step::Rollback => {
                if u.cure != Cure::Nothing {
                    u.version += 1;
                }
                u.cure != Cure::Nothing
            }
        };
        if cured && !u.up {
            u.up = true;
            u.cure = Cure::Restart;
            if u.relapses > 0 {
                u.relapses -= 1;
                u.relapse_at = Some(now + RELAPSE_AFTER);
            }
        }
        ActionResult::Done {
            message: "done".into(),
            evidence: Evidence::new(),
        }
    }
}

fn failed(message: &str) -> ActionResult {
    ActionResult::Failed {
        message: message.into(),
        evidence: Evidence::new(),
    }
}

/// The index of a unit from its name (`svc-007`).
fn index(unit: &str) -> Option<usize> {
    unit.strip_prefix("svc-")?.parse().ok()
}

/// Frees a unit's action when the job ends, or is dropped (cancelled at its
/// deadline, or by a stop of medic: then a rollback's is recorded as cut).
struct Running {
    world: SimWorld,
    unit: usize,
    id: u64,
    step: Step,
    ended: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut s = self.world.state();
        if let Some(u) = s.units.get_mut(self.unit)
            && u.running == Some(self.id)
        {
            u.running = None;
        }
        if !self.ended && self.step == Step::Rollback && (s.killed || s.terminated) {
            s.record.cut_rollbacks.insert(self.unit);
        }
    }
}

impl Post for SimWorld {
    /// A sink that takes every alert: it counts as delivered when the
    /// answer reaches medic (a kill -9 before that leaves it to the outbox).
    /// While it refuses, an attempt fails at once; while it hangs, an
    /// attempt never answers (medic gives up at the sink's timeout).
    fn post(&self, sink: &str, id: &str, _body: &[u8]) -> PostRun {
        let (world, sink, id) = (self.clone(), sink.to_owned(), id.to_owned());
        let fault = {
            let mut s = self.state();
            let now = s.now();
            s.catch_up(now);
            s.sink_fault.filter(|(_, until)| *until > now)
        };
        Box::pin(async move {
            match fault {
                Some((true, _)) => return std::future::pending().await,
                Some((false, _)) => return Err("connection refused".to_owned()),
                None => {}
            }
            tokio::time::sleep(POST_TAKES).await;
            let mut s = world.state();
            let now = s.now();
            s.record.trace.push(format!(
                "{:>8.3} {sink} takes alert {id}",
                now.as_secs_f64()
            ));
            s.record.deliveries.push((sink, id));
            Ok(())
        })
    }
}

impl World for SimWorld {
    fn check(&self, unit: &str, _probe: usize) -> CheckRun {
        let observation = {
            let mut s = self.state();
            let now = s.now();
            s.catch_up(now);
            match index(unit) {
                Some(i) if s.units.get(i).is_some_and(|u| u.blind_until > now) => {
                    Observation::blind(PROBE_TAKES, "the engine is unreachable")
                }
                Some(i) if s.units.get(i).is_some_and(|u| u.up) => {
                    s.record.oks[i].push(wall_now());
                    Observation::ok(PROBE_TAKES, "up")
                }
                _ => Observation::fail(PROBE_TAKES, "exited with 1"),
            }
        };
        Box::pin(async move {
            tokio::time::sleep(PROBE_TAKES).await;
            observation
        })
    }

    fn job(&self, unit: &str, step: Step, context: &JobContext) -> Job {
        let Some(i) = index(unit) else {
            return Box::pin(async { failed("no such service") });
        };
        let mut s = self.state();
        let now = s.now();
        s.catch_up(now);
        s.next_job += 1;
        let id = s.next_job;
        s.record.trace.push(format!(
            "{:>8.3} job {id} on {unit}: {step:?} for {}",
            now.as_secs_f64(),
            context.incident
        ));
        if s.terminated {
            s.violation(format!("{unit}: {step:?} started after SIGTERM"));
        }
        if let Some(other) = s.units.get(i).and_then(|u| u.running) {
            s.violation(format!(
                "{unit}: {step:?} started while job {other} still runs on it"
            ));
        }
        if let Step::Restart(k) = step
            && k > s.max_attempts
        {
            let max = s.max_attempts;
            s.violation(format!("{unit}: restart attempt {k} of at most {max}"));
        }
        let log_offset = std::fs::metadata(&s.log).map_or(0, |m| m.len());
        let nth = s
            .record
            .jobs
            .iter()
            .filter(|j| j.unit == i && j.step == step)
            .count();
        s.record.jobs.push(JobRecord {
            unit: i,
            incident: context.incident.clone(),
            step,
            log_offset,
        });
        let pinned = s
            .pinned
            .iter()
            .position(|m| m.unit == i && m.step == step && m.nth == nth)
            .map(|at| s.pinned.remove(at).engine);
        let engine = s.units.get_mut(i).and_then(|u| {
            u.running = Some(id);
            pinned.or_else(|| u.engine.pop_front())
        });
        if let Some(engine) = engine {
            s.record.met.push(Met {
                unit: i,
                step,
                nth,
                engine,
            });
        }
        let usual = s.takes;
        drop(s);
        let mut running = Running {
            world: self.clone(),
            unit: i,
            id,
            step,
            ended: false,
        };
        Box::pin(async move {
            let takes = match engine {
                Some(Engine::Hung) => return std::future::pending().await,
                Some(Engine::Slow(d)) => d,
                Some(Engine::Failing) => FAILURE_TAKES,
                None => usual,
            };
            tokio::time::sleep(takes).await;
            let result = running.world.state().finish(i, id, step, engine);
            running.ended = true;
            drop(running);
            result
        })
    }

    fn version(&self, unit: &str) -> Option<serde_json::Value> {
        let s = self.state();
        let u = s.units.get(index(unit)?)?;
        Some(serde_json::json!({ "version": u.version }))
    }
}
