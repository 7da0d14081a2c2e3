//! The container events medic listens to, and their reading into a small
//! [`ContainerEvent`].

use std::collections::HashMap;

use bollard::models::EventMessage;

/// The actions medic listens to (Docker's `event` filter; `health_status`
/// matches `health_status: healthy` and the like).
pub const ACTIONS: &[&str] = &[
    "create",
    "start",
    "restart",
    "die",
    "oom",
    "kill",
    "stop",
    "destroy",
    "rename",
    "pause",
    "unpause",
    "health_status",
];

/// Event attributes that Docker adds beside the container's labels.
const NOT_LABELS: &[&str] = &[
    "name",
    "image",
    "exitCode",
    "signal",
    "oldName",
    "execDuration",
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
    /// For `kill`: the signal sent (15 from `docker stop` and Compose, 9 from `docker kill`).
    pub signal: Option<i64>,
    /// The container's labels.
    pub labels: HashMap<String, String>,
    /// When Docker recorded it, in nanoseconds since the epoch.
    pub time_nanos: i64,
}

impl ContainerEvent {
    /// Reads a Docker event message.
    pub fn from_message(message: EventMessage) -> Self {
        let actor = message.actor.unwrap_or_default();
        let mut attributes = actor.attributes.unwrap_or_default();
        let mut take = |key: &str| attributes.remove(key);
        let name = take("name").unwrap_or_default();
        let old_name = take("oldName").map(|n| n.trim_start_matches('/').to_owned());
        let image = take("image");
        let exit_code = take("exitCode").and_then(|c| c.parse().ok());
        let signal = take("signal").and_then(|c| c.parse().ok());
        for key in NOT_LABELS {
            attributes.remove(*key);
        }
        Self {
            action: message.action.unwrap_or_default(),
            id: actor.id.unwrap_or_default(),
            name,
            old_name,
            image,
            exit_code,
            signal,
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

    /// For `health_status` events: the new status (`healthy`, `unhealthy`, `starting`).
    pub fn health(&self) -> Option<&str> {
        let (kind, status) = self.action.split_once(':')?;
        (kind.trim() == "health_status").then(|| status.trim())
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
}
