//! `medic deploy` of a selector service (or one Compose service) with its
//! instances: recovery is held for every instance while the command runs; when
//! it ends the selector is listed afresh and every instance it matches is
//! verified on fresh observations (a new container is a new instance, one the
//! command removed is retired once the deploy succeeds). All or nothing: the
//! new versions become the last known good only when every instance verified,
//! and any failure rolls every instance back to its last known good.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use medic_core::{ActionResult, Control, Evidence, Input};
use tokio::sync::oneshot;

use super::Daemon;
use super::deploy::PendingDeploy;
use super::labels::InstanceLabels;
use crate::clock::now;
use crate::shell::{DeployOutcome, Found, InstanceOutcome};
use crate::status::version;

/// A deploy of several instances in progress, keyed by the name the person gave.
#[derive(Debug)]
pub(super) struct Rollout {
    /// The selector service whose instances these are.
    service: String,
    command_timeout: Duration,
    verify_timeout: Duration,
    members: BTreeMap<String, Member>,
    /// Instances whose new last known good waits for the whole deploy to verify.
    held: Vec<String>,
    /// Why it failed, once it has; then every instance is being rolled back.
    failure: Option<String>,
    reply: Option<oneshot::Sender<DeployOutcome>>,
}

#[derive(Debug)]
struct Member {
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
    /// Created by this deploy (it has no version to return to).
    new: bool,
    state: State,
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    /// The command runs, or the core verifies (or rolls back) the instance.
    Running,
    /// The command removed it: retired when the deploy succeeds, restored when it fails.
    Gone,
    /// Ended: `promoted`, `rolled_back`, `escalated`, …
    Ended(&'static str),
}

impl Daemon {
    /// Begins a deploy of several instances; Ok carries each one's version before.
    pub(super) fn rollout_begin(
        &mut self,
        now: Instant,
        name: String,
        units: Vec<String>,
        command_timeout: Duration,
        verify_timeout: Duration,
    ) -> Result<Option<serde_json::Value>, String> {
        let mut services: Vec<&str> = units
            .iter()
            .filter_map(|u| u.split_once('/').map(|(s, _)| s))
            .collect();
        services.dedup();
        let service = match services.as_slice() {
            [service] => (*service).to_owned(),
            _ => {
                return Err(format!(
                    "`{name}` means instances of several services: deploy one"
                ));
            }
        };
        if self.rollouts.contains_key(&name) {
            return Err(format!("a deploy of `{name}` is already running"));
        }
        if let Some(busy) = units.iter().find(|u| !self.sup.can_deploy(u)) {
            return Err(format!(
                "`{busy}` is busy: a recovery action or another deploy is running; try again shortly"
            ));
        }
        let mut rollout = Rollout {
            service,
            command_timeout,
            verify_timeout,
            members: BTreeMap::new(),
            held: Vec::new(),
            failure: None,
            reply: None,
        };
        let mut before = serde_json::Map::new();
        for unit in units {
            let version = self.version_before(&unit);
            if let Some(v) = &version {
                before.insert(unit.clone(), v.clone());
            }
            self.hold_for_deploy(now, &unit, &name, version.clone(), &rollout);
            rollout.members.insert(
                unit,
                Member {
                    before: version,
                    after: None,
                    new: false,
                    state: State::Running,
                },
            );
        }
        self.rollouts.insert(name, rollout);
        Ok(Some(serde_json::Value::Object(before)))
    }

    fn version_before(&self, unit: &str) -> Option<serde_json::Value> {
        self.durability
            .store()
            .last_known_good(unit)
            .and_then(|spec| spec.as_object())
            .and_then(version)
    }

    /// Puts one instance under the deploy guard (the core holds its recovery).
    fn hold_for_deploy(
        &mut self,
        now: Instant,
        unit: &str,
        rollout_name: &str,
        before: Option<serde_json::Value>,
        rollout: &Rollout,
    ) {
        self.deploys.insert(
            unit.to_owned(),
            PendingDeploy::member(before, rollout_name.to_owned()),
        );
        let control = Control::Deploy {
            command_timeout: rollout.command_timeout,
            verify_timeout: rollout.verify_timeout,
        };
        let input = Input::Control {
            unit: unit.to_owned(),
            control,
        };
        self.sup.handle_input(now, input).ok();
    }

