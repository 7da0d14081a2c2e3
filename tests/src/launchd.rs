//! LaunchAgents: the real medic against a fake launchctl (tests/src/bin/fake-launchctl.rs)
//! whose jobs are real processes — crash → kickstart, an unloaded job restored,
//! a changed plist rolled back, escalation when there is nothing to roll back to,
//! and finished jobs: idle, unless the service says `expect = "running"`.

use serde_json::Value;

use crate::support::launchd::FakeLaunchd;
use crate::support::medic::{Medic, eventually, first_event, kinds};

const LABEL: &str = "com.example.job";

/// Probes every 300 ms with short backoffs, so a whole incident takes seconds.
const CONFIG: &str = r#"
[defaults]
interval = "300ms"
timeout = "250ms"
failure_threshold = 2
backoff = "100ms"
recover_timeout = "3s"
replace_grace = "300ms"

[[service]]
name = "agent"
launch_agent = { label = "com.example.job" }
"#;

/// Starts medic on CONFIG with the fake launchctl on its PATH; waits until the agent is healthy.
fn start(fake: &FakeLaunchd) -> Medic {
    let mut medic = Medic::prepare(CONFIG);
    let env = fake.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    medic.spawn_with_env(&env);
    medic.wait_event("the agent healthy", |e| {
        e["service"] == "agent" && e["event"] == "healthy"
    });
    medic
}

/// Waits until medic has recorded the agent's plist as last known good.
fn wait_last_known_good(medic: &Medic) -> Value {
    eventually("the last known good plist in the state store", || {
        let state = medic.saved_state()?;
        let lkg = &state["units"]["agent"]["last_known_good"];
        lkg.is_object().then(|| lkg.clone())
    })
}

fn from_failing(events: &[Value]) -> Vec<String> {
    kinds(events, "agent")
        .into_iter()
        .skip_while(|k| k != "failing")
        .collect()
}

