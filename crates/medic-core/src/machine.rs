//! The state machine of one unit: starting → healthy ⇄ failing → recovering(k)
//! → rolling_back → healthy | escalated, with the paused and unknown overlays.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::backoff;
use crate::event::{Alert, EventKind, RecoveryEvent, Severity};
use crate::observation::{
    ENGINE_GRACE, Evidence, Observation, Outcome, RESTART_EXPECTED_FROM, Urgency,
};
use crate::policy::Policy;
use crate::snapshot::{SavedIncident, SavedPhase, UnitSnapshot};
use crate::supervisor::{Action, ActionResult, Step};
use crate::time::after;

/// Where a unit is in its recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No verdict yet; failures inside `start_period` do not count.
    Starting,
    /// Fresh successes on every probe.
    Healthy,
    /// An incident is open and no action is scheduled (watch only).
    Failing,
    /// An action is due at `at` (backoff, replace grace), or held while paused, blind or waiting for a dependency.
    Waiting {
        /// What comes next.
        step: Step,
        /// When.
        at: Instant,
    },
    /// An action is running in the shell; one that has not reported by `deadline` failed.
    Acting {
        /// Which.
        step: Step,
        /// When it counts as failed without a report.
        deadline: Instant,
    },
    /// The action finished; fresh successes must arrive before `deadline`.
    Verifying {
        /// Which action is being verified.
        step: Step,
        /// When the action finished; only observations after it count.
        since: Instant,
        /// When verification gives up.
        deadline: Instant,
        /// When to ask for the next verification probe.
        next_probe: Instant,
    },
    /// No further automatic action until a person resets the unit.
    Escalated,
    /// A person's deploy command runs; no automatic action meanwhile.
    DeployRunning {
        /// When the command's result must have arrived (else the deploy failed).
        deadline: Instant,
        /// How long the new version gets to be healthy once the command finished.
        verify_timeout: Duration,
    },
    /// The deploy command finished; fresh successes of every probe must arrive before `deadline`.
    DeployVerifying {
        /// When the command finished; only observations after it count.
        since: Instant,
        /// When the deploy fails and is rolled back.
        deadline: Instant,
        /// When to ask for the next probe round.
        next_probe: Instant,
    },
}

impl Phase {
    /// The state name of DESIGN.md: starting, healthy, failing, recovering, rolling_back,
    /// escalated, and deploying while `medic deploy` runs.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Healthy => "healthy",
            Phase::Failing
            | Phase::Waiting {
                step: Step::Restart(1),
                ..
            } => "failing",
            Phase::Waiting { step, .. }
            | Phase::Acting { step, .. }
            | Phase::Verifying { step, .. } => match step {
                Step::Restart(_) => "recovering",
                Step::Rollback => "rolling_back",
            },
            Phase::Escalated => "escalated",
            Phase::DeployRunning { .. } | Phase::DeployVerifying { .. } => "deploying",
        }
    }

    fn step(&self) -> Option<Step> {
        match self {
            Phase::Waiting { step, .. }
            | Phase::Acting { step, .. }
            | Phase::Verifying { step, .. } => Some(*step),
            _ => None,
        }
    }
}

/// What a person or a status page needs to know about a unit's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Healthy on fresh observations.
    Healthy,
    /// Observed broken, or an incident is open.
    Unhealthy,
    /// Blind, stale or never observed: no claim either way.
    Unknown,
}

/// The last observation of one probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeStatus {
    /// When it was made.
    pub at: Instant,
    /// Its verdict and details.
    pub observation: Observation,
    /// Consecutive failures up to it.
    pub consecutive_failures: u32,
}

/// A read-only view of one unit, for `medic status`, metrics and the status page.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitStatus {
    /// The unit name.
    pub name: String,
    /// The phase's state name.
    pub state: &'static str,
    /// Health as reported: never healthy on stale data.
    pub health: Health,
    /// Paused by a person; `Some(None)` is open-ended.
    pub paused: Option<Option<Instant>>,
    /// When the state last changed.
    pub since: Instant,
    /// Restart attempts inside the attempt window.
    pub attempts: u32,
    /// The open incident.
    pub incident: Option<String>,
    /// How the last closed incident ended, since medic started.
    pub last_incident: Option<ClosedIncident>,
    /// The last observation of each probe (None: not observed yet).
    pub probes: Vec<Option<ProbeStatus>>,
}

/// An incident that ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedIncident {
    /// Its id.
    pub id: String,
    /// `recovered`, `rolled_back` or `reset`.
    pub outcome: &'static str,
    /// When it ended.
    pub ended: Instant,
}

#[derive(Debug, Clone)]
struct Incident {
    id: String,
    opened: Instant,
    alerted: bool,
    rollback_tried: bool,
    /// Opened because the target was removed (a container gone): its recovery is a restoration.
    gone: bool,
    /// The failure that opened it, attached to escalation alerts.
    evidence: Evidence,
}