    /// Whether `name` is a deploy of several instances in progress.
    pub(super) fn is_rollout(&self, name: &str) -> bool {
        self.rollouts.contains_key(name)
    }

    /// The command ended: on success list the instances now, else roll every one back.
    pub(super) fn rollout_finish(
        &mut self,
        now: Instant,
        name: &str,
        result: ActionResult,
        reply: oneshot::Sender<DeployOutcome>,
    ) {
        let Some(rollout) = self.rollouts.get_mut(name) else {
            return;
        };
        rollout.reply = Some(reply);
        if let ActionResult::Failed { message, .. } = &result {
            rollout.failure = Some(format!("the deploy command failed: {message}"));
        }
        match result {
            ActionResult::Done { .. } => {
                let service = rollout.service.clone();
                self.list_instances(&service, crate::shell::Listing::Deploy(name.to_owned()));
            }
            failed => {
                let units: Vec<String> = rollout.members.keys().cloned().collect();
                for unit in units {
                    self.feed(now, &unit, failed.clone());
                }
            }
        }
    }

    /// The instances after the command: verify those there, note those gone,
    /// and put the new ones under the guard too.
    pub(super) fn rollout_listed(&mut self, name: &str, found: Result<Vec<Found>, String>) {
        let now = now();
        let Some(rollout) = self.rollouts.get(name) else {
            return;
        };
        let service = rollout.service.clone();
        let found = match found {
            Ok(found) => found,
            Err(error) => {
                let units: Vec<String> = rollout.members.keys().cloned().collect();
                let failed = ActionResult::Failed {
                    message: format!("cannot list the instances after the deploy: {error}"),
                    evidence: Evidence::new(),
                };
                for unit in units {
                    self.feed(now, &unit, failed.clone());
                }
                return;
            }
        };
        // The instances the name means now: all of the service's, or one Compose service's.
        let found: Vec<Found> = found
            .into_iter()
            .filter(|(_, labels)| {
                name == service || InstanceLabels::read(labels).names_compose_service(name)
            })
            .collect();
        let done = ActionResult::Done {
            message: "the deploy command ended".into(),
            evidence: Evidence::new(),
        };
        let members: Vec<String> = rollout.members.keys().cloned().collect();
        for unit in members {
            let container = unit.split_once('/').map_or("", |(_, c)| c);
            if found.iter().any(|(c, _)| c == container) {
                self.feed(now, &unit, done.clone());
            } else if let Some(member) = self.member(name, &unit) {
                member.state = State::Gone;
            }
        }
        for (container, labels) in &found {
            let unit = format!("{service}/{container}");
            let known = self
                .rollouts
                .get(name)
                .is_some_and(|r| r.members.contains_key(&unit));
            if known {
                continue;
            }
            self.found(&service, container, labels);
            if !self.sup.can_deploy(&unit) {
                continue;
            }
            let Some(rollout) = self.rollouts.remove(name) else {
                return;
            };
            self.hold_for_deploy(now, &unit, name, None, &rollout);
            self.rollouts.insert(name.to_owned(), rollout);
            if let Some(rollout) = self.rollouts.get_mut(name) {
                rollout.members.insert(
                    unit.clone(),
                    Member {
                        before: None,
                        after: None,
                        new: true,
                        state: State::Running,
                    },
                );
            }
            self.feed(now, &unit, done.clone());
        }
        self.rollout_progress(name);
    }

    fn member(&mut self, name: &str, unit: &str) -> Option<&mut Member> {
        self.rollouts.get_mut(name)?.members.get_mut(unit)
    }

    fn feed(&mut self, now: Instant, unit: &str, result: ActionResult) {
        let input = Input::Finished {
            unit: unit.to_owned(),
            result,
        };
        self.sup.handle_input(now, input).ok();
    }

    /// A new last known good of an instance under a deploy waits for the whole
    /// deploy; true when it was held.
    pub(super) fn hold_last_known_good(&mut self, unit: &str) -> bool {
        for rollout in self.rollouts.values_mut() {
            if rollout.members.contains_key(unit) {
                rollout.held.push(unit.to_owned());
                return true;
            }
        }
        false
    }

