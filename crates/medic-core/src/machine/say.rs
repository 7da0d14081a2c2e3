//! What a unit says: its recovery-log events (with the phase, incident and
//! attempt they happened in) and its alerts.

use std::time::Instant;

use super::{Ctx, Machine};
use crate::event::{Alert, EventKind, RecoveryEvent, Severity};
use crate::notice::Notice;
use crate::observation::Evidence;
use crate::vocabulary::{Action, Step};

impl Machine {
    pub(super) fn log(&self, ctx: &mut Ctx, now: Instant, kind: EventKind, message: &str) {
        self.log_with(ctx, now, kind, message.to_owned(), Evidence::new());
    }

    pub(super) fn log_with(
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
            notice: Notice::of(kind),
        }));
    }

    pub(super) fn alert(
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
            .map(|i| i.evidence.merged())
            .unwrap_or_default();
        self.alert_with(ctx, severity, kind, message, evidence, resolved);
    }

    pub(super) fn alert_with(
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
            held: false,
        }));
    }
}