#[test]
fn a_crashed_agent_is_kickstarted() {
    let fake = FakeLaunchd::new();
    let plist = fake.write_agent(LABEL, "echo started; echo oops >&2; exec sleep 600");
    fake.bootstrap(&plist);
    let medic = start(&fake);
    let first = fake.pid(LABEL).expect("the job runs");

    fake.crash(LABEL);
    let events = medic.wait_event("recovered", |e| e["event"] == "recovered");
    assert_eq!(
        from_failing(&events),
        ["failing", "restart", "restart_done", "recovered"],
        "{}",
        medic.stderr()
    );
    let failing = first_event(&events, "failing");
    let evidence = &failing["evidence"];
    assert_eq!(evidence["classification"], "failed", "{failing}");
    assert_eq!(evidence["last_signal"], 9, "{failing}");
    assert_eq!(evidence["last_signal_name"], "SIGKILL", "{failing}");
    assert_eq!(evidence["job_state"], "exited", "{failing}");
    assert_eq!(evidence["runs"], 1, "{failing}");
    assert_eq!(evidence["domain"], FakeLaunchd::domain(), "{failing}");
    assert!(
        evidence["stderr_tail"]
            .as_array()
            .is_some_and(|lines| lines.iter().any(|l| l == "oops")),
        "the job's stderr tail is evidence: {failing}"
    );
    let restart = first_event(&events, "restart_done");
    assert!(
        restart["message"]
            .as_str()
            .unwrap()
            .starts_with("kickstarted"),
        "{restart}"
    );
    let again = fake.pid(LABEL).expect("the job runs again");
    assert_ne!(first, again);

    // `medic status` shows the classification and the availability.
    let output = medic.cli(&["status", "--json"]);
    let report: Value = serde_json::from_slice(&output.stdout).expect("status JSON");
    let agent = &report["services"][0];
    assert_eq!(agent["classification"], "healthy", "{report}");
    assert_eq!(agent["agent"]["runs"], 2, "{report}");
    assert_eq!(agent["agent"]["job_state"], "running", "{report}");
    assert!(agent["availability_24h"].as_f64().is_some(), "{report}");
    let table = String::from_utf8_lossy(&medic.cli(&["status"]).stdout).into_owned();
    assert!(
        table.contains("AGENT") && table.contains("healthy"),
        "{table}"
    );
    let failed_only = medic.cli(&["status", "--failed-only", "--json"]);
    let report: Value = serde_json::from_slice(&failed_only.stdout).expect("status JSON");
    assert_eq!(
        report["services"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
}

#[test]
fn an_unloaded_agent_is_bootstrapped_again() {
    let fake = FakeLaunchd::new();
    let plist = fake.write_agent(LABEL, "exec sleep 600");
    fake.bootstrap(&plist);
    let medic = start(&fake);

    fake.bootout(LABEL);
    let events = medic.wait_event("recovered", |e| e["event"] == "recovered");
    let failing = first_event(&events, "failing");
    assert_eq!(
        failing["evidence"]["classification"], "missing",
        "{failing}"
    );
    // An unloaded job is a removal: it waits `replace_grace` for a replacement first.
    assert_eq!(
        failing["message"], "`com.example.job` not loaded: no healthy replacement within 300ms",
        "{failing}"
    );
    let restart = first_event(&events, "restart_done");
    assert!(
        restart["message"]
            .as_str()
            .unwrap()
            .starts_with("bootstrapped"),
        "{restart}"
    );
    assert!(fake.pid(LABEL).is_some(), "the job runs again");
}

#[test]
fn a_changed_plist_that_keeps_crashing_is_rolled_back() {
    let fake = FakeLaunchd::new();
    let plist = fake.write_agent(LABEL, "exec sleep 600");
    fake.bootstrap(&plist);
    let medic = start(&fake);
    let lkg = wait_last_known_good(&medic);
    assert_eq!(lkg["path"], plist.display().to_string());
    let good = std::fs::read_to_string(&plist).unwrap();

    // A deploy, with medic paused while it swaps the plist.
    assert!(medic.cli(&["pause", "agent"]).status.success());
    fake.bootout(LABEL);
    fake.write_agent(LABEL, "echo bad deploy >&2; exit 3");
    fake.bootstrap(&plist);
    assert!(medic.cli(&["resume", "agent"]).status.success());

    let events = medic.wait_event("rolled back", |e| e["event"] == "rolled_back");
    let agent = kinds(&events, "agent");
    assert_eq!(
        agent.iter().filter(|k| *k == "restart").count(),
        3,
        "{agent:?}"
    );
    assert!(agent.contains(&"rollback_done".to_owned()), "{agent:?}");
    assert_eq!(
        std::fs::read_to_string(&plist).unwrap().trim_end(),
        good.trim_end()
    );
    let kept: Vec<_> = std::fs::read_dir(plist.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".medic-failed-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        std::fs::read_to_string(&kept[0])
            .unwrap()
            .contains("bad deploy")
    );
    assert!(fake.pid(LABEL).is_some(), "the good job runs again");
    let alert = medic
        .wait_alert("rolled_back")
        .into_iter()
        .find(|a| a["kind"] == "rolled_back")
        .expect("a rolled_back alert");
    assert_eq!(alert["severity"], "warning");
}

#[test]
fn nothing_to_roll_back_to_escalates_with_a_critical_alert() {
    let fake = FakeLaunchd::new();
    let flag = fake.log("broken");
    let script = format!(
        "if [ -e {} ]; then echo broken for good >&2; exit 3; fi; exec sleep 600",
        flag.display()
    );
    let plist = fake.write_agent(LABEL, &script);
    fake.bootstrap(&plist);
    let medic = start(&fake);
    wait_last_known_good(&medic);

    std::fs::write(&flag, "").unwrap();
    fake.crash(LABEL);
    let events = medic.wait_event("escalated", |e| e["event"] == "escalated");
    let agent = kinds(&events, "agent");
    // The incident that escalated made its three restarts (a start glimpsed
    // running before its exit 3 can close an earlier incident as recovered).
    let escalated = events
        .iter()
        .rev()
        .find(|e| e["event"] == "escalated")
        .unwrap();
    let restarts = events
        .iter()
        .filter(|e| e["event"] == "restart" && e["incident"] == escalated["incident"])
        .count();
    assert_eq!(restarts, 3, "{agent:?}");
    let failed = first_event(&events, "rollback_failed");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("already on the last known good plist"),
        "{failed}"
    );
    let alerts = medic.wait_alert("escalated");
    let critical: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["severity"] == "critical" && a["service"] == "agent")
        .collect();
    assert_eq!(critical.len(), 1, "{alerts:?}");
    assert_eq!(critical[0]["kind"], "escalated");
}

