//! The state machine of one unit: starting → healthy ⇄ failing → recovering(k)
//! → rolling_back → healthy | escalated, with the paused and unknown overlays.
//! This file holds the phases and the dispatch of inputs; the policy lives in
//! `ladder.rs` (restart → rollback → escalate), `deploy.rs` (the deploy guard),
//! `health.rs` (health, staleness, blindness), `jobs.rs` (a unit's side of its
//! jobs' life) and `restore.rs` (a restart of medic);
//! `evidence.rs` holds an incident's evidence without copying it; `say.rs` the
//! unit's recovery-log events and alerts; `expect.rs` a
//! person's restart or a deploy's replacement (no incident), `flap.rs` the flap
//! delay, `lkg.rs` when what runs becomes the last known good.

mod deploy;
mod evidence;
mod expect;
mod flap;
mod health;
mod jobs;
mod ladder;
mod lkg;
mod restore;
mod say;

use evidence::IncidentEvidence;
pub use flap::FlapStatus;
use health::ProbeState;
pub use health::{Health, ProbeStatus};

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::event::EventKind;
use crate::observation::{Evidence, Observation, Outcome, Urgency};
use crate::policy::Policy;
use crate::slots::Slots;
use crate::time::after;
use crate::vocabulary::{Action, DeployEnd, JobId, Step};

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
    /// An action was decided and waits for a free slot (`max_concurrent_actions`);
    /// it is dropped if its reason goes first (the unit recovers, a person acts).
    Queued {
        /// Which.
        step: Step,
        /// The job that will carry it out.
        job: JobId,
    },
    /// An action is running in the shell; one that has not reported by `deadline` failed.
    Acting {
        /// Which.
        step: Step,
        /// The job carrying it out: only its result counts.
        job: JobId,
        /// When it counts as failed without a report; `None` until the shell
        /// reports it launched (the timeout starts at launch).
        deadline: Option<Instant>,
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
    /// A person's restart or a deploy's replacement is under way (not an
    /// incident): back healthy before `until`, or an incident opens then.
    Expecting {
        /// When the grace ends (`ENGINE_GRACE`, or `replace_grace` after a removal).
        until: Instant,
        /// The target was removed: a replacement under the same name is awaited.
        replacing: bool,
    },
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
    /// escalated, deploying while `medic deploy` runs, restarting or replacing
    /// while a person's command or a deploy brings it back.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Healthy => "healthy",
            Phase::Failing
            | Phase::Waiting {
                step: Step::Restart(1),
                ..
            }
            | Phase::Queued {
                step: Step::Restart(1),
                ..
            } => "failing",
            Phase::Waiting { step, .. }
            | Phase::Queued { step, .. }
            | Phase::Acting { step, .. }
            | Phase::Verifying { step, .. } => match step {
                Step::Restart(_) => "recovering",
                Step::Rollback => "rolling_back",
            },
            Phase::Escalated => "escalated",
            Phase::Expecting {
                replacing: false, ..
            } => "restarting",
            Phase::Expecting {
                replacing: true, ..
            } => "replacing",
            Phase::DeployRunning { .. } | Phase::DeployVerifying { .. } => "deploying",
        }
    }

    fn step(&self) -> Option<Step> {
        match self {
            Phase::Waiting { step, .. }
            | Phase::Queued { step, .. }
            | Phase::Acting { step, .. }
            | Phase::Verifying { step, .. } => Some(*step),
            _ => None,
        }
    }
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
    /// Restarts started in the open incident.
    pub attempts: u32,
    /// Why the open incident skipped its restarts (`flapping: 4 incidents in 10 min`).
    pub reason: Option<String>,
    /// Flapping with nothing different to roll back to: the delay before restarts.
    pub flapping: Option<FlapStatus>,
    /// Healthy so far, but failing below the threshold: (consecutive failures,
    /// `failure_threshold`), shown as `failing (1/3)`; no incident is open yet.
    pub below_threshold: Option<(u32, u32)>,
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
    /// Restarts started in this incident (each incident gets `max_attempts`).
    attempts: u32,
    /// Why the ladder was cut short (`flapping: 4 incidents in 10 min`), for the log, alerts and status.
    reason: Option<String>,
    /// Opened because the target was removed (a container gone): its recovery is a restoration.
    gone: bool,
    /// When the removal was seen: no step runs before `replace_grace` has passed since.
    removed_at: Option<Instant>,
    /// The last step launched may recreate the target (it was gone): if the
    /// target is gone again after it, that step failed; after one that found
    /// it, a removal raced the step.
    recreating: bool,
    /// Flapping with nothing different to roll back to: its first restart waits this.
    flap_delay: Option<Duration>,
    /// Why its last restart failed, for the escalation's evidence.
    last_restart_error: Option<String>,
    /// The failures that opened and fed it (shared with the probes' slots) and
    /// what medic added, attached to its alerts and escalation.
    evidence: IncidentEvidence,
}

