//! The container events medic listens to, and their reading into a small
//! [`ContainerEvent`].

use std::collections::HashMap;

use bollard::models::EventMessage;

/// The actions medic listens to (Docker's `event` filter; `health_status`
/// matches `health_status: healthy` and the like). Podman's compatible API
/// filters on its own names (`died`, `remove`: a filter on `die` returns
/// nothing there) but reports Docker's `die`; each engine ignores the other's
/// names. Podman's `cleanup` follows its `die` by milliseconds: between the
/// two the container is `stopped`, a state the Docker API does not have (an
/// inspect then is unreadable), and the check `cleanup` triggers sees it `exited`.
pub const ACTIONS: &[&str] = &[
    "create",
    "start",
    "restart",
    "die",
    "died",
    "cleanup",
    "oom",
    "kill",
    "stop",
    "destroy",
    "remove",
    "rename",
    "pause",
    "unpause",
    "health_status",
];

/// Podman's words for Docker's actions.
const PODMAN_ACTIONS: &[(&str, &str)] = &[("died", "die"), ("remove", "destroy")];

/// Event attributes that Docker adds beside the container's labels.
const NOT_LABELS: &[&str] = &[
    "name",
    "image",
    "exitCode",
    "signal",
    "oldName",
    "execDuration",
    "signal",
    "health_status",
    "containerExitCode",
];

/// One container event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    /// As Docker words it: die, oom, kill, stop, destroy, start, create, rename,
    /// restart, pause, unpause, `health_status: unhealthy`, …
    pub action: String,
    /// The container id.
    pub id: String,
    /// The container name (for `rename`, the new one).
    pub name: String,
    /// For `rename`: the name it had.
    pub old_name: Option<String>,
    /// The image reference.
    pub image: Option<String>,
    /// For `die`: the exit code.
    pub exit_code: Option<i64>,
    /// For `kill`: the signal sent (`15`, `9`), when the engine says (Docker does).
    pub signal: Option<String>,
    /// Sent by Podman (its events carry a `podId` attribute, Docker's never do).
    pub from_podman: bool,
    /// The container's labels.
    pub labels: HashMap<String, String>,
    /// When Docker recorded it, in nanoseconds since the epoch.
    pub time_nanos: i64,
}

impl ContainerEvent {
    /// Reads a Docker (or Podman) event message, in Docker's words: Podman's
    /// `died` is `die`, `remove` is `destroy`, and a health status it puts in
    /// the attributes becomes `health_status: <status>`.
    pub fn from_message(message: EventMessage) -> Self {
        let actor = message.actor.unwrap_or_default();
        let mut attributes = actor.attributes.unwrap_or_default();
        let mut take = |key: &str| attributes.remove(key);
        let name = take("name").unwrap_or_default();
        let old_name = take("oldName").map(|n| n.trim_start_matches('/').to_owned());
        let image = take("image");
        let exit_code = take("exitCode").and_then(|c| c.parse().ok());
        let signal = take("signal");
        let from_podman = take("podId").is_some();
        let health = take("health_status");
        for key in NOT_LABELS {
            attributes.remove(*key);
        }
        let mut action = message.action.unwrap_or_default();
        if let Some((_, docker)) = PODMAN_ACTIONS.iter().find(|(podman, _)| *podman == action) {
            action = (*docker).to_owned();
        }
        if let Some(health) = health.filter(|_| action == "health_status") {
            action = format!("health_status: {health}");
        }
        Self {
            action,
            id: actor.id.unwrap_or_default(),
            name,
            old_name,
            image,
            exit_code,
            signal,
            from_podman,
            labels: attributes,
            time_nanos: message
                .time_nano
                .or_else(|| message.time.map(|s| s.saturating_mul(1_000_000_000)))
                .unwrap_or(0),
        }
    }

    /// The action without its detail: `health_status` for `health_status: unhealthy`.
    pub fn kind(&self) -> &str {
        self.action.split(':').next().unwrap_or_default().trim()
    }

    /// For `health_status` events: the new status (`healthy`, `unhealthy`,
    /// `starting`), when the engine says (Podman 4 puts it where bollard does not read).
    pub fn health(&self) -> Option<&str> {
        let (kind, status) = self.action.split_once(':')?;
        (kind.trim() == "health_status").then(|| status.trim())
    }

