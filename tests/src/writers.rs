//! What medic's writers leave on disk across a kill -9 and a restart: a torn
//! last line that never eats the next run's first, saved times clamped after
//! a clock step, and an escalation's alert never lost to the state that marks
//! it alerted. Needs nothing but the `medic` binary and loopback servers.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::command_target::fast;
use crate::support::medic::{Medic, eventually, first_event, free_port};

/// Every line of a JSON Lines file: `Ok` if it parses, `Err` with its text if not.
fn lines(path: &Path) -> Vec<Result<Value, String>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|_| l.to_owned()))
        .collect()
}

/// Appends bytes as a crash mid-write leaves them: no newline.
fn tear(path: &Path, fragment: &str) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.write_all(fragment.as_bytes()).unwrap();
}

/// A service whose restarts and rollback fail, against a port nobody serves.
fn failing_config(extra: &str) -> String {
    fast(r#"["false"]"#, r#"["false"]"#, free_port(), extra)
}

#[test]
fn a_torn_last_line_never_eats_the_next_runs_first() {
    let config = failing_config("").replace("backoff = \"100ms\"", "backoff = \"1s\"");
    let mut medic = Medic::start(&config);
    medic.wait_event("the first failed restart", |e| {
        e["event"] == "restart_failed"
    });
    medic.kill9();
    let recovery = medic.state("recovery.jsonl");
    let changes = medic.state("state.changes.jsonl");
    let before = (lines(&recovery).len(), lines(&changes).len());
    assert!(before.1 > 0, "the first run wrote change lines");
    tear(
        &recovery,
        r#"{"ts":"2026-12-01T10:00:00Z","service":"web","eve"#,
    );
    tear(
        &changes,
        r#"{"seq":999,"next_incident":7,"units":{"web":{"pha"#,
    );

    medic.spawn();
    // `wait_event` would refuse the torn line, which now stands as a bad line of its own.
    eventually("the second run's failed restart", || {
        lines(&recovery)
            .iter()
            .flatten()
            .any(|e| e["event"] == "restart_failed" && e["attempt"] == 2)
            .then_some(())
    });
    medic.kill9();

    // Each file: the first run's lines, the torn one on its own, then the
    // second run's, every one readable.
    let recovery_lines = lines(&recovery);
    let torn = &recovery_lines[before.0];
    assert!(torn.is_err(), "the torn line stands alone: {torn:?}");
    let second: Vec<&Value> = recovery_lines[before.0 + 1..]
        .iter()
        .map(|l| l.as_ref().expect("every later line reads back"))
        .collect();
    assert_eq!(second[0]["event"], "watching", "{second:?}");
    assert_eq!(recovery_lines.iter().filter(|l| l.is_err()).count(), 1);

    let change_lines = lines(&changes);
    assert!(change_lines[before.1].is_err(), "{change_lines:?}");
    let first = change_lines[before.1 + 1]
        .as_ref()
        .expect("the second run's first change line reads back");
    assert!(first["units"]["web"].is_object(), "{first}");
    let state = medic.saved_state().expect("the store loads");
    assert_eq!(state["units"]["web"]["incident"]["attempts"], 2, "{state}");

    // doctor names the unreadable lines with their file and number.
    let out = medic.cli(&["doctor", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("doctor --json");
    let records: Vec<&str> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["check"] == "records" && f["severity"] == "warning")
        .filter_map(|f| f["message"].as_str())
        .collect();
    let recovery_at = format!("{}:{}", recovery.display(), before.0 + 1);
    let changes_at = format!("{}:{}", changes.display(), before.1 + 1);
    assert!(
        records.iter().any(|m| m.contains(&recovery_at))
            && records.iter().any(|m| m.contains(&changes_at)),
        "{records:?}"
    );
}

/// Moves every saved time `field` of unit `web` (in `state.json` and in each
/// change line) by `by`, as a wall clock stepped back by that much since it
/// was saved leaves it: the restarted medic reads them against its clock now.
fn shift_saved(
    medic: &Medic,
    pick: impl Fn(&mut Value) -> Option<&mut Value>,
    by: jiff::SignedDuration,
) {
    let shift = |unit: &mut Value| {
        if let Some(Value::String(at)) = pick(unit) {
            let moved = at.parse::<jiff::Timestamp>().expect("an RFC 3339 time") + by;
            *at = moved.to_string();
        }
    };
    let state = medic.state("state.json");
    let mut file: Value = serde_json::from_slice(&std::fs::read(&state).expect("state.json"))
        .expect("state.json parses");
    shift(&mut file["units"]["web"]);
    std::fs::write(&state, file.to_string()).unwrap();
    let changes = medic.state("state.changes.jsonl");
    let text = std::fs::read_to_string(&changes).unwrap_or_default();
    let mut out = String::new();
    for line in text.lines() {
        let mut change: Value = serde_json::from_str(line).expect("a change line");
        if change["units"]["web"].is_object() {
            shift(&mut change["units"]["web"]);
        }
        out.push_str(&format!("{change}\n"));
    }
    std::fs::write(&changes, out).unwrap();
}

const A_DAY: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// A verification deadline saved a day ahead (the clock stepped back a day
/// after it was saved) gives up after `recover_timeout`, not after a day.
#[test]
fn a_saved_deadline_far_ahead_waits_no_longer_than_recover_timeout() {
    let config = fast(r#"["true"]"#, r#"["false"]"#, free_port(), "")
        .replace("recover_timeout = \"3s\"", "recover_timeout = \"5s\"")
        .replace("backoff = \"100ms\"", "backoff = \"1s\"");
    let mut medic = Medic::start(&config);
    medic.wait_event("the first restart being verified", |e| {
        e["event"] == "restart_done"
    });
    medic.kill9();
    let state = medic.saved_state().expect("the store loads");
    assert_eq!(state["units"]["web"]["stage"], "verifying", "{state}");
    shift_saved(&medic, |unit| unit.get_mut("due"), A_DAY);

    medic.spawn();
    let events = medic.wait_event("the verification to give up", |e| {
        e["event"] == "restart" && e["attempt"] == 2
    });
    let resumed = first_event(&events, "resumed");
    assert!(
        resumed["message"]
            .as_str()
            .unwrap()
            .contains("verifying attempt 1"),
        "{resumed}"
    );
    let stderr = medic.stderr();
    assert!(
        stderr.contains("the verification deadline was 86")
            && stderr.contains("clamped to 5.0 s from now (recover_timeout)"),
        "{stderr}"
    );
}

/// A pause's end saved a day later than its length allows (the clock stepped
/// back) ends after the pause's own length.
#[test]
fn a_pause_end_moved_by_a_clock_step_is_clamped_to_its_length() {
    let config = fast(r#"["true"]"#, r#"["false"]"#, free_port(), "");
    let mut medic = Medic::start(&config);
    medic.wait_listening();
    let out = medic.cli(&["pause", "web", "--for", "2h"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("the pause in the saved state", || {
        let state = medic.saved_state()?;
        state["units"]["web"]["paused"]["until"]
            .as_str()
            .map(str::to_owned)
    });
    medic.kill9();
    shift_saved(
        &medic,
        |unit| unit.get_mut("paused")?.get_mut("until"),
        A_DAY,
    );

    medic.spawn();
    medic.wait_listening();
    let out = medic.cli(&["status", "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).expect("status --json");
    let until: jiff::Timestamp = status["services"][0]["paused_until"]
        .as_str()
        .expect("still paused, with an end")
        .parse()
        .unwrap();
    let left = until.duration_since(jiff::Timestamp::now());
    assert!(
        left <= jiff::SignedDuration::from_hours(2) && left > jiff::SignedDuration::from_mins(110),
        "the pause ends in {left:?}"
    );
    let stderr = medic.stderr();
    assert!(stderr.contains("the pause's end was 93"), "{stderr}");
}

/// The escalation's alert line reaches the disk before the state that marks
/// the unit alerted: with the alerts file's writer slowed (a fault honoured
/// by debug builds only, `MEDIC_TEST_SLOW_WRITES`), the saved state never
/// says `escalated` while the alert is missing, and after a kill -9 in that
/// window the next medic has the alert (at least once, never zero).
#[test]
fn an_escalation_alert_is_on_disk_before_the_state_that_marks_it_alerted() {
    let config = failing_config("");
    let mut medic = Medic::prepare(&config);
    medic.spawn_with_env(&[("MEDIC_TEST_SLOW_WRITES", "critical.jsonl:3000")]);
    let alerts = medic.state("alerts/critical.jsonl");
    let escalated_alert = || {
        lines(&alerts)
            .iter()
            .flatten()
            .any(|a| a["kind"] == "escalated" && a["service"] == "web")
    };
    medic.wait_event("the escalation", |e| e["event"] == "escalated");
    // Whichever reaches the disk first: the state that says escalated, or the alert.
    let state_first = eventually("the escalation on disk", || {
        let saved = medic.saved_state()?;
        let escalated = saved["units"]["web"]["phase"] == "escalated";
        let alerted = escalated_alert();
        (escalated || alerted).then_some(escalated && !alerted)
    });
    medic.kill9();
    assert!(
        !state_first,
        "the state marked web escalated and alerted before its alert was written"
    );

    medic.spawn();
    eventually("the escalated alert after the restart", || {
        escalated_alert().then_some(())
    });
}