impl Incident {
    /// A new incident with the next id.
    fn open(now: Instant, gone: bool, evidence: Evidence, ctx: &mut Ctx) -> Self {
        *ctx.next_incident += 1;
        Self {
            id: format!("{}{}", ctx.incident_prefix, ctx.next_incident),
            opened: now,
            alerted: false,
            rollback_tried: false,
            gone,
            evidence,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct ProbeState {
    last: Option<ProbeStatus>,
    consecutive_ok: u32,
}

/// Where a machine's decisions go: the supervisor's queue and incident counter.
pub(crate) struct Ctx<'a> {
    pub out: &'a mut VecDeque<Action>,
    pub next_incident: &'a mut u64,
    pub incident_prefix: &'a str,
    /// Whether every service this one depends on is healthy.
    pub dependencies_ready: bool,
}

/// One unit's state machine.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    name: String,
    policy: Policy,
    phase: Phase,
    since: Instant,
    started: Instant,
    probes: Vec<ProbeState>,
    incident: Option<Incident>,
    last_incident: Option<ClosedIncident>,
    attempts: VecDeque<Instant>,
    paused: Option<Option<Instant>>,
    blind: bool,
    stale: bool,
    /// A due action is held until the services this one depends on are healthy.
    held_for_dependency: bool,
    /// Actions given up on (no report before their deadline) whose late result is still to come.
    abandoned: u32,
}

impl Machine {
    pub(crate) fn new(now: Instant, name: String, policy: Policy) -> Self {
        let probes = vec![ProbeState::default(); policy.probes.len()];
        Self {
            name,
            policy,
            phase: Phase::Starting,
            since: now,
            started: now,
            probes,
            incident: None,
            last_incident: None,
            attempts: VecDeque::new(),
            paused: None,
            blind: false,
            stale: false,
            held_for_dependency: false,
            abandoned: 0,
        }
    }

    /// Rebuilds a machine from the state store. Health is never restored: it
    /// needs fresh observations. Every open incident resumes where it was (see
    /// [`Machine::resume_after_restart`], which the supervisor calls next): a due step keeps its
    /// time, an action that was running counts as finished with an unknown
    /// result and is verified on fresh observations, as is one being verified.
    pub(crate) fn restore(now: Instant, saved: UnitSnapshot, policy: Policy) -> Self {
        let mut machine = Self::new(now, saved.name, policy);
        machine.attempts = saved.attempts.into_iter().collect();
        machine.paused = saved.paused;
        machine.incident = saved.incident.map(|i| Incident {
            id: i.id,
            opened: i.opened,
            alerted: i.alerted,
            rollback_tried: i.rollback_tried,
            gone: i.gone,
            evidence: Evidence::new(),
        });
        let recover_timeout = machine.policy.recover_timeout;
        // At least one probe round to see the unit again, however little was left.
        let fresh = after(now, machine.verify_round());
        let verify = |step, deadline: Instant| Phase::Verifying {
            step,
            since: now,
            deadline: deadline.max(fresh),
            next_probe: now,
        };
        machine.phase = match (saved.phase, machine.incident.is_some()) {
            (SavedPhase::Deploying, _) => Phase::DeployRunning {
                // Failed by `resume`: the command's result can no longer arrive.
                deadline: now,
                verify_timeout: Duration::ZERO,
            },
            (_, false) | (SavedPhase::Fine, _) => Phase::Starting,
            (SavedPhase::Failing, true) => Phase::Failing,
            (SavedPhase::Waiting { step, at }, true) => Phase::Waiting { step, at },
            (SavedPhase::Acting(step), true) => verify(step, after(now, recover_timeout)),
            (SavedPhase::Verifying { step, deadline }, true) => verify(step, deadline),
            (SavedPhase::Escalated, true) => Phase::Escalated,
        };
        machine
    }

    /// The first moves after a restore: one `resumed` event per open incident
    /// saying where it continues, a failed deploy rolled back as the guard says,
    /// and the ladder continued where it stood.
    pub(crate) fn resume_after_restart(&mut self, now: Instant, ctx: &mut Ctx) {
        if let Phase::DeployRunning { .. } = self.phase {
            self.set_phase(now, Phase::Starting);
            let message = "medic restarted while the deploy ran: its result is unknown".to_owned();
            return self.deploy_failed(now, message, Evidence::new(), ctx);
        }
        let Some(incident) = &self.incident else {
            return;
        };
        let max = self.policy.max_attempts;
        let at = match self.phase {
            Phase::Waiting {
                step: Step::Restart(k),
                ..
            } => format!("at attempt {k} of {max}"),
            Phase::Verifying {
                step: Step::Restart(k),
                ..
            } => format!("verifying attempt {k} of {max} on fresh observations"),
            Phase::Waiting {
                step: Step::Rollback,
                ..
            } => "at the rollback".to_owned(),
            Phase::Verifying {
                step: Step::Rollback,
                ..
            } => "verifying the rollback on fresh observations".to_owned(),
            Phase::Escalated => "escalated, waiting for a person".to_owned(),
            _ => "watching".to_owned(),
        };
        let paused = if self.paused.is_some() {
            " (paused)"
        } else {
            ""
        };
        let message = format!(
            "resumed incident {} {at} after a restart of medic{paused}",
            incident.id
        );
        self.log(ctx, now, EventKind::Resumed, &message);
        if self.phase == Phase::Failing && self.policy.can_restart {
            self.next_step(now, false, ctx);
        }
        // A due step starts from the supervisor's next timeout, once dependencies are declared.
    }

    /// How long one verification probe round may take: the verify interval plus the slowest probe.
    fn verify_round(&self) -> Duration {
        let slowest = self.policy.probes.iter().map(|p| p.timeout).max();
        self.policy
            .verify_interval
            .saturating_add(slowest.unwrap_or_default())
    }

