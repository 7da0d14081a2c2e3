//! Which containers a service means: selectors and their list filters, the
//! containers found, and the names medic gives the
//! forensic copies it keeps after a rollback.

use std::collections::{BTreeMap, HashMap};

use bollard::models::ContainerSummary as Listed;

use crate::DockerError;
use crate::facts::ContainerState;
use crate::labels::overrides;

/// What separates a name from the stamp in a forensic copy's name.
const FORENSIC_INFIX: &str = ".medic-failed-";
/// The label Docker Compose puts on `docker compose run` containers.
const COMPOSE_ONEOFF: &str = "com.docker.compose.oneoff";

/// How to find containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Exactly this name.
    Name(String),
    /// Every container with all these labels (`key` alone: any value).
    Labels(Vec<(String, Option<String>)>),
    /// One Docker Compose service.
    Compose {
        /// `com.docker.compose.project`
        project: String,
        /// `com.docker.compose.service`
        service: String,
    },
}

impl Selector {
    /// The `filters` of a container list call. Docker matches a name filter as
    /// a regular expression against `/name`, so the name is anchored and escaped.
    pub fn filters(&self) -> Result<HashMap<String, Vec<String>>, DockerError> {
        let label = |k: &str, v: Option<&str>| match v {
            Some(v) => format!("{k}={v}"),
            None => k.to_owned(),
        };
        let filters = match self {
            Selector::Name(name) if name.is_empty() => {
                return Err(DockerError::Invalid("an empty container name"));
            }
            Selector::Name(name) => {
                HashMap::from([("name".into(), vec![format!("^/{}$", escape(name))])])
            }
            Selector::Labels(labels) if labels.is_empty() => {
                // An empty label filter would select every container on the host.
                return Err(DockerError::Invalid("a label selector without labels"));
            }
            Selector::Labels(labels) => HashMap::from([(
                "label".into(),
                labels.iter().map(|(k, v)| label(k, v.as_deref())).collect(),
            )]),
            Selector::Compose { project, service } => HashMap::from([(
                "label".into(),
                vec![
                    label("com.docker.compose.project", Some(project)),
                    label("com.docker.compose.service", Some(service)),
                ],
            )]),
        };
        Ok(filters)
    }

    /// Whether a listed container really belongs to the selection: an exact
    /// name, never a forensic copy, never a `docker compose run` one-off.
    pub(crate) fn keeps(&self, found: &ContainerSummary) -> bool {
        if is_forensic(&found.name) || is_compose_transient(found) {
            return false;
        }
        match self {
            Selector::Name(name) => found.name == *name,
            Selector::Labels(_) => true,
            Selector::Compose { .. } => found
                .labels
                .get(COMPOSE_ONEOFF)
                .is_none_or(|v| !v.eq_ignore_ascii_case("true")),
        }
    }
}

/// A container found by a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSummary {
    /// Its full id.
    pub id: String,
    /// Its name without the leading `/`.
    pub name: String,
    /// created, running, exited, …
    pub state: ContainerState,
    /// The image reference it was created from.
    pub image: String,
    /// The image id it runs.
    pub image_id: String,
    /// When it was created, in seconds since the epoch.
    pub created: i64,
    /// Its labels (medic reads per-container overrides from `medic.*`).
    pub labels: HashMap<String, String>,
}

impl ContainerSummary {
    pub(crate) fn from_list(listed: Listed) -> Option<Self> {
        let name = listed.names?.first()?.trim_start_matches('/').to_owned();
        Some(Self {
            id: listed.id?,
            name,
            state: listed.state.map_or(ContainerState::Unknown, |s| {
                ContainerState::parse(s.as_ref())
            }),
            image: listed.image.unwrap_or_default(),
            image_id: listed.image_id.unwrap_or_default(),
            created: listed.created.unwrap_or(0),
            labels: listed.labels.unwrap_or_default(),
        })
    }

    /// Running (or paused) now.
    pub fn is_running(&self) -> bool {
        matches!(self.state, ContainerState::Running | ContainerState::Paused)
    }

    /// Its `medic.*` override labels, see [`overrides`].
    pub fn overrides(&self) -> BTreeMap<String, String> {
        overrides(&self.labels)
    }
}

/// The name a failed container is kept under after a rollback: `<name>.medic-failed-<stamp>`.
pub fn forensic_name(name: &str, stamp: &str) -> String {
    format!("{name}{FORENSIC_INFIX}{stamp}")
}

/// Whether a container is the old one Compose (v1 and v2) renames to
/// `<12 hex of its id>_<name>` while it recreates a service's container: it is
/// removed a moment later, and its replacement keeps the name.
pub fn is_compose_transient(found: &ContainerSummary) -> bool {
    found.labels.contains_key("com.docker.compose.project")
        && found
            .name
            .split_once('_')
            .is_some_and(|(prefix, _)| prefix.len() == 12 && found.id.starts_with(prefix))
}

