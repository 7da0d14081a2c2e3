//! What a found container's labels say about its unit: its `medic.*`
//! overrides and the Compose service (`web`, `app/web`) that names it.

use std::collections::{BTreeMap, HashMap};

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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The labels Compose puts on an instance of `project/service`.
    pub(in crate::daemon) fn compose(project: &str, service: &str) -> HashMap<String, String> {
        HashMap::from([
            (COMPOSE_PROJECT.to_owned(), project.to_owned()),
            (COMPOSE_SERVICE.to_owned(), service.to_owned()),
        ])
    }

    #[test]
    fn a_compose_service_is_named_alone_or_with_its_project() {
        let mut labels = compose("shop", "web");
        labels.insert("medic.enable".to_owned(), "true".to_owned());
        labels.insert("medic.on_stop".to_owned(), "leave".to_owned());
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