    pub(crate) fn snapshot(&self) -> UnitSnapshot {
        let phase = match self.phase {
            Phase::Starting | Phase::Healthy => SavedPhase::Fine,
            Phase::DeployRunning { .. } | Phase::DeployVerifying { .. } => SavedPhase::Deploying,
            Phase::Failing => SavedPhase::Failing,
            Phase::Escalated => SavedPhase::Escalated,
            Phase::Waiting { step, at } => SavedPhase::Waiting { step, at },
            Phase::Acting { step, .. } => SavedPhase::Acting(step),
            Phase::Verifying { step, deadline, .. } => SavedPhase::Verifying { step, deadline },
        };
        UnitSnapshot {
            name: self.name.clone(),
            phase,
            incident: self.incident.as_ref().map(|i| SavedIncident {
                id: i.id.clone(),
                opened: i.opened,
                alerted: i.alerted,
                rollback_tried: i.rollback_tried,
                gone: i.gone,
            }),
            attempts: self.attempts.iter().copied().collect(),
            paused: self.paused,
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// Replaces the policy after a config reload; the state and attempt count stay.
    pub(crate) fn set_policy(&mut self, policy: Policy) {
        self.probes
            .resize(policy.probes.len(), ProbeState::default());
        self.policy = policy;
    }

    pub(crate) fn status(&self, now: Instant) -> UnitStatus {
        UnitStatus {
            name: self.name.clone(),
            state: self.phase.name(),
            health: self.health(now),
            paused: self.paused,
            since: self.since,
            attempts: self.attempts_in_window(now),
            incident: self.incident.as_ref().map(|i| i.id.clone()),
            last_incident: self.last_incident.clone(),
            probes: self.probes.iter().map(|p| p.last.clone()).collect(),
        }
    }

    /// Every probe has reported at least once.
    pub(crate) fn observed_every_probe(&self) -> bool {
        self.probes.iter().all(|p| p.last.is_some())
    }

    /// Healthy only on fresh successes with no incident; unknown when blind or stale.
    pub(crate) fn health(&self, now: Instant) -> Health {
        if self.blind || self.is_stale(now) {
            return Health::Unknown;
        }
        match self.phase {
            Phase::Healthy => Health::Healthy,
            Phase::Starting if self.probes.iter().all(|p| p.last.is_none()) => Health::Unknown,
            // Mid-deploy nothing is claimed until the new version is verified.
            Phase::DeployRunning { .. } | Phase::DeployVerifying { .. } => Health::Unknown,
            _ => Health::Unhealthy,
        }
    }

    fn is_stale(&self, now: Instant) -> bool {
        self.stale_deadline().is_some_and(|at| now >= at)
    }

    /// The earliest moment a probe's last word goes stale.
    fn stale_deadline(&self) -> Option<Instant> {
        self.probes
            .iter()
            .zip(&self.policy.probes)
            .map(|(probe, timing)| {
                after(
                    probe.last.as_ref().map_or(self.started, |l| l.at),
                    timing.stale_after(),
                )
            })
            .min()
    }

    fn attempts_in_window(&self, now: Instant) -> u32 {
        let window = self.policy.attempt_window;
        let count = self
            .attempts
            .iter()
            .filter(|at| now.saturating_duration_since(**at) < window)
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    fn gated(&self) -> bool {
        self.paused.is_some() || self.blind || self.held_for_dependency
    }

    /// The next moment `handle_timeout` has something to do for this unit.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::Waiting { at, .. } if !self.gated() => Some(at),
            Phase::Verifying {
                deadline,
                next_probe,
                ..
            }
            | Phase::DeployVerifying {
                deadline,
                next_probe,
                ..
            } => Some(deadline.min(next_probe)),
            Phase::DeployRunning { deadline, .. } | Phase::Acting { deadline, .. } => {
                Some(deadline)
            }
            _ => None,
        };
        let pause = self.paused.flatten();
        let stale = if self.stale {
            None
        } else {
            self.stale_deadline()
        };
        [phase, pause, stale].into_iter().flatten().min()
    }

    pub(crate) fn on_observation(
        &mut self,
        now: Instant,
        probe: usize,
        observation: Observation,
        ctx: &mut Ctx,
    ) {
        let Some(state) = self.probes.get_mut(probe) else {
            return;
        };
        let previous_failures = state.last.as_ref().map_or(0, |l| l.consecutive_failures);
        let consecutive_failures = match observation.outcome {
            Outcome::Fail => previous_failures + 1,
            Outcome::Ok => 0,
            Outcome::Blind => previous_failures,
        };
        state.consecutive_ok = match observation.outcome {
            Outcome::Ok => state.consecutive_ok + 1,
            Outcome::Fail => 0,
            Outcome::Blind => state.consecutive_ok,
        };
        state.last = Some(ProbeStatus {
            at: now,
            observation: observation.clone(),
            consecutive_failures,
        });
        if self.stale && !self.is_stale(now) {
            self.stale = false;
            self.log(
                ctx,
                now,
                EventKind::SightRestored,
                "observations are fresh again",
            );
        }
        if self.update_blind(now, &observation, ctx) {
            return;
        }
        match observation.outcome {
            Outcome::Blind => {}
            Outcome::Ok => self.on_success(now, ctx),
            Outcome::Fail => self.on_failure(now, consecutive_failures, observation, ctx),
        }
        // An action held while blind goes now, unless this observation closed the incident.
        self.drive(now, ctx);
    }

    /// Tracks the blind overlay; true while blind (the observation then decides nothing).
    fn update_blind(&mut self, now: Instant, observation: &Observation, ctx: &mut Ctx) -> bool {
        let any_blind = self.probes.iter().any(|p| {
            p.last
                .as_ref()
                .is_some_and(|l| l.observation.outcome == Outcome::Blind)
        });
        if any_blind && !self.blind {
            self.blind = true;
            let message = format!("cannot see: {}", observation.message);
            self.log_with(
                ctx,
                now,
                EventKind::Blind,
                message,
                observation.evidence.clone(),
            );
        } else if !any_blind && self.blind {
            self.blind = false;
            self.log(ctx, now, EventKind::SightRestored, "probes can see again");
        }
        self.blind
    }

    fn all_ok_since(&self, since: Option<Instant>) -> bool {
        let threshold = self.policy.success_threshold;
        self.probes.iter().all(|p| {
            p.consecutive_ok >= threshold
                && p.last
                    .as_ref()
                    .is_some_and(|l| since.is_none_or(|s| l.observation.began_since(l.at, s)))
        })
    }

    fn on_success(&mut self, now: Instant, ctx: &mut Ctx) {
        match self.phase {
            Phase::Starting if self.all_ok_since(None) => {
                self.set_phase(now, Phase::Healthy);
                self.log(
                    ctx,
                    now,
                    EventKind::Healthy,
                    "healthy on fresh observations",
                );
                self.record_last_known_good(ctx);
            }
            // Only observations made after the incident opened may close it.
            Phase::Failing | Phase::Waiting { .. }
                if self.all_ok_since(self.incident.as_ref().map(|i| i.opened)) =>
            {
                // Back without an action of medic's (a deploy replaced it, say): nothing was restored.
                if let Some(incident) = self.incident.as_mut() {
                    incident.gone = false;
                }
                match self.restart_expected_from() {
                    // The engine (or whoever ran `docker restart`) brought it back: say who.
                    Some(who) => {
                        let message = format!("started again by {who}; medic did not act");
                        let evidence =
                            Evidence::from_iter([("restarted_by".to_owned(), who.into())]);
                        self.close_incident_with(
                            now,
                            EventKind::Recovered,
                            &message,
                            evidence,
                            ctx,
                        );
                    }
                    None => self.close_incident(
                        now,
                        EventKind::Recovered,
                        "recovered without action",
                        ctx,
                    ),
                }
            }
            Phase::Verifying { step, since, .. } if self.all_ok_since(Some(since)) => {
                let (kind, message) = match step {
                    Step::Restart(k) => {
                        (EventKind::Recovered, format!("recovered after attempt {k}"))
                    }
                    Step::Rollback => (
                        EventKind::RolledBack,
                        "rolled back to the last known good version".to_owned(),
                    ),
                };
                self.close_incident(now, kind, &message, ctx);
            }
            Phase::DeployVerifying { since, .. } if self.all_ok_since(Some(since)) => {
                self.deploy_promoted(now, ctx);
            }
            _ => {}
        }
    }

    fn on_failure(
        &mut self,
        now: Instant,
        consecutive_failures: u32,
        observation: Observation,
        ctx: &mut Ctx,
    ) {
        let acting = matches!(
            self.phase,
            Phase::Acting { .. }
                | Phase::Verifying { .. }
                | Phase::DeployRunning { .. }
                | Phase::DeployVerifying { .. }
        );
        if observation.urgency == Urgency::Gone
            && let Some(incident) = self.incident.as_mut()
        {
            // `docker rm -f` kills first (died), then removes (gone): the incident is a removal.
            incident.gone = true;
        }
        if let Some(incident) = self.incident.as_mut().filter(|_| !acting) {
            // Alerts carry every probe's latest failure evidence, not only the first
            // one's; what a service shows while medic acts on it or while it boots
            // again (a container being recreated, say) is not the cause.
            incident.evidence.extend(observation.evidence.clone());
            incident
                .evidence
                .insert("latency_ms".into(), millis(observation.latency).into());
        }
        let decisive = observation.urgency != Urgency::Normal;
        let over_threshold = consecutive_failures >= self.policy.failure_threshold;
        match self.phase {
            Phase::Starting => {
                let in_grace = now < after(self.started, self.policy.start_period);
                if decisive || (over_threshold && !in_grace) {
                    self.open_incident(now, observation, ctx);
                }
            }
            Phase::Healthy if decisive || over_threshold => {
                self.open_incident(now, observation, ctx)
            }
            // A restarted service may fail while it boots: only a decisive failure
            // (it died again) or the end of recover_timeout fails the verification.
            // A probe that began before the action finished saw the old state.
            Phase::Verifying { step, since, .. }
                if decisive && observation.began_since(now, since) =>
            {
                let message = format!("still failing: {}", observation.message);
                self.verification_failed(now, step, message, observation.evidence, ctx);
            }
            // A container that is gone may still be replaced before the deploy
            // timeout; one that died is a failed deploy at once.
            Phase::DeployVerifying { since, .. }
                if decisive
                    && observation.urgency != Urgency::Gone
                    && observation.began_since(now, since) =>
            {
                let message = format!("the new version fails: {}", observation.message);
                self.deploy_failed(now, message, observation.evidence, ctx);
            }
            _ => {}
        }
    }

    fn open_incident(&mut self, now: Instant, observation: Observation, ctx: &mut Ctx) {
        let mut evidence = observation.evidence.clone();
        evidence.insert("latency_ms".into(), millis(observation.latency).into());
        if observation.urgency == Urgency::EngineRestarts {
            evidence
                .entry(RESTART_EXPECTED_FROM)
                .or_insert_with(|| "the engine".into());
        }
        let gone = observation.urgency == Urgency::Gone;
        self.incident = Some(Incident::open(now, gone, evidence.clone(), ctx));
        self.next_step(now, gone, ctx);
        self.log_with(ctx, now, EventKind::Failing, observation.message, evidence);
        self.drive(now, ctx);
    }

    /// Picks what follows a failure: another restart inside the window, a rollback, or escalation.
    fn next_step(&mut self, now: Instant, gone: bool, ctx: &mut Ctx) {
        if !self.policy.can_restart {
            self.set_phase(now, Phase::Failing);
            return;
        }
        let used = self.attempts_in_window(now);
        let rollback_tried = self.incident.as_ref().is_some_and(|i| i.rollback_tried);
        if used < self.policy.max_attempts {
            let attempt = used + 1;
            let p = &self.policy;
            let mut delay = backoff::delay(attempt, p.backoff_base, p.backoff_max, &self.name);
            // A removal waits replace_grace whatever the attempt (a recent incident
            // in the window must not make a Compose removal be undone at once).
            if gone {
                delay = delay.max(p.replace_grace);
            }
            // The engine restarts it itself: it gets the first chance.
            if attempt == 1 && self.restart_expected_from().is_some() {
                delay = delay.max(ENGINE_GRACE);
            }
            let step = Step::Restart(attempt);
            self.set_phase(
                now,
                Phase::Waiting {
                    step,
                    at: after(now, delay),
                },
            );
        } else if self.policy.can_rollback && !rollback_tried {
            self.set_phase(
                now,
                Phase::Waiting {
                    step: Step::Rollback,
                    at: now,
                },
            );
        } else {
            let why = if rollback_tried {
                "rollback did not bring it back"
            } else {
                "no rollback is possible"
            };
            let message = format!(
                "{} restart attempts failed and {why}",
                self.policy.max_attempts
            );
            self.escalate(now, message, Evidence::new(), ctx);
        }
    }

    /// Starts a due action unless paused, blind or waiting for a dependency.
    fn drive(&mut self, now: Instant, ctx: &mut Ctx) {
        let Phase::Waiting { step, at } = self.phase else {
            return;
        };
        if at > now || self.paused.is_some() || self.blind {
            return;
        }
        if !ctx.dependencies_ready {
            if !self.held_for_dependency {
                self.held_for_dependency = true;
                // Held until the dependency is healthy; the supervisor drives it again then.
                let message = "held: a service this one depends on is not healthy";
                self.log(ctx, now, EventKind::WaitingForDependency, message);
            }
            return;
        }
        self.held_for_dependency = false;
        let Some(incident) = self.incident.as_mut() else {
            return;
        };
        let incident_id = incident.id.clone();
        let recreate = incident.gone;
        match step {
            Step::Restart(attempt) => {
                self.attempts.push_back(now);
                self.prune_attempts(now);
                self.set_phase(now, self.acting(now, step));
                let message = format!("restart attempt {attempt} of {}", self.policy.max_attempts);
                self.log(ctx, now, EventKind::Restart, &message);
                ctx.out.push_back(Action::Restart {
                    unit: self.name.clone(),
                    incident: incident_id,
                    attempt,
                    recreate,
                });
            }
            Step::Rollback => {
                incident.rollback_tried = true;
                self.set_phase(now, self.acting(now, step));
                self.log(
                    ctx,
                    now,
                    EventKind::Rollback,
                    "rolling back to the last known good version",
                );
                ctx.out.push_back(Action::Rollback {
                    unit: self.name.clone(),
                    incident: incident_id,
                });
            }
        }
    }

    /// Who brings the open incident's target back by itself, when the failure
    /// that opened it said so ([`Urgency::EngineRestarts`]).
    fn restart_expected_from(&self) -> Option<String> {
        let incident = self.incident.as_ref()?;
        let who = incident.evidence.get(RESTART_EXPECTED_FROM)?;
        Some(who.as_str().unwrap_or("the engine").to_owned())
    }

    fn prune_attempts(&mut self, now: Instant) {
        let window = self.policy.attempt_window;
        while self
            .attempts
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) >= window)
        {
            self.attempts.pop_front();
        }
    }