/// Whether a container name is one of medic's forensic copies.
pub fn is_forensic(name: &str) -> bool {
    name.contains(FORENSIC_INFIX)
}

/// The list filter that finds the forensic copies of `name` (callers still check the prefix).
pub(crate) fn forensic_filter(name: &str) -> HashMap<String, Vec<String>> {
    let pattern = format!("^/{}", escape(&forensic_name(name, "")));
    HashMap::from([("name".to_owned(), vec![pattern])])
}

/// Whether an inspect result is the container that was asked for. Docker
/// resolves a reference as a full id, then a name, then an id *prefix*: asking
/// for a removed `db` may return an unrelated container whose id starts with
/// `db`. Accept the exact name, the full id, or an id prefix of at least 12
/// hex digits (what `docker ps` shows).
pub(crate) fn is_the_one(query: &str, id: &str, name: &str) -> bool {
    let query = query.trim_start_matches('/');
    query == name
        || query == id
        || (query.len() >= 12
            && query.bytes().all(|b| b.is_ascii_hexdigit())
            && id.starts_with(query))
}

/// Escapes the regular-expression syntax of Go's `regexp` (what Docker's name filter uses).
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(name: &str, labels: &[(&str, &str)]) -> ContainerSummary {
        ContainerSummary {
            id: "0123456789abcdef".into(),
            name: name.into(),
            state: ContainerState::Running,
            image: "app:1".into(),
            image_id: "sha256:1".into(),
            created: 0,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[track_caller]
    fn check_filters(selector: Selector, key: &str, expect: &[&str]) {
        let filters = selector.filters().unwrap();
        assert_eq!(filters.len(), 1);
        assert_eq!(filters[key], expect);
    }

    #[test]
    fn selector_filters() {
        check_filters(
            Selector::Name("app.web-1".into()),
            "name",
            &[r"^/app\.web-1$"],
        );
        check_filters(
            Selector::Labels(vec![
                ("medic.enable".into(), Some("true".into())),
                ("team".into(), None),
            ]),
            "label",
            &["medic.enable=true", "team"],
        );
        check_filters(
            Selector::Compose {
                project: "shop".into(),
                service: "web".into(),
            },
            "label",
            &[
                "com.docker.compose.project=shop",
                "com.docker.compose.service=web",
            ],
        );
        assert!(Selector::Labels(vec![]).filters().is_err());
        assert!(Selector::Name(String::new()).filters().is_err());
        assert_eq!(forensic_filter("a.b")["name"], [r"^/a\.b\.medic-failed-"]);
    }

    #[test]
    fn keeps_exact_names_and_skips_forensic_copies_and_one_offs() {
        let by_name = Selector::Name("web".into());
        assert!(by_name.keeps(&summary("web", &[])));
        assert!(!by_name.keeps(&summary("web2", &[])));
        let labels = Selector::Labels(vec![("medic.enable".into(), Some("true".into()))]);
        assert!(labels.keeps(&summary("web", &[])));
        assert!(!labels.keeps(&summary(&forensic_name("web", "20250101T000000Z"), &[])));
        let compose = Selector::Compose {
            project: "p".into(),
            service: "s".into(),
        };
        assert!(compose.keeps(&summary("p-s-1", &[(COMPOSE_ONEOFF, "False")])));
        assert!(!compose.keeps(&summary("p-s-run-1", &[(COMPOSE_ONEOFF, "True")])));
        // The old container Compose renames while it recreates one (id 0123456789abcdef).
        let project = [("com.docker.compose.project", "p")];
        assert!(!labels.keeps(&summary("0123456789ab_p_s_1", &project)));
        assert!(!labels.keeps(&summary("0123456789ab_p-s-1", &project)));
        assert!(labels.keeps(&summary("p_s_1", &project)));
        assert!(labels.keeps(&summary("fedcba987654_p_s_1", &project)));
        assert!(labels.keeps(&summary("0123456789ab_p_s_1", &[])));
    }

    #[test]
    fn an_id_prefix_is_not_a_name() {
        let id = "db3f00000000000000000000000000000000000000000000000000000000beef";
        assert!(is_the_one("db", id, "db"));
        assert!(is_the_one("/db", id, "db"));
        assert!(
            !is_the_one("db", id, "web"),
            "`db` is gone; this is another container"
        );
        assert!(is_the_one(id, id, "web"));
        assert!(is_the_one(&id[..12], id, "web"));
        assert!(!is_the_one(&id[..11], id, "web"));
    }
}