impl Incident {
    /// A new incident with the next id; a removal seen at `removed_at`.
    fn open(
        now: Instant,
        removed_at: Option<Instant>,
        evidence: IncidentEvidence,
        ctx: &mut Ctx,
    ) -> Self {
        *ctx.next_incident += 1;
        Self {
            id: format!("{}{}", ctx.incident_prefix, ctx.next_incident),
            opened: now,
            alerted: false,
            rollback_tried: false,
            attempts: 0,
            reason: None,
            last_restart_error: None,
            gone: removed_at.is_some(),
            removed_at,
            recreating: false,
            flap_delay: None,
            evidence,
        }
    }
}

/// Where a machine's decisions go: the supervisor's queue, action slots and incident counter.
pub(crate) struct Ctx<'a> {
    pub out: &'a mut VecDeque<Action>,
    pub slots: &'a mut Slots,
    pub next_incident: &'a mut u64,
    pub incident_prefix: &'a str,
    /// Whether every service this one depends on is healthy.
    pub dependencies_ready: bool,
}

/// One unit's state machine.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    name: String,
    policy: Arc<Policy>,
    phase: Phase,
    since: Instant,
    started: Instant,
    probes: Vec<ProbeState>,
    incident: Option<Incident>,
    last_incident: Option<ClosedIncident>,
    /// When recent incidents opened (within `flap_window`), for flapping.
    incidents: VecDeque<Instant>,
    /// Flapping with nothing different to roll back to: the growing delay.
    flap: Option<flap::Flap>,
    /// A person's restart or a deploy's replacement under way (no incident).
    expected: Option<expect::Expected>,
    paused: Option<Option<Instant>>,
    blind: bool,
    /// When the probes stopped seeing, while blind; after a restore, the
    /// saved start until the probes are seen again (see `update_blind`).
    blind_since: Option<Instant>,
    stale: bool,
    /// A due action is held until the services this one depends on are healthy.
    held_for_dependency: bool,
    /// A rollback cut short by a stop of medic: it runs again, as a resumed job.
    resume_rollback: bool,
    /// A person's deploy runs, or its failure is being rolled back: its end
    /// goes out as [`Action::DeployEnded`].
    deploy: Option<deploy::DeployRun>,
    /// Judged healthy, not yet the last known good: recorded on the first round
    /// of fresh successes that began at or after this moment (see [`stable_for`]).
    lkg_due: Option<Instant>,
}

