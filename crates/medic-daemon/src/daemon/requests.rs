//! The control requests of the CLI and the web page (status, reload, page,
//! metrics, deploys, pause/resume/reset/recover), answered on the loop from
//! its own state, and the storage problems those answers report.

use medic_core::{Control, Input};
use medic_records::files::FileHealth;

use super::Daemon;
use crate::clock::now;
use crate::shell::{ControlCommand, ControlRequest};
use crate::status::StatusReport;

impl Daemon {
    /// Answers one control request.
    pub(super) fn control(&mut self, request: ControlRequest) {
        let now = now();
        match request {
            ControlRequest::Status { only, reply } => {
                let answer = crate::status::render(
                    &self.sup,
                    self.durability.store(),
                    &self.clock,
                    now,
                    only.as_deref(),
                    &self.storage_problems(),
                    &self.selector_status(),
                    // The last whole answer's size, so the buffer is not regrown.
                    if only.is_none() { self.status_size } else { 0 },
                );
                if only.is_none() {
                    self.status_size = answer.len() + answer.len() / 8;
                }
                reply.send(answer).ok();
            }
            ControlRequest::Reload(reply) => {
                reply.send(self.reload()).ok();
            }
            ControlRequest::Page(reply) => {
                let store = self.durability.store();
                let mut report = StatusReport::new(&self.sup, store, &self.clock, now);
                report.problems = self.storage_problems();
                let log = self.config.medic.recovery_log.clone();
                reply
                    .send(crate::page_snapshot::PageSnapshot::new(
                        report, &self.sup, now, log,
                    ))
                    .ok();
            }
            ControlRequest::Metrics(format, reply) => {
                let units = crate::metrics::unit_infos(&self.config, self.units.specs());
                let mut out = medic_exposition::Exposition::new(format);
                self.metrics.render(&mut out, &self.sup, now, &units);
                self.announcer.render_metrics(&mut out);
                let [state, changes, history] = self.durability.healths();
                let mut journals: Vec<&FileHealth> = self.announcer.healths().collect();
                journals.push(changes);
                crate::metrics::render_storage(&mut out, &journals, &[state, history]);
                medic_exposition::process::render(&mut out);
                reply.send(out.finish()).ok();
            }
            ControlRequest::DeployBegin {
                unit,
                command_timeout,
                verify_timeout,
                reply,
            } => {
                let result = self.deploy_begin(now, unit, command_timeout, verify_timeout);
                reply.send(result).ok();
            }
            ControlRequest::DeployFinish {
                unit,
                result,
                reply,
            } => self.deploy_finish(now, unit, result, reply),
            ControlRequest::Resolve { name, reply } => {
                reply.send(self.resolve(&name)).ok();
            }
            ControlRequest::Forget { name, reply } => {
                reply.send(self.forget(&name)).ok();
            }
            ControlRequest::Unit {
                unit,
                control,
                reply,
            } => {
                let targets = self.resolve(&unit);
                if targets.is_empty() {
                    reply
                        .send(Err(format!("no service or instance named `{unit}`")))
                        .ok();
                    return;
                }
                let control = match control {
                    ControlCommand::Pause(duration) => Control::Pause {
                        until: duration.map(|d| now + d),
                    },
                    ControlCommand::Resume => Control::Resume,
                    ControlCommand::Reset => Control::Reset,
                    ControlCommand::Recover => Control::Recover,
                };
                for unit in targets {
                    self.sup
                        .handle_input(now, Input::Control { unit, control })
                        .ok();
                }
                reply.send(Ok(())).ok();
            }
        }
    }

    /// Every file written in the background and whether it is writable.
    /// In the order of the `medic_file_writable` series and of status problems:
    /// the two journals, the state files, the outbox.
    pub(super) fn file_healths(&self) -> Vec<&FileHealth> {
        let mut all: Vec<&FileHealth> = self.announcer.healths().collect();
        all.splice(2..2, self.durability.healths());
        all
    }

    /// "recovery log not writable: No space left on device", one per file that is not.
    pub(super) fn storage_problems(&self) -> Vec<String> {
        let lock = self.lock.problem().map(str::to_owned);
        lock.into_iter()
            .chain(self.file_healths().iter().filter_map(|h| h.problem()))
            .collect()
    }
}
