//! What medic's writers leave on disk across a kill -9 and a restart: a torn
//! last line that never eats the next run's first, saved times clamped after
//! a clock step, and an escalation's alert never lost to the state that marks
//! it alerted. Needs nothing but the `medic` binary and loopback servers.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::command_target::fast;
use crate::support::medic::{Medic, eventually, free_port};

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