    pub(crate) fn on_finished(&mut self, now: Instant, result: ActionResult, ctx: &mut Ctx) {
        if let Phase::DeployRunning { verify_timeout, .. } = self.phase {
            return self.deploy_command_finished(now, verify_timeout, result, ctx);
        }
        if self.abandoned > 0 {
            // The late result of an action given up on: the ladder has moved on.
            self.abandoned -= 1;
            return;
        }
        let Phase::Acting { step, .. } = self.phase else {
            return; // a late result after a reset: the reset already decided
        };
        let (done, failed) = match step {
            Step::Restart(_) => (EventKind::RestartDone, EventKind::RestartFailed),
            Step::Rollback => (EventKind::RollbackDone, EventKind::RollbackFailed),
        };
        match result {
            ActionResult::Done { message, evidence } => {
                for probe in &mut self.probes {
                    probe.consecutive_ok = 0;
                }
                self.set_phase(
                    now,
                    self.verifying(step, now, after(now, self.policy.verify_interval)),
                );
                self.log_with(ctx, now, done, message, evidence);
                ctx.out.push_back(Action::Probe {
                    unit: self.name.clone(),
                });
            }
            // Removed while medic was about to restart it (`docker rm -f` reports
            // the kill before the removal): like any removal, a replacement gets
            // `replace_grace` before the next attempt recreates it.
            ActionResult::Gone { message, evidence }
                if matches!(step, Step::Restart(_))
                    && self.incident.as_ref().is_some_and(|i| !i.gone) =>
            {
                if let Some(incident) = self.incident.as_mut() {
                    incident.gone = true;
                }
                let grace = humantime::format_duration(self.policy.replace_grace);
                let message = format!("{message}: recreated after {grace} unless replaced");
                self.log_with(ctx, now, failed, message, evidence);
                self.next_step(now, false, ctx);
                if let Phase::Waiting { step, at } = self.phase {
                    let at = at.max(after(now, self.policy.replace_grace));
                    self.phase = Phase::Waiting { step, at };
                }
                self.drive(now, ctx);
            }
            ActionResult::Failed { message, evidence }
            | ActionResult::Gone { message, evidence } => {
                self.log_with(ctx, now, failed, message.clone(), evidence.clone());
                self.after_failed_step(now, step, message, evidence, ctx);
            }
            ActionResult::Interrupted => {
                self.set_phase(now, self.verifying(step, now, now));
                self.log(
                    ctx,
                    now,
                    EventKind::Interrupted,
                    "action interrupted by shutdown; it is verified at the next start",
                );
            }
        }
    }

