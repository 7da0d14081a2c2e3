//! A service kept alive through user restart and rollback commands: detection,
//! bounded restarts, rollback, escalation, crash safety and graceful stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::medic::{Medic, eventually, first_event, free_port, kinds, read_jsonl};
use crate::support::server::{TestServer, serve_in_background};

/// Probes every 200 ms with short backoffs, so a whole incident takes seconds.
/// `extra` goes after `[defaults]`: policy keys, or whole tables such as `[[alert]]`.
pub(crate) fn fast(restart: &str, rollback: &str, port: u16, extra: &str) -> String {
    format!(
        r#"
[defaults]
interval = "200ms"
timeout = "150ms"
failure_threshold = 2
backoff = "100ms"
recover_timeout = "3s"
{extra}

[[service]]
name = "web"
command = {{ restart = {restart}, rollback = {rollback}, timeout = "5s" }}
  [[service.probe]]
  kind = "http"
  url = "http://127.0.0.1:{port}/health"
  body_contains = "ok"
"#
    )
}

#[test]
fn a_dead_server_is_restarted_by_its_restart_command() {
    let scratch = tempfile::tempdir().unwrap();
    let server = TestServer::start(free_port(), scratch.path());
    let config = fast(
        &server.start_command_toml(),
        r#"["false"]"#,
        server.port,
        "",
    );
    let medic = Medic::start(&config);
    medic.wait_event("healthy", |e| e["event"] == "healthy");

    server.kill();
    let events = medic.wait_event("recovered", |e| e["event"] == "recovered");
    assert!(
        server.answers(),
        "the restart command brought the server back"
    );
    let web = kinds(&events, "web");
    let from_failing: Vec<&str> = web
        .iter()
        .skip_while(|k| *k != "failing")
        .map(String::as_str)
        .collect();
    assert_eq!(
        from_failing,
        ["failing", "restart", "restart_done", "recovered"],
        "{}",
        medic.stderr()
    );
    let incidents: Vec<&serde_json::Value> = events
        .iter()
        .skip_while(|e| e["event"] != "failing")
        .map(|e| &e["incident"])
        .collect();
    assert!(
        incidents
            .iter()
            .all(|i| *i == incidents[0] && i.is_string()),
        "one incident id: {incidents:?}"
    );
    let failing = first_event(&events, "failing");
    assert!(
        failing["evidence"].is_object(),
        "detection carries evidence: {failing}"
    );
}

#[test]
fn three_failed_restarts_then_a_failed_rollback_escalate_once() {
    // A server that always answers 503 and counts how often it is probed.
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/health",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down") }
        }),
    );
    let port = serve_in_background(app);
    let config = fast(
        r#"["false"]"#,
        r#"["sh", "-c", "echo cannot roll back >&2; exit 4"]"#,
        port,
        "",
    );
    let medic = Medic::start(&config);
    let events = medic.wait_event("escalated", |e| e["event"] == "escalated");
    let web = kinds(&events, "web");
    assert_eq!(web.iter().filter(|k| *k == "restart").count(), 3, "{web:?}");
    assert_eq!(
        web.iter().filter(|k| *k == "rollback").count(),
        1,
        "{web:?}"
    );
    assert!(web.contains(&"rollback_failed".to_owned()));
    let rollback_failed = first_event(&events, "rollback_failed");
    assert_eq!(
        rollback_failed["evidence"]["exit_code"], 4,
        "{rollback_failed}"
    );

    // The alerts file has its own writer: its line may land just after the log's.
    let alerts = eventually("the escalated alert", || {
        let alerts = medic.alerts();
        (!alerts.is_empty()).then_some(alerts)
    });
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["severity"], "critical");
    assert_eq!(alerts[0]["kind"], "escalated");
    assert_eq!(alerts[0]["service"], "web");
    assert!(
        alerts[0]["evidence"]["last_observations"].is_array(),
        "{}",
        alerts[0]
    );

    // Several more probe rounds pass: still no further action.
    let seen = hits.load(Ordering::SeqCst);
    eventually("more probe rounds after escalation", || {
        (hits.load(Ordering::SeqCst) >= seen + 3).then_some(())
    });
    let web = kinds(&medic.events(), "web");
    assert_eq!(
        web.iter().filter(|k| *k == "restart").count(),
        3,
        "no restart after escalation: {web:?}"
    );
    assert_eq!(medic.alerts().len(), 1);
}

