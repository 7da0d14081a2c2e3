//! Flapping (issue #35). `flap_limit` incidents within `flap_window` make the
//! next one go to rollback first. With nothing different to roll back to,
//! escalating would leave a service whose restarts work down: instead one
//! critical alert says so, and every later incident's first restart waits a
//! delay that grows (from `flap_backoff`, doubling, at most
//! [`FLAP_BACKOFF_MAX`], as Kubernetes' CrashLoopBackOff), until the service
//! has stayed healthy for `flap_window` since its last incident: then the
//! delay is forgotten and the alert gets its one `resolved`.

use std::time::{Duration, Instant};

use super::{Ctx, Machine, Phase};
use crate::event::{Alert, EventKind, Severity};
use crate::observation::Evidence;
use crate::policy::FLAP_BACKOFF_MAX;
use crate::snapshot::SavedFlap;
use crate::time::after;
use crate::vocabulary::{Action, Step};

/// A unit flapping with nothing different to roll back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Flap {
    /// The delay the next incident's first restart waits.
    next: Duration,
    /// The incident whose critical alert said so: its `resolved` comes when this ends.
    alerted: Option<String>,
    /// When the last incident closed; None while one is open.
    calm_since: Option<Instant>,
}

/// What `medic status` shows of a flapping unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlapStatus {
    /// The delay the next incident's first restart waits.
    pub next_delay: Duration,
    /// When the open incident's delayed restart is due, while it waits.
    pub restart_at: Option<Instant>,
}

