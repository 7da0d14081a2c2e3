//! Probes: defaults, sizes, timing, HTTP and exec fields, type errors in plain words.

use std::time::Duration;

use insta::assert_snapshot;

use super::{check, valid};
use crate::config::*;

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
