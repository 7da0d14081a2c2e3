//! Config parsing: defaults, implied probes, and the rendered error messages.

use std::path::PathBuf;
use std::time::Duration;

use insta::assert_snapshot;

use super::*;

mod alerts;
mod policy;
mod probes;
mod settings;
mod targets;

/// The rendered outcome of parsing `source`: "ok", or every error as the CLI prints it.
#[track_caller]
pub(super) fn check(source: &str) -> String {
    match parse(source, "medic.toml") {
        Ok(_) => "ok".to_owned(),
        Err(errors) => errors.to_string(),
    }
}

#[test]
fn default_config_parses() {
    let config = default_config();
    assert_eq!(config.services.len(), 1);
    assert!(matches!(
        config.services[0].probes[0].kind,
        ProbeKind::Container
    ));
}

#[test]
fn the_annotated_example_parses() {
    let example = include_str!("../../../../config/medic.toml");
    if let Err(e) = parse(example, "config/medic.toml") {
        panic!("{e}");
    }
}

#[test]
fn the_annotated_example_documents_every_key() {
    let example = include_str!("../../../../config/medic.toml");
    // Each table's keys, as serde lists them when it meets an unknown one.
    let tables = [
        "[medic]\nzz = 1",
        "[defaults]\nzz = 1",
        "[[service]]\nname = \"a\"\nzz = 1",
        "[[service]]\nname = \"a\"\ncontainer = { zz = 1 }",
        "[[service]]\nname = \"a\"\nlaunch_agent = { zz = 1 }",
        "[[service]]\nname = \"a\"\ncommand = { zz = 1 }",
        "[[service]]\nname = \"a\"\n[[service.probe]]\nzz = 1",
        "[[alert]]\nname = \"a\"\nkind = \"exec\"\nzz = 1",
    ];
    let mut undocumented = Vec::new();
    for table in tables {
        let rendered = check(table);
        let (_, keys) = rendered
            .split_once("expected one of")
            .unwrap_or_else(|| panic!("{rendered}"));
        for key in keys.split('`').skip(1).step_by(2) {
            let word = regex::Regex::new(&format!(r"\b{key}\b")).unwrap();
            if !word.is_match(example) {
                undocumented.push(key.to_owned());
            }
        }
    }
    assert_eq!(
        undocumented,
        Vec::<String>::new(),
        "keys missing from config/medic.toml"
    );
}

#[test]
fn defaults_apply_and_targets_imply_probes() {
    let config = parse(
        r#"
[defaults]
interval = "5s"
max_attempts = 5

[[service]]
name = "web"
container = { name = "app-web-1" }
failure_threshold = 2
  [[service.probe]]
  kind = "http"
  url = "http://127.0.0.1:3000/health"
  interval = "1m30s"
"#,
        "medic.toml",
    )
    .unwrap();
    let web = &config.services[0];
    assert_eq!(web.probes.len(), 2);
    assert!(matches!(web.probes[0].kind, ProbeKind::Container));
    assert_eq!(web.probes[0].interval, Duration::from_secs(5));
    assert_eq!(web.probes[1].interval, Duration::from_secs(90));
    assert_eq!(web.policy.max_attempts, 5);
    assert_eq!(web.policy.failure_threshold, 2);
    assert!(web.policy.can_rollback);
    assert_eq!(
        config.medic.recovery_log,
        PathBuf::from("/var/lib/medic/recovery.jsonl")
    );
    assert_eq!(
        config.medic.metrics_listen.as_deref(),
        Some("127.0.0.1:9464")
    );
}

