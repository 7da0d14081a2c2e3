//! Config parsing: defaults, implied probes, and the rendered error messages.

use std::time::Duration;

use insta::assert_snapshot;

use super::*;

/// The rendered outcome of parsing `source`: "ok", or every error as the CLI prints it.
#[track_caller]
fn check(source: &str) -> String {
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
fn valid(source: &str) -> Config {
    parse(source, "medic.toml").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn settings_have_defaults_and_follow_state_dir() {
    let medic = valid("").medic;
    assert_eq!(
        medic,
        Settings {
            state_dir: "/var/lib/medic".into(),
            recovery_log: "/var/lib/medic/recovery.jsonl".into(),
            alerts_file: "/var/lib/medic/alerts/critical.jsonl".into(),
            control_socket: "/run/medic/control.sock".into(),
            control_access: SocketAccess {
                mode: 0o600,
                owner: None,
                group: None,
            },
            control_tcp: None,
            metrics_listen: Some("127.0.0.1:9464".into()),
            status_listen: StatusListen::WithMetrics,
            web_config: None,
            external_url: None,
            docker_host: None,
            reconcile_interval: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(4),
            blind_alert_after: Duration::from_secs(300),
            max_concurrent_actions: 4,
            max_concurrent_probes: 256,
            journal_max_size: 64 * 1024 * 1024,
            journal_keep: 5,
            storm: crate::storm::StormRule {
                share: 0.2,
                window: Duration::from_secs(60),
            },
        }
    );
    let medic = valid(
        r#"
[medic]
state_dir = "/tmp/m"
alerts_file = "/srv/alerts.jsonl"
metrics_listen = ""
docker_host = "tcp://127.0.0.1:2375"
reconcile_interval = "1m30s"
"#,
    )
    .medic;
    assert_eq!(medic.recovery_log, PathBuf::from("/tmp/m/recovery.jsonl"));
    assert_eq!(medic.alerts_file, PathBuf::from("/srv/alerts.jsonl"));
    assert_eq!(medic.metrics_listen, None);
    assert_eq!(medic.docker_host.as_deref(), Some("tcp://127.0.0.1:2375"));
    assert_eq!(medic.reconcile_interval, Duration::from_secs(90));
    assert_snapshot!(check("[medic]\nmax_concurrent_actions = 0\nmax_concurrent_probes = 0\n"), @r"
    medic.toml:2:26: error: `max_concurrent_actions` must be at least 1
      hint: the default is 4
    medic.toml:3:25: error: `max_concurrent_probes` must be at least 1
      hint: the default is 256
    ");
}

#[test]
fn control_access_and_tcp_control_need_valid_values() {
    let medic = valid(
        r#"
[medic]
control_socket_mode = "0660"
control_socket_group = "adm"
control_listen = "127.0.0.1:9465"
control_token_file = "/etc/medic/token"
"#,
    )
    .medic;
    assert_eq!(medic.control_access.mode, 0o660);
    assert_eq!(medic.control_access.group.as_deref(), Some("adm"));
    assert_eq!(
        medic.control_tcp,
        Some(TcpControl {
            listen: "127.0.0.1:9465".into(),
            token_file: "/etc/medic/token".into(),
        })
    );
    assert_snapshot!(check("[medic]\ncontrol_socket_mode = \"rw\"\ncontrol_listen = \"0.0.0.0:9465\"\n"), @r#"
    medic.toml:2:23: error: `control_socket_mode` must be octal permission bits
      hint: for example "0600" or "0660"
    medic.toml:3:18: error: `control_listen` needs `control_token_file`
      hint: TCP control always requires a bearer token: put one in a file only medic can read
    "#);
}

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
fn targets_decide_what_medic_may_do() {
    let config = valid(
        r#"
[[service]]
name = "web"
container = { label = ["com.example.app=web", "tier"], stop_timeout = "3s", on_stop = "leave" }

[[service]]
name = "stack"
container = { compose_project = "app", compose_service = "db" }
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:5432"
  [[service.probe]]
  kind = "container"
  interval = "3s"

[[service]]
name = "agent"
launch_agent = { label_prefix = "com.example.", domain = "gui/501" }

[[service]]
name = "api"
command = { restart = ["restart-api"], rollback = ["rollback-api"], timeout = "5m" }
  [[service.probe]]
  kind = "tcp"
  address = "[::1]:8080"

[[service]]
name = "upstream"
  [[service.probe]]
  kind = "tcp"
  address = "example.com:443"
"#,
    );
    let summary: Vec<String> = config
        .services
        .iter()
        .map(|s| {
            let probes: Vec<_> = s
                .probes
                .iter()
                .map(|p| format!("{}/{:?}", p.kind_name(), p.interval))
                .collect();
            format!(
                "{}: restart={} rollback={} probes={}",
                s.name,
                s.policy.can_restart,
                s.policy.can_rollback,
                probes.join(",")
            )
        })
        .collect();
    assert_snapshot!(summary.join("\n"), @"
    web: restart=true rollback=true probes=container/10s
    stack: restart=true rollback=true probes=tcp/10s,container/3s
    agent: restart=true rollback=true probes=launch_agent/10s
    api: restart=true rollback=true probes=tcp/10s
    upstream: restart=false rollback=false probes=tcp/10s
    ");
    assert_eq!(
        config.services[0].target,
        Some(Target::Container(ContainerTarget {
            selector: ContainerSelector::Labels(vec![
                ("com.example.app".into(), Some("web".into())),
                ("tier".into(), None),
            ]),
            stop_timeout: Duration::from_secs(3),
            on_stop: OnStop::Leave,
        }))
    );
    assert_eq!(
        config.services[2].target,
        Some(Target::LaunchAgent(LaunchAgentTarget {
            selector: LabelSelector::Prefix("com.example.".into()),
            domain: Some("gui/501".into()),
            plist: None,
        }))
    );
}

#[test]
fn probe_defaults_and_sizes() {
    let config = valid(
        r#"
[[service]]
name = "web"
  [[service.probe]]
  kind = "http"
  url = "https://127.0.0.1/health"
  [[service.probe]]
  kind = "http"
  url = "http://127.0.0.1/status"
  method = "head"
  headers = { Authorization = "Bearer x" }
  expect_status = [204]
  json_pointer = "/checks/0"
  json_equals = { ok = true, since = 1979-05-27T07:32:00Z, n = [1, 2.5] }
  max_latency = "250ms"
  max_body = "512KiB"
  [[service.probe]]
  kind = "exec"
  command = ["pg_isready"]
  [[service.probe]]
  kind = "exec"
  command = ["check"]
  expect_exit = 3
  max_output = 100
"#,
    );
    let probes = &config.services[0].probes;
    let (ProbeKind::Http(plain), ProbeKind::Http(full)) = (&probes[0].kind, &probes[1].kind) else {
        panic!("{probes:?}");
    };
    assert_eq!(plain.method, "GET");
    assert_eq!(*plain.expect_status, *(200..=299).collect::<Vec<u16>>());
    assert!(plain.tls_verify && !plain.follow_redirects);
    assert_eq!(plain.max_body, 1024 * 1024);
    assert_eq!(full.method, "HEAD");
    assert_eq!(
        full.headers,
        vec![("Authorization".into(), Secret::new("Bearer x"))]
    );
    assert!(
        !format!("{full:?}").contains("Bearer x"),
        "header values are secrets: {full:?}"
    );
    assert_eq!(*full.expect_status, [204]);
    assert_eq!(
        full.json_pointer,
        Some((
            "/checks/0".into(),
            serde_json::json!({"ok": true, "since": "1979-05-27T07:32:00Z", "n": [1, 2.5]})
        ))
    );
    assert_eq!(full.max_latency, Some(Duration::from_millis(250)));
    assert_eq!(full.max_body, 512 * 1024);
    let (ProbeKind::Exec(default), ProbeKind::Exec(set)) = (&probes[2].kind, &probes[3].kind)
    else {
        panic!("{probes:?}");
    };
    assert_eq!((default.expect_exit, default.max_output), (0, 64 * 1024));
    assert_eq!((set.expect_exit, set.max_output), (3, 100));
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
    medic.toml:5:1: error: unknown field `failure_treshold`, expected one of `name`, `container`, `launch_agent`, `command`, `depends_on`, `labels`, `probe`, `interval`, `timeout`, `failure_threshold`, `success_threshold`, `start_period`, `max_attempts`, `attempt_window`, `flap_limit`, `flap_window`, `flap_backoff`, `backoff`, `backoff_max`, `recover_timeout`, `verify_interval`, `replace_grace`, `stop_timeout`, `on_stop`, `slo`
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
fn wrong_types_are_named_in_plain_words() {
    assert_snapshot!(check(r#"
defaults = 3
[[service]]
name = "a"
failure_threshold = "3"
interval = 10
container = { label = 3 }
  [[service.probe]]
  kind = "http"
  url = "http://x"
  max_body = true
  expect_status = "200"
"#), @r#"
    medic.toml:2:12: error: invalid type: integer `3`, expected a table
    medic.toml:5:21: error: invalid type: string "3", expected a non-negative integer
    medic.toml:6:12: error: invalid type: integer `10`, expected a duration with a unit, such as "10s", "5m" or "250ms"
    medic.toml:7:23: error: invalid type: integer `3`, expected a label selector "key=value" (or "key"), or an array of them
    medic.toml:11:14: error: invalid type: boolean `true`, expected a size in bytes, such as 65536, "64KiB" or "1MiB"
    medic.toml:12:19: error: invalid type: string "200", expected an array
    "#);
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
fn targets_are_checked() {
    assert_snapshot!(check(r#"
[[service]]
name = "two"
container = { name = "x" }
launch_agent = { label = "com.example.x" }

[[service]]
name = "selector"
container = { name = "x", compose_project = "p" }

[[service]]
name = "labels"
container = { label = ["=web"] }

[[service]]
name = "agent"
launch_agent = { domain = "system" }

[[service]]
name = "stop"
container = { name = "x" }
on_stop = "kill"

[[service]]
name = "cmd"
command = { restart = ["x"], rollback = [] }
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:1"
"#), @r#"
    medic.toml:5:16: error: service `two` has more than one target: `container` and `launch_agent`
      hint: a service acts on exactly one of container / launch_agent / command (or none: watch only); split it into two services
    medic.toml:9:13: error: a container target selects by exactly one of `name`, `label`, or `compose_project` + `compose_service`
      hint: e.g. container = { name = "app-web-1" }
    medic.toml:13:13: error: a container `label` selector needs a non-empty key
      hint: write label = "key=value", label = "key" or an array of them
    medic.toml:17:16: error: a launch_agent target needs exactly one of `label` or `label_prefix`
    medic.toml:22:11: error: unknown on_stop `kill`
      hint: use "restore" or "leave"
    medic.toml:26:41: error: `rollback` is an empty command
      hint: write an argv array, or leave `rollback` out (then medic escalates after the restarts)
    "#);
}

#[test]
fn http_and_exec_fields_are_checked() {
    assert_snapshot!(check(r#"
[[service]]
name = "a"
  [[service.probe]]
  kind = "http"
  url = "http://x"
  method = "GET /"
  headers = { "Bad Header" = "x" }
  expect_status = [200, 700]
  json_pointer = "/a~2b"
  json_equals = 1
  [[service.probe]]
  kind = "http"
  json_equals = 1
  [[service.probe]]
  kind = "http"
  url = "http://x"
  json_equals = 1
  [[service.probe]]
  kind = "exec"
  command = []
  [[service.probe]]
  kind = "exec"
  [[service.probe]]
  kind = "tcp"
  [[service.probe]]
  kind = "launch_agent"
"#), @r#"
    medic.toml:7:12: error: invalid HTTP method `GET /`
      hint: e.g. "GET", "HEAD" or "POST"
    medic.toml:8:13: error: invalid HTTP header `Bad Header`
      hint: header names are letters, digits and `-`; values have no line breaks
    medic.toml:9:19: error: `expect_status` must list HTTP status codes (100 to 599)
      hint: e.g. [200, 204]; without it any 2xx is healthy
    medic.toml:10:18: error: `json_pointer` has a `~` that is not `~0` or `~1`
      hint: write `~0` for `~` and `~1` for `/` inside a key (RFC 6901)
    medic.toml:12:3: error: an http probe needs `url`
      hint: e.g. url = "http://127.0.0.1:8080/health"
    medic.toml:15:3: error: `json_equals` needs `json_pointer`
    medic.toml:21:13: error: an exec probe's `command` is empty
      hint: write an argv array, e.g. ["pg_isready", "-q"]
    medic.toml:22:3: error: an exec probe needs `command`
      hint: e.g. command = ["pg_isready", "-q"]
    medic.toml:24:3: error: a tcp probe needs `address`
      hint: e.g. address = "127.0.0.1:5432"
    medic.toml:27:10: error: a launch_agent probe needs a launch_agent target
    "#);
}

#[test]
fn the_implied_probe_is_timed_too() {
    assert_snapshot!(check(r#"
[defaults]
interval = "2s"
timeout = "2s"
[[service]]
name = "a"
container = { name = "x" }
"#), @"
    medic.toml:7:13: error: the implied container probe: timeout (2s) must be shorter than interval (2s)
      hint: set `timeout` below `interval`, on the probe, the service or [defaults]
    ");
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
"#), @"medic.toml:5:1: error: unknown field `bogus`, expected one of `name`, `container`, `launch_agent`, `command`, `depends_on`, `labels`, `probe`, `interval`, `timeout`, `failure_threshold`, `success_threshold`, `start_period`, `max_attempts`, `attempt_window`, `flap_limit`, `flap_window`, `flap_backoff`, `backoff`, `backoff_max`, `recover_timeout`, `verify_interval`, `replace_grace`, `stop_timeout`, `on_stop`, `slo`");
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
fn an_unwritten_timeout_follows_the_interval() {
    let config = parse(
        "[[service]]\nname = \"api\"\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:1\"\n  interval = \"500ms\"\n",
        "medic.toml",
    )
    .unwrap();
    assert_eq!(
        config.services[0].probes[0].timeout,
        Duration::from_millis(250)
    );
    let config = parse(
        "[[service]]\nname = \"api\"\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:1\"\n",
        "medic.toml",
    )
    .unwrap();
    assert_eq!(config.services[0].probes[0].timeout, Duration::from_secs(2));
    assert_snapshot!(check("[defaults]\ntimeout = \"1s\"\n\n[[service]]\nname = \"api\"\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:1\"\n  interval = \"500ms\"\n"), @"medic.toml:6:3: error: tcp probe: timeout (1s) must be shorter than interval (500ms)\n  hint: set `timeout` below `interval`, on the probe, the service or [defaults]");
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