    /// Verification of `step` from `now`, first probe round at `first_probe`.
    fn verifying(&self, step: Step, now: Instant, first_probe: Instant) -> Phase {
        Phase::Verifying {
            step,
            since: now,
            deadline: after(now, self.policy.recover_timeout),
            next_probe: first_probe,
        }
    }

    /// `step`'s action starts now and must report back within `action_timeout`.
    fn acting(&self, now: Instant, step: Step) -> Phase {
        Phase::Acting {
            step,
            deadline: after(now, self.policy.action_timeout),
        }
    }

    fn verification_failed(
        &mut self,
        now: Instant,
        step: Step,
        message: String,
        evidence: Evidence,
        ctx: &mut Ctx,
    ) {
        let kind = match step {
            Step::Restart(_) => EventKind::RestartFailed,
            Step::Rollback => EventKind::RollbackFailed,
        };
        self.log_with(ctx, now, kind, message.clone(), evidence.clone());
        self.after_failed_step(now, step, message, evidence, ctx);
    }

    fn after_failed_step(
        &mut self,
        now: Instant,
        step: Step,
        message: String,
        evidence: Evidence,
        ctx: &mut Ctx,
    ) {
        match step {
            Step::Restart(_) => {
                self.next_step(now, false, ctx);
                self.drive(now, ctx);
            }
            Step::Rollback => {
                self.escalate(now, format!("rollback failed: {message}"), evidence, ctx);
            }
        }
    }