impl Machine {
    pub(crate) fn new(now: Instant, name: String, policy: Arc<Policy>) -> Self {
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
            incidents: VecDeque::new(),
            flap: None,
            expected: None,
            paused: None,
            blind: false,
            blind_since: None,
            stale: false,
            held_for_dependency: false,
            resume_rollback: false,
            deploy: None,
            lkg_due: None,
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether an incident is open (the storm rule counts it failing).
    pub(crate) fn in_incident(&self) -> bool {
        self.incident.is_some()
    }

    /// Replaces the policy after a config reload; the state and attempt count stay.
    pub(crate) fn set_policy(&mut self, policy: Arc<Policy>) {
        self.probes
            .resize(policy.probes.len(), ProbeState::default());
        self.policy = policy;
    }

    pub(crate) fn status(&self, now: Instant) -> UnitStatus {
        UnitStatus {
            name: self.name.clone(),
            state: self.state_name(),
            health: self.health(now),
            paused: self.paused,
            since: self.since,
            attempts: self.incident.as_ref().map_or(0, |i| i.attempts),
            reason: self.incident.as_ref().and_then(|i| i.reason.clone()),
            flapping: self.flap_status(),
            below_threshold: self.below_threshold(now),
            incident: self.incident.as_ref().map(|i| i.id.clone()),
            last_incident: self.last_incident.clone(),
            probes: self.probes.iter().map(|p| p.last.clone()).collect(),
        }
    }

    fn gated(&self) -> bool {
        self.paused.is_some() || self.blind || self.held_for_dependency
    }

    /// The next moment `handle_timeout` has something to do for this unit.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::Waiting { at, .. } if !self.gated() => Some(at),
            Phase::Expecting { until, .. } => Some(until),
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
            Phase::DeployRunning { deadline, .. } => Some(deadline),
            Phase::Acting { deadline, .. } => deadline,
            _ => None,
        };
        let pause = self.paused.flatten();
        let stale = if self.stale {
            None
        } else {
            self.stale_deadline()
        };
        [phase, pause, stale, self.flap_deadline()]
            .into_iter()
            .flatten()
            .min()
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
        // Shared with status answers and with the open incident's evidence.
        let observation = Arc::new(observation);
        state.last = Some(ProbeStatus {
            at: now,
            observation: Arc::clone(&observation),
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
            self.hold_queued(now);
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
                self.judged_healthy(ctx);
            }
            // Only observations made after the incident opened may close it.
            Phase::Failing | Phase::Waiting { .. } | Phase::Queued { .. }
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
            Phase::Expecting { .. } if self.all_ok_since(self.expected_since()) => {
                self.expected_back(now, ctx);
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
        self.confirm_last_known_good(ctx);
    }

    fn on_failure(
        &mut self,
        now: Instant,
        consecutive_failures: u32,
        observation: Arc<Observation>,
        ctx: &mut Ctx,
    ) {
        if self.expect(now, &observation, ctx) {
            return;
        }
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
            // `docker rm -f` kills first (died), then removes (gone): the incident is a
            // removal, and whatever step is due waits `replace_grace` for a replacement.
            incident.gone = true;
            incident.removed_at.get_or_insert(now);
            match self.phase {
                Phase::Waiting { step, at } => self.schedule(now, step, at),
                // Out of the queue: the replacement gets its grace first.
                Phase::Queued { step, .. } => self.schedule(now, step, now),
                _ => {}
            }
        }
        if let Some(incident) = self.incident.as_mut().filter(|_| !acting) {
            // Alerts carry every probe's latest failure evidence, not only the first
            // one's; what a service shows while medic acts on it or while it boots
            // again (a container being recreated, say) is not the cause.
            incident.evidence.failure(Arc::clone(&observation));
        }
        // A person's restart is no failure, not even of a verification.
        let decisive = !matches!(observation.urgency, Urgency::Normal | Urgency::Commanded);
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
            // Removed after a step that found the target (a `podman rm -f`
            // racing the restart's start): a removal, not a failed attempt.
            Phase::Verifying { step, since, .. }
                if observation.urgency == Urgency::Gone
                    && observation.began_since(now, since)
                    && self.incident.as_ref().is_some_and(|i| !i.recreating) =>
            {
                let removed_at = self.incident.as_ref().and_then(|i| i.removed_at);
                let message = observation.message.clone();
                let evidence = observation.evidence.clone();
                let removed_at = removed_at.unwrap_or(now);
                self.removed_while_acting(now, removed_at, step, message, evidence, ctx);
            }
            // A restarted service may fail while it boots: only a decisive failure
            // (it died again) or the end of recover_timeout fails the verification.
            // A probe that began before the action finished saw the old state.
            Phase::Verifying { step, since, .. }
                if decisive && observation.began_since(now, since) =>
            {
                let message = format!("still failing: {}", observation.message);
                let evidence = observation.evidence.clone();
                self.verification_failed(now, step, message, evidence, ctx);
            }
            // A container that is gone may still be replaced before the deploy
            // timeout; one that died is a failed deploy at once.
            Phase::DeployVerifying { since, .. }
                if decisive
                    && observation.urgency != Urgency::Gone
                    && observation.began_since(now, since) =>
            {
                let message = format!("the new version fails: {}", observation.message);
                let evidence = observation.evidence.clone();
                self.deploy_failed(now, message, evidence, ctx);
            }
            _ => {}
        }
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
        self.flap_settled(now, ctx);
        match self.phase {
            Phase::Waiting { .. } => self.drive(now, ctx),
            Phase::Expecting { until, .. } if now >= until => self.not_back(now, ctx),
            Phase::Acting {
                step,
                deadline: Some(deadline),
                ..
            } if now >= deadline => {
                // Its result, should it still come, is ignored (another job's id
                // by then); its slot stays taken until the shell reports it ended.
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

    pub(crate) fn pause(&mut self, now: Instant, until: Option<Instant>, ctx: &mut Ctx) {
        self.paused = Some(until);
        self.hold_queued(now);
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

    /// Whether a due action waits for a dependency to become healthy.
    pub(crate) fn is_held_for_dependency(&self) -> bool {
        self.held_for_dependency
    }

    pub(crate) fn removed(&mut self, now: Instant, why: &str, ctx: &mut Ctx) {
        self.deploy_ended(DeployEnd::Removed, ctx);
        self.log(ctx, now, EventKind::Removed, why);
    }

    pub(crate) fn watching(&mut self, now: Instant, ctx: &mut Ctx) {
        self.log(ctx, now, EventKind::Watching, "watching");
    }

    fn set_phase(&mut self, now: Instant, phase: Phase) {
        if phase.name() != self.phase.name() {
            self.since = now;
        }
        if phase != Phase::Healthy {
            // An incident, a deploy or a reset: what was judged healthy did not last.
            self.lkg_due = None;
        }
        if !matches!(
            phase,
            Phase::Waiting {
                step: Step::Rollback,
                ..
            } | Phase::Queued {
                step: Step::Rollback,
                ..
            }
        ) {
            // The rollback to finish ran, or its incident ended.
            self.resume_rollback = false;
        }
        if !matches!(phase, Phase::Expecting { .. }) {
            // Back, or overtaken by an incident, a reset, a recover or a deploy.
            self.expected = None;
        }
        self.phase = phase;
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn round_secs(duration: Duration) -> Duration {
    Duration::from_secs(duration.as_secs())
}
