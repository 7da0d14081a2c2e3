//! Hard edges (#16): medic blind at start says so, one daemon per state_dir,
//! no input panics it, probe header values and Slack text stay harmless, and a
//! missing component fails its tests unless MEDIC_TEST_SKIP names it.

use std::io::{Read, Write};
use std::process::Command;
use std::time::Instant;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use serde_json::Value;

use crate::support::docker::{Engine, OwnEngine, unique};
use crate::support::launchd::FakeLaunchd;
use crate::support::medic::{DEADLINE, Medic, bin, eventually, free_port};
use crate::support::server::serve_in_background;

/// medic's default job, exactly as embedded.
const DEFAULT_JOB: &str = include_str!("../../crates/medic-core/src/config/default.toml");

/// A watch-only service on a port nothing listens on: medic has something to hold.
fn watch_only() -> String {
    format!(
        "[[service]]\nname = \"t\"\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:{}\"\n",
        free_port()
    )
}

/// `medic status --json` once it has the unit `unit`: (report, exit code).
fn status_with(medic: &Medic, unit: &str) -> (Value, i32) {
    eventually(&format!("status listing `{unit}`"), || {
        let output = medic.cli(&["status", "--json"]);
        let report: Value = serde_json::from_slice(&output.stdout).ok()?;
        let listed = report["services"]
            .as_array()?
            .iter()
            .any(|s| s["name"] == unit);
        listed.then(|| (report, output.status.code().unwrap_or(-1)))
    })
}

/// One HTTP request on a unix socket: (status code, body).
fn control(socket: &std::path::Path, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: medic\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let code = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (code, body)
}

#[test]
fn the_default_job_without_an_engine_is_unknown_and_says_why() {
    let mut medic = Medic::prepare_with("blind_alert_after = \"1s\"", DEFAULT_JOB);
    // A socket file nothing listens on: what a stopped engine leaves behind.
    let socket = medic.dir.path().join("docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind"));
    let host = format!("unix://{}", socket.display());
    medic.spawn_with_env(&[("DOCKER_HOST", &host)]);

    let (report, code) = status_with(&medic, "docker");
    assert_eq!(report["overall"], "unknown", "{report}");
    assert_ne!(code, 0, "status exits non-zero while blind");
    let unit = &report["services"][0];
    assert_eq!(unit["health"], "unknown", "{report}");
    assert_eq!(unit["probes"][0]["outcome"], "blind", "{report}");
    let reason = unit["probes"][0]["message"].as_str().unwrap();
    assert_eq!(
        reason,
        format!("Docker engine unreachable at {host}: connection refused")
    );
    assert_eq!(report["selectors"][0]["service"], "docker", "{report}");
    let table = String::from_utf8_lossy(&medic.cli(&["status"]).stdout).into_owned();
    assert!(
        table.contains("docker: Docker engine unreachable")
            && table.contains("watching none of the containers labelled medic.enable=true"),
        "{table}"
    );
    let alert = eventually("the blind alert", || {
        medic.alerts().into_iter().find(|a| a["kind"] == "blind")
    });
    assert_eq!(alert["severity"], "critical", "{alert}");
    assert_eq!(
        alert["evidence"]["units"],
        serde_json::json!(["docker"]),
        "{alert}"
    );
    let stderr = medic.stderr();
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("docker: Docker engine unreachable"))
        .collect();
    assert_eq!(said.len(), 1, "one clear start-up line:\n{stderr}");
    assert!(said[0].contains("WARN"), "{}", said[0]);
    medic.terminate();
}

