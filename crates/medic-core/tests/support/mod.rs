//! A virtual-time world around the supervisor: scripted inputs in, a compact
//! trace of decisions out. Time jumps from deadline to deadline; nothing sleeps.

use std::time::{Duration, Instant};

use medic_core::storm::Change;
use medic_core::{
    Action, ActionResult, Control, Input, Job, Observation, Policy, Step, Supervisor, Urgency,
};

pub const UNIT: &str = "web";

pub struct World {
    pub sup: Supervisor,
    pub now: Instant,
    pub trace: Vec<String>,
    /// The trace with the unit each line is about, for worlds of several units.
    pub lines: Vec<(String, String)>,
    /// Jobs launched and not finished yet, oldest first.
    pub running: Vec<Job>,
    pub restarts: u32,
    /// When each restart was asked for, in virtual time.
    pub restart_times: Vec<Instant>,
    pub rollbacks: u32,
    /// Every alert, in order.
    pub alerts: Vec<medic_core::Alert>,
    /// How each deploy ended, in order (not traced).
    pub deploy_ends: Vec<medic_core::DeployEnd>,
    /// Why each deploy failed, if it did, in the same order.
    pub deploy_failures: Vec<Option<String>>,
    /// The policy every unit of the world was added with.
    pub policy: Policy,
    /// Provisional last known good records (only kept by the shell when there is none): not traced.
    pub provisional_lkg: u32,
    /// The messages of the recovery-log events not taken yet, oldest first.
    pub logged: std::collections::VecDeque<String>,
}

impl World {
    pub fn new(policy: Policy) -> Self {
        let start = Instant::now();
        let mut world = Self {
            sup: Supervisor::new("i", 0),
            now: start,
            trace: Vec::new(),
            lines: Vec::new(),
            running: Vec::new(),
            restarts: 0,
            restart_times: Vec::new(),
            rollbacks: 0,
            alerts: Vec::new(),
            deploy_ends: Vec::new(),
            deploy_failures: Vec::new(),
            policy: policy.clone(),
            provisional_lkg: 0,
            logged: Default::default(),
        };
        world.sup.add_unit(start, UNIT, policy);
        world.drain();
        world
    }

    /// medic stops (its state saved) and starts again: a new supervisor restored
    /// from the snapshot. Whatever ran in the shell is gone with it.
    pub fn restart_medic(&mut self) {
        let saved = self.sup.snapshot();
        self.sup = Supervisor::new("i", self.sup.next_incident());
        for unit in saved {
            self.sup.restore_unit(self.now, unit, self.policy.clone());
        }
        self.running.clear();
        self.drain();
    }

    pub fn input(&mut self, input: Input) {
        self.try_input(input).expect("unit exists");
    }

    /// An input that may name a unit no longer watched (a late result).
    pub fn try_input(&mut self, input: Input) -> Result<(), medic_core::supervisor::UnknownUnit> {
        let result = self.sup.handle_input(self.now, input);
        self.drain();
        result
    }

    /// An observation of any unit of the world.
    pub fn observe_unit(&mut self, unit: &str, observation: Observation) {
        self.input(Input::Observed {
            unit: unit.into(),
            probe: 0,
            observation,
        });
    }

    pub fn observe(&mut self, observation: Observation) {
        self.observe_unit(UNIT, observation);
    }

    /// The result of the unit's newest running job, or of its deploy command when none runs.
    pub fn finish(&mut self, result: ActionResult) {
        self.finish_unit(UNIT, result);
    }

    /// [`World::finish`] for any unit.
    pub fn finish_unit(&mut self, unit: &str, result: ActionResult) {
        match self.running.iter().rposition(|job| job.unit == unit) {
            Some(at) => {
                let job = self.running.remove(at);
                let finished = Input::Finished {
                    unit: unit.into(),
                    job: job.id,
                    result,
                };
                // The unit may be gone (a reload): the slot is freed all the same.
                self.try_input(finished).ok();
            }
            None => self.finish_deploy(unit, result),
        }
    }

