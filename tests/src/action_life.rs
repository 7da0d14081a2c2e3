//! Each action's life, decided in the core (issue #28): a queued restart's
//! timeout starts when it runs, a queued restart whose service recovered is
//! dropped, a deploy command's late result is never the rollback's, and a
//! Docker rollback cut by a stop of medic at any of its steps (the fault
//! proxy in front of the private dockerd cuts it) is finished by the next
//! medic. Needs docker for the rollback tests.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::docker::Engine;
use crate::support::fault_proxy::{Fault, FaultProxy};
use crate::support::medic::{Medic, bin, eventually, free_port};
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
/// medic` does it: the container being rolled back ignores SIGTERM and asks
/// for 300 s to stop, far beyond `shutdown_grace`. medic stops without
/// waiting for it (the container still runs when medic has exited), the
/// container is still there under its name, and the next medic finishes the
/// rollback from the last known good spec.
///
/// Flaky before under load: it asserted that medic stopped within 10 s, a
/// wall-clock bound that a loaded host (load average 15–20 on 2 cores) can
/// pass; it now checks what shows medic did not wait (the stop is still under
/// way), which no load changes.
#[test]
fn a_rollback_cut_by_a_restart_of_medic_is_finished_by_the_next_one() {
    let Some(web) = crate::docker::GoodContainer::start("cut-rollback") else {
        return;
    };
    let (engine, name, port) = (&web.engine, web.name.as_str(), web.port);
    let mut medic = crate::docker::watch(name, port);
    // The new version answers nothing and, as PID 1 without a handler, ignores SIGTERM.
    let script = format!(
        "docker rm -f {name} && docker run -d --name {name} --network host --stop-timeout 300 \
         medic-test/good:1 /bin/sh -c 'while :; do sleep 1; done'"
    );
    let mut deploy = deploy(&medic, &script);
    medic.wait_event("the rollback", |e| e["event"] == "rollback");
    let (status, _) = medic.terminate();
    deploy.wait().ok();
    assert!(status.success(), "{status:?}: {}", medic.stderr());
    let new = engine
        .inspect(name)
        .expect("a container under the name after the stop");
    assert_eq!(
        new["State"]["Running"], true,
        "medic stopped without waiting for the container's own 300 s stop: {new}"
    );
    let state = medic.saved_state().expect("the saved state");
    assert_eq!(state["units"]["web"]["phase"], "rolling_back", "{state}");
    // The stop medic began ends (its 300 s are not the test's to wait).
    engine.run(&["kill", name]);

    medic.spawn();
    finished_by_the_next_medic(&medic, engine, name);
}

/// `medic deploy web -- sh -c SCRIPT` against `medic`'s daemon, the script on
/// the engine itself (never through a test's fault proxy); verify within 3 s.
fn deploy(medic: &Medic, script: &str) -> std::process::Child {
    Command::new(bin("medic"))
        .args(["deploy", "--config"])
        .arg(&medic.config)
        .args(["web", "--timeout", "3s", "--", "sh", "-c", script])
        .envs(std::env::var("MEDIC_TEST_DOCKER_HOST").map(|host| ("DOCKER_HOST", host)))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run medic deploy")
}

/// The next medic says it finishes the rollback and does: the last known good
/// version runs under the name, and nothing escalated.
fn finished_by_the_next_medic(medic: &Medic, engine: &Engine, name: &str) {
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
    assert_eq!(now["State"]["Running"], true, "{now}");
    assert!(
        !of(&events, "web").contains(&"escalated".to_owned()),
        "{:?}",
        of(&events, "web")
    );
}

/// Where the fault proxy cuts medic's rollback, and what is under the
/// service's name once medic has stopped there.
struct Cut {
    /// Names the test's container (tests run in parallel).
    tag: &'static str,
    /// The engine call the proxy keeps from the engine (`Delay`: cut before
    /// it) or whose answer it holds (`HoldBody`: cut after it).
    method: &'static str,
    path: &'static str,
    fault: Fault,
    /// What runs under the name after the cut: the new version (running or
    /// stopped), nothing (renamed away, not yet created), or the last known
    /// good version created and not started.
    left: Left,
}