#[test]
fn unknown_keys_name_their_position_and_a_suggestion() {
    assert_snapshot!(check("[defaults]\nfailure_treshold = 3\n"), @"
    medic.toml:2:1: error: unknown field `failure_treshold`, expected one of `interval`, `timeout`, `failure_threshold`, `success_threshold`, `start_period`, `max_attempts`, `attempt_window`, `flap_limit`, `flap_window`, `flap_backoff`, `backoff`, `backoff_max`, `recover_timeout`, `verify_interval`, `replace_grace`, `stop_timeout`, `on_stop`, `slo`
      hint: did you mean `failure_threshold`?
    ");
    assert_snapshot!(check("[[service]]\nname = \"a\"\ncommand = { restart = [\"x\"], rolback = [\"y\"] }\n"), @"
    medic.toml:3:30: error: unknown field `rolback`, expected one of `restart`, `rollback`, `timeout`
      hint: did you mean `rollback`?
    ");
    assert_snapshot!(check("[medics]\n"), @"
    medic.toml:1:2: error: unknown top-level table `medics`
      hint: did you mean `medic`? the top level has [medic], [defaults], [[service]], [[alert]] and [report]
    ");
}

#[test]
fn bad_durations_point_at_the_value() {
    assert_snapshot!(check("[defaults]\ninterval = \"10 parsecs\"\n"), @r#"medic.toml:2:12: error: invalid duration "10 parsecs": unknown time unit "parsecs", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations) (write e.g. "10s", "5m", "250ms")"#);
}

#[test]
fn every_semantic_error_is_reported_at_once() {
    assert_snapshot!(check(r#"
[[service]]
name = "a"
command = { rollback = ["undo"] }

[[service]]
name = "a"
max_attempts = 0
  [[service.probe]]
  kind = "tcp"
  address = "localhost"

[[service]]
name = "b"

[[service]]
name = "c"
depends_on = ["d", "c"]
  [[service.probe]]
  kind = "ping"
"#), @r#"
    medic.toml:3:8: error: service `a` has nothing to observe
      hint: add a [[service.probe]], or a container / launch_agent target (which implies its probe)
    medic.toml:4:11: error: command target has a rollback but no restart
      hint: add restart = ["argv", …]; rollback comes after restarts
    medic.toml:7:8: error: duplicate service name `a`
      hint: the first `a` is on line 3; names must be unique
    medic.toml:8:16: error: `max_attempts` must be at least 1
      hint: the default is 3
    medic.toml:11:13: error: `address` must be host:port
      hint: e.g. "127.0.0.1:5432"
    medic.toml:14:8: error: service `b` has nothing to observe
      hint: add a [[service.probe]], or a container / launch_agent target (which implies its probe)
    medic.toml:18:15: error: `depends_on` names an unknown service `d`
      hint: known services: a, b, c
    medic.toml:18:20: error: service `c` depends on itself
    medic.toml:20:10: error: unknown probe kind `ping`
      hint: kinds: http, tcp, exec, container, launch_agent
    "#);
}

#[test]
fn probe_fields_are_checked() {
    assert_snapshot!(check(r#"
[[service]]
name = "a"
interval = "1s"
  [[service.probe]]
  kind = "http"
  url = "ftp://x"
  body_regex = "(("
  json_pointer = "status"
  json_equals = "ok"
  address = "x:1"
  timeout = "2s"
  [[service.probe]]
  kind = "container"
"#), @r#"
    medic.toml:5:3: error: http probe: timeout (2s) must be shorter than interval (1s)
      hint: set `timeout` below `interval`, on the probe, the service or [defaults]
    medic.toml:5:3: error: `address` does not apply to http probes
    medic.toml:7:9: error: `url` must start with http:// or https://
    medic.toml:8:16: error: invalid `body_regex`: error: unclosed group
    medic.toml:9:18: error: `json_pointer` must be empty or start with `/`
      hint: e.g. "/status" or "/checks/0/ok" (RFC 6901)
    medic.toml:14:10: error: a container probe needs a container target
      hint: add container = { name = "…" }
    "#);
}

#[test]
fn dependency_cycles_are_found() {
    assert_snapshot!(check(r#"
[[service]]
name = "a"
depends_on = ["b"]
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:1"

[[service]]
name = "b"
depends_on = ["a"]
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:1"
"#), @"
    medic.toml:3:8: error: dependency cycle: a → b → a
      hint: break the cycle in one of the `depends_on` lists
    ");
}

#[test]
fn syntax_errors_are_reported_with_positions() {
    assert_snapshot!(check("[[service]]\nname = \"a\nx = 1\n"), @r#"medic.toml:2:10: error: invalid basic string, expected `"`"#);
}

/// Parses a config that must be valid.
#[track_caller]
pub(super) fn valid(source: &str) -> Config {
    parse(source, "medic.toml").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_partial_config_keeps_what_builds_beside_every_error() {
    let source = r#"
[[service]]
name = "a"
depends_on = ["b"]
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:1"

[[service]]
name = "b"
depends_on = ["a"]
interval = "soon"
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:2"

[[service]]
name = "typo"
colour = "blue"
"#;
    let env = |_: &str| None;
    let (errors, partial) = parse_partial(source, "m.toml", &env).unwrap_err();
    assert_eq!(errors.errors.len(), 3, "{errors}");
    let names: Vec<&str> = partial
        .as_ref()
        .expect("what builds")
        .services
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["a", "b"],
        "the cycle kept, the undecodable service left out"
    );
    let (_, none) = parse_partial("[[service]\n", "m.toml", &env).unwrap_err();
    assert!(none.is_none(), "a syntax error builds nothing");
    assert!(parse_partial(DEFAULT_CONFIG, "d.toml", &env).is_ok());
}