#[test]
fn an_engine_started_after_medic_replaces_the_blind_placeholder() {
    let Some(shared) = Engine::get() else { return };
    let mut own = OwnEngine::start(&shared, &["medic-test/good:1"]);
    own.stop();
    let label = unique("late");
    let config = format!(
        "[[service]]\nname = \"docker\"\ncontainer = {{ label = \"medic.late={label}\" }}\n"
    );
    let mut medic = Medic::prepare_with("blind_alert_after = \"1s\"", &config);
    medic.spawn_with_env(&[("DOCKER_HOST", own.host())]);
    let (report, _) = status_with(&medic, "docker");
    assert_eq!(report["overall"], "unknown", "{report}");
    eventually("the blind alert", || {
        medic.alerts().into_iter().find(|a| a["kind"] == "blind")
    });

    // The engine comes up, empty: no placeholder, and a word instead of silence.
    own.spawn();
    let report = eventually("status without the placeholder", || {
        let output = medic.cli(&["status", "--json"]);
        let report: Value = serde_json::from_slice(&output.stdout).ok()?;
        (report["selectors"][0]["watching"] == 0).then_some(report)
    });
    assert_eq!(report["services"], serde_json::json!([]), "{report}");
    assert_eq!(
        report["selectors"][0]["message"],
        format!("watching 0 containers labelled medic.late={label}"),
        "{report}"
    );
    let resolved = eventually("the blind alert resolved", || {
        medic
            .alerts()
            .into_iter()
            .find(|a| a["kind"] == "blind" && a["resolved"] == true)
    });
    assert_eq!(resolved["severity"], "info", "{resolved}");
    assert!(
        medic.stderr().contains(&format!(
            "docker: watching 0 containers labelled medic.late={label}"
        )),
        "{}",
        medic.stderr()
    );

    // A labelled container appears: it is watched as its own unit.
    let name = unique("late-web");
    let port = free_port().to_string();
    own.engine.run_on_host(
        &name,
        &[
            "-e",
            &format!("PORT={port}"),
            "-l",
            &format!("medic.late={label}"),
            "medic-test/good:1",
        ],
    );
    let unit = format!("docker/{name}");
    let report = eventually("the container healthy", || {
        let output = medic.cli(&["status", "--json"]);
        let report: Value = serde_json::from_slice(&output.stdout).ok()?;
        let services = report["services"].as_array()?;
        services
            .iter()
            .any(|s| s["name"] == unit.as_str() && s["health"] == "healthy")
            .then_some(report)
    });
    assert_eq!(report["overall"], "healthy", "{report}");
    assert_eq!(report["services"].as_array().unwrap().len(), 1, "{report}");
    medic.terminate();
}

#[test]
fn a_label_prefix_without_launchctl_is_unknown() {
    let config =
        "[[service]]\nname = \"agents\"\nlaunch_agent = { label_prefix = \"com.example.\" }\n";
    let mut medic = Medic::prepare(config);
    medic.spawn_with_env(&[("PATH", "/nonexistent")]);
    let (report, code) = status_with(&medic, "agents");
    assert_eq!(report["overall"], "unknown", "{report}");
    assert_ne!(code, 0);
    let reason = report["services"][0]["probes"][0]["message"]
        .as_str()
        .unwrap();
    assert!(reason.starts_with("cannot list launchd jobs"), "{reason}");
    assert!(
        medic.stderr().contains("agents: cannot list launchd jobs"),
        "{}",
        medic.stderr()
    );

    // With launchctl there, the placeholder gives way to the jobs it lists.
    medic.terminate();
    let fake = FakeLaunchd::new();
    let plist = fake.write_agent("com.example.one", "sleep 600");
    fake.bootstrap(&plist);
    let env = fake.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    medic.spawn_with_env(&env);
    eventually("the job watched, the placeholder gone", || {
        let output = medic.cli(&["status", "--json"]);
        let report: Value = serde_json::from_slice(&output.stdout).ok()?;
        let names: Vec<&str> = report["services"]
            .as_array()?
            .iter()
            .filter_map(|s| s["name"].as_str())
            .collect();
        (names == ["agents/com.example.one"]).then_some(())
    });
}

