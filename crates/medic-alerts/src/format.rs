//! What each kind of sink is sent: the webhook body and its HMAC signature,
//! Slack text with an evidence summary, and Alertmanager v2 alerts with the
//! state that keeps one alert per incident, re-posted while it fires.

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use jiff::Timestamp;
use medic_core::Evidence;
use medic_core::delivery::incident_key;
use medic_records::journal::AlertLine;
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;

/// The generic webhook's (and exec sink's) body: the alert line plus the
/// host it comes from and the service's `labels` from the config.
#[derive(Debug, Serialize)]
struct WebhookBody<'a> {
    #[serde(flatten)]
    alert: &'a AlertLine,
    host: &'a str,
    labels: BTreeMap<&'a str, &'a str>,
}

/// The webhook's JSON body.
pub fn webhook_body(alert: &AlertLine, origin: &Origin) -> Vec<u8> {
    let labels = origin
        .service_labels(&alert.service)
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let body = WebhookBody {
        alert,
        host: &origin.host,
        labels,
    };
    // Invariant: an AlertLine is plain strings and JSON values; encoding cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` under `key`: the `X-Medic-Signature` header.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // Invariant: HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256>>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A Slack-compatible incoming-webhook body: `{"text": …}` for a person to
/// read, with the service's labels on a line of their own.
pub fn slack_body(alert: &AlertLine, origin: &Origin) -> Vec<u8> {
    let host = origin.host.as_str();
    let icon = match (alert.severity.as_str(), alert.resolved) {
        ("critical", _) => ":red_circle:",
        ("warning", _) => ":warning:",
        (_, true) => ":white_check_mark:",
        _ => ":information_source:",
    };
    let mut text = format!(
        "{icon} *{}* `{}` {} on {}: {}",
        alert.severity.to_uppercase(),
        slack_escape(&alert.service),
        slack_escape(&alert.kind),
        slack_escape(host),
        slack_escape(&alert.message)
    );
    let incident = alert
        .incident
        .as_deref()
        .map_or_else(String::new, |i| format!("incident {} · ", slack_escape(i)));
    text.push_str(&format!("\n{incident}{}", alert.ts));
    let labels = origin.service_labels(&alert.service);
    if !labels.is_empty() {
        let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        text.push_str(&format!("\nlabels: {}", slack_escape(&pairs.join(", "))));
    }
    for line in evidence_summary(&alert.evidence) {
        text.push_str("\n> ");
        text.push_str(&slack_escape(&line));
    }
    serde_json::to_vec(&serde_json::json!({ "text": text })).unwrap_or_default()
}

/// Slack's escaping of text it must show as written: `&`, `<` and `>`. What
/// medic quotes (a log line saying `<!channel>` or `<@U123>`) then never pings
/// a channel or a person, nor turns into a link.
fn slack_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// At most 16 readable `key: value` lines (an escalation of an HTTP probe has
/// 13: its URL must not fall off); long values are cut, log lines keep their tail.
pub fn evidence_summary(evidence: &Evidence) -> Vec<String> {
    const MAX_KEYS: usize = 16;
    const MAX_CHARS: usize = 300;
    let mut lines: Vec<String> = evidence
        .iter()
        .take(MAX_KEYS)
        .map(|(key, value)| {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Array(items) if items.iter().all(Value::is_string) => {
                    let tail: Vec<&str> = items
                        .iter()
                        .rev()
                        .take(5)
                        .filter_map(Value::as_str)
                        .collect();
                    let shown: Vec<&str> = tail.into_iter().rev().collect();
                    let more = items.len().saturating_sub(5);
                    let prefix = if more > 0 {
                        format!("(last 5 of {}) ", items.len())
                    } else {
                        String::new()
                    };
                    format!("{prefix}{}", shown.join(" | "))
                }
                other => other.to_string(),
            };
            format!("{key}: {}", cut(&text.replace('\n', " "), MAX_CHARS))
        })
        .collect();
    if evidence.len() > MAX_KEYS {
        lines.push(format!("… and {} more", evidence.len() - MAX_KEYS));
    }
    lines
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max).collect();
    out.push('…');
    out
}

