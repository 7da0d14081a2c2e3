//! `[[alert]]` sinks, `${NAME}` expansion, fleet labels and Alertmanager settings.

use std::time::Duration;

use insta::assert_snapshot;

use super::{check, valid};
use crate::config::*;

#[test]
fn alert_sinks_resolve_env_and_report_errors_without_values() {
    let env = |name: &str| (name == "HOOK").then(|| "https://hooks.example/T0/s3cr3t".to_owned());
    let source = r#"
[[service]]
name = "web"
container = { name = "web" }

[[alert]]
name = "ops"
kind = "webhook"
url = "${HOOK}"
headers = { Authorization = "Bearer ${HOOK}" }
services = ["web"]
min_severity = "critical"

[[alert]]
name = "am"
kind = "alertmanager"
url = "http://127.0.0.1:9093"
"#;
    let config = parse_with_env(source, "medic.toml", &env).unwrap();
    assert_eq!(config.alerts.len(), 2);
    let ops = &config.alerts[0];
    assert_eq!(ops.min_severity, crate::Severity::Critical);
    assert!(ops.wants_service("web") && ops.wants_service("web/web-1") && !ops.wants_service("db"));
    let SinkKind::Webhook { url, headers, .. } = &ops.kind else {
        panic!("{ops:?}");
    };
    assert_eq!(url.expose(), "https://hooks.example/T0/s3cr3t");
    assert_eq!(
        headers[0].1.expose(),
        "Bearer https://hooks.example/T0/s3cr3t"
    );
    assert!(
        !format!("{config:?}").contains("s3cr3t"),
        "Debug redacts secrets"
    );
    let SinkKind::Alertmanager {
        repeat_interval, ..
    } = &config.alerts[1].kind
    else {
        panic!();
    };
    assert_eq!(*repeat_interval, Duration::from_secs(60));

    assert_snapshot!(check(r#"
[[alert]]
name = "ops"
kind = "webhok"
url = "x"

[[alert]]
name = "ops"
kind = "slack"
url = "${SLACK_URL}"
min_severity = "loud"
services = ["nope"]

[[alert]]
name = "run"
kind = "exec"
hmac_secret = "k"
"#), @r#"
    medic.toml:4:8: error: unknown alert sink kind `webhok`
      hint: did you mean `webhook`?
    medic.toml:8:8: error: duplicate sink name `ops`
      hint: the first one is on line 3
    medic.toml:10:7: error: environment variable `SLACK_URL` is not set
      hint: export SLACK_URL=… in medic's environment (for systemd: Environment= or EnvironmentFile= in a drop-in)
    medic.toml:11:16: error: unknown severity `loud`
      hint: write info, warning or critical
    medic.toml:12:13: error: no service named `nope`
      hint: name a [[service]] of this file, or `medic`
    medic.toml:16:8: error: an `exec` sink needs `command`
      hint: add `command = ["/usr/local/bin/page", "--stdin"]`
    medic.toml:17:15: error: `hmac_secret` does not apply to `exec` sinks
    "#);
}

#[test]
fn fleet_labels_external_url_and_alertmanager_cluster() {
    let config = valid(
        r#"
[medic]
external_url = "https://host1.example:9464/"

[[service]]
name = "web"
labels = { team = "shop", tier = "1" }
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:1"

[[alert]]
name = "am"
kind = "alertmanager"
urls = ["http://127.0.0.1:9093", "http://127.0.0.1:9094"]
"#,
    );
    assert_eq!(
        config.medic.external_url.as_deref(),
        Some("https://host1.example:9464")
    );
    assert_eq!(
        config.services[0].labels,
        vec![("team".into(), "shop".into()), ("tier".into(), "1".into())]
    );
    let SinkKind::Alertmanager { urls, .. } = &config.alerts[0].kind else {
        panic!();
    };
    assert_eq!(urls.len(), 2);

    assert_snapshot!(check(r#"
[medic]
external_url = "host1:9464"

[[service]]
name = "web"
labels = { "1team" = "a", service = "b", __name = "c", ok_label = "d" }
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:1"

[[alert]]
name = "am"
kind = "alertmanager"
url = "http://a:9093"
urls = ["http://b:9093"]

[[alert]]
name = "hook"
kind = "webhook"
urls = ["http://b:9093"]
"#), @r#"
    medic.toml:3:16: error: `external_url` must start with http:// or https://
      hint: the address people open the status page at, e.g. "https://host1.example:9464"
    medic.toml:7:22: error: `1team` cannot be a label name
      hint: Prometheus label names match [a-zA-Z_][a-zA-Z0-9_]*, do not start with __, and medic sets these itself: service, instance_name, instance, job, alertname, severity, kind, host, incident, probe, index, outcome, state, health, window, sink, reason, le
    medic.toml:7:37: error: `service` cannot be a label name
      hint: Prometheus label names match [a-zA-Z_][a-zA-Z0-9_]*, do not start with __, and medic sets these itself: service, instance_name, instance, job, alertname, severity, kind, host, incident, probe, index, outcome, state, health, window, sink, reason, le
    medic.toml:7:51: error: `__name` cannot be a label name
      hint: Prometheus label names match [a-zA-Z_][a-zA-Z0-9_]*, do not start with __, and medic sets these itself: service, instance_name, instance, job, alertname, severity, kind, host, incident, probe, index, outcome, state, health, window, sink, reason, le
    medic.toml:15:7: error: write `url` or `urls`, not both
    medic.toml:21:8: error: `urls` does not apply to `webhook` sinks
    "#);
}