    /// A deploy command's result.
    pub fn finish_deploy(&mut self, unit: &str, result: ActionResult) {
        self.input(Input::DeployFinished {
            unit: unit.into(),
            result,
        });
    }

    pub fn control(&mut self, control: Control) {
        self.input(Input::Control {
            unit: UNIT.into(),
            control,
        });
    }

    /// Moves time forward by `by`, firing every deadline on the way at its own instant.
    pub fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while let Some(at) = self.sup.poll_timeout().filter(|at| *at <= end) {
            self.now = self.now.max(at);
            self.sup.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
    }

    /// Carries out what the supervisor decided (after every input; by hand
    /// after calling the supervisor directly).
    pub fn drain(&mut self) {
        while let Some(action) = self.sup.poll_action() {
            let unit = match &action {
                Action::Log(event) => event.service.clone(),
                Action::Alert(alert) => alert.service.clone(),
                Action::Launch(job) => job.unit.clone(),
                Action::RecordLastKnownGood { unit, .. }
                | Action::Probe { unit }
                | Action::DeployEnded { unit, .. } => unit.clone(),
                Action::Storm(_) => medic_core::supervisor::MEDIC_UNIT.to_owned(),
            };
            if let Action::Log(event) = &action {
                self.logged.push_back(event.message.clone());
            }
            let line = match &action {
                Action::Log(event) => match event.attempt {
                    Some(k) => format!("{}({k})", event.kind.as_str()),
                    None => event.kind.as_str().to_owned(),
                },
                Action::Launch(job) => {
                    // The shell reports a job launched as it starts it.
                    let launched = Input::Launched {
                        unit: job.unit.clone(),
                        job: job.id,
                    };
                    self.sup.handle_input(self.now, launched).ok();
                    self.running.push(job.clone());
                    match job.step {
                        Step::Restart(attempt) => {
                            self.restarts += 1;
                            self.restart_times.push(self.now);
                            match job.recreate {
                                true => format!("→recreate({attempt})"),
                                false => format!("→restart({attempt})"),
                            }
                        }
                        Step::Rollback => {
                            self.rollbacks += 1;
                            match job.resumed {
                                true => "→finish-rollback".to_owned(),
                                false => "→rollback".to_owned(),
                            }
                        }
                    }
                }
                Action::Alert(alert) => {
                    self.alerts.push(alert.clone());
                    let held = if alert.held { "(held)" } else { "" };
                    format!("!{}:{}{held}", alert.severity.as_str(), alert.kind)
                }
                Action::Storm(change) => match change {
                    Change::Began(active) => format!("storm-began({})", active.failing),
                    Change::Summary(active) => format!("storm-summary({})", active.failing),
                    Change::Ended { still_failing, .. } => {
                        format!("storm-ended({still_failing})")
                    }
                },
                Action::RecordLastKnownGood {
                    provisional: true, ..
                } => {
                    self.provisional_lkg += 1;
                    continue;
                }
                Action::RecordLastKnownGood { .. } => "→lkg".to_owned(),
                Action::Probe { .. } => continue,
                Action::DeployEnded { end, failure, .. } => {
                    self.deploy_ends.push(*end);
                    self.deploy_failures.push(failure.clone());
                    continue;
                }
            };
            self.lines.push((unit, line.clone()));
            self.trace.push(line);
        }
    }

    /// Runs a script of space-separated steps and returns the trace it produced:
    /// `ok` `fail` `died` (decisive) `gone` `engine` (the engine restarts it) `blind` observations,
    /// `commanded` (stopped by a person's `docker restart`), `ok@ID` (ok, container `ID`); `done` `error`
    /// `impossible` (nothing different to roll back to) `vanished` (the target was gone) `timed-out`
    /// `cut` (shutdown cut it short) results of the newest running job (of the deploy command when
    /// none runs; `deploy-done` always the deploy command's); `shutdown` (medic stops);
    /// `interrupted` (shutdown, cut, restart-medic); `pause` `resume`
    /// `reset` `recover` `deploy` (command within 60 s, healthy within 30 s) controls;
    /// `restart-medic` (save, then restore into a new supervisor; `restart-medic+1h`: down for an hour);
    /// `+5s` advances virtual time.
    pub fn run(&mut self, script: &str) -> String {
        let from = self.trace.len();
        for step in script.split_whitespace() {
            self.step(step);
        }
        self.trace[from..].join(" ")
    }