/// Where alerts come from: this host, its status page, and each service's user labels.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The `host` label and field.
    pub host: String,
    /// `[medic] external_url`: Alertmanager's `generatorURL`.
    pub external_url: Option<String>,
    /// Per service, its `labels` from the config.
    pub labels: BTreeMap<String, Vec<(String, String)>>,
}

impl Origin {
    /// This host's origin under `config`.
    pub fn new(config: &medic_core::config::Config) -> Self {
        Self {
            host: crate::hostname::hostname(),
            external_url: config.medic.external_url.clone(),
            labels: config
                .services
                .iter()
                .map(|s| (s.name.clone(), s.labels.clone()))
                .collect(),
        }
    }

    /// The user labels of the service an alert line names (a selector's
    /// instance `web/app-1` has those of `web`).
    pub fn service_labels(&self, line_service: &str) -> &[(String, String)] {
        let service = line_service
            .split_once('/')
            .map_or(line_service, |(s, _)| s);
        self.labels.get(service).map_or(&[], Vec::as_slice)
    }
}

/// How much evidence JSON one Alertmanager annotation carries.
const EVIDENCE_CHARS: usize = 4000;

/// One alert of the Alertmanager v2 API (`POST /api/v2/alerts` takes an array of them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AmAlert {
    /// Identity: alertname, service (and instance_name), severity, kind, host,
    /// incident, and the service's user labels.
    pub labels: BTreeMap<String, String>,
    /// summary, description (the evidence in lines), evidence (as JSON), resolution.
    pub annotations: BTreeMap<String, String>,
    /// medic's status page (`external_url`).
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
    /// When it began.
    #[serde(rename = "startsAt")]
    pub starts_at: Timestamp,
    /// When it ends (or, while firing, until when it holds unless posted again).
    #[serde(rename = "endsAt")]
    pub ends_at: Timestamp,
}

/// The alerts firing in one Alertmanager, keyed by incident: the first line of
/// an incident gives the labels, the line that resolves it posts the same
/// labels with `endsAt`, and while it fires it is posted again every
/// `repeat_interval` with `endsAt` 4 intervals ahead (as Prometheus does).
#[derive(Debug, Default)]
pub struct Firing {
    alerts: BTreeMap<String, AmAlert>,
}

/// Alerts outside an incident that a later line resolves: only blindness.
fn tracked(alert: &AlertLine) -> bool {
    alert.incident.is_some() || alert.kind == "blind"
}

impl Firing {
    /// How long a posted alert holds without being posted again.
    pub fn hold(repeat: Duration) -> jiff::SignedDuration {
        jiff::SignedDuration::try_from(repeat * 4).unwrap_or(jiff::SignedDuration::from_secs(240))
    }

