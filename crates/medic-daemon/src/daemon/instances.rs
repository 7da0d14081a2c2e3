//! Selector services and their instances: what a name given to a command
//! means, watching a found container (its `medic.*` labels re-read on every
//! discovery), discovery tasks replaced on reload, and retirement — an
//! instance stops being watched only on purpose (`medic forget`, a guarded
//! deploy that removed it, a selector that no longer matches it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use medic_core::Input;
use medic_core::Observation;
use medic_core::config::{ContainerSelector, LabelSelector, Target, UnitSelector};

use super::Daemon;
use super::labels::InstanceLabels;
use super::unit_index::Sight;
use crate::clock::now;
use crate::shell::{Event, Found, Listing, Shell};
use crate::status::SelectorStatus;
use crate::units;

impl Daemon {
    /// The units a name given to a command means, in order: the unit of that
    /// name; every instance of the service of that name (`service/…`); every
    /// instance of the Compose service of that name (`web`, or `app/web` for
    /// the project too), whichever selector service watches it.
    pub(super) fn resolve(&self, name: &str) -> Vec<String> {
        self.units.resolve(&self.sup, name)
    }

    /// Watches a container a selector service found as its own unit; for one
    /// watched already, re-reads its `medic.*` labels: a changed label changes the policy.
    pub(super) fn found(
        &mut self,
        service: &str,
        container: &str,
        labels: &HashMap<String, String>,
    ) {
        let name = format!("{service}/{container}");
        let read = InstanceLabels::read(labels);
        if let Some(labels) = self.units.labels(&name) {
            if labels.overrides == read.overrides {
                self.units.set_labels(&name, read);
                return;
            }
            tracing::info!(unit = %name, labels = ?read.overrides, "medic.* labels read: the policy follows them");
            self.units.remove(&name);
        }
        let Some(config) = self.config.services.iter().find(|s| s.name == service) else {
            return;
        };
        // A launchd job or systemd unit has no labels to read.
        let planned = match &config.target {
            Some(Target::LaunchAgent(target)) => Some(units::launch_agent_unit(
                config,
                target,
                &name,
                container,
                &self.executor,
            )),
            Some(Target::SystemdUnit(target)) => Some(units::systemd_unit(
                config,
                target,
                &name,
                container,
                &self.executor,
            )),
            _ => None,
        };
        if let Some(planned) = planned {
            match planned {
                Ok(spec) => self.add_unit(spec),
                Err(error) => {
                    tracing::warn!(unit = %name, error = format!("{error:#}"), "Cannot watch a found instance")
                }
            }
            return;
        }
        let Some(Target::Container(target)) = &config.target else {
            return;
        };
        let (mut config, mut target) = (config.clone(), target.clone());
        // Read by the config's own code; any bad label: the service's policy.
        match medic_core::config::apply_labels(
            &config.policy,
            &target,
            &config.probes,
            &read.overrides,
        ) {
            Ok(labelled) => {
                config.policy = Arc::new(labelled.policy);
                target = labelled.target;
            }
            Err(problems) => self.announcer.labels_rejected(&name, problems),
        }
        match units::container_unit(&config, &target, &name, container, &self.executor) {
            Ok(spec) => {
                self.add_unit(spec);
                self.units.set_labels(&name, read);
            }
            Err(error) => {
                tracing::warn!(unit = %name, error = format!("{error:#}"), "Cannot watch a found container")
            }
        }
    }

    /// Stops watching an instance on purpose; the recovery log's `removed` event says why.
    pub(super) fn retire(&mut self, unit: &str, why: &str) {
        tracing::info!(%unit, "Retired: {why}");
        self.units.remove(unit);
        if let Some(rollout) = self
            .deploys
            .remove(unit)
            .and_then(|p| p.rollout().map(str::to_owned))
        {
            self.rollout_member_retired(&rollout, unit);
        }
        self.sup.retire_unit(now(), unit, why);
        self.metrics.forget(unit);
        self.durability.changed(unit);
    }

    /// `medic forget`: retires every instance a name means (never a
    /// configured service's own unit: remove that from the config).
    pub(super) fn forget(&mut self, name: &str) -> Result<Vec<String>, String> {
        let units = self.resolve(name);
        if units.is_empty() {
            return Err(format!("no service or instance named `{name}`"));
        }
        if let Some(unit) = units.iter().find(|u| !u.contains('/')) {
            return Err(format!(
                "`{unit}` is a configured service, not an instance: remove it from the config and reload"
            ));
        }
        for unit in &units {
            self.retire(
                unit,
                "forgotten by a person (medic forget): no longer restored",
            );
        }
        Ok(units)
    }

    /// Whether `service` is a configured service whose instances are
    /// discovered: a deploy of it may begin with none (the deploy creates them).
    pub(super) fn discovers(&self, service: &str) -> bool {
        self.config
            .services
            .iter()
            .any(|s| s.name == service && discovers(s))
    }

    /// Starts the discovery of every selector service (at start).
    pub(super) fn start_discoveries(&mut self) {
        let services: Vec<String> = self
            .config
            .services
            .iter()
            .filter(|s| discovers(s))
            .map(|s| s.name.clone())
            .collect();
        for service in services {
            self.start_discovery(&service);
        }
    }