#[test]
fn install_launchd_writes_the_example_plist() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(crate::support::medic::bin("medic"))
        .args(["install", "launchd", "--prefix", "/opt/homebrew", "--dir"])
        .arg(dir.path())
        .output()
        .expect("run medic install launchd");
    assert!(output.status.success(), "{output:?}");
    let written = std::fs::read_to_string(dir.path().join("com.medic.agent.plist")).unwrap();
    let example = include_str!("../../launchd/com.medic.agent.plist");
    assert_eq!(written, example);
    let parsed = plist::Value::from_reader_xml(written.as_bytes()).expect("a valid plist");
    let dict = parsed.as_dictionary().unwrap();
    assert_eq!(dict["KeepAlive"].as_boolean(), Some(true));
    assert_eq!(dict["ThrottleInterval"].as_unsigned_integer(), Some(10));
}

#[test]
fn a_label_prefix_watches_every_matching_job() {
    let fake = FakeLaunchd::new();
    for label in ["com.example.a", "com.example.b", "com.other.c"] {
        let plist = fake.write_agent(label, "exec sleep 600");
        fake.bootstrap(&plist);
    }
    let config = CONFIG.replace(
        r#"launch_agent = { label = "com.example.job" }"#,
        r#"launch_agent = { label_prefix = "com.example." }"#,
    );
    let mut medic = Medic::prepare_with("reconcile_interval = \"300ms\"", &config);

    // `medic check` finds the jobs of the prefix too.
    let output = std::process::Command::new(crate::support::medic::bin("medic"))
        .args(["check", "--json", "--config"])
        .arg(&medic.config)
        .envs(fake.env())
        .output()
        .expect("run medic check");
    let rows: Value = serde_json::from_slice(&output.stdout).expect("check JSON");
    let services: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["agent/com.example.a", "agent/com.example.b"]);
    assert_eq!(output.status.code(), Some(0), "{rows}");

    let env = fake.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    medic.spawn_with_env(&env);
    for unit in ["agent/com.example.a", "agent/com.example.b"] {
        medic.wait_event(unit, |e| e["service"] == unit && e["event"] == "healthy");
    }

    fake.crash("com.example.b");
    let events = medic.wait_event("b recovered", |e| {
        e["service"] == "agent/com.example.b" && e["event"] == "recovered"
    });
    assert!(fake.pid("com.example.b").is_some());
    assert!(
        events.iter().all(|e| e["service"] != "agent/com.other.c"),
        "a job outside the prefix is not watched"
    );
    assert!(
        !kinds(&events, "agent/com.example.a").contains(&"failing".to_owned()),
        "the other job was left alone"
    );
}

#[test]
fn without_launchctl_the_agent_is_unknown_and_left_alone() {
    let mut medic = Medic::prepare(CONFIG);
    // No launchctl anywhere on this PATH: the probe is blind.
    medic.spawn_with_env(&[("PATH", "/nonexistent")]);
    medic.wait_event("blind", |e| {
        e["service"] == "agent" && e["event"] == "blind"
    });
    let report = eventually("status with an observation", || {
        let output = medic.cli(&["status", "--json"]);
        let report: Value = serde_json::from_slice(&output.stdout).ok()?;
        (report["services"][0]["classification"] == "unknown").then_some(report)
    });
    assert_eq!(report["services"][0]["health"], "unknown", "{report}");
    let acted: Vec<String> = kinds(&medic.events(), "agent")
        .into_iter()
        .filter(|k| k.starts_with("restart") || k.starts_with("rollback"))
        .collect();
    assert!(acted.is_empty(), "no action while blind: {acted:?}");
}

#[test]
fn a_scheduled_job_between_runs_is_idle_and_healthy() {
    let fake = FakeLaunchd::new();
    let plist = fake.write_agent_with(
        LABEL,
        "echo done",
        "\t<key>StartInterval</key>\n\t<integer>3600</integer>\n",
    );
    fake.bootstrap(&plist);
    let medic = start(&fake);
    let report = eventually("status", || {
        let output = medic.cli(&["status", "--json"]);
        serde_json::from_slice::<Value>(&output.stdout).ok()
    });
    let agent = &report["services"][0];
    assert_eq!(agent["classification"], "idle", "{report}");
    assert_eq!(agent["health"], "healthy", "{report}");
    let table = String::from_utf8_lossy(&medic.cli(&["status"]).stdout).into_owned();
    assert!(table.contains("idle"), "{table}");
}

