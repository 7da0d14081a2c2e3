//! Service policy: layering of `[defaults]`, service and probe, refused zeros, deprecated keys.

use std::time::Duration;

use insta::assert_snapshot;

use super::{check, valid};
use crate::config::*;
use crate::policy::{Policy, ProbeTiming};

#[test]
fn policy_layers_defaults_service_and_probe() {
    let config = valid(
        r#"
[defaults]
timeout = "1s"
backoff = "2s"
recover_timeout = "2m"

[[service]]
name = "api"
command = { restart = ["systemctl", "restart", "api"] }
interval = "20s"
success_threshold = 2
start_period = "30s"
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:8080"
  [[service.probe]]
  kind = "exec"
  command = ["true"]
  interval = "1m"
  timeout = "5s"
"#,
    );
    let api = &config.services[0];
    assert_eq!(
        *api.policy,
        Policy {
            failure_threshold: 3,
            success_threshold: 2,
            start_period: Duration::from_secs(30),
            max_attempts: 3,
            flap_limit: 3,
            flap_window: Duration::from_secs(600),
            flap_backoff: Duration::from_secs(10),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(60),
            recover_timeout: Duration::from_secs(120),
            verify_interval: Duration::from_secs(1),
            replace_grace: Duration::from_secs(30),
            action_timeout: Duration::from_secs(90),
            can_restart: true,
            can_rollback: false,
            rollback_resumes: false,
            probes: vec![
                ProbeTiming {
                    interval: Duration::from_secs(20),
                    timeout: Duration::from_secs(1),
                },
                ProbeTiming {
                    interval: Duration::from_secs(60),
                    timeout: Duration::from_secs(5),
                },
            ],
        }
    );
    assert_eq!(
        api.target,
        Some(Target::Command(CommandTarget {
            restart: vec!["systemctl".into(), "restart".into(), "api".into()],
            rollback: None,
            timeout: Duration::from_secs(60),
        }))
    );
    assert!((api.slo - 0.999).abs() < f64::EPSILON);
}

#[test]
fn service_keys_and_policy_keys_are_suggested_together() {
    assert_snapshot!(check(r#"
[[service]]
name = "a"
container = { name = "x" }
failure_treshold = 3
  [[service.probe]]
  kind = "http"
  urll = "http://x"
"#), @"
    medic.toml:5:1: error: unknown field `failure_treshold`, expected one of `name`, `container`, `launch_agent`, `command`, `systemd_unit`, `depends_on`, `labels`, `probe`, `interval`, `timeout`, `failure_threshold`, `success_threshold`, `start_period`, `max_attempts`, `attempt_window`, `flap_limit`, `flap_window`, `flap_backoff`, `backoff`, `backoff_max`, `recover_timeout`, `verify_interval`, `replace_grace`, `stop_timeout`, `on_stop`, `slo`
      hint: did you mean `failure_threshold`?
    medic.toml:8:3: error: unknown field `urll`, expected one of `kind`, `interval`, `timeout`, `url`, `method`, `headers`, `expect_status`, `body_contains`, `body_regex`, `json_pointer`, `json_equals`, `max_latency`, `tls_verify`, `ca_file`, `follow_redirects`, `max_body`, `address`, `command`, `expect_exit`, `max_output`
      hint: did you mean `url`?
    ");
    assert_snapshot!(check("[[service]]\ncontainer = { name = \"x\" }\n"), @"
    medic.toml:1:1: error: missing field `name`
      hint: add `name = …` to this table
    ");
}

#[test]
fn zero_is_refused_where_it_would_spin_or_always_fail() {
    assert_snapshot!(check(r#"
[medic]
reconcile_interval = "0s"
[defaults]
interval = "0s"
verify_interval = "0ms"
start_period = "0s"
[[service]]
name = "a"
success_threshold = 0
command = { restart = ["x"], timeout = "0s" }
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:1"
  interval = "10s"
"#), @r#"
    medic.toml:3:22: error: this duration must be greater than zero, not "0s"
    medic.toml:5:12: error: this duration must be greater than zero, not "0s"
    medic.toml:6:19: error: this duration must be greater than zero, not "0ms"
    medic.toml:11:40: error: this duration must be greater than zero, not "0s"
    "#);
}

#[test]
fn a_broken_service_does_not_cascade() {
    assert_snapshot!(check(r#"
[[service]]
name = "api"
container = { name = "x" }
bogus = 1

[[service]]
name = "web"
container = { name = "y" }
depends_on = ["api"]
"#), @"medic.toml:5:1: error: unknown field `bogus`, expected one of `name`, `container`, `launch_agent`, `command`, `systemd_unit`, `depends_on`, `labels`, `probe`, `interval`, `timeout`, `failure_threshold`, `success_threshold`, `start_period`, `max_attempts`, `attempt_window`, `flap_limit`, `flap_window`, `flap_backoff`, `backoff`, `backoff_max`, `recover_timeout`, `verify_interval`, `replace_grace`, `stop_timeout`, `on_stop`, `slo`");
    // A bad key in [defaults] falls back to its default; the good ones still apply.
    assert_snapshot!(check(r#"
[defaults]
interval = "1m"
timeout = 5
[[service]]
name = "a"
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:1"
  timeout = "15s"
"#), @r#"medic.toml:4:11: error: invalid type: integer `5`, expected a duration with a unit, such as "10s", "5m" or "250ms""#);
}

#[test]
fn attempt_window_still_works_as_the_flap_window_with_a_warning() {
    let source = "[defaults]\nattempt_window = \"5m\"\n\n[[service]]\nname = \"api\"\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:1\"\n";
    let config = parse(source, "medic.toml").unwrap();
    assert_eq!(
        config.services[0].policy.flap_window,
        Duration::from_secs(300)
    );
    assert_eq!(config.warnings.len(), 1);
    assert!(
        config.warnings[0].starts_with("medic.toml:2:1: warning: `attempt_window` is deprecated"),
        "{:?}",
        config.warnings
    );
    // On a service, at the key; the word inside a string is not a key.
    let source = "[[service]]\nname = \"api\"\nlabels = { note = \"attempt_window = 1m\" }\n\n  attempt_window = \"2m\"\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:1\"\n";
    let warnings = parse(source, "medic.toml").map(|c| c.warnings);
    assert_eq!(
        warnings.map(|w| w
            .iter()
            .map(|w| w[..w.find(": warning").unwrap()].to_owned())
            .collect::<Vec<_>>()),
        Ok(vec!["medic.toml:5:3".to_owned()])
    );
}