#[derive(Debug, PartialEq)]
enum Left {
    NewVersion { running: bool },
    Nothing,
    LastKnownGood,
}

/// Case 4 at each step of a Docker rollback (stop, rename, create, start):
/// the fault proxy in front of the engine cuts medic's rollback there and
/// SIGTERM stops medic. The next medic finishes the rollback from whatever
/// the cut left, re-running the rollback from its last known good spec: each
/// step looks at what is there (a stopped container is retired again, a
/// missing one created, one created from the spec only started), so running
/// it whole again is the same as finishing from the last step done.
fn a_rollback_cut_at(cut: Cut) {
    let Some(web) = crate::docker::GoodContainer::start(cut.tag) else {
        return;
    };
    let (engine, name, port) = (&web.engine, web.name.as_str(), web.port);
    let proxy = FaultProxy::start(engine.host());
    let docker_host = format!("docker_host = \"{}\"", proxy.host());
    let mut medic = Medic::start_with(&docker_host, &crate::docker::config(name, port));
    medic.wait_event("healthy", |e| e["event"] == "healthy");
    eventually("the last known good spec", || {
        let state = medic.saved_state()?;
        state["units"]["web"]["last_known_good"]
            .is_object()
            .then_some(())
    });
    proxy.on(cut.method, cut.path, cut.fault.clone());
    // The new version answers nothing and stops at once on SIGTERM.
    let script = format!(
        "docker rm -f {name} && docker run -d --name {name} --network host \
         medic-test/good:1 /bin/sh -c 'trap \"exit 0\" TERM; while :; do sleep 1; done'"
    );
    let mut deploy = deploy(&medic, &script);
    eventually("medic's rollback at the cut", || {
        let reached = match cut.fault {
            Fault::HoldBody => proxy.held() == 1,
            _ => proxy.count(cut.method, cut.path) >= 1,
        };
        reached.then_some(())
    });
    let (status, _) = medic.terminate();
    deploy.wait().ok();
    assert!(status.success(), "{status:?}: {}", medic.stderr());
    let state = medic.saved_state().expect("the saved state");
    assert_eq!(state["units"]["web"]["phase"], "rolling_back", "{state}");
    let good = engine.image_id("medic-test/good:1");
    let left = match engine.inspect(name) {
        None => Left::Nothing,
        Some(c) if c["Config"]["Cmd"].to_string().contains("trap") => Left::NewVersion {
            running: c["State"]["Running"] == true,
        },
        Some(c) => {
            assert_eq!(c["Image"], good, "{c}");
            assert_eq!(c["State"]["Running"], false, "created, not started: {c}");
            Left::LastKnownGood
        }
    };
    assert_eq!(left, cut.left);

    proxy.clear();
    medic.spawn();
    finished_by_the_next_medic(&medic, engine, name);
}

#[test]
fn a_rollback_cut_before_its_stop_is_finished_by_the_next_medic() {
    a_rollback_cut_at(Cut {
        tag: "cut-stop",
        method: "POST",
        path: "/containers/*/stop",
        fault: Fault::Delay(Duration::from_secs(600)),
        left: Left::NewVersion { running: true },
    });
}

#[test]
fn a_rollback_cut_before_its_rename_is_finished_by_the_next_medic() {
    a_rollback_cut_at(Cut {
        tag: "cut-rename",
        method: "POST",
        path: "/containers/*/rename",
        fault: Fault::Delay(Duration::from_secs(600)),
        left: Left::NewVersion { running: false },
    });
}

/// The one cut that leaves nothing under the name until the next medic
/// starts: between the rename and the create, two quick engine calls (the
/// long step, the stop, comes before the rename).
#[test]
fn a_rollback_cut_before_its_create_is_finished_by_the_next_medic() {
    a_rollback_cut_at(Cut {
        tag: "cut-create",
        method: "POST",
        path: "/containers/create",
        fault: Fault::Delay(Duration::from_secs(600)),
        left: Left::Nothing,
    });
}

#[test]
fn a_rollback_cut_after_its_create_is_finished_by_the_next_medic() {
    a_rollback_cut_at(Cut {
        tag: "cut-created",
        method: "POST",
        path: "/containers/create",
        fault: Fault::HoldBody,
        left: Left::LastKnownGood,
    });
}