    /// One instance's deploy ended (promoted, rolled back, escalated, …).
    pub(super) fn rollout_member_ended(
        &mut self,
        name: &str,
        unit: &str,
        outcome: &'static str,
        after: Option<serde_json::Value>,
        failure: Option<String>,
    ) {
        let Some(rollout) = self.rollouts.get_mut(name) else {
            return;
        };
        if let Some(failure) = failure.filter(|_| outcome != "promoted") {
            rollout
                .failure
                .get_or_insert_with(|| format!("{unit}: {failure}"));
        }
        if let Some(member) = rollout.members.get_mut(unit) {
            member.state = State::Ended(outcome);
            member.after = after;
        }
        self.rollout_progress(name);
    }

    /// Moves a deploy on once no instance is running: promote the whole set,
    /// or roll every instance back, then answer `medic deploy`.
    fn rollout_progress(&mut self, name: &str) {
        let now = now();
        let Some(rollout) = self.rollouts.get_mut(name) else {
            return;
        };
        if rollout.members.values().any(|m| m.state == State::Running) {
            return;
        }
        let failed = rollout
            .members
            .values()
            .any(|m| matches!(m.state, State::Ended(o) if o != "promoted"));
        if failed && rollout.failure.is_none() {
            rollout.failure = Some("an instance was not healthy in time".into());
        }
        let rolling_back = rollout.failure.is_some();
        // Phase two of a failure: every instance still on the new version goes back.
        let mut back = Vec::new();
        if rolling_back {
            for (unit, member) in &mut rollout.members {
                let returns = match member.state {
                    State::Gone => true,
                    State::Ended("promoted") => !member.new && member.before.is_some(),
                    _ => false,
                };
                if returns {
                    member.state = State::Running;
                    back.push((unit.clone(), member.before.clone()));
                }
            }
        }
        if !back.is_empty() {
            let Some(rollout) = self.rollouts.remove(name) else {
                return;
            };
            let why = rollout.failure.clone().unwrap_or_default();
            for (unit, before) in &back {
                if !self.sup.can_deploy(unit) {
                    continue;
                }
                self.hold_for_deploy(now, unit, name, before.clone(), &rollout);
            }
            let held: Vec<String> = rollout.held.clone();
            self.rollouts.insert(name.to_owned(), rollout);
            for (unit, _) in &back {
                let failed = ActionResult::Failed {
                    message: format!("rolled back with the rest of the deploy ({why})"),
                    evidence: Evidence::new(),
                };
                self.feed(now, unit, failed);
            }
            // The versions rolled back never become the last known good.
            if let Some(rollout) = self.rollouts.get_mut(name) {
                rollout.held = held
                    .into_iter()
                    .filter(|u| !back.iter().any(|(b, _)| b == u))
                    .collect();
            }
            return;
        }
        let Some(rollout) = self.rollouts.remove(name) else {
            return;
        };
        for unit in &rollout.held {
            if let Some(u) = self.units.get(unit) {
                self.executor
                    .record_last_known_good(&self.shell, &u.spec, None);
            }
        }
        let mut instances = Vec::new();
        for (unit, member) in rollout.members {
            let outcome = match member.state {
                State::Gone => {
                    self.retire(
                        &unit,
                        &format!(
                            "removed by the guarded deploy of `{name}`: retired, not restored"
                        ),
                    );
                    "retired"
                }
                State::Ended(outcome) => outcome,
                State::Running => "running",
            };
            instances.push(InstanceOutcome {
                unit,
                outcome: outcome.to_owned(),
                before: member.before,
                after: member.after,
            });
        }
        let promoted = rollout.failure.is_none();
        let message = match &rollout.failure {
            None => format!(
                "deployed: {} instance(s) healthy, their versions are the last known good now",
                instances.iter().filter(|i| i.outcome == "promoted").count()
            ),
            Some(failure) => format!("{failure}; every instance was rolled back"),
        };
        tracing::info!(deploy = %name, promoted, "{message}");
        if let Some(reply) = rollout.reply {
            reply
                .send(DeployOutcome {
                    promoted,
                    message,
                    before: None,
                    after: None,
                    incident: None,
                    instances,
                })
                .ok();
        }
    }
}