    /// A `kill` that asks the container to stop rather than killing it
    /// outright: `docker stop` and `docker restart` send the stop signal
    /// (SIGTERM) first, `docker kill` sends SIGKILL. Podman names no signal.
    pub fn is_graceful_kill(&self) -> bool {
        self.action == "kill"
            && self
                .signal
                .as_deref()
                .is_some_and(|s| !matches!(s, "9" | "SIGKILL" | "KILL"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(value: serde_json::Value) -> ContainerEvent {
        ContainerEvent::from_message(serde_json::from_value(value).unwrap())
    }

    #[test]
    fn reads_a_die_event() {
        let die = event(serde_json::json!({
            "Type": "container", "Action": "die", "time": 1700000000, "timeNano": 1700000000123456789_i64,
            "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "app:1", "exitCode": "3", "medic.enable": "true"}}
        }));
        assert_eq!(
            die,
            ContainerEvent {
                action: "die".into(),
                id: "abc".into(),
                name: "web".into(),
                old_name: None,
                image: Some("app:1".into()),
                exit_code: Some(3),
                signal: None,
                from_podman: false,
                labels: HashMap::from([("medic.enable".to_owned(), "true".to_owned())]),
                time_nanos: 1_700_000_000_123_456_789,
            }
        );
    }

    #[test]
    fn reads_rename_and_health_events() {
        let rename = event(serde_json::json!({
            "Action": "rename", "time": 2,
            "Actor": {"ID": "abc", "Attributes": {"name": "web.medic-failed-1", "oldName": "/web"}}
        }));
        assert_eq!(rename.old_name.as_deref(), Some("web"));
        assert_eq!(rename.time_nanos, 2_000_000_000);
        let health = event(
            serde_json::json!({"Action": "health_status: unhealthy", "Actor": {"ID": "abc"}}),
        );
        assert_eq!(
            (health.kind(), health.health()),
            ("health_status", Some("unhealthy"))
        );
        assert_eq!((rename.kind(), rename.health()), ("rename", None));
    }

    #[test]
    fn reads_podman_events_in_dockers_words() {
        // As Podman 4.3's compatible API sends them (some attributes left out).
        let died = event(serde_json::json!({
            "status": "died", "Type": "container", "Action": "died", "timeNano": 1,
            "Actor": {"ID": "abc", "Attributes": {"containerExitCode": "137", "exitCode": "137",
                      "image": "localhost/medic-test/good:1", "name": "web", "podId": "", "team": "web"}}
        }));
        assert_eq!((died.kind(), died.exit_code), ("die", Some(137)));
        assert!(died.from_podman);
        assert_eq!(
            died.labels,
            HashMap::from([("team".to_owned(), "web".to_owned())])
        );
        let removed = event(serde_json::json!({"Action": "remove", "Actor": {"ID": "abc"}}));
        assert_eq!(removed.action, "destroy");
        let health = event(serde_json::json!({
            "Action": "health_status", "HealthStatus": "healthy",
            "Actor": {"ID": "abc", "Attributes": {"health_status": "unhealthy"}}
        }));
        assert_eq!(health.health(), Some("unhealthy"));
        // Podman 4.3 puts the status beside the actor, where bollard does not read it.
        let unsaid =
            event(serde_json::json!({"Action": "health_status", "HealthStatus": "healthy"}));
        assert_eq!((unsaid.kind(), unsaid.health()), ("health_status", None));
    }

    #[test]
    fn a_stop_signal_is_a_graceful_kill() {
        let kill = |signal: &str| {
            event(
                serde_json::json!({"Action": "kill", "Actor": {"ID": "abc", "Attributes": {"signal": signal}}}),
            )
        };
        assert!(
            kill("15").is_graceful_kill(),
            "docker stop / docker restart"
        );
        assert!(!kill("9").is_graceful_kill(), "docker kill");
        let unsaid = event(serde_json::json!({"Action": "kill", "Actor": {"ID": "abc"}}));
        assert!(!unsaid.is_graceful_kill());
    }
}