#[test]
fn killed_mid_incident_medic_continues_the_attempt_count() {
    let port = free_port();
    // A long backoff after the first attempt leaves time to kill medic between attempts.
    let config = fast(r#"["false"]"#, r#"["false"]"#, port, "")
        .replace("backoff = \"100ms\"", "backoff = \"2s\"");
    let mut medic = Medic::start(&config);
    medic.wait_event("the first failed restart", |e| {
        e["event"] == "restart_failed"
    });
    medic.kill9();
    let state = medic.saved_state().expect("the saved state");
    assert_eq!(state["units"]["web"]["incident"]["attempts"], 1, "{state}");

    medic.spawn();
    let events = medic.wait_event("the second attempt", |e| {
        e["event"] == "restart" && e["attempt"] == 2
    });
    let restarts: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "restart")
        .map(|e| &e["attempt"])
        .collect();
    assert_eq!(
        restarts,
        [1, 2],
        "the count continued across the restart of medic"
    );
    let incidents: std::collections::BTreeSet<String> = events
        .iter()
        .filter_map(|e| e["incident"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        incidents.len(),
        1,
        "the same incident continues: {incidents:?}"
    );
    read_jsonl(&medic.state("recovery.jsonl"));
}

#[test]
fn sigterm_stops_within_five_seconds_and_logs_the_running_action_as_interrupted() {
    let port = free_port();
    let config = fast(r#"["sleep", "30"]"#, r#"["false"]"#, port, "");
    let mut medic = Medic::start(&config);
    medic.wait_event("a restart in progress", |e| e["event"] == "restart");
    let (status, took) = medic.terminate();
    assert!(status.success(), "{status:?}: {}", medic.stderr());
    assert!(took < Duration::from_secs(5), "stopped in {took:?}");
    let events = medic.events();
    assert!(
        events.iter().any(|e| e["event"] == "interrupted"),
        "{:?}",
        kinds(&events, "web")
    );
    let state = medic.saved_state().expect("the saved state");
    assert_eq!(state["units"]["web"]["phase"], "recovering", "{state}");
}

#[test]
fn restarts_beyond_max_concurrent_actions_wait_their_turn() {
    let scratch = tempfile::tempdir().unwrap();
    let journal = scratch.path().join("restarts");
    let restart = format!(
        r#"["sh", "-c", "echo start >> {0}; sleep 0.3; echo end >> {0}"]"#,
        journal.display()
    );
    let services: String = ["a", "b", "c"]
        .iter()
        .map(|name| {
            format!(
                "[[service]]\nname = \"{name}\"\ncommand = {{ restart = {restart} }}\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:{}\"\n\n",
                free_port()
            )
        })
        .collect();
    let config = format!(
        "[defaults]\ninterval = \"200ms\"\ntimeout = \"150ms\"\nfailure_threshold = 1\n\n{services}"
    );
    let medic = Medic::start_with("max_concurrent_actions = 1", &config);
    eventually("three restarts done", || {
        let events = medic.events();
        (events
            .iter()
            .filter(|e| e["event"] == "restart_done")
            .count()
            >= 3)
            .then_some(())
    });
    let lines = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = lines.lines().take(6).collect();
    assert_eq!(
        lines,
        ["start", "end", "start", "end", "start", "end"],
        "one at a time"
    );
}

/// Issue #23's scenario: a restart that keeps failing, a probe that never
/// passes, medic stopped at a moment of the ladder and started again. The
/// incident resumes (one `resumed` event) and ends exactly as without the
/// restart: attempts 1, 2, 3 once each, one rollback, one escalation.
fn restarted_mid_ladder(moment: &str, at: impl Fn(&serde_json::Value) -> bool, kill9: bool) {
    let config = format!(
        r#"
[defaults]
interval = "300ms"
failure_threshold = 1
# Verifies the rollback (and a restart whose result a kill -9 lost) within seconds.
recover_timeout = "3s"

[[service]]
name = "web"
command = {{ restart = ["sh", "-c", "sleep 0.3; exit 1"], rollback = ["sh", "-c", "sleep 0.3"] }}
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:{}"
"#,
        free_port()
    );
    let mut medic = Medic::start(&config);
    medic.wait_event(moment, at);
    if kill9 {
        medic.kill9();
    } else {
        let (status, _) = medic.terminate();
        assert!(status.success(), "{status:?}: {}", medic.stderr());
    }
    medic.spawn();
    let events = medic.wait_event("escalation", |e| e["event"] == "escalated");
    let web: Vec<&serde_json::Value> = events.iter().filter(|e| e["service"] == "web").collect();
    let trace: Vec<String> = web
        .iter()
        .map(|e| format!("{}({})", e["event"].as_str().unwrap_or(""), e["attempt"]))
        .collect();
    // Each attempt fails once, in order, as without the restart. A `restart`
    // line may stand twice when the kill landed between the line and the start
    // of its job (which waits for the state saying it runs): that job never ran.
    // A `restart_failed` line may stand twice when the kill landed after the
    // line and before the state recording that result: the next medic counts
    // the same attempt failed again (its result lost), never a fourth.
    let of = |kind: &str| -> Vec<&serde_json::Value> {
        let mut attempts: Vec<&serde_json::Value> = web
            .iter()
            .filter(|e| e["event"] == kind)
            .map(|e| &e["attempt"])
            .collect();
        attempts.dedup();
        attempts
    };
    assert_eq!(of("restart_failed"), [1, 2, 3], "{trace:?}");
    assert_eq!(of("restart"), [1, 2, 3], "{trace:?}");
    let count = |kind: &str| web.iter().filter(|e| e["event"] == kind).count();
    assert_eq!(count("rollback"), 1, "{trace:?}");
    assert_eq!(count("escalated"), 1, "{trace:?}");
    let resumed: Vec<&&serde_json::Value> =
        web.iter().filter(|e| e["event"] == "resumed").collect();
    assert_eq!(resumed.len(), 1, "{trace:?}");
    let message = resumed[0]["message"].as_str().unwrap_or("");
    assert!(message.contains("after a restart of medic"), "{message}");
    let incidents: std::collections::BTreeSet<&str> =
        web.iter().filter_map(|e| e["incident"].as_str()).collect();
    assert_eq!(incidents.len(), 1, "one incident throughout: {incidents:?}");
    let alerts = medic.wait_alert("escalated");
    assert_eq!(
        alerts.iter().filter(|a| a["kind"] == "escalated").count(),
        1,
        "{alerts:?}"
    );
}

#[test]
fn sigterm_before_an_attempt_resumes_the_backoff() {
    restarted_mid_ladder(
        "the first failed attempt",
        |e| e["event"] == "restart_failed" && e["attempt"] == 1,
        false,
    );
}

#[test]
fn kill9_during_an_attempt_verifies_it_and_goes_on() {
    restarted_mid_ladder(
        "attempt 2 running",
        |e| e["event"] == "restart" && e["attempt"] == 2,
        true,
    );
}

#[test]
fn sigterm_during_verification_verifies_again() {
    restarted_mid_ladder(
        "the rollback being verified",
        |e| e["event"] == "rollback_done",
        false,
    );
}

#[test]
fn kill9_during_the_rollback_verifies_it_and_escalates() {
    restarted_mid_ladder("the rollback running", |e| e["event"] == "rollback", true);
}
