//! The unit index: every watched unit with its spec and probe tasks, the
//! containers and network namespaces that lead to units (so a Docker event or
//! a restart finds its units at once, whatever their number), and per
//! selector service its discovery task and what its last round saw.

use std::collections::{BTreeMap, HashMap};

use medic_core::Supervisor;
use tokio_util::sync::CancellationToken;

use super::labels::InstanceLabels;
use crate::schedule::UnitProbes;
use crate::unit_spec::{UnitSpec, UnitTarget};

/// One watched unit.
pub(super) struct Unit {
    pub spec: UnitSpec,
    pub probes: UnitProbes,
    /// What the container's labels say (selector instances only).
    pub labels: InstanceLabels,
}

/// What a selector service's discovery round saw: how many instances, or why none.
pub(super) type Sight = Result<usize, String>;

/// The units and the indexes that find them.
#[derive(Default)]
pub(super) struct UnitIndex {
    /// Boxed: a B-tree node holds eleven slots, mostly empty ones for large values.
    units: BTreeMap<String, Box<Unit>>,
    /// Units by the container they watch, so a Docker event finds its units at once.
    containers: HashMap<String, Vec<String>>,
    /// Units by the unit whose network namespace they join (`dependents_of`).
    namespace_children: HashMap<String, Vec<String>>,
    /// The discovery task of each selector service, stopped when a reload replaces it.
    discoveries: BTreeMap<String, CancellationToken>,
    /// Per selector service, what its last discovery round saw.
    sights: BTreeMap<String, Sight>,
}

impl UnitIndex {
    pub(super) fn contains(&self, name: &str) -> bool {
        self.units.contains_key(name)
    }

    pub(super) fn get(&self, name: &str) -> Option<&Unit> {
        self.units.get(name).map(Box::as_ref)
    }

    pub(super) fn specs(&self) -> impl Iterator<Item = &UnitSpec> {
        self.units.values().map(|u| &u.spec)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&String, &Unit)> {
        self.units.iter().map(|(name, unit)| (name, unit.as_ref()))
    }

    /// Whether any unit's name starts with `prefix` (an instance of a selector service).
    pub(super) fn any_with_prefix(&self, prefix: &str) -> bool {
        self.units.keys().any(|u| u.starts_with(prefix))
    }

    /// Files a unit under its name, its container and its namespace parent.
    pub(super) fn insert(&mut self, spec: UnitSpec, probes: UnitProbes) {
        if let UnitTarget::Container { container, .. } = &spec.target {
            index_add(&mut self.containers, container, &spec.name);
        }
        if let Some(parent) = &spec.namespace_parent {
            index_add(&mut self.namespace_children, parent, &spec.name);
        }
        let unit = Unit {
            spec,
            probes,
            labels: InstanceLabels::default(),
        };
        self.units.insert(unit.spec.name.clone(), Box::new(unit));
    }

    /// Stops a unit's probes and forgets it and its indexes; false when it was not watched.
    pub(super) fn remove(&mut self, name: &str) -> bool {
        let Some(unit) = self.units.remove(name) else {
            return false;
        };
        unit.probes.stop();
        if let UnitTarget::Container { container, .. } = &unit.spec.target {
            index_remove(&mut self.containers, container, name);
        }
        if let Some(parent) = &unit.spec.namespace_parent {
            index_remove(&mut self.namespace_children, parent, name);
        }
        true
    }

    /// A unit's labels as its last discovery read them.
    pub(super) fn labels(&self, name: &str) -> Option<&InstanceLabels> {
        self.units.get(name).map(|u| &u.labels)
    }

    pub(super) fn set_labels(&mut self, name: &str, labels: InstanceLabels) {
        if let Some(unit) = self.units.get_mut(name) {
            unit.labels = labels;
        }
    }

    /// The units watching a container.
    fn watching(&self, container: &str) -> &[String] {
        self.containers
            .get(container)
            .map_or(&[][..], Vec::as_slice)
    }

    /// Runs the container check of the units watching a container (a Docker
    /// event about it); false when none does.
    pub(super) fn check_container(&self, container: &str) -> bool {
        let names = self.watching(container);
        for unit in names.iter().filter_map(|name| self.units.get(name)) {
            unit.probes.check_container();
        }
        !names.is_empty()
    }

    /// Runs the container check of every unit with a container target (the engine came back).
    pub(super) fn check_containers(&self) {
        for unit in self.units.values() {
            if matches!(unit.spec.target, UnitTarget::Container { .. }) {
                unit.probes.check_container();
            }
        }
    }

    /// Stops every unit's probes (shutdown).
    pub(super) fn stop_probes(&self) {
        for unit in self.units.values() {
            unit.probes.stop();
        }
    }