    fn escalate(&mut self, now: Instant, message: String, evidence: Evidence, ctx: &mut Ctx) {
        self.set_phase(now, Phase::Escalated);
        let mut all = self
            .incident
            .as_ref()
            .map(|i| i.evidence.clone())
            .unwrap_or_default();
        all.extend(evidence);
        all.insert("attempts".into(), self.attempts_in_window(now).into());
        all.insert("last_observations".into(), self.observation_summary());
        self.log_with(ctx, now, EventKind::Escalated, message.clone(), all.clone());
        self.alert_with(ctx, Severity::Critical, "escalated", &message, all, false);
    }

    fn observation_summary(&self) -> serde_json::Value {
        self.probes
            .iter()
            .filter_map(|p| p.last.as_ref())
            .map(|l| {
                serde_json::json!({
                    "outcome": l.observation.outcome.as_str(),
                    "message": l.observation.message,
                    "latency_ms": millis(l.observation.latency),
                })
            })
            .collect()
    }

    /// Ends the incident with one alert line that resolves it: `rolled_back`
    /// (warning) after a rollback, `restored_removed` (warning) when a removed
    /// target was recreated, `resolved` (info) when an alerted incident
    /// recovered, `recovered` (info) otherwise.
    fn close_incident(&mut self, now: Instant, kind: EventKind, message: &str, ctx: &mut Ctx) {
        self.close_incident_with(now, kind, message, Evidence::new(), ctx);
    }

    /// [`Self::close_incident`] with evidence on its recovery-log line.
    fn close_incident_with(
        &mut self,
        now: Instant,
        kind: EventKind,
        message: &str,
        evidence: Evidence,
        ctx: &mut Ctx,
    ) {
        self.set_phase(now, Phase::Healthy);
        self.log_with(ctx, now, kind, message.to_owned(), evidence);
        let (alerted, gone) = self
            .incident
            .as_ref()
            .map_or((false, false), |i| (i.alerted, i.gone));
        let (severity, alert_kind, text) = match kind {
            EventKind::RolledBack => (Severity::Warning, "rolled_back", message.to_owned()),
            _ if gone => (
                Severity::Warning,
                "restored_removed",
                format!("removed, then restored from its recorded spec: {message}"),
            ),
            _ if alerted => (Severity::Info, "resolved", message.to_owned()),
            _ => (Severity::Info, "recovered", message.to_owned()),
        };
        self.alert(ctx, severity, alert_kind, &text, true);
        self.end_incident(now, kind.as_str());
        self.record_last_known_good(ctx);
    }

    pub(crate) fn on_timeout(&mut self, now: Instant, ctx: &mut Ctx) {
        if let Some(Some(until)) = self.paused
            && now >= until
        {
            self.paused = None;
            self.log(ctx, now, EventKind::Resumed, "pause expired");
        }
        if !self.stale && self.is_stale(now) {
            self.stale = true;
            self.log(
                ctx,
                now,
                EventKind::Stale,
                "no fresh observation: reported as unknown",
            );
        }
        match self.phase {
            Phase::Waiting { .. } => self.drive(now, ctx),
            Phase::Acting { step, deadline } if now >= deadline => {
                // Its result, should it still come, is ignored; the shell starts
                // no other action of this unit before it (one at a time per unit).
                self.abandoned = self.abandoned.saturating_add(1);
                let timeout = humantime::format_duration(self.policy.action_timeout);
                let message = format!("no result within {timeout}: counted as failed");
                self.verification_failed(now, step, message, Evidence::new(), ctx);
            }
            Phase::DeployRunning { deadline, .. } if now >= deadline => {
                let message = "the deploy command did not report back in time".to_owned();
                self.deploy_failed(now, message, Evidence::new(), ctx);
            }
            Phase::DeployVerifying {
                since,
                deadline,
                next_probe,
            } => match self.verification_timers(now, deadline, next_probe, ctx) {
                Some((deadline, next_probe)) => {
                    self.phase = Phase::DeployVerifying {
                        since,
                        deadline,
                        next_probe,
                    };
                }
                None => {
                    let timeout = round_secs(deadline.saturating_duration_since(since));
                    let message = format!(
                        "not healthy on fresh observations within the deploy timeout ({})",
                        humantime::format_duration(timeout)
                    );
                    self.deploy_failed(now, message, Evidence::new(), ctx);
                }
            },
            Phase::Verifying {
                step,
                since,
                deadline,
                next_probe,
            } => match self.verification_timers(now, deadline, next_probe, ctx) {
                Some((deadline, next_probe)) => {
                    self.phase = Phase::Verifying {
                        step,
                        since,
                        deadline,
                        next_probe,
                    };
                }
                None => {
                    let timeout = humantime::format_duration(self.policy.recover_timeout);
                    let message = format!("not healthy within recover_timeout ({timeout})");
                    self.verification_failed(now, step, message, Evidence::new(), ctx);
                }
            },
            _ => {}
        }
    }