    /// The alert to post for `line`.
    pub fn alert_for(
        &self,
        line: &AlertLine,
        origin: &Origin,
        now: Timestamp,
        repeat: Duration,
    ) -> AmAlert {
        let key = incident_key(&line.service, &line.kind, line.incident.as_deref());
        let held = now + Self::hold(repeat);
        let mut annotations = BTreeMap::from([
            ("summary".to_owned(), line.message.clone()),
            (
                "description".to_owned(),
                evidence_summary(&line.evidence).join("\n"),
            ),
        ]);
        if !line.evidence.is_empty() {
            let json = serde_json::to_string(&line.evidence).unwrap_or_default();
            annotations.insert("evidence".to_owned(), cut(&json, EVIDENCE_CHARS));
        }
        if let Some(existing) = self.alerts.get(&key) {
            let mut alert = existing.clone();
            if line.resolved {
                alert.ends_at = line.ts.max(alert.starts_at);
                annotations.insert("resolution".to_owned(), line.message.clone());
                annotations.insert(
                    "summary".to_owned(),
                    existing
                        .annotations
                        .get("summary")
                        .cloned()
                        .unwrap_or_default(),
                );
            } else {
                alert.ends_at = held;
            }
            alert.annotations = annotations;
            return alert;
        }
        // A selector instance `web/app-1` is service `web`, instance_name `app-1`, as in `/metrics`.
        let (service, instance) = match line.service.split_once('/') {
            Some((service, instance)) => (service, Some(instance)),
            None => (line.service.as_str(), None),
        };
        let mut labels: BTreeMap<String, String> =
            origin.service_labels(service).iter().cloned().collect();
        labels.extend([
            ("alertname".to_owned(), "medic".to_owned()),
            ("service".to_owned(), service.to_owned()),
            ("severity".to_owned(), line.severity.clone()),
            ("kind".to_owned(), line.kind.clone()),
            ("host".to_owned(), origin.host.clone()),
        ]);
        if let Some(instance) = instance {
            labels.insert("instance_name".to_owned(), instance.to_owned());
        }
        if let Some(incident) = &line.incident {
            labels.insert("incident".to_owned(), incident.clone());
        }
        AmAlert {
            labels,
            annotations,
            generator_url: origin.external_url.clone(),
            starts_at: line.ts,
            // A resolving line nothing fired for is a record that ends as it starts.
            ends_at: if line.resolved { line.ts } else { held },
        }
    }

    /// Updates the state once `alert` (made by [`Firing::alert_for`] for `line`) was delivered.
    pub fn delivered(&mut self, line: &AlertLine, alert: AmAlert) {
        let key = incident_key(&line.service, &line.kind, line.incident.as_deref());
        if line.resolved {
            self.alerts.remove(&key);
        } else if tracked(line) {
            self.alerts.insert(key, alert);
        }
    }

    /// Every firing alert, held for another 4 intervals from `now`.
    pub fn repost(&self, now: Timestamp, repeat: Duration) -> Vec<AmAlert> {
        self.alerts
            .values()
            .map(|a| AmAlert {
                ends_at: now + Self::hold(repeat),
                ..a.clone()
            })
            .collect()
    }

    /// Whether nothing is firing.
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }
}