#[test]
fn a_second_medic_on_the_same_state_dir_stops_at_once() {
    let mut first = Medic::start(&watch_only());
    first.wait_listening();
    let state_dir = first.dir.path().join("state");

    let started = Instant::now();
    let second = Command::new(bin("medic"))
        .args(["run", "--config"])
        .arg(&first.config)
        .output()
        .expect("run a second medic");
    assert!(started.elapsed() < DEADLINE);
    assert_eq!(second.status.code(), Some(2), "{second:?}");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!(
            "another medic (pid {}) is running with state_dir {}",
            first.pid(),
            state_dir.display()
        )),
        "{stderr}"
    );
    // Its socket was not touched: the first one still answers.
    assert!(first.cli(&["status", "--json"]).stdout.starts_with(b"{"));

    // Another state_dir but the same control socket: refused, socket kept.
    let other = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(&first.config).unwrap().replace(
        &state_dir.display().to_string(),
        &other.path().display().to_string(),
    );
    let config_path = other.path().join("medic.toml");
    std::fs::write(&config_path, config).unwrap();
    let third = Command::new(bin("medic"))
        .args(["run", "--config"])
        .arg(&config_path)
        .output()
        .expect("run a third medic");
    assert_eq!(third.status.code(), Some(2), "{third:?}");
    let stderr = String::from_utf8_lossy(&third.stderr);
    assert!(stderr.contains("is in use by a running medic"), "{stderr}");
    assert!(first.cli(&["status", "--json"]).stdout.starts_with(b"{"));

    // kill -9 leaves a stale socket and a lock nobody holds: the next start takes both.
    first.kill9();
    assert!(first.dir.path().join("control.sock").exists());
    first.spawn();
    first.wait_listening();
    let lock = std::fs::read_to_string(state_dir.join("medic.lock")).unwrap();
    assert_eq!(lock.trim(), first.pid().to_string());
    first.terminate();
}

#[test]
fn oversized_durations_are_refused_everywhere_and_medic_keeps_running() {
    let mut medic = Medic::start(&watch_only());
    medic.wait_listening();
    let socket = medic.dir.path().join("control.sock");

    let pause = medic.cli(&["pause", "t", "--for", "500000000000y"]);
    assert_eq!(pause.status.code(), Some(2), "{pause:?}");
    let stderr = String::from_utf8_lossy(&pause.stderr);
    assert!(
        stderr.contains("duration \"500000000000y\" is too long: medic accepts at most 10y"),
        "{stderr}"
    );
    let deploy = medic.cli(&["deploy", "t", "--timeout", "99999999999d", "--", "true"]);
    assert_eq!(deploy.status.code(), Some(2), "{deploy:?}");
    assert!(String::from_utf8_lossy(&deploy.stderr).contains("is too long"));

    // The control API itself, bypassing the CLI.
    let (code, body) = control(
        &socket,
        "POST",
        "/v1/services/t/pause",
        &format!("{{\"for_secs\": {}}}", u64::MAX),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("for_secs: duration"), "{body}");
    let (code, body) = control(
        &socket,
        "POST",
        "/v1/services/t/deploy",
        "{\"command_timeout_secs\": 18446744073709551615, \"verify_timeout_secs\": 1}",
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("command_timeout_secs: duration"), "{body}");
    for garbage in ["{", "{\"for_secs\": -1}", "{\"for_secs\": 1e400}", "\u{0}"] {
        let (code, _) = control(&socket, "POST", "/v1/services/t/pause", garbage);
        assert!((400..500).contains(&code), "{garbage:?} → {code}");
    }
    // A pause of the longest accepted length works, and medic is still there.
    let (code, body) = control(
        &socket,
        "POST",
        "/v1/services/t/pause",
        "{\"for_secs\": 315576000}",
    );
    assert_eq!(code, 200, "{body}");
    let (report, _) = status_with(&medic, "t");
    assert_eq!(report["services"][0]["paused"], true, "{report}");
    let (status, _) = medic.terminate();
    assert!(
        status.success(),
        "medic exits cleanly: {status:?}\n{}",
        medic.stderr()
    );

    // In the config: the position of the value, and no start.
    let config = std::fs::read_to_string(&medic.config).unwrap()
        + "\n[defaults]\nreplace_grace = \"500000000000y\"\n";
    std::fs::write(&medic.config, config).unwrap();
    let check = Command::new(bin("medic"))
        .args(["config", "check"])
        .arg(&medic.config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout).into_owned()
        + &String::from_utf8_lossy(&check.stderr);
    assert_ne!(check.status.code(), Some(0), "{text}");
    let config_path = medic.config.display().to_string();
    assert!(
        text.lines()
            .any(|l| l.starts_with(&config_path)
                && l.contains("duration \"500000000000y\" is too long")),
        "file:line:column: {text}"
    );
    let run = Command::new(bin("medic"))
        .args(["run", "--config"])
        .arg(&medic.config)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(78), "{run:?}");
}