    /// A verification's timers at `now`: the next (deadline, next probe round),
    /// asking for a probe round when one is due; None once the deadline passed.
    /// While blind the deadline moves: medic cannot verify what it cannot see,
    /// and waits for sight rather than burn an attempt.
    fn verification_timers(
        &self,
        now: Instant,
        deadline: Instant,
        next_probe: Instant,
        ctx: &mut Ctx,
    ) -> Option<(Instant, Instant)> {
        let interval = self.policy.verify_interval;
        if now >= deadline && self.blind {
            return Some((after(now, interval), next_probe));
        }
        if now >= deadline {
            return None;
        }
        if now >= next_probe {
            ctx.out.push_back(Action::Probe {
                unit: self.name.clone(),
            });
            return Some((deadline, after(now, interval)));
        }
        Some((deadline, next_probe))
    }

    pub(crate) fn pause(&mut self, now: Instant, until: Option<Instant>, ctx: &mut Ctx) {
        self.paused = Some(until);
        let message = match until {
            Some(until) => format!(
                "automatic recovery paused for {}",
                humantime::format_duration(round_secs(until.saturating_duration_since(now)))
            ),
            None => "automatic recovery paused until resumed".to_owned(),
        };
        self.log(ctx, now, EventKind::Paused, &message);
    }

    pub(crate) fn resume(&mut self, now: Instant, ctx: &mut Ctx) {
        if self.paused.take().is_some() {
            self.log(ctx, now, EventKind::Resumed, "automatic recovery resumed");
        }
        self.resume_held(now, ctx);
    }

    /// Re-drives an action that was held (pause, blindness, a dependency).
    pub(crate) fn resume_held(&mut self, now: Instant, ctx: &mut Ctx) {
        self.held_for_dependency = false;
        self.drive(now, ctx);
    }

    /// Why a probe cannot see (the message of its blind observation).
    pub(crate) fn blind_reason(&self) -> Option<String> {
        self.probes
            .iter()
            .filter_map(|p| p.last.as_ref())
            .find(|l| l.observation.outcome == Outcome::Blind)
            .map(|l| l.observation.message.clone())
    }

    /// Whether a probe of this unit cannot see.
    pub(crate) fn is_blind(&self) -> bool {
        self.blind
    }

    /// Whether a due action waits for a dependency to become healthy.
    pub(crate) fn is_held_for_dependency(&self) -> bool {
        self.held_for_dependency
    }

    pub(crate) fn reset(&mut self, now: Instant, ctx: &mut Ctx) {
        if let Phase::Acting { .. } = self.phase {
            // Its result still comes, and must not count for a later action.
            self.abandoned = self.abandoned.saturating_add(1);
        }
        self.attempts.clear();
        for probe in &mut self.probes {
            probe.consecutive_ok = 0;
            if let Some(last) = probe.last.as_mut() {
                last.consecutive_failures = 0;
            }
        }
        self.started = now;
        self.set_phase(now, Phase::Starting);
        self.log(
            ctx,
            now,
            EventKind::Reset,
            "reset by a person: attempts and escalation cleared",
        );
        if self.incident.as_ref().is_some_and(|i| i.alerted) {
            self.alert(ctx, Severity::Info, "resolved", "reset by a person", true);
        }
        self.end_incident(now, "reset");
    }

    fn end_incident(&mut self, now: Instant, outcome: &'static str) {
        if let Some(incident) = self.incident.take() {
            self.last_incident = Some(ClosedIncident {
                id: incident.id,
                outcome,
                ended: now,
            });
        }
    }

    /// A person asked for a restart now: a fresh attempt budget, even when paused or escalated.
    pub(crate) fn recover(&mut self, now: Instant, ctx: &mut Ctx) {
        if !self.can_deploy() || !self.policy.can_restart {
            return;
        }
        self.attempts.clear();
        if self.incident.is_none() {
            self.incident = Some(Incident::open(now, false, Evidence::new(), ctx));
            self.log(
                ctx,
                now,
                EventKind::Failing,
                "recovery requested by a person",
            );
        }
        self.set_phase(
            now,
            Phase::Waiting {
                step: Step::Restart(1),
                at: now,
            },
        );
        self.drive_for_a_person(now, ctx);
    }

    /// Whether a deploy may begin: not while a recovery action or another deploy runs.
    pub(crate) fn can_deploy(&self) -> bool {
        !matches!(
            self.phase,
            Phase::Acting { .. } | Phase::DeployRunning { .. } | Phase::DeployVerifying { .. }
        )
    }

    /// A person's deploy begins: no automatic action until its command reports
    /// back (within `command_timeout`) and the new version is verified (within
    /// `verify_timeout`).
    pub(crate) fn deploy(
        &mut self,
        now: Instant,
        command_timeout: Duration,
        verify_timeout: Duration,
        ctx: &mut Ctx,
    ) {
        if !self.can_deploy() {
            return;
        }
        self.set_phase(
            now,
            Phase::DeployRunning {
                deadline: after(now, command_timeout),
                verify_timeout,
            },
        );
        self.log(
            ctx,
            now,
            EventKind::DeployStarted,
            "deploy started: automatic recovery held until the new version is verified",
        );
    }

