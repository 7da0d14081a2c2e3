//! `medic report` over a week of recovery log. The last part is real: medic
//! runs against a real HTTP server that is killed (restarted, recovered) and a
//! command-checked worker whose restart does not help (escalated). The six
//! days before, and the week before that, are synthesized from those real
//! lines by moving their timestamps back (and are written to the rotated
//! `recovery.jsonl.1`, as rotation would leave them).

use serde_json::Value;

use crate::command_target::fast;
use crate::support::medic::{Medic, free_port};
use crate::support::server::TestServer;

const DAY_SECS: i64 = 86_400;

/// The real lines of one service's incident, moved `days` back.
fn shifted(lines: &[Value], service: &str, days: i64) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["service"] == service && l["incident"].is_string())
        .map(|line| {
            let mut line = line.clone();
            let ts: jiff::Timestamp = line["ts"].as_str().unwrap().parse().unwrap();
            let moved = ts
                .checked_sub(jiff::SignedDuration::from_secs(days * DAY_SECS))
                .unwrap();
            line["ts"] = moved.to_string().into();
            line["incident"] = format!("{}-{days}d", line["incident"].as_str().unwrap()).into();
            line.to_string()
        })
        .collect()
}

#[test]
fn a_week_of_recovery_log_reads_as_a_report() {
    let scratch = tempfile::tempdir().unwrap();
    let server = TestServer::start(free_port(), scratch.path());
    let flag = scratch.path().join("worker-broken");
    let worker = format!(
        r#"
[[service]]
name = "worker"
command = {{ restart = ["true"], rollback = ["false"], timeout = "5s" }}
  [[service.probe]]
  kind = "exec"
  command = ["test", "!", "-e", "{}"]
"#,
        flag.display()
    );
    let config = fast(
        &server.start_command_toml(),
        r#"["false"]"#,
        server.port,
        "",
    ) + &worker;
    let mut medic = Medic::start(&config);
    medic.wait_event("both healthy", |e| {
        e["service"] == "worker" && e["event"] == "healthy"
    });
    medic.wait_event("web healthy", |e| {
        e["service"] == "web" && e["event"] == "healthy"
    });

    // Real failures: a killed server medic restarts, a worker it cannot fix.
    server.kill();
    medic.wait_event("web recovered", |e| {
        e["service"] == "web" && e["event"] == "recovered"
    });
    std::fs::write(&flag, "").unwrap();
    medic.wait_event("worker escalated", |e| {
        e["service"] == "worker" && e["event"] == "escalated"
    });
    medic.terminate();

    // The older part: web's real incident once a day for six more days this
    // week, and twice in the week before.
    let real = medic.events();
    let mut older: Vec<String> = Vec::new();
    for days in [12, 9] {
        older.extend(shifted(&real, "web", days));
    }
    for days in (1..=6).rev() {
        older.extend(shifted(&real, "web", days));
    }
    let log = medic.state("recovery.jsonl");
    std::fs::write(log.with_extension("jsonl.1"), older.join("\n") + "\n").unwrap();

    let output = medic.cli(&["report", "--json"]);
    assert!(output.status.success(), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("report JSON");
    let service = |name: &str| {
        report["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == name)
            .unwrap_or_else(|| panic!("{name} in {report:#}"))
            .clone()
    };
    let web = service("web");
    assert_eq!(web["incidents"], 7, "{web:#}");
    assert_eq!(web["open_incidents"], 0, "{web:#}");
    assert_eq!(web["previous"]["incidents"], 2, "{web:#}");
    assert!(web["restarts"].as_u64().unwrap() >= 7, "{web:#}");
    assert!(web["recover_mean_secs"].as_f64().unwrap() > 0.0, "{web:#}");
    let worker = service("worker");
    assert_eq!(worker["incidents"], 1, "{worker:#}");
    assert_eq!(worker["escalations"], 1, "{worker:#}");
    assert_eq!(worker["restarts"], 3, "{worker:#}");
    assert!(worker["availability"].as_f64().unwrap() < 1.0, "{worker:#}");
    assert!(
        worker["downtime_minutes"].as_f64().unwrap() > 0.0,
        "{worker:#}"
    );
    let overall = &report["overall"];
    assert_eq!(overall["incidents"], 8, "{report:#}");
    assert_eq!(overall["escalations"], 1, "{report:#}");
    assert_eq!(report["previous"]["incidents"], 2, "{report:#}");
    // The escalated incident is the worst, with the evidence of its failure.
    let worst = &report["worst_incident"];
    assert_eq!(worst["service"], "worker", "{worst:#}");
    assert_eq!(worst["outcome"], "escalated", "{worst:#}");
    assert!(worst["evidence"].is_object(), "{worst:#}");

    let only = medic.cli(&["report", "--json", "--service", "web", "--since", "2d"]);
    let only: Value = serde_json::from_slice(&only.stdout).expect("report JSON");
    assert_eq!(only["services"].as_array().unwrap().len(), 1, "{only:#}");
    assert_eq!(only["services"][0]["incidents"], 2, "{only:#}");
    assert_eq!(only["previous"]["incidents"], 2, "{only:#}");

    let markdown = String::from_utf8(medic.cli(&["report", "--markdown"]).stdout).unwrap();
    assert!(markdown.starts_with("## medic report for "), "{markdown}");
    assert!(markdown.contains("8 incidents"), "{markdown}");
    assert!(
        markdown.contains("Worst incident: **worker**"),
        "{markdown}"
    );
    assert!(markdown.contains("| web |"), "{markdown}");
    let table = String::from_utf8(medic.cli(&["report"]).stdout).unwrap();
    assert!(
        table.contains("(all)") && table.contains("worst incident: worker"),
        "{table}"
    );
}

/// `[report] every` sends the Markdown report to its sinks once per period: a
/// period that ended while medic was down goes out at start, and a restart
/// does not send it again.
#[test]
fn the_digest_goes_out_once_per_period_across_restarts() {
    let config = r#"
[[service]]
name = "probe-only"
  [[service.probe]]
  kind = "exec"
  command = ["true"]

[[alert]]
name = "digest"
kind = "exec"
command = ["sh", "-c", "cat >> {dir}/digest.jsonl"]

[report]
every = "1h"
sinks = ["digest"]
"#;
    let mut medic = Medic::prepare(config);
    // The last digest went out for the period that ended an hour before the
    // current one: medic was down when the last one became due.
    let now = jiff::Timestamp::now().as_second();
    let last = now - now % 3600 - 3600;
    let state = medic.state("report-digest.json");
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    let last_end = jiff::Timestamp::from_second(last).unwrap();
    std::fs::write(&state, format!(r#"{{"last_period_end":"{last_end}"}}"#)).unwrap();
    let sent = state
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("digest.jsonl");

    medic.spawn();
    let digest: Value = crate::support::medic::eventually("the digest delivered", || {
        let text = std::fs::read_to_string(&sent).ok()?;
        serde_json::from_str(text.lines().next()?).ok()
    });
    assert_eq!(digest["kind"], "report", "{digest:#}");
    assert_eq!(digest["severity"], "info", "{digest:#}");
    let message = digest["message"].as_str().unwrap();
    assert!(message.starts_with("## medic report for "), "{message}");
    assert!(message.contains("| probe-only |"), "{message}");
    assert_eq!(
        digest["evidence"]["to"],
        (last_end.as_second() + 3600)
            .to_string()
            .parse::<i64>()
            .map(|s| jiff::Timestamp::from_second(s).unwrap().to_string())
            .unwrap(),
        "{digest:#}"
    );
    medic.wait_event("healthy", |e| e["event"] == "healthy");
    medic.terminate();

    // Started again within the same period: nothing more is sent.
    medic.spawn();
    medic.wait_event("healthy again", |e| e["event"] == "healthy");
    medic.terminate();
    let queued = crate::support::medic::read_jsonl(&medic.state("alerts/outbox.jsonl"))
        .into_iter()
        .filter(|r| r["alert"]["kind"] == "report")
        .count();
    assert_eq!(queued, 1, "one digest for one period");
    assert_eq!(std::fs::read_to_string(&sent).unwrap().lines().count(), 1);
}