    /// (Re)starts the discovery of a selector service, stopping the one it replaces.
    pub(super) fn start_discovery(&mut self, service: &str) {
        self.units.stop_discovery(service);
        let Some(config) = self.config.services.iter().find(|s| s.name == service) else {
            return;
        };
        if !discovers(config) {
            return;
        }
        let cancel = self.shell.cancel.child_token();
        let shell = Shell {
            cancel: cancel.clone(),
            ..self.shell.clone()
        };
        self.executor.start_discovery(&shell, &self.config, config);
        self.units.set_discovery(service, cancel);
    }

    /// Lists a container selector service's instances in a task of its own;
    /// the answer comes back as [`Event::Listed`].
    pub(super) fn list_instances(&self, service: &str, why: Listing) {
        let selector = self
            .config
            .services
            .iter()
            .find(|s| s.name == service)
            .and_then(|s| match &s.target {
                Some(Target::Container(target)) => Some(&target.selector),
                _ => None,
            });
        let (events, service) = (self.shell.events.clone(), service.to_owned());
        let listing = selector.and_then(|s| self.executor.list_containers(s));
        self.shell.tracker.spawn(async move {
            let found = match listing {
                Some(listing) => listing.await.map_err(|e| format!("{e:#}")),
                None => Err("not a container selector".to_owned()),
            };
            events
                .send(Event::Listed {
                    service,
                    why,
                    found,
                })
                .await
                .ok();
        });
    }

    /// A selector service's discovery round. While its engine cannot list
    /// instances and none is watched, a placeholder unit named after the
    /// service stands in, blind with the reason: status says `unknown` (and the
    /// blind alert fires) instead of "healthy" over nothing. It gives way to the
    /// instances once the engine answers. Changes are logged in one line.
    pub(super) fn sight(&mut self, now: std::time::Instant, service: String, sight: Sight) {
        let Some(config) = self.config.services.iter().find(|s| s.name == service) else {
            return;
        };
        let what = units::selector_words(config);
        let changed = self.units.sight(&service, sight.clone());
        match sight {
            Err(reason) => {
                if changed {
                    tracing::warn!(
                        "{service}: {reason}: medic cannot see the {what}, so it watches none of them \
                         until the engine answers (status: unknown)"
                    );
                }
                if !self.units.any_with_prefix(&format!("{service}/")) {
                    if !self.units.contains(&service) {
                        self.add_unit(units::placeholder(config));
                    }
                    let observation = Observation::blind(Duration::ZERO, reason);
                    let input = Input::Observed {
                        unit: service,
                        probe: 0,
                        observation,
                    };
                    self.sup.handle_input(now, input).ok();
                }
            }
            Ok(count) => {
                if changed {
                    tracing::info!("{service}: watching {count} {what}");
                }
                if self.units.remove(&service) {
                    self.sup.remove_unit(now, &service);
                    self.metrics.forget(&service);
                }
            }
        }
    }

    /// What each selector service's last discovery round saw, for status.
    pub(super) fn selector_status(&self) -> Vec<SelectorStatus> {
        self.units
            .sights()
            .filter_map(|(service, sight)| {
                let config = self.config.services.iter().find(|s| &s.name == service)?;
                let what = units::selector_words(config);
                Some(SelectorStatus {
                    service: service.clone(),
                    watching: sight.as_ref().ok().copied(),
                    message: match sight {
                        Ok(count) => format!("watching {count} {what}"),
                        Err(reason) => format!("{reason}: watching none of the {what}"),
                    },
                })
            })
            .collect()
    }

    /// A listing asked for by [`Daemon::list_instances`] arrived.
    pub(super) fn listed(
        &mut self,
        service: &str,
        why: Listing,
        found: Result<Vec<Found>, String>,
    ) {
        match why {
            Listing::Reload => {
                let Ok(found) = found else {
                    tracing::warn!(%service, "Cannot list the containers of a changed selector; its instances stay watched");
                    return;
                };
                let prefix = format!("{service}/");
                let matched: Vec<String> =
                    found.iter().map(|(c, _)| format!("{prefix}{c}")).collect();
                let gone: Vec<String> = self
                    .sup
                    .unit_names()
                    .filter(|u| u.starts_with(&prefix) && !matched.iter().any(|m| m == u))
                    .map(str::to_owned)
                    .collect();
                for unit in gone {
                    self.retire(
                        &unit,
                        "the service's selector no longer matches it (config reload)",
                    );
                }
                for (container, labels) in &found {
                    self.found(service, container, labels);
                }
            }
            Listing::Deploy(name) => self.rollout_listed(&name, found),
        }
    }
}

/// Whether a reload changed how a service selects its containers.
pub(super) fn selector_changed(
    old: Option<&medic_core::config::Service>,
    new: &medic_core::config::Service,
) -> bool {
    let selector = |s: &medic_core::config::Service| match &s.target {
        Some(Target::Container(t)) if !matches!(t.selector, ContainerSelector::Name(_)) => {
            Some(t.selector.clone())
        }
        _ => None,
    };
    old.is_some_and(|old| selector(old).is_some() && selector(old) != selector(new))
}

/// Whether a service's instances are discovered (a label, compose or label
/// prefix selector, which reports a `Sight` each round): a single container
/// or job, a command or a plain endpoint needs no discovery task.
fn discovers(service: &medic_core::config::Service) -> bool {
    match &service.target {
        Some(Target::Container(target)) => !matches!(target.selector, ContainerSelector::Name(_)),
        Some(Target::LaunchAgent(target)) => matches!(target.selector, LabelSelector::Prefix(_)),
        Some(Target::SystemdUnit(target)) => matches!(target.selector, UnitSelector::Pattern(_)),
        _ => false,
    }
}