impl Machine {
    /// Counts an incident opening now in the flap window; `flapping: N
    /// incidents in W` when the ones before it reach `flap_limit`.
    fn count_incident(&mut self, now: Instant) -> Option<String> {
        let window = self.policy.flap_window;
        while self
            .incidents
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) >= window)
        {
            self.incidents.pop_front();
        }
        let before = self.incidents.len();
        self.incidents.push_back(now);
        let limit = usize::try_from(self.policy.flap_limit).unwrap_or(usize::MAX);
        (before >= limit)
            .then(|| format!("flapping: {} incidents in {}", before + 1, minutes(window)))
    }

    /// Why an incident opening now is flapping, and how long its first restart
    /// waits when the unit already flaps with nothing to roll back to (the
    /// delay then doubles for the next one).
    pub(super) fn judge_flapping(&mut self, now: Instant) -> (Option<String>, Option<Duration>) {
        let counted = self.count_incident(now);
        let cap = FLAP_BACKOFF_MAX.max(self.policy.flap_backoff);
        let Some(flap) = self.flap.as_mut() else {
            return (counted, None);
        };
        flap.calm_since = None;
        let delay = flap.next;
        flap.next = delay.saturating_mul(2).min(cap);
        let why = counted.unwrap_or_else(|| "flapping".to_owned());
        let reason = format!("{why}; restart delayed {}", seconds(delay));
        (Some(reason), Some(delay))
    }

    /// A flapping incident that has not tried a rollback yet.
    pub(super) fn flapping_undelayed(&self) -> bool {
        self.incident
            .as_ref()
            .is_some_and(|i| i.reason.is_some() && i.flap_delay.is_none())
    }

    /// A flapping incident found nothing different to roll back to (`why`):
    /// medic keeps restarting it, after `flap_backoff`, and says so once.
    pub(super) fn keep_restarting(
        &mut self,
        now: Instant,
        why: &str,
        evidence: Evidence,
        ctx: &mut Ctx,
    ) {
        let delay = self.policy.flap_backoff;
        let cap = FLAP_BACKOFF_MAX.max(delay);
        let Some(incident) = self.incident.as_mut() else {
            return;
        };
        incident.flap_delay = Some(delay);
        // Its restarts may still fail: then the rollback is tried (and found impossible) again.
        incident.rollback_tried = false;
        let id = incident.id.clone();
        let reason = incident.reason.clone().unwrap_or_else(|| "flapping".into());
        let flap = self.flap.get_or_insert(Flap {
            next: delay,
            alerted: None,
            calm_since: None,
        });
        flap.next = delay.saturating_mul(2).min(cap);
        let first = flap.alerted.is_none();
        if first {
            flap.alerted = Some(id);
        }
        let message = format!(
            "{reason}; {why}; still restarting, next in {}",
            seconds(delay)
        );
        self.log_with(
            ctx,
            now,
            EventKind::Flapping,
            message.clone(),
            evidence.clone(),
        );
        if first {
            let all = self.incident_evidence_with(evidence);
            self.alert_with(ctx, Severity::Critical, "flapping", &message, all, false);
        }
        self.next_step(now, ctx);
    }

    /// Whether the incident closing now raised the flapping alert: its
    /// resolving line waits until the flapping ends.
    pub(super) fn holds_flap_alert(&self) -> bool {
        let alerted = self.flap.as_ref().and_then(|f| f.alerted.as_deref());
        alerted.is_some() && alerted == self.incident.as_ref().map(|i| i.id.as_str())
    }

    /// An incident ended: the calm that ends the flapping starts now.
    pub(super) fn flap_calm_from(&mut self, now: Instant) {
        if let Some(flap) = self.flap.as_mut() {
            flap.calm_since = Some(now);
        }
    }

    /// When the flapping ends, if nothing fails before.
    pub(super) fn flap_deadline(&self) -> Option<Instant> {
        let calm = self.flap.as_ref()?.calm_since?;
        Some(after(calm, self.policy.flap_window))
    }

    /// Healthy for `flap_window` since the last incident: the delay is
    /// forgotten, and the flapping alert gets its `resolved`.
    pub(super) fn flap_settled(&mut self, now: Instant, ctx: &mut Ctx) {
        if self.incident.is_some() || self.flap_deadline().is_none_or(|at| at > now) {
            return;
        }
        let window = minutes(self.policy.flap_window);
        let message = format!(
            "healthy for {window} since its last incident: no longer flapping, restarts are immediate again"
        );
        self.log(ctx, now, EventKind::FlappingEnded, &message);
        self.end_flapping(message, ctx);
    }

    /// Forgets the flapping (healthy long enough, or reset by a person); the
    /// alert it raised gets its resolving line, unless the incident that raised
    /// it is still open (a reset resolves that one itself).
    pub(super) fn end_flapping(&mut self, message: String, ctx: &mut Ctx) {
        let Some(id) = self.flap.take().and_then(|f| f.alerted) else {
            return;
        };
        if self.incident.as_ref().is_some_and(|i| i.id == id) {
            return; // its incident's own resolving line ends it
        }
        ctx.out.push_back(Action::Alert(Alert {
            service: self.name.clone(),
            severity: Severity::Info,
            kind: "resolved",
            incident: Some(id),
            message,
            evidence: Evidence::new(),
            resolved: true,
            held: false,
        }));
    }

    /// When the open incident's first restart, waiting out its flap delay, is due.
    fn flap_wait(&self) -> Option<Instant> {
        let delayed = self.incident.as_ref()?.flap_delay.is_some();
        match self.phase {
            Phase::Waiting {
                step: Step::Restart(1),
                at,
            } if delayed => Some(at),
            _ => None,
        }
    }

    /// The state `medic status` shows: `flapping` while an incident's first
    /// restart waits out its flap delay, the phase's name otherwise.
    pub(super) fn state_name(&self) -> &'static str {
        match self.flap_wait() {
            Some(_) => "flapping",
            None => self.phase.name(),
        }
    }

    pub(super) fn flap_status(&self) -> Option<FlapStatus> {
        let flap = self.flap.as_ref()?;
        Some(FlapStatus {
            next_delay: flap.next,
            restart_at: self.flap_wait(),
        })
    }

    pub(super) fn saved_flap(&self) -> Option<SavedFlap> {
        self.flap.as_ref().map(|f| SavedFlap {
            next: f.next,
            alerted: f.alerted.clone(),
            calm_since: f.calm_since,
        })
    }

    pub(super) fn restore_flap(&mut self, saved: Option<SavedFlap>) {
        self.flap = saved.map(|f| Flap {
            next: f.next,
            alerted: f.alerted,
            calm_since: f.calm_since,
        });
    }
}

/// `10 min` for whole minutes, else as humantime writes it.
fn minutes(window: Duration) -> String {
    let secs = window.as_secs();
    match secs % 60 {
        0 if secs > 0 => format!("{} min", secs / 60),
        _ => humantime::format_duration(window).to_string(),
    }
}

/// `10s`, `2m 40s`: whole seconds.
fn seconds(delay: Duration) -> String {
    humantime::format_duration(Duration::from_secs(delay.as_secs())).to_string()
}