    fn deploy_command_finished(
        &mut self,
        now: Instant,
        verify_timeout: Duration,
        result: ActionResult,
        ctx: &mut Ctx,
    ) {
        match result {
            ActionResult::Done { message, evidence } => {
                for probe in &mut self.probes {
                    probe.consecutive_ok = 0;
                }
                self.set_phase(
                    now,
                    Phase::DeployVerifying {
                        since: now,
                        deadline: after(now, verify_timeout),
                        next_probe: after(now, self.policy.verify_interval),
                    },
                );
                self.log_with(ctx, now, EventKind::DeployDone, message, evidence);
                ctx.out.push_back(Action::Probe {
                    unit: self.name.clone(),
                });
            }
            ActionResult::Failed { message, evidence }
            | ActionResult::Gone { message, evidence } => {
                self.deploy_failed(
                    now,
                    format!("deploy command failed: {message}"),
                    evidence,
                    ctx,
                );
            }
            ActionResult::Interrupted => {
                let message = "deploy interrupted".to_owned();
                self.deploy_failed(now, message, Evidence::new(), ctx);
            }
        }
    }

    /// The new version is healthy on fresh observations: it becomes the last known good.
    fn deploy_promoted(&mut self, now: Instant, ctx: &mut Ctx) {
        let message = "deploy verified healthy: the new version is the last known good";
        if self.incident.is_some() {
            self.close_incident(now, EventKind::Deployed, message, ctx);
        } else {
            self.set_phase(now, Phase::Healthy);
            self.log(ctx, now, EventKind::Deployed, message);
            self.record_last_known_good(ctx);
        }
    }

    /// The deploy failed: a critical alert, then a rollback to the version from
    /// before the deploy (even when paused: a person asked for the guard), or
    /// escalation when there is nothing to roll back to.
    fn deploy_failed(&mut self, now: Instant, message: String, evidence: Evidence, ctx: &mut Ctx) {
        match self.incident.as_mut() {
            Some(incident) => {
                incident.rollback_tried = false;
                incident.evidence.extend(evidence.clone());
            }
            None => self.incident = Some(Incident::open(now, false, evidence.clone(), ctx)),
        }
        self.set_phase(now, Phase::Failing);
        self.log_with(ctx, now, EventKind::DeployFailed, message.clone(), evidence);
        if !self.policy.can_rollback {
            let message = format!("{message}; no rollback is possible");
            return self.escalate(now, message, Evidence::new(), ctx);
        }
        let mut all = self
            .incident
            .as_ref()
            .map(|i| i.evidence.clone())
            .unwrap_or_default();
        all.insert("last_observations".into(), self.observation_summary());
        self.alert_with(
            ctx,
            Severity::Critical,
            "deploy_failed",
            &message,
            all,
            false,
        );
        self.set_phase(
            now,
            Phase::Waiting {
                step: Step::Rollback,
                at: now,
            },
        );
        self.drive_for_a_person(now, ctx);
    }

    /// Starts the due action a person asked for (recover, a failed deploy's
    /// rollback): neither a pause nor a dependency holds it; the pause stays.
    fn drive_for_a_person(&mut self, now: Instant, ctx: &mut Ctx) {
        let paused = self.paused.take();
        let ready = std::mem::replace(&mut ctx.dependencies_ready, true);
        self.drive(now, ctx);
        ctx.dependencies_ready = ready;
        self.paused = paused;
    }

    pub(crate) fn removed(&mut self, now: Instant, why: &str, ctx: &mut Ctx) {
        self.log(ctx, now, EventKind::Removed, why);
    }

    pub(crate) fn watching(&mut self, now: Instant, ctx: &mut Ctx) {
        self.log(ctx, now, EventKind::Watching, "watching");
    }

    fn set_phase(&mut self, now: Instant, phase: Phase) {
        if phase.name() != self.phase.name() {
            self.since = now;
        }
        self.phase = phase;
    }

    fn record_last_known_good(&self, ctx: &mut Ctx) {
        if self.policy.can_rollback {
            ctx.out.push_back(Action::RecordLastKnownGood {
                unit: self.name.clone(),
            });
        }
    }

    fn log(&self, ctx: &mut Ctx, now: Instant, kind: EventKind, message: &str) {
        self.log_with(ctx, now, kind, message.to_owned(), Evidence::new());
    }

    fn log_with(
        &self,
        ctx: &mut Ctx,
        _now: Instant,
        kind: EventKind,
        message: String,
        evidence: Evidence,
    ) {
        let attempt = match self.phase.step() {
            Some(Step::Restart(k)) if k > 0 => Some(k),
            _ => None,
        };
        ctx.out.push_back(Action::Log(RecoveryEvent {
            service: self.name.clone(),
            kind,
            incident: self.incident.as_ref().map(|i| i.id.clone()),
            state: self.phase.name(),
            attempt,
            message,
            evidence,
        }));
    }

    fn alert(
        &mut self,
        ctx: &mut Ctx,
        severity: Severity,
        kind: &'static str,
        message: &str,
        resolved: bool,
    ) {
        let evidence = self
            .incident
            .as_ref()
            .map(|i| i.evidence.clone())
            .unwrap_or_default();
        self.alert_with(ctx, severity, kind, message, evidence, resolved);
    }

    fn alert_with(
        &mut self,
        ctx: &mut Ctx,
        severity: Severity,
        kind: &'static str,
        message: &str,
        evidence: Evidence,
        resolved: bool,
    ) {
        if let Some(incident) = self.incident.as_mut() {
            incident.alerted = true;
        }
        ctx.out.push_back(Action::Alert(Alert {
            service: self.name.clone(),
            severity,
            kind,
            incident: self.incident.as_ref().map(|i| i.id.clone()),
            message: message.to_owned(),
            evidence,
            resolved,
        }));
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn round_secs(duration: Duration) -> Duration {
    Duration::from_secs(duration.as_secs())
}