    pub fn step(&mut self, step: &str) {
        let ms = Duration::from_millis(5);
        match step {
            "ok" => self.observe(Observation::ok(ms, "200 OK")),
            "fail" => self.observe(Observation::fail(ms, "HTTP 503")),
            "died" => self.observe(Observation::fail(ms, "died").with_urgency(Urgency::Decisive)),
            "gone" => self.observe(Observation::fail(ms, "removed").with_urgency(Urgency::Gone)),
            "engine" => self.observe(
                Observation::fail(ms, "exited; its restart policy restarts it")
                    .with_urgency(Urgency::EngineRestarts)
                    .with(medic_core::RESTART_EXPECTED_FROM, "restart policy `always`"),
            ),
            "commanded" => self.observe(
                Observation::fail(ms, "exited with exit code 143; stopped by a command")
                    .with_urgency(Urgency::Commanded)
                    .with(
                        medic_core::RESTART_EXPECTED_FROM,
                        "`docker restart` (a person or a script)",
                    ),
            ),
            ok if ok.starts_with("ok@") => {
                self.observe(Observation::ok(ms, "running").with("container_id", &ok[3..]))
            }
            "blind" => self.observe(Observation::blind(ms, "socket down")),
            "done" => self.finish(ActionResult::Done {
                message: "exit 0".into(),
                evidence: Default::default(),
            }),
            "error" => self.finish(ActionResult::Failed {
                message: "exit 1".into(),
                evidence: Default::default(),
            }),
            // Only shutdown interrupts a job: medic stops, then starts again.
            "interrupted" => {
                self.sup.shutdown();
                self.finish(ActionResult::Interrupted);
                self.restart_medic();
            }
            "timed-out" => self.finish(ActionResult::TimedOut {
                after: Duration::from_secs(305),
            }),
            "deploy-done" => self.finish_deploy(
                UNIT,
                ActionResult::Done {
                    message: "exit 0".into(),
                    evidence: Default::default(),
                },
            ),
            "shutdown" => self.sup.shutdown(),
            "cut" => self.finish(ActionResult::Interrupted),
            "impossible" => self.finish(ActionResult::Impossible {
                message: "already on the last known good spec: nothing different to roll back to"
                    .into(),
                evidence: Default::default(),
            }),
            "vanished" => self.finish(ActionResult::Gone {
                message: "gone".into(),
                evidence: Default::default(),
            }),
            "restart-medic" => self.restart_medic(),
            down if down.starts_with("restart-medic+") => {
                let by =
                    humantime::parse_duration(&down["restart-medic+".len()..]).expect("a duration");
                // Saved now, started again `by` later: nothing ran meanwhile.
                let saved = self.sup.snapshot();
                self.now += by;
                self.sup = Supervisor::new("i", self.sup.next_incident());
                for unit in saved {
                    self.sup.restore_unit(self.now, unit, self.policy.clone());
                }
                self.running.clear();
                self.drain();
            }
            "pause" => self.control(Control::Pause { until: None }),
            "resume" => self.control(Control::Resume),
            "reset" => self.control(Control::Reset),
            "recover" => self.control(Control::Recover),
            "deploy" => self.control(Control::Deploy {
                command_timeout: Duration::from_secs(60),
                verify_timeout: Duration::from_secs(30),
            }),
            advance if advance.starts_with('+') => {
                let by = humantime::parse_duration(&advance[1..]).expect("a duration after +");
                self.advance(by);
            }
            other => panic!("unknown step `{other}`"),
        }
    }
}

/// The default policy with an hour-long probe interval, so that time jumps in
/// scripts do not make observations stale unless a test means them to.
pub fn policy() -> Policy {
    Policy {
        probes: vec![medic_core::ProbeTiming {
            interval: Duration::from_secs(3600),
            timeout: Duration::from_secs(1),
        }],
        recover_timeout: Duration::from_secs(10),
        ..Policy::default()
    }
}
