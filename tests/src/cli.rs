//! The CLI on its own: config check, check, logs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::medic::{Medic, bin};
use crate::support::server::serve_in_background;

/// Errors (exit 1) and warnings (a deprecated key, exit 0) name file, line and column.
#[test]
fn config_check_reports_every_error_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let check = |text: &str| {
        std::fs::write(&path, text).unwrap();
        Command::new(bin("medic"))
            .args(["config", "check"])
            .arg(&path)
            .output()
            .unwrap()
    };
    let out = check(
        "[defaults]\ninterval = \"10 parsecs\"\n\n[[service]]\nname = \"a\"\n\n[[service]]\nname = \"a\"\ncommand = { rollback = [\"x\"] }\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    assert!(
        stderr.contains(&format!("{file}:2:")),
        "bad duration with its line: {stderr}"
    );
    assert!(
        stderr.lines().filter(|l| l.starts_with(&file)).count() >= 2,
        "every error: {stderr}"
    );

    let out = check(
        "[[service]]\nname = \"a\"\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:1\"\n",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = check(
        "[[service]]\nname = \"a\"\n  attempt_window = \"5m\"\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:1\"\n",
    );
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warning = format!("{file}:3:3: warning: `attempt_window` is deprecated");
    assert!(stderr.contains(&warning), "{stderr}");
}

#[test]
fn the_example_config_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/medic.toml");
    let out = Command::new(bin("medic"))
        .args(["config", "check", example])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_probes_once_and_counts_slow_answers_and_huge_bodies() {
    let slow = axum::Router::new().route(
        "/health",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "ok"
        }),
    );
    let huge = axum::Router::new().route(
        "/health",
        axum::routing::get(|| async { "ok".repeat(25 * 1024 * 1024) }),
    );
    let ok = axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
    let (slow, huge, ok) = (
        serve_in_background(slow),
        serve_in_background(huge),
        serve_in_background(ok),
    );
    let config = format!(
        r#"
[[service]]
name = "ok"
  [[service.probe]]
  kind = "http"
  url = "http://127.0.0.1:{ok}/health"
  body_contains = "ok"

[[service]]
name = "slow"
  [[service.probe]]
  kind = "http"
  url = "http://127.0.0.1:{slow}/health"
  timeout = "300ms"

[[service]]
name = "huge"
  [[service.probe]]
  kind = "http"
  url = "http://127.0.0.1:{huge}/health"
  body_contains = "never there"
"#
    );
    let medic = Medic::prepare(&config);
    let out = medic.cli(&["check", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let row = |name: &str| rows.iter().find(|r| r["service"] == name).unwrap().clone();
    assert_eq!(row("ok")["outcome"], "ok");
    let slow = row("slow");
    assert_eq!(slow["outcome"], "fail");
    assert!(
        slow["latency_ms"].as_u64().unwrap() < 2000,
        "the timeout was enforced: {slow}"
    );
    let huge = row("huge");
    assert_eq!(huge["outcome"], "fail");
    assert_eq!(huge["evidence"]["body_truncated"], true, "{huge}");
    // 50 MiB were offered; the probe kept at most its 1 MiB cap.
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    assert!(
        usage.max_rss() < 200 * 1024,
        "peak RSS of medic check: {} KiB",
        usage.max_rss()
    );

    let table = medic.cli(&["check"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.lines().next().unwrap().starts_with("SERVICE"),
        "{text}"
    );
}

#[test]
fn logs_filters_and_follows_across_rotation() {
    let medic = Medic::prepare(
        "[[service]]\nname = \"x\"\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:1\"\n",
    );
    let log = medic.state("recovery.jsonl");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let line = |service: &str, event: &str| {
        format!(
            "{{\"ts\":\"{}\",\"service\":\"{service}\",\"event\":\"{event}\",\"state\":\"healthy\",\"message\":\"m\"}}\n",
            jiff::Timestamp::now()
        )
    };
    std::fs::write(&log, line("web", "healthy") + &line("db", "failing")).unwrap();

    let out = medic.cli(&["logs", "--service", "web", "--json"]);
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["service"], "web");

    let mut follow = Command::new(bin("medic"))
        .args(["logs", "-f", "--config"])
        .arg(&medic.config)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(follow.stdout.take().unwrap());
    let mut next = || {
        let mut text = String::new();
        reader.read_line(&mut text).unwrap();
        text
    };
    assert!(next().contains("web  healthy"));
    assert!(next().contains("db  failing"));
    append(&log, &line("web", "restart"));
    assert!(next().contains("web  restart"));
    std::fs::rename(&log, log.with_extension("jsonl.1")).unwrap();
    std::fs::write(&log, line("web", "recovered")).unwrap();
    assert!(
        next().contains("web  recovered"),
        "followed into the new file"
    );
    follow.kill().ok();
    follow.wait().ok();
}

fn append(path: &std::path::Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}
