//! Selector services and their instances: what a name given to a command
//! means, watching a found container (its `medic.*` labels re-read on every
//! discovery), discovery tasks replaced on reload, and retirement — an
//! instance stops being watched only on purpose (`medic forget`, a guarded
//! deploy that removed it, a selector that no longer matches it).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use medic_core::config::{ContainerSelector, LabelSelector, Target};

use super::{Daemon, now};
use crate::shell::{Event, Found, Listing, Shell};
use crate::units;

/// Compose's labels, by which `web` or `app/web` names a Compose service's instances.
const COMPOSE_PROJECT: &str = "com.docker.compose.project";
const COMPOSE_SERVICE: &str = "com.docker.compose.service";

/// What a found container's labels say about its unit.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct InstanceLabels {
    /// Its `medic.*` overrides, as applied to the unit's policy.
    pub overrides: BTreeMap<String, String>,
    /// Its Compose project and service, when Compose made it.
    pub compose: Option<(String, String)>,
}

impl InstanceLabels {
    pub(super) fn read(labels: &HashMap<String, String>) -> Self {
        let compose = match (labels.get(COMPOSE_PROJECT), labels.get(COMPOSE_SERVICE)) {
            (Some(project), Some(service)) => Some((project.clone(), service.clone())),
            _ => None,
        };
        let mut overrides = medic_docker::overrides(labels);
        overrides.remove("enable"); // the opt-in of the default job, not a policy
        Self { overrides, compose }
    }

    /// Whether a name means this instance's Compose service: `web` or `app/web`.
    pub(super) fn names_compose_service(&self, name: &str) -> bool {
        self.compose
            .as_ref()
            .is_some_and(|(project, service)| match name.split_once('/') {
                Some((p, s)) => p == project && s == service,
                None => name == service,
            })
    }
}

impl Daemon {
    /// The units a name given to a command means, in order: the unit of that
    /// name; every instance of the service of that name (`service/…`); every
    /// instance of the Compose service of that name (`web`, or `app/web` for
    /// the project too), whichever selector service watches it.
    pub(super) fn resolve(&self, name: &str) -> Vec<String> {
        if self.sup.contains(name) {
            return vec![name.to_owned()];
        }
        let prefix = format!("{name}/");
        let instances: Vec<String> = self
            .sup
            .unit_names()
            .filter(|u| u.starts_with(&prefix))
            .map(str::to_owned)
            .collect();
        if !instances.is_empty() {
            return instances;
        }
        self.units
            .iter()
            .filter(|(_, u)| u.labels.names_compose_service(name))
            .map(|(n, _)| n.clone())
            .collect()
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
        if let Some(unit) = self.units.get_mut(&name) {
            if unit.labels.overrides == read.overrides {
                unit.labels = read;
                return;
            }
            tracing::info!(unit = %name, labels = ?read.overrides, "medic.* labels read: the policy follows them");
            self.drop_unit(&name);
        }
        let Some(config) = self.config.services.iter().find(|s| s.name == service) else {
            return;
        };
        if let Some(Target::LaunchAgent(target)) = &config.target {
            match units::launch_agent_unit(config, target, &name, container, &self.executor) {
                Ok(spec) => self.add_unit(spec),
                Err(error) => {
                    tracing::warn!(unit = %name, error = format!("{error:#}"), "Cannot watch a found launchd job")
                }
            }
            return;
        }
        let Some(Target::Container(target)) = &config.target else {
            return;
        };
        let (mut config, mut target) = (config.clone(), target.clone());
        if let Err(error) =
            units::apply_label_overrides(Arc::make_mut(&mut config.policy), &mut target, labels)
        {
            tracing::warn!(unit = %name, %error, "Ignoring an invalid medic.* label");
        }
        match units::container_unit(&config, &target, &name, container, &self.executor) {
            Ok(spec) => {
                self.add_unit(spec);
                if let Some(unit) = self.units.get_mut(&name) {
                    unit.labels = read;
                }
            }
            Err(error) => {
                tracing::warn!(unit = %name, error = format!("{error:#}"), "Cannot watch a found container")
            }
        }
    }

    /// Stops watching an instance on purpose; the recovery log's `removed` event says why.
    pub(super) fn retire(&mut self, unit: &str, why: &str) {
        tracing::info!(%unit, "Retired: {why}");
        self.drop_unit(unit);
        self.deploys.remove(unit);
        self.sup.retire_unit(now(), unit, why);
        self.metrics.forget(unit);
        let change = self.storm.forget(unit, self.units.len());
        self.storm_changed(change);
        self.store_changed.insert(unit.to_owned());
        self.save_soon();
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

    /// (Re)starts the discovery of a selector service, stopping the one it replaces.
    pub(super) fn start_discovery(&mut self, service: &str) {
        if let Some(old) = self.discoveries.remove(service) {
            old.cancel();
        }
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
        self.discoveries.insert(service.to_owned(), cancel);
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
pub(super) fn discovers(service: &medic_core::config::Service) -> bool {
    match &service.target {
        Some(Target::Container(target)) => !matches!(target.selector, ContainerSelector::Name(_)),
        Some(Target::LaunchAgent(target)) => matches!(target.selector, LabelSelector::Prefix(_)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compose_service_is_named_alone_or_with_its_project() {
        let labels = HashMap::from([
            (COMPOSE_PROJECT.to_owned(), "shop".to_owned()),
            (COMPOSE_SERVICE.to_owned(), "web".to_owned()),
            ("medic.enable".to_owned(), "true".to_owned()),
            ("medic.on_stop".to_owned(), "leave".to_owned()),
        ]);
        let read = InstanceLabels::read(&labels);
        assert!(read.names_compose_service("web"));
        assert!(read.names_compose_service("shop/web"));
        assert!(!read.names_compose_service("other/web"));
        assert!(!read.names_compose_service("shop"));
        let overrides: Vec<_> = read.overrides.into_iter().collect();
        assert_eq!(
            overrides,
            [("on_stop".to_owned(), "leave".to_owned())],
            "enable is no policy"
        );
        assert!(!InstanceLabels::default().names_compose_service("web"));
    }
}