    /// Makes `unit` follow the unit watching `parent_container`, whose network
    /// namespace it joins; returns its dependencies when they changed.
    pub(super) fn follow_namespace(
        &mut self,
        unit: &str,
        parent_container: &str,
    ) -> Option<Vec<String>> {
        let parent = self
            .watching(parent_container)
            .iter()
            .find(|n| *n != unit)
            .cloned()?;
        let u = self.units.get_mut(unit)?;
        if u.spec.namespace_parent.as_deref() == Some(parent.as_str()) {
            return None;
        }
        tracing::info!(%unit, %parent, "Shares the network namespace of its parent: follows its restarts");
        if let Some(before) = u.spec.namespace_parent.replace(parent.clone()) {
            index_remove(&mut self.namespace_children, &before, unit);
        }
        index_add(&mut self.namespace_children, &parent, unit);
        let mut dependencies = u.spec.depends_on.clone();
        dependencies.push(parent);
        Some(dependencies)
    }

    /// Units that share this one's network namespace and must follow it when it is recreated.
    pub(super) fn dependents_of(&self, unit: &str) -> Vec<UnitSpec> {
        self.namespace_children
            .get(unit)
            .into_iter()
            .flatten()
            .filter_map(|child| self.units.get(child))
            .map(|u| u.spec.clone())
            .collect()
    }

    /// The containers of the units that must follow this one (`dependents_of`).
    pub(super) fn dependent_containers(&self, unit: &str) -> Vec<String> {
        self.dependents_of(unit)
            .iter()
            .filter_map(|spec| spec.container().map(str::to_owned))
            .collect()
    }