#[test]
fn header_secrets_stay_hidden_and_slack_text_mentions_nobody() {
    // A health endpoint that fails, echoing the Authorization header and a
    // log line that would ping a whole channel.
    let app = axum::Router::new()
        .route(
            "/health",
            get(|headers: HeaderMap| async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_owned();
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("<!channel> db down, <@U024BE7LH> look & fix (you sent {auth})"),
                )
            }),
        )
        .route("/hook/slack", axum::routing::post(record));
    let port = serve_in_background(app);
    let restart = r#"["sh", "-c", "echo '<!here> restarting <#C024BE7LR>'; exit 1"]"#;
    let slack = format!(
        "[[alert]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"http://127.0.0.1:{port}/hook/slack\"\nmin_severity = \"info\"\n"
    );
    // The probe table comes last: its headers go on the end.
    let config = crate::command_target::fast(restart, r#"["false"]"#, port, &slack)
        + "  headers = { Authorization = \"Bearer e2e-s3cret-token\" }\n";
    let mut medic = Medic::start(&config);
    medic.wait_event("escalated", |e| e["event"] == "escalated");
    let texts = eventually("the escalation on Slack", || {
        let texts = SLACK.lock().unwrap().clone();
        texts
            .iter()
            .any(|t| t.contains("escalated") && t.contains(&format!(":{port}/health")))
            .then_some(texts)
    });
    let ours: Vec<&String> = texts
        .iter()
        .filter(|t| t.contains(&format!(":{port}/health")))
        .collect();
    for text in &ours {
        for markup in ["<!channel>", "<!here>", "<@U024BE7LH>", "<#C024BE7LR>"] {
            assert!(!text.contains(markup), "{markup} reached Slack: {text}");
        }
    }
    assert!(
        ours.iter().any(|t| t.contains("&lt;!channel&gt; db down")),
        "the log line is shown, escaped: {ours:?}"
    );
    let status = String::from_utf8_lossy(&medic.cli(&["status", "--json"]).stdout).into_owned();
    medic.terminate();
    let recovery = std::fs::read_to_string(medic.state("recovery.jsonl")).unwrap();
    let alerts = std::fs::read_to_string(medic.state("alerts/critical.jsonl")).unwrap();
    assert!(recovery.contains("you sent <redacted>"), "{recovery}");
    for (what, text) in [
        ("recovery log", recovery.as_str()),
        ("alerts", alerts.as_str()),
        ("status", status.as_str()),
        ("stderr", medic.stderr().as_str()),
        (
            "slack",
            ours.iter().map(|t| t.as_str()).collect::<String>().as_str(),
        ),
    ] {
        assert!(
            !text.contains("e2e-s3cret-token"),
            "the header value leaked into the {what}"
        );
    }
}

/// Every Slack text received (one server per test process: filtered by port).
static SLACK: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

async fn record(body: axum::body::Bytes) -> StatusCode {
    if let Ok(value) = serde_json::from_slice::<Value>(&body)
        && let Some(text) = value["text"].as_str()
    {
        SLACK.lock().unwrap().push(text.to_owned());
    }
    StatusCode::OK
}

/// The skip rule itself, on this very binary: a Docker test without an engine
/// fails, unless MEDIC_TEST_SKIP names docker; then it is recorded.
#[test]
fn a_missing_component_fails_unless_medic_test_skip_names_it() {
    let scratch = tempfile::tempdir().unwrap();
    let log = scratch.path().join("skipped.tsv");
    let test = "edges::an_engine_started_after_medic_replaces_the_blind_placeholder";
    let run = |skip: Option<&str>| {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", test, "--test-threads", "1"])
            .env_remove("MEDIC_TEST_DOCKER_HOST")
            .env_remove("MEDIC_TEST_SKIP")
            .env("CI", "false")
            .env("MEDIC_TEST_SKIP_LOG", &log);
        if let Some(skip) = skip {
            command.env("MEDIC_TEST_SKIP", skip);
        }
        command.output().expect("run the suite")
    };
    let failed = run(None);
    assert!(!failed.status.success(), "no engine, not skipped: fails");
    let out = String::from_utf8_lossy(&failed.stdout);
    assert!(out.contains("name `docker` in MEDIC_TEST_SKIP"), "{out}");
    assert!(!log.exists() || std::fs::read_to_string(&log).unwrap().is_empty());

    let skipped = run(Some("chromium, docker"));
    assert!(skipped.status.success(), "{skipped:?}");
    assert!(
        String::from_utf8_lossy(&skipped.stderr).contains("SKIPPED (MEDIC_TEST_SKIP names docker)")
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("docker\t{test}\n")
    );
}