/// A one-shot job that finished with exit 0 is idle and left alone; the same
/// clean exit of a job configured `expect = "running"` is a failure medic
/// restarts, with the exit code in the evidence.
#[test]
fn a_finished_one_shot_is_idle_unless_it_is_expected_to_run() {
    let fake = FakeLaunchd::new();
    let marks = tempfile::tempdir().expect("a temp dir");
    let (go, ran) = (marks.path().join("go"), marks.path().join("ran"));
    fake.bootstrap(&fake.write_agent("com.example.oneshot", "echo done"));
    // Its first run waits for `go` and exits 0; the runs after it stay up.
    let server = format!(
        "if [ -e {ran} ]; then exec sleep 600; fi; touch {ran}; while [ ! -e {go} ]; do sleep 0.05; done; exit 0",
        ran = ran.display(),
        go = go.display()
    );
    fake.bootstrap(&fake.write_agent("com.example.server", &server));
    let config = CONFIG.replace(
        r#"name = "agent"
launch_agent = { label = "com.example.job" }"#,
        r#"name = "oneshot"
launch_agent = { label = "com.example.oneshot" }

[[service]]
name = "server"
launch_agent = { label = "com.example.server", expect = "running" }"#,
    );
    let mut medic = Medic::prepare(&config);
    let env = fake.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    medic.spawn_with_env(&env);
    medic.wait_event("the server healthy", |e| {
        e["service"] == "server" && e["event"] == "healthy"
    });

    std::fs::write(&go, "").expect("let the server's first run exit");
    let events = medic.wait_event("the server recovered", |e| {
        e["service"] == "server" && e["event"] == "recovered"
    });
    let server_kinds: Vec<String> = kinds(&events, "server")
        .into_iter()
        .skip_while(|k| k != "failing")
        .collect();
    assert_eq!(
        server_kinds,
        ["failing", "restart", "restart_done", "recovered"],
        "{}",
        medic.stderr()
    );
    let failing = events
        .iter()
        .find(|e| e["service"] == "server" && e["event"] == "failing")
        .expect("the server's failing event");
    let evidence = &failing["evidence"];
    assert_eq!(evidence["classification"], "failed", "{failing}");
    assert_eq!(evidence["last_exit_code"], 0, "{failing}");
    assert!(
        failing["message"]
            .as_str()
            .is_some_and(|m| m.contains("meant to stay up (expect = \"running\")")),
        "{failing}"
    );
    assert!(
        fake.pid("com.example.server").is_some(),
        "the server runs again"
    );

    // The one-shot finished with exit 0: idle, healthy, never acted on.
    let report = eventually("the one-shot's status", || {
        let output = medic.cli(&["status", "--json"]);
        let report: Value = serde_json::from_slice(&output.stdout).ok()?;
        let oneshot = report["services"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == "oneshot")?
            .clone();
        (oneshot["agent"]["last_exit_code"] == 0).then_some(oneshot)
    });
    assert_eq!(report["classification"], "idle", "{report}");
    assert_eq!(report["health"], "healthy", "{report}");
    let acted: Vec<String> = kinds(&medic.events(), "oneshot")
        .into_iter()
        .filter(|k| k == "failing" || k.starts_with("restart") || k.starts_with("rollback"))
        .collect();
    assert!(acted.is_empty(), "the one-shot is left alone: {acted:?}");
}