    /// The units a name given to a command means, in order: the unit of that
    /// name; every instance of the service of that name (`service/…`); every
    /// instance of the Compose service of that name (`web`, or `app/web` for
    /// the project too), whichever selector service watches it.
    pub(super) fn resolve(&self, sup: &Supervisor, name: &str) -> Vec<String> {
        if sup.contains(name) {
            return vec![name.to_owned()];
        }
        let prefix = format!("{name}/");
        let instances: Vec<String> = sup
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

    /// Keeps a selector service's discovery task, stopping the one it replaces.
    pub(super) fn set_discovery(&mut self, service: &str, task: CancellationToken) {
        if let Some(old) = self.discoveries.insert(service.to_owned(), task) {
            old.cancel();
        }
    }

    /// Stops a selector service's discovery task, if it has one.
    pub(super) fn stop_discovery(&mut self, service: &str) {
        if let Some(old) = self.discoveries.remove(service) {
            old.cancel();
        }
    }

    /// Stops the discovery tasks of services `keep` says no to (a reload removed them).
    pub(super) fn retain_discoveries(&mut self, keep: impl Fn(&str) -> bool) {
        self.discoveries.retain(|name, task| {
            let kept = keep(name);
            if !kept {
                task.cancel();
            }
            kept
        });
    }

    /// Records a discovery round; true when what it saw changed (a count, or seeing at all).
    pub(super) fn sight(&mut self, service: &str, sight: Sight) -> bool {
        let changed = match (self.sights.get(service), &sight) {
            (Some(Ok(before)), Ok(count)) => before != count,
            (Some(Err(_)), Err(_)) => false,
            _ => true,
        };
        self.sights.insert(service.to_owned(), sight);
        changed
    }

    /// What each selector service's last discovery round saw.
    pub(super) fn sights(&self) -> impl Iterator<Item = (&String, &Sight)> {
        self.sights.iter()
    }

    /// Every selector service's discovery has reported once: before that, no
    /// unit yet is not "all observed", and READY=1 would claim a watch that
    /// has not begun.
    pub(super) fn discovered(&self) -> bool {
        self.discoveries.keys().all(|s| self.sights.contains_key(s))
    }
}

/// Adds `name` to the units filed under `key` (an index from a container or a
/// parent to units).
fn index_add(index: &mut HashMap<String, Vec<String>>, key: &str, name: &str) {
    index
        .entry(key.to_owned())
        .or_default()
        .push(name.to_owned());
}

/// Removes `name` from the units filed under `key`, and `key` once none is left.
fn index_remove(index: &mut HashMap<String, Vec<String>>, key: &str, name: &str) {
    if let Some(names) = index.get_mut(key) {
        names.retain(|n| n != name);
        if names.is_empty() {
            index.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use medic_core::config::Target;
    use medic_core::policy::Policy;

    use super::*;
    use crate::schedule::Pacing;
    use crate::shell::Shell;

    /// A unit named `name` watching `container`, in `parent`'s network namespace.
    fn spec(name: &str, container: &str, parent: Option<&str>) -> UnitSpec {
        let text = format!("[[service]]\nname = \"x\"\ncontainer = {{ name = \"{container}\" }}\n");
        let config = medic_core::config::parse(&text, "test.toml").expect("a valid config");
        let Some(Target::Container(target)) = config.services[0].target.clone() else {
            panic!("a container target");
        };
        UnitSpec {
            name: name.to_owned(),
            service: name.split('/').next().unwrap_or(name).to_owned(),
            policy: Arc::new(Policy::default()),
            target: UnitTarget::Container {
                container: container.to_owned(),
                target,
            },
            checks: Vec::new(),
            probe_kinds: Vec::new(),
            depends_on: vec!["db-migrations".to_owned()],
            namespace_parent: parent.map(str::to_owned),
        }
    }

    /// An index of `units` (name, container), with no probe tasks.
    fn index(units: &[(&str, &str)]) -> UnitIndex {
        let (events, _) = tokio::sync::mpsc::channel(1);
        let shell = Shell {
            events,
            tracker: tokio_util::task::TaskTracker::new(),
            cancel: CancellationToken::new(),
        };
        let pacing = Arc::new(Pacing::new(1));
        let mut index = UnitIndex::default();
        for (name, container) in units {
            let probes = UnitProbes::spawn(&shell, &pacing, name, Vec::new());
            index.insert(spec(name, container, None), probes);
        }
        index
    }

    #[test]
    fn a_container_finds_its_units_until_they_are_removed() {
        let mut index = index(&[("web", "c1"), ("all/c1", "c1"), ("db", "c2")]);
        assert!(index.check_container("c1"));
        assert!(!index.check_container("c3"));
        assert!(index.remove("web"));
        assert!(!index.remove("web"), "once");
        assert!(index.check_container("c1"), "all/c1 still watches it");
        assert!(index.remove("all/c1"));
        assert!(!index.check_container("c1"));
        assert!(index.containers.values().all(|units| !units.is_empty()));
        assert_eq!(index.units.len(), 1);
    }

    #[test]
    fn a_unit_follows_the_unit_whose_namespace_it_joins() {
        let mut index = index(&[("db", "dbc"), ("app", "appc")]);
        let dependencies = index.follow_namespace("app", "dbc");
        assert_eq!(
            dependencies,
            Some(vec!["db-migrations".to_owned(), "db".to_owned()])
        );
        assert_eq!(index.follow_namespace("app", "dbc"), None, "once");
        assert_eq!(index.follow_namespace("db", "dbc"), None, "never itself");
        assert_eq!(index.follow_namespace("app", "unknown"), None);
        let names: Vec<_> = index
            .dependents_of("db")
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["app"]);
        index.remove("app");
        assert!(index.dependents_of("db").is_empty());
        assert!(index.namespace_children.is_empty());
    }

    #[test]
    fn a_name_means_a_unit_its_instances_or_a_compose_service() {
        let mut index = index(&[("api", "a"), ("shop/w1", "w1"), ("shop/w2", "w2")]);
        let mut sup = Supervisor::new("t", 1);
        for name in ["api", "shop/w1", "shop/w2"] {
            sup.add_unit(crate::clock::now(), name, Policy::default());
        }
        let compose = crate::daemon::labels::tests::compose("store", "web");
        index.set_labels("shop/w2", InstanceLabels::read(&compose));
        assert_eq!(index.resolve(&sup, "api"), ["api"]);
        assert_eq!(index.resolve(&sup, "shop"), ["shop/w1", "shop/w2"]);
        assert_eq!(index.resolve(&sup, "web"), ["shop/w2"]);
        assert_eq!(index.resolve(&sup, "store/web"), ["shop/w2"]);
        assert!(index.resolve(&sup, "nothing").is_empty());
    }

    #[test]
    fn discovery_is_done_once_every_selector_reported() {
        let mut index = UnitIndex::default();
        assert!(index.discovered(), "no selector, nothing to wait for");
        let first = CancellationToken::new();
        index.set_discovery("all", first.clone());
        assert!(!index.discovered());
        assert!(index.sight("all", Ok(2)), "the first round is news");
        assert!(index.discovered());
        assert!(!index.sight("all", Ok(2)));
        assert!(index.sight("all", Ok(3)));
        assert!(index.sight("all", Err("engine down".into())));
        assert!(!index.sight("all", Err("engine still down".into())));
        let second = CancellationToken::new();
        index.set_discovery("all", second.clone());
        assert!(first.is_cancelled(), "a replaced task stops");
        index.retain_discoveries(|name| name != "all");
        assert!(second.is_cancelled(), "a removed service's task stops");
    }
}