/// The body of `POST /api/v2/alerts`.
pub fn alertmanager_body(alerts: &[AmAlert]) -> Vec<u8> {
    serde_json::to_vec(alerts).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An origin on `name` with no labels.
    fn host(name: &str) -> Origin {
        Origin {
            host: name.into(),
            ..Origin::default()
        }
    }

    #[test]
    fn webhook_exec_and_slack_bodies_carry_the_service_labels() {
        let origin = Origin {
            host: "h1".into(),
            external_url: None,
            labels: BTreeMap::from([(
                "web".into(),
                vec![("team".into(), "shop".into()), ("tier".into(), "1".into())],
            )]),
        };
        let mut alert = line("escalated", "critical", false);
        let body: Value = serde_json::from_slice(&webhook_body(&alert, &origin)).unwrap();
        assert_eq!(
            body["labels"],
            serde_json::json!({"team": "shop", "tier": "1"})
        );
        assert_eq!(body["host"], "h1");
        assert_eq!(body["service"], "web");
        let slack: Value = serde_json::from_slice(&slack_body(&alert, &origin)).unwrap();
        assert!(
            slack["text"]
                .as_str()
                .unwrap()
                .contains("\nlabels: team=shop, tier=1\n"),
            "{slack}"
        );
        // A selector's instance has its service's labels.
        alert.service = "web/app-1".into();
        let body: Value = serde_json::from_slice(&webhook_body(&alert, &origin)).unwrap();
        assert_eq!(body["labels"]["team"], "shop");
        // A service without labels: an empty object, and no Slack line.
        alert.service = "db".into();
        let body: Value = serde_json::from_slice(&webhook_body(&alert, &origin)).unwrap();
        assert_eq!(body["labels"], serde_json::json!({}));
        let slack: Value = serde_json::from_slice(&slack_body(&alert, &origin)).unwrap();
        assert!(
            !slack["text"].as_str().unwrap().contains("labels:"),
            "{slack}"
        );
    }

    fn line(kind: &str, severity: &str, resolved: bool) -> AlertLine {
        let mut evidence = Evidence::new();
        evidence.insert("exit_code".into(), 3.into());
        evidence.insert(
            "last_logs".into(),
            serde_json::json!(["a", "b", "c", "d", "e", "f\nsecond"]),
        );
        AlertLine {
            id: "1-1".into(),
            ts: "2026-11-22T16:00:00Z".parse().unwrap(),
            service: "web".into(),
            severity: severity.into(),
            kind: kind.into(),
            incident: Some("t4k-3".into()),
            message: "rollback failed: exit 4".into(),
            resolved,
            evidence,
        }
    }

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn slack_text_is_readable() {
        let body: Value = serde_json::from_slice(&slack_body(
            &line("escalated", "critical", false),
            &host("h1"),
        ))
        .unwrap();
        assert_eq!(
            body["text"],
            ":red_circle: *CRITICAL* `web` escalated on h1: rollback failed: exit 4\nincident t4k-3 · 2026-11-22T16:00:00Z\n> exit_code: 3\n> last_logs: (last 5 of 6) b | c | d | e | f second"
        );
    }

    #[test]
    fn slack_text_mentions_nobody() {
        let mut alert = line("escalated", "critical", false);
        alert.service = "web<@U123>".into();
        alert.message = "exited: <!channel> look & see <https://evil.example|click>".into();
        alert.evidence.insert(
            "last_logs".into(),
            serde_json::json!(["<!here> deploy done", "ping <@U0G9QF9C6> <#C024BE7LR>"]),
        );
        let body: Value = serde_json::from_slice(&slack_body(&alert, &host("h<1>"))).unwrap();
        let text = body["text"].as_str().unwrap();
        assert!(
            text.starts_with(
                ":red_circle: *CRITICAL* `web&lt;@U123&gt;` escalated on h&lt;1&gt;: exited: &lt;!channel&gt; look &amp; see &lt;https://evil.example|click&gt;\n"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("> last_logs: &lt;!here&gt; deploy done | ping &lt;@U0G9QF9C6&gt; &lt;#C024BE7LR&gt;"),
            "{text}"
        );
        assert!(!text.contains('<'), "no Slack markup survives: {text}");
        assert_eq!(
            text.matches("\n> ").count(),
            2,
            "medic's own quote marks stay: {text}"
        );
    }

    #[test]
    fn one_alertmanager_alert_per_incident_resolved_with_its_labels() {
        let now: Timestamp = "2026-11-22T16:00:01Z".parse().unwrap();
        let minute = Duration::from_secs(60);
        let mut firing = Firing::default();
        let escalated = line("escalated", "critical", false);
        let origin = Origin {
            host: "h1".into(),
            external_url: Some("https://h1.example:9464".into()),
            labels: BTreeMap::from([("web".into(), vec![("team".into(), "shop".into())])]),
        };
        let alert = firing.alert_for(&escalated, &origin, now, minute);
        assert_eq!(alert.labels["team"], "shop");
        assert_eq!(alert.labels["service"], "web");
        assert_eq!(
            alert.generator_url.as_deref(),
            Some("https://h1.example:9464")
        );
        assert!(alert.annotations["evidence"].contains("\"exit_code\":3"));
        assert_eq!(alert.labels["severity"], "critical");
        assert_eq!(alert.labels["incident"], "t4k-3");
        assert_eq!(alert.ends_at, now + jiff::SignedDuration::from_secs(240));
        firing.delivered(&escalated, alert.clone());
        assert_eq!(firing.repost(now, minute), vec![alert.clone()]);

        let mut resolved = line("resolved", "info", true);
        resolved.ts = "2026-11-22T16:05:00Z".parse().unwrap();
        let end = firing.alert_for(&resolved, &origin, now, minute);
        assert_eq!(
            end.labels, alert.labels,
            "same identity as the firing alert"
        );
        assert_eq!(end.ends_at, resolved.ts);
        firing.delivered(&resolved, end);
        assert!(firing.is_empty());
    }
}
