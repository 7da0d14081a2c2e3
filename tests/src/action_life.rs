//! Each action's life, decided in the core (issue #28): a queued restart's
//! timeout starts when it runs, a queued restart whose service recovered is
//! dropped, and a deploy command's late result is never the rollback's.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::medic::{Medic, bin, free_port};
use crate::support::server::TestServer;

/// The events of `service`, by kind.
fn of(events: &[serde_json::Value], service: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["service"] == service)
        .map(|e| e["event"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// A command service probed on `port` (tcp), restarted by `restart` within `timeout`.
fn service(name: &str, restart: &str, timeout: &str, port: u16) -> String {
    format!(
        "[[service]]\nname = \"{name}\"\ncommand = {{ restart = {restart}, timeout = \"{timeout}\" }}\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:{port}\"\n\n"
    )
}

const DEFAULTS: &str = "[defaults]\ninterval = \"200ms\"\ntimeout = \"150ms\"\nfailure_threshold = 1\nrecover_timeout = \"2s\"\n\n";

/// Case 1: one slot; `slow`'s restart holds it for 33 s, longer than `quick`'s
/// whole action timeout (its command's 1 s + 30 s). `quick` waits its turn and
/// then runs: a wait in the queue is not counted against its timeout.
#[test]
fn a_restart_waiting_for_a_slot_does_not_time_out() {
    let scratch = tempfile::tempdir().unwrap();
    let ran = scratch.path().join("quick-ran");
    let slow = service("slow", r#"["sleep", "33"]"#, "40s", free_port());
    let quick = service(
        "quick",
        &format!(r#"["touch", "{}"]"#, ran.display()),
        "1s",
        free_port(),
    );
    // `slow` is decided first: `quick` is only watched once `slow` acts.
    let medic = Medic::start_with("max_concurrent_actions = 1", &format!("{DEFAULTS}{slow}"));
    medic.wait_event("slow's restart", |e| {
        e["service"] == "slow" && e["event"] == "restart"
    });
    std::fs::write(&medic.config, format!("{DEFAULTS}{slow}{quick}")).unwrap();
    medic.signal(nix::sys::signal::Signal::SIGHUP);
    medic.wait_event("quick's restart decided", |e| {
        e["service"] == "quick" && e["event"] == "restart"
    });
    let started = Instant::now();
    let events = medic.wait_event("quick's restart done", |e| {
        e["service"] == "quick"
            && matches!(e["event"].as_str(), Some("restart_done" | "restart_failed"))
    });
    let quick = of(&events, "quick");
    let done = quick.iter().position(|k| k == "restart_done");
    assert!(done.is_some(), "{quick:?}");
    assert!(
        !quick[..done.unwrap()].contains(&"restart_failed".to_owned()),
        "{quick:?}"
    );
    assert!(ran.exists(), "quick's restart command ran");
    assert!(
        started.elapsed() > Duration::from_secs(25),
        "it waited for slow's restart to end ({:?})",
        started.elapsed()
    );
}

/// Case 2: a service that recovers by itself while its restart waits for a
/// slot is not restarted: its queued restart is dropped, saying so.
#[test]
fn a_queued_restart_is_dropped_when_its_service_recovers() {
    let scratch = tempfile::tempdir().unwrap();
    let release = scratch.path().join("release");
    let ran = scratch.path().join("healer-restarted");
    let hold = format!(
        r#"["sh", "-c", "while [ ! -e {} ]; do sleep 0.05; done"]"#,
        release.display()
    );
    let server = TestServer::start(free_port(), scratch.path());
    let blocker = service("blocker", &hold, "30s", free_port());
    let healer = service(
        "healer",
        &format!(r#"["touch", "{}"]"#, ran.display()),
        "5s",
        server.port,
    );
    let medic = Medic::start_with(
        "max_concurrent_actions = 1",
        &format!("{DEFAULTS}{blocker}{healer}"),
    );
    medic.wait_event("blocker's restart", |e| {
        e["service"] == "blocker" && e["event"] == "restart"
    });
    medic.wait_event("healer healthy", |e| {
        e["service"] == "healer" && e["event"] == "healthy"
    });
    server.kill();
    medic.wait_event("healer's restart decided", |e| {
        e["service"] == "healer" && e["event"] == "restart"
    });
    let _back = TestServer::start(server.port, scratch.path());
    let events = medic.wait_event("healer's restart dropped", |e| {
        e["service"] == "healer" && e["event"] == "dropped"
    });
    std::fs::write(&release, "").unwrap();
    medic.wait_event("blocker's restart done", |e| {
        e["service"] == "blocker" && e["event"] == "restart_done"
    });
    let healer = of(&events, "healer");
    assert!(healer.contains(&"recovered".to_owned()), "{healer:?}");
    // The slot was free after blocker's job: nothing of healer's ran in it.
    let later = of(&medic.events(), "healer");
    assert!(!later.contains(&"restart_done".to_owned()), "{later:?}");
    assert!(!ran.exists(), "healer's restart command never ran");
}

/// Case 5: the deploy command outlives `--command-timeout`. The CLI kills it
/// (its whole process group) at the timeout, medic rolls back, and the
/// command's result, arriving while the rollback runs, is not taken for the
/// rollback's: rolled back, no escalation, no critical alert beyond the
/// failed deploy's.
#[test]
fn a_deploy_command_past_its_timeout_is_rolled_back_not_escalated() {
    let scratch = tempfile::tempdir().unwrap();
    let server = TestServer::start(free_port(), scratch.path());
    let config = format!(
        "{DEFAULTS}[[service]]\nname = \"web\"\ncommand = {{ restart = [\"true\"], rollback = [\"sleep\", \"1\"] }}\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:{}\"\n",
        server.port
    );
    let medic = Medic::start(&config);
    medic.wait_event("healthy", |e| e["event"] == "healthy");
    let started = Instant::now();
    let out = Command::new(bin("medic"))
        .args(["deploy", "--config"])
        .arg(&medic.config)
        .args(["web", "--command-timeout", "1s", "--timeout", "10s", "--"])
        .args(["sh", "-c", "sleep 30 & sleep 30"])
        .output()
        .expect("run medic deploy");
    let took = started.elapsed();
    let text = format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        took < Duration::from_secs(20),
        "stopped at its timeout: {took:?}\n{text}"
    );
    assert!(text.contains("rolled back"), "{text}");
    let events = medic.wait_event("rolled back", |e| e["event"] == "rolled_back");
    let web = of(&events, "web");
    assert!(!web.contains(&"escalated".to_owned()), "{web:?}");
    let critical: Vec<_> = medic
        .alerts()
        .into_iter()
        .filter(|a| a["severity"] == "critical")
        .map(|a| a["kind"].clone())
        .collect();
    assert_eq!(critical, ["deploy_failed"], "{web:?}");
}

/// Case 4: a rollback cut short by a stop of medic, as `systemctl restart
/// medic` does it: the container being rolled back ignores SIGTERM (its stop
/// takes 20 s, far beyond `shutdown_grace`). medic stops within its grace,
/// the container is still there under its name, and the next medic finishes
/// the rollback from the last known good spec.
#[test]
fn a_rollback_cut_by_a_restart_of_medic_is_finished_by_the_next_one() {
    let Some(web) = crate::docker::GoodContainer::start("cut-rollback") else {
        return;
    };
    let (engine, name, port) = (&web.engine, web.name.as_str(), web.port);
    let mut medic = crate::docker::watch(name, port);
    // The new version answers nothing and, as PID 1 without a handler, ignores SIGTERM.
    let script = format!(
        "docker rm -f {name} && docker run -d --name {name} --network host --stop-timeout 20 \
         medic-test/good:1 /bin/sh -c 'while :; do sleep 1; done'"
    );
    let mut deploy = Command::new(bin("medic"))
        .args(["deploy", "--config"])
        .arg(&medic.config)
        .args(["web", "--timeout", "3s", "--", "sh", "-c", &script])
        .envs(std::env::var("MEDIC_TEST_DOCKER_HOST").map(|host| ("DOCKER_HOST", host)))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run medic deploy");
    medic.wait_event("the rollback", |e| e["event"] == "rollback");
    let (status, took) = medic.terminate();
    deploy.wait().ok();
    assert!(status.success(), "{status:?}: {}", medic.stderr());
    assert!(
        took < Duration::from_secs(10),
        "stopped within its grace: {took:?}"
    );
    assert!(
        engine.inspect(name).is_some(),
        "a container under the name after the stop"
    );
    let state = medic.saved_state().expect("the saved state");
    assert_eq!(state["units"]["web"]["phase"], "rolling_back", "{state}");

    medic.spawn();
    let events = medic.wait_event("rolled back", |e| e["event"] == "rolled_back");
    let resumed = events
        .iter()
        .find(|e| e["event"] == "resumed")
        .expect("a resumed event");
    assert!(
        resumed["message"]
            .as_str()
            .is_some_and(|m| m.contains("finishing the rollback")),
        "{resumed}"
    );
    let good = engine.image_id("medic-test/good:1");
    let now = engine.inspect(name).expect("the container is there");
    assert_eq!(now["Image"], good, "runs the last known good version");
    assert!(
        !of(&events, "web").contains(&"escalated".to_owned()),
        "{:?}",
        of(&events, "web")
    );
}
