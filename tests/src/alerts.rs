//! Alerts that reach a person: the real medic delivering to real HTTP servers
//! on loopback (signed webhook; sinks that are down, hang, or fail once), to a
//! real Alertmanager, across kill -9, with its secrets kept out of every output.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::support::env;
use crate::support::medic::{Medic, eventually, free_port};
use crate::support::server::{TestServer, serve_in_background, serve_on};

/// One request a test sink received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    raw: Bytes,
    body: Value,
}

/// A set of webhook endpoints that record what they get: `/hook/{token}` (200),
/// `/flaky` (500 for the first try of each alert, then 200) and `/hang` (never answers).
#[derive(Clone, Default)]
struct Hooks {
    received: Arc<Mutex<Vec<Received>>>,
}

impl Hooks {
    fn app(&self) -> axum::Router {
        let record = |hooks: Hooks, path: String, headers: HeaderMap, body: Bytes| {
            let mut received = hooks.received.lock().unwrap();
            received.push(Received {
                path,
                headers,
                raw: body.clone(),
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            });
            received.len()
        };
        let (h1, h2) = (self.clone(), self.clone());
        axum::Router::new()
            .route(
                "/hook/{token}",
                post(
                    move |axum::extract::Path(token): axum::extract::Path<String>,
                          headers: HeaderMap,
                          body: Bytes| async move {
                        record(h1, format!("/hook/{token}"), headers, body);
                        StatusCode::OK
                    },
                ),
            )
            .route(
                "/flaky",
                post(move |headers: HeaderMap, body: Bytes| async move {
                    let id = headers
                        .get("x-medic-alert-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let hooks = h2.clone();
                    let tries = hooks
                        .received
                        .lock()
                        .unwrap()
                        .iter()
                        .filter(|r| {
                            r.path.starts_with("/flaky")
                                && r.headers["x-medic-alert-id"] == id.as_str()
                        })
                        .count();
                    let path = if tries == 0 { "/flaky (500)" } else { "/flaky" };
                    record(hooks, path.to_owned(), headers, body);
                    if tries == 0 {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }),
            )
            .route(
                "/hang",
                post(|| async {
                    std::future::pending::<()>().await;
                    StatusCode::OK
                }),
            )
    }

    fn on(&self, path: &str) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

/// A command-target service on a testsrv, probed every 200 ms, plus `sinks`.
fn service(server: &TestServer, sinks: &str) -> String {
    crate::command_target::fast(
        &server.start_command_toml(),
        r#"["false"]"#,
        server.port,
        sinks,
    )
}

/// `medic alerts --json`: each alert with its deliveries.
fn alerts_json(medic: &Medic) -> Vec<Value> {
    let output = medic.cli(&["alerts", "--json"]);
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("medic alerts --json prints JSON lines"))
        .collect()
}

/// The delivery state of alert `id` at `sink`, per `medic alerts --json`.
fn delivery(alerts: &[Value], id: &str, sink: &str) -> Option<Value> {
    alerts.iter().find(|a| a["id"] == id)?["deliveries"]
        .as_array()?
        .iter()
        .find(|d| d["sink"] == sink)
        .cloned()
}

/// Milliseconds from the incident's `restart` event to its `recovered` event
/// (the policy's backoff before the restart is left out: it grows with the attempt).
fn recovery_ms(events: &[Value], incident: &Value) -> i64 {
    let ts = |event: &str| {
        let e = events
            .iter()
            .find(|e| e["event"] == event && e["incident"] == *incident)
            .unwrap_or_else(|| panic!("no {event} in {incident}"));
        e["ts"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    (ts("recovered") - ts("restart")).get_milliseconds()
}

#[test]
fn webhooks_are_signed_retried_and_never_hold_up_recovery() {
    let token = format!("tok-5ecret-{}", std::process::id());
    let key = format!("hmac-5ecret-{}", std::process::id());
    let env: [(&str, &str); 2] = [
        ("MEDIC_TEST_TOKEN", token.as_str()),
        ("MEDIC_TEST_HMAC_KEY", key.as_str()),
    ];
    let hooks = Hooks::default();
    let port = serve_in_background(hooks.app());
    let down = free_port();
    let scratch = tempfile::tempdir().unwrap();
    let server = TestServer::start(free_port(), scratch.path());
    let sinks = format!(
        r#"
[[alert]]
name = "signed"
kind = "webhook"
url = "http://127.0.0.1:{port}/hook/${{MEDIC_TEST_TOKEN}}"
hmac_secret = "${{MEDIC_TEST_HMAC_KEY}}"
headers = {{ Authorization = "Bearer ${{MEDIC_TEST_TOKEN}}" }}
min_severity = "info"

[[alert]]
name = "flaky"
kind = "webhook"
url = "http://127.0.0.1:{port}/flaky"
min_severity = "info"
retry_backoff = "100ms"

[[alert]]
name = "down"
kind = "slack"
url = "http://127.0.0.1:{down}/services/${{MEDIC_TEST_TOKEN}}"
min_severity = "info"
retry_backoff = "100ms"
retry_backoff_max = "200ms"

[[alert]]
name = "hang"
kind = "webhook"
url = "http://127.0.0.1:{port}/hang"
min_severity = "info"
timeout = "300ms"
retry_backoff = "100ms"
retry_backoff_max = "200ms"
"#
    );
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut medic = Medic::prepare_with(
        &format!("metrics_listen = \"{metrics}\""),
        &service(&server, &sinks),
    );
    medic.spawn_with_env(&env);
    medic.wait_event("healthy", |e| e["event"] == "healthy");

    // First incident: its `recovered` line goes to all four sinks.
    server.kill();
    medic.wait_event("recovered", |e| e["event"] == "recovered");
    let first = eventually("the first alert line", || medic.alerts().into_iter().next());
    assert_eq!(first["kind"], "recovered", "{first}");
    assert_eq!(first["severity"], "info");
    assert_eq!(first["resolved"], true);
    let id = first["id"].as_str().unwrap().to_owned();

    // The signed webhook: delivered once, with a valid signature over the exact body.
    let signed = eventually("the signed webhook", || {
        let got = hooks.on(&format!("/hook/{token}"));
        (!got.is_empty()).then_some(got)
    });
    assert_eq!(signed.len(), 1, "{signed:?}");
    let signature = signed[0].headers["x-medic-signature"].to_str().unwrap();
    let mut mac = <Hmac<Sha256>>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(&signed[0].raw);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        signature, expected,
        "HMAC-SHA256 of the body with the configured key"
    );
    assert_eq!(signed[0].body["id"], id.as_str());
    assert_eq!(signed[0].body["service"], "web");
    assert_eq!(
        signed[0].headers["authorization"],
        format!("Bearer {token}").as_str()
    );

    // 500 then 200: retried, delivered once.
    let flaky = eventually("the flaky webhook to succeed", || {
        let ok = hooks.on("/flaky");
        (!ok.is_empty()).then_some(ok)
    });
    assert_eq!(flaky.len(), 1, "delivered once: {flaky:?}");
    assert_eq!(hooks.on("/flaky (500)").len(), 1);
    assert_eq!(flaky[0].body["id"], id.as_str());

    // The dead and the hanging sink keep retrying and say why.
    let states = eventually("retries at the dead and the hanging sink", || {
        let alerts = alerts_json(&medic);
        let down = delivery(&alerts, &id, "down")?;
        let hang = delivery(&alerts, &id, "hang")?;
        (down["state"] == "retrying"
            && hang["state"] == "retrying"
            && down["attempts"].as_u64()? >= 2
            && hang["attempts"].as_u64()? >= 2)
            .then_some((alerts, down, hang))
    });
    let (alerts, down_state, hang_state) = states;
    assert!(
        down_state["error"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{down_state}"
    );
    assert!(
        hang_state["error"].as_str().unwrap().contains("timed out"),
        "{hang_state}"
    );
    let flaky_state = delivery(&alerts, &id, "flaky").unwrap();
    assert_eq!(flaky_state["state"], "delivered", "{flaky_state}");
    assert_eq!(flaky_state["attempts"], 2, "{flaky_state}");
    assert_eq!(
        delivery(&alerts, &id, "signed").unwrap()["state"],
        "delivered"
    );

    // A second incident while those sinks are stuck recovers as fast as the first.
    let before = medic.events().len();
    server.kill();
    let events = medic.wait_event("a second recovery", |e| {
        e["event"] == "recovered" && e["incident"] != first["incident"]
    });
    let second = events[before..]
        .iter()
        .find(|e| e["event"] == "failing")
        .map(|e| e["incident"].clone())
        .unwrap();
    let first_ms = recovery_ms(&events, &first["incident"]);
    let second_ms = recovery_ms(&events, &second);
    eprintln!(
        "restart → recovered with all sinks idle: {first_ms} ms; with a dead and a hanging sink retrying: {second_ms} ms"
    );
    assert!(
        second_ms < 2_000,
        "recovery took {second_ms} ms while sinks were stuck"
    );
    eventually("the second alert at the signed webhook", || {
        (hooks.on(&format!("/hook/{token}")).len() == 2).then_some(())
    });

    // /metrics counts deliveries, failed attempts and what waits, per sink.
    let sample = |text: &str, series: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|v| v.trim().parse().ok())
    };
    let text = eventually("both alerts delivered to the flaky sink", || {
        let text = http_get(&format!("http://{metrics}"), "/metrics");
        (sample(&text, r#"medic_alerts_delivered_total{sink="flaky"}"#)? == 2.0).then_some(text)
    });
    assert_eq!(
        sample(&text, r#"medic_alert_attempts_failed_total{sink="flaky"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"medic_alert_queue_length{sink="flaky"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, r#"medic_alert_queue_length{sink="down"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"medic_alerts_delivered_total{sink="down"}"#),
        Some(0.0)
    );

    // medic alert test: one test alert, now.
    let output = medic.cli_with_env(&["alert", "test", "signed"], &env);
    assert!(output.status.success(), "{output:?}");
    let test = eventually("the test alert", || {
        hooks
            .on(&format!("/hook/{token}"))
            .into_iter()
            .find(|r| r.body["kind"] == "test")
    });
    assert_eq!(test.body["service"], "medic");
    let output = medic.cli_with_env(&["alert", "test", "down"], &env);
    assert_eq!(output.status.code(), Some(1), "{output:?}");

    // The secrets appear nowhere a person or a log collector reads.
    let status = medic.cli(&["status", "--json"]);
    let table = medic.cli(&["alerts"]);
    let outputs = [
        ("stderr", medic.stderr()),
        (
            "medic status",
            String::from_utf8_lossy(&status.stdout).into_owned(),
        ),
        (
            "medic alerts",
            String::from_utf8_lossy(&table.stdout).into_owned(),
        ),
        (
            "medic alerts (stderr)",
            String::from_utf8_lossy(&table.stderr).into_owned(),
        ),
        (
            "medic alert test down",
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ),
        (
            "outbox",
            std::fs::read_to_string(medic.state("alerts/outbox.jsonl")).unwrap(),
        ),
        (
            "alerts file",
            std::fs::read_to_string(medic.state("alerts/critical.jsonl")).unwrap(),
        ),
        (
            "recovery log",
            std::fs::read_to_string(medic.state("recovery.jsonl")).unwrap(),
        ),
    ];
    assert!(
        medic.stderr().contains("Alert delivery failed"),
        "the retries are logged"
    );
    for (what, text) in outputs {
        assert!(
            !text.contains(&token) && !text.contains(&key),
            "a secret in {what}:\n{text}"
        );
    }
    medic.terminate();
}

#[test]
fn alerts_queued_at_kill_9_are_delivered_after_restart_once() {
    let hooks = Hooks::default();
    let port = free_port();
    let scratch = tempfile::tempdir().unwrap();
    let server = TestServer::start(free_port(), scratch.path());
    let sinks = format!(
        r#"
[[alert]]
name = "ops"
kind = "webhook"
url = "http://127.0.0.1:{port}/hook/ops"
min_severity = "info"
retry_backoff = "100ms"
retry_backoff_max = "300ms"
"#
    );
    let mut medic = Medic::start(&service(&server, &sinks));
    medic.wait_event("healthy", |e| e["event"] == "healthy");
    // Two incidents while nothing listens at the sink: two alerts wait.
    for n in 1..=2 {
        server.kill();
        eventually("a recovered alert", || {
            (medic.alerts().len() == n).then_some(())
        });
    }
    let ids: Vec<String> = medic
        .alerts()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    eventually("the first retrying, the second queued behind it", || {
        let alerts = alerts_json(&medic);
        let state = |id: &String| delivery(&alerts, id, "ops").map(|d| d["state"].clone());
        (state(&ids[0])? == "retrying" && state(&ids[1])? == "queued").then_some(())
    });
    medic.kill9();

    // The sink comes up; the restarted medic delivers what was queued, once each.
    let listener =
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("the sink's port is still free");
    serve_on(listener, hooks.app());
    medic.spawn();
    let got = eventually("both queued alerts delivered", || {
        let got = hooks.on("/hook/ops");
        (got.len() >= 2).then_some(got)
    });
    let delivered: Vec<&str> = got.iter().map(|r| r.body["id"].as_str().unwrap()).collect();
    assert_eq!(delivered, ids, "in order, once each");
    eventually("the outbox to record both deliveries", || {
        let alerts = alerts_json(&medic);
        ids.iter()
            .all(|id| delivery(&alerts, id, "ops").is_some_and(|d| d["state"] == "delivered"))
            .then_some(())
    });

    // Restarted again: nothing is sent twice. A new alert arrives after the
    // old ones would have (the queue is in order), so their absence is proven.
    medic.terminate();
    let mark = medic.events().len();
    medic.spawn();
    eventually("healthy again", || {
        medic.events()[mark..]
            .iter()
            .any(|e| e["event"] == "healthy")
            .then_some(())
    });
    server.kill();
    let got = eventually("the third alert", || {
        let got = hooks.on("/hook/ops");
        (got.len() >= 3).then_some(got)
    });
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in &got {
        *counts
            .entry(r.body["id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert!(
        counts.values().all(|n| *n == 1),
        "an alert delivered twice: {counts:?}"
    );
    assert_eq!(got.len(), 3, "{counts:?}");
    medic.terminate();
}

/// GET a URL on loopback; the body.
fn http_get(base: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect to alertmanager");
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// The alerts Alertmanager holds for `service` (active ones, as its API lists them).
fn am_alerts(base: &str, service: &str) -> Vec<Value> {
    let body = http_get(base, "/api/v2/alerts");
    let all: Vec<Value> = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    all.into_iter()
        .filter(|a| a["labels"]["service"] == service)
        .collect()
}

#[test]
fn alertmanager_shows_an_escalation_and_resolves_it_after_recovery() {
    let Some(am) = env::alertmanager() else {
        return;
    };
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = healthy.clone();
    let app = axum::Router::new().route(
        "/health",
        axum::routing::get(move || {
            let ok = flag.load(std::sync::atomic::Ordering::SeqCst);
            async move {
                if ok {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "down")
                }
            }
        }),
    );
    let port = serve_in_background(app);
    // A service name of its own, so runs sharing one Alertmanager do not meet.
    let name = format!("amweb{}", std::process::id());
    let config = format!(
        r#"
[defaults]
interval = "200ms"
timeout = "150ms"
failure_threshold = 2
backoff = "100ms"
recover_timeout = "1s"

[[service]]
name = "{name}"
command = {{ restart = ["true"], rollback = ["false"], timeout = "5s" }}
  [[service.probe]]
  kind = "http"
  url = "http://127.0.0.1:{port}/health"
  body_contains = "ok"

[[alert]]
name = "am"
kind = "alertmanager"
url = "{am}"
min_severity = "critical"
repeat_interval = "1s"
"#
    );
    let medic = Medic::start(&config);
    medic.wait_event("escalated", |e| e["event"] == "escalated");
    let escalated = eventually("the escalation alert line", || {
        medic
            .alerts()
            .into_iter()
            .find(|a| a["kind"] == "escalated")
    });
    let fired = eventually("the escalation in Alertmanager", || {
        am_alerts(&am, &name).into_iter().next()
    });
    let labels = &fired["labels"];
    assert_eq!(labels["alertname"], "medic", "{fired}");
    assert_eq!(labels["severity"], "critical");
    assert_eq!(labels["kind"], "escalated");
    assert_eq!(labels["incident"], escalated["incident"]);
    assert!(
        labels["host"].as_str().is_some_and(|h| !h.is_empty()),
        "{fired}"
    );
    assert_eq!(fired["status"]["state"], "active", "{fired}");
    assert_eq!(fired["annotations"]["summary"], escalated["message"]);

    // Re-posted while firing: Alertmanager sees it updated again.
    let updated = fired["updatedAt"].as_str().unwrap().to_owned();
    eventually("a re-post", || {
        am_alerts(&am, &name)
            .into_iter()
            .find(|a| a["updatedAt"].as_str().is_some_and(|u| u != updated))
    });
    assert_eq!(am_alerts(&am, &name).len(), 1, "one alert per incident");

    // A person fixes it and asks for recovery: the alert resolves with endsAt.
    healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    let output = medic.cli(&["recover", &name]);
    assert!(output.status.success(), "{output:?}");
    medic.wait_event("recovered", |e| e["event"] == "recovered");
    let resolved = eventually("the resolving line", || {
        medic.alerts().into_iter().find(|a| a["resolved"] == true)
    });
    assert_eq!(resolved["incident"], escalated["incident"]);
    eventually("the alert to resolve in Alertmanager", || {
        am_alerts(&am, &name).is_empty().then_some(())
    });
    let alerts = alerts_json(&medic);
    for line in [&escalated, &resolved] {
        let state = delivery(&alerts, line["id"].as_str().unwrap(), "am").unwrap();
        assert_eq!(state["state"], "delivered", "{state}");
    }

    // medic alert test: a test alert shows up in Alertmanager.
    let output = medic.cli(&["alert", "test", "am"]);
    assert!(output.status.success(), "{output:?}");
    let test = am_alerts(&am, "medic")
        .into_iter()
        .find(|a| a["labels"]["kind"] == "test");
    assert!(test.is_some(), "the test alert in Alertmanager");
}

#[test]
fn exec_and_slack_sinks_get_the_alert_and_a_missing_secret_stops_the_start() {
    let hooks = Hooks::default();
    let port = serve_in_background(hooks.app());
    let scratch = tempfile::tempdir().unwrap();
    let server = TestServer::start(free_port(), scratch.path());
    // The command fails on its first run, then appends the alert from stdin.
    let sinks = format!(
        r#"
[[alert]]
name = "pager"
kind = "exec"
command = ["sh", "-c", "test -e {{dir}}/tried || {{ touch {{dir}}/tried; exit 1; }}; cat >> {{dir}}/paged.jsonl"]
min_severity = "info"
retry_backoff = "100ms"

[[alert]]
name = "chat"
kind = "slack"
url = "http://127.0.0.1:{port}/hook/slack"
min_severity = "info"
services = ["web"]
"#
    );
    let mut medic = Medic::prepare(&service(&server, &sinks));
    medic.spawn();
    medic.wait_event("healthy", |e| e["event"] == "healthy");
    server.kill();
    let paged = eventually("the exec sink's second run", || {
        read_jsonl_file(&medic.dir.path().join("paged.jsonl"))
            .into_iter()
            .next()
    });
    assert_eq!(paged["kind"], "recovered", "{paged}");
    assert_eq!(paged["service"], "web");
    assert!(paged["host"].is_string(), "{paged}");
    let alerts = alerts_json(&medic);
    let state = delivery(&alerts, paged["id"].as_str().unwrap(), "pager").unwrap();
    assert_eq!(state["attempts"], 2, "retried after exit 1: {state}");
    let table = medic.cli(&["alerts", "--since", "10m"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.starts_with("TIME"), "{table}");
    assert!(table.contains("pager: delivered (2 attempts)"), "{table}");
    let slack = eventually("the Slack message", || {
        hooks.on("/hook/slack").into_iter().next()
    });
    let text = slack.body["text"].as_str().unwrap();
    assert!(text.contains("*INFO* `web` recovered on "), "{text}");
    assert!(
        text.contains(&format!("incident {}", paged["incident"].as_str().unwrap())),
        "{text}"
    );
    assert!(text.contains("\n> "), "with the evidence summary: {text}");
    medic.terminate();

    // A sink whose secret is not in the environment: the config is rejected at start.
    std::fs::write(
        &medic.config,
        std::fs::read_to_string(&medic.config)
            .unwrap()
            .replace("/hook/slack", "/hook/${MEDIC_TEST_UNSET_SECRET}"),
    )
    .unwrap();
    let output = medic.cli(&["run"]);
    assert_eq!(output.status.code(), Some(78), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("environment variable `MEDIC_TEST_UNSET_SECRET` is not set"),
        "{stderr}"
    );
    assert!(
        stderr.contains("medic.toml:"),
        "with the position: {stderr}"
    );
}

fn read_jsonl_file(path: &std::path::Path) -> Vec<Value> {
    crate::support::medic::read_jsonl(path)
}