/// `medic check --json` rows of a `label_prefix` service: unit → evidence.
fn check_evidence(fake: &FakeLaunchd, config: &std::path::Path, legacy: bool) -> Value {
    let mut command = std::process::Command::new(crate::support::medic::bin("medic"));
    command
        .args(["check", "--json", "--config"])
        .arg(config)
        .envs(fake.env());
    if legacy {
        command.env("FAKE_LAUNCHCTL_LEGACY", "1");
    }
    let output = command.output().expect("run medic check");
    let rows: Value = serde_json::from_slice(&output.stdout).expect("check JSON");
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["service"].as_str().unwrap().to_owned(),
                r["evidence"].clone(),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The same job reads the same through `print` and through `list <label>` (the
/// fallback where print is missing), in every state: running, exited non-zero,
/// finished with exit 0, killed, scheduled between runs, and a program launchd
/// cannot spawn.
#[test]
fn print_and_list_agree_on_the_same_job() {
    let fake = FakeLaunchd::new();
    let jobs = [
        ("com.example.running", "exec sleep 600", "", "healthy"),
        ("com.example.exit3", "exit 3", "", "failed"),
        ("com.example.done", "exit 0", "", "idle"),
        ("com.example.killed", "exec sleep 600", "", "failed"),
        (
            "com.example.scheduled",
            "echo done",
            "\t<key>StartInterval</key>\n\t<integer>3600</integer>\n",
            "idle",
        ),
    ];
    for (label, script, extra, _) in jobs {
        fake.bootstrap(&fake.write_agent_with(label, script, extra));
    }
    fake.crash("com.example.killed");
    // A program that does not exist: launchd cannot spawn it (78: EX_CONFIG).
    let missing = fake.write_agent("com.example.unspawnable", "exit 0");
    let text = std::fs::read_to_string(&missing).unwrap().replace(
        "<string>/bin/sh</string>",
        "<string>/nonexistent/program</string>",
    );
    std::fs::write(&missing, text).unwrap();
    fake.bootstrap(&missing);

    // `medic check` runs launchctl once per job: a generous timeout, so a
    // loaded machine does not turn a job blind.
    let config = CONFIG
        .replace(
            r#"launch_agent = { label = "com.example.job" }"#,
            r#"launch_agent = { label_prefix = "com.example." }"#,
        )
        .replace(r#"interval = "300ms""#, r#"interval = "10s""#)
        .replace(r#"timeout = "250ms""#, r#"timeout = "5s""#);
    let medic = Medic::prepare(&config);
    let print = eventually("every job settled", || {
        let rows = check_evidence(&fake, &medic.config, false);
        let settled = rows["agent/com.example.exit3"]["last_exit_code"] == 3
            && rows["agent/com.example.scheduled"]["last_exit_code"] == 0
            && rows["agent/com.example.done"]["last_exit_code"] == 0
            && rows["agent/com.example.killed"]["last_signal"] == 9;
        settled.then_some(rows)
    });
    let list = check_evidence(&fake, &medic.config, true);
    for (label, _, _, class) in jobs {
        let unit = format!("agent/{label}");
        assert_eq!(print[&unit]["classification"], class, "print: {print:#}");
        assert_eq!(list[&unit]["classification"], class, "list: {list:#}");
    }
    let unspawnable = &print["agent/com.example.unspawnable"];
    assert_eq!(unspawnable["classification"], "failed", "{print:#}");
    assert_eq!(unspawnable["job_state"], "spawn failed", "{print:#}");
    assert_eq!(unspawnable["last_exit_code"], 78, "{print:#}");
    assert_eq!(unspawnable["last_exit_name"], "EX_CONFIG", "{print:#}");
    assert_eq!(
        list["agent/com.example.unspawnable"]["classification"], "failed",
        "{list:#}"
    );
    assert_eq!(
        print["agent/com.example.killed"]["last_signal_name"], "SIGKILL",
        "{print:#}"
    );
}

/// `medic logs S --output` shows a LaunchAgent's StandardErrorPath and
/// StandardOutPath, and `-f` follows what the job writes next.
#[test]
fn logs_output_shows_and_follows_the_agent_output() {
    let fake = FakeLaunchd::new();
    let plist = fake.write_agent(LABEL, "echo started; echo oops >&2; exec sleep 600");
    fake.bootstrap(&plist);
    let medic = Medic::prepare(CONFIG);
    eventually("the job wrote its output", || {
        let text = std::fs::read_to_string(fake.log(&format!("{LABEL}.out"))).ok()?;
        text.contains("started").then_some(())
    });
    let env = fake.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let output = medic.cli_with_env(&["logs", "agent", "--output"], &env);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{output:?}");
    assert!(
        text.contains("oops") && text.contains("started") && text.contains(".err <=="),
        "{text}"
    );

    let mut follow = std::process::Command::new(crate::support::medic::bin("medic"))
        .args(["logs", "agent", "--output", "-f", "--config"])
        .arg(&medic.config)
        .envs(fake.env())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run medic logs -f");
    // Read what it prints on a thread; follow only after the first lines are out.
    let mut stdout = follow.stdout.take().unwrap();
    let (sender, chunks) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = std::io::Read::read(&mut stdout, &mut buf) {
            if sender
                .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                .is_err()
            {
                break;
            }
        }
    });
    let deadline = std::time::Duration::from_secs(10);
    let mut seen = String::new();
    let read_until = |what: &str, seen: &mut String| {
        while !seen.contains(what) {
            match chunks.recv_timeout(deadline) {
                Ok(chunk) => seen.push_str(&chunk),
                Err(_) => panic!("no {what:?} from medic logs -f: {seen}"),
            }
        }
    };
    read_until("started", &mut seen);
    let err = fake.log(&format!("{LABEL}.err"));
    let mut file = std::fs::OpenOptions::new().append(true).open(&err).unwrap();
    std::io::Write::write_all(&mut file, b"written later\n").unwrap();
    read_until("written later", &mut seen);
    follow.kill().ok();
    follow.wait().ok();

    // A service without a container or LaunchAgent target says why.
    let output = medic.cli(&["logs", "nosuch", "--output"]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no service `nosuch`"),
        "{output:?}"
    );
}
