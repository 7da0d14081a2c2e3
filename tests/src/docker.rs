//! Containers on a real engine: killed, stopped and removed containers come
//! back; a bad image is rolled back to the last known good one; a paused
//! service is left alone; `medic logs S --output` reads the container's log.

use crate::support::docker::{Cleanup, Engine, OwnEngine, unique};
use crate::support::medic::{Medic, eventually, first_event, free_port, kinds};
use crate::support::server::health_ok;

/// Fast probes and short grace periods, so each scenario takes seconds.
pub(crate) const FAST: &str = r#"
[defaults]
interval = "500ms"
timeout = "400ms"
failure_threshold = 2
backoff = "200ms"
replace_grace = "1s"
recover_timeout = "10s"
stop_timeout = "1s"
"#;

/// A config watching one container.
pub(crate) fn config(container: &str, port: u16) -> String {
    FAST.to_owned()
        + &format!(
            r#"
[[service]]
name = "web"
container = {{ name = "{container}" }}
  [[service.probe]]
  kind = "http"
  url = "http://127.0.0.1:{port}/health"
  body_contains = "ok"
"#
        )
}

/// Runs `sh -c serve` in good:1 with a Docker health check `check`, every
/// second, unhealthy at its first failure.
pub(crate) fn run_health_checked(engine: &Engine, name: &str, check: &str, serve: &str) {
    engine.run_on_host(
        name,
        &[
            "--health-cmd",
            check,
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
            "medic-test/good:1",
            "sh",
            "-c",
            serve,
        ],
    );
}

/// Starts a good:1 container serving on `port` with settings recreate must keep.
pub(crate) fn run_good(engine: &Engine, name: &str, port: u16, scratch: &std::path::Path) {
    engine.run_on_host(
        name,
        &[
            "--restart",
            "no",
            "-e",
            &format!("PORT={port}"),
            "-e",
            "MEDIC_TEST=yes",
            "-l",
            "team=web",
            "-v",
            &format!("{}:/data", scratch.display()),
            "medic-test/good:1",
        ],
    );
}

/// A good:1 container (see `run_good`) on a free port, removed with its
/// forensic copies when dropped.
pub(crate) struct GoodContainer {
    pub engine: Engine,
    pub name: String,
    pub port: u16,
    _scratch: tempfile::TempDir,
}

impl GoodContainer {
    /// Starts one named after `tag`; None only when `MEDIC_TEST_SKIP` names `docker`.
    pub(crate) fn start(tag: &str) -> Option<Self> {
        let engine = Engine::get()?;
        let (name, port) = (unique(tag), free_port());
        let scratch = tempfile::tempdir().expect("a temp dir");
        run_good(&engine, &name, port, scratch.path());
        Some(Self {
            engine,
            name,
            port,
            _scratch: scratch,
        })
    }
}

impl Drop for GoodContainer {
    fn drop(&mut self) {
        drop(Cleanup(&self.engine, vec![self.name.clone()]));
    }
}

/// Starts medic on one container and waits until it is healthy with a recorded last known good spec.
pub(crate) fn watch(name: &str, port: u16) -> Medic {
    watch_with(&config(name, port))
}

/// [`watch`] with a config of the test's own: medic healthy, its last known good recorded.
fn watch_with(config: &str) -> Medic {
    let medic = Medic::start(config);
    medic.wait_event("healthy", |e| e["event"] == "healthy");
    eventually("the last known good spec", || {
        let state = medic.saved_state()?;
        state["units"]["web"]["last_known_good"]
            .is_object()
            .then_some(())
    });
    medic
}

#[test]
fn killed_and_stopped_containers_are_started_again() {
    let Some(engine) = Engine::get() else { return };
    let (name, port) = (unique("kill"), free_port());
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    let scratch = tempfile::tempdir().unwrap();
    run_good(&engine, &name, port, scratch.path());
    let medic = watch(&name, port);

    engine.run(&["kill", &name]);
    medic.wait_event("recovered after kill", |e| e["event"] == "recovered");
    eventually("HTTP after kill", || health_ok(port).then_some(()));
    let failing = first_event(&medic.events(), "failing").clone();
    assert_eq!(failing["evidence"]["exit_code"], 137, "{failing}");
    assert!(
        failing["evidence"]["logs"].is_array(),
        "the container's last log lines: {failing}"
    );

    engine.run(&["stop", "-t", "1", &name]);
    eventually("a second recovery after stop", || {
        (kinds(&medic.events(), "web")
            .iter()
            .filter(|k| *k == "recovered")
            .count()
            == 2)
            .then_some(())
    });
    eventually("HTTP after stop", || health_ok(port).then_some(()));
}

#[test]
fn a_removed_container_is_recreated_as_it_was() {
    let Some(engine) = Engine::get() else { return };
    let (name, port) = (unique("rm"), free_port());
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    let scratch = tempfile::tempdir().unwrap();
    run_good(&engine, &name, port, scratch.path());
    let before = engine.inspect(&name).unwrap();
    let medic = watch(&name, port);

    engine.run(&["rm", "-f", &name]);
    medic.wait_event("recovered after removal", |e| e["event"] == "recovered");
    eventually("HTTP after removal", || health_ok(port).then_some(()));
    let after = engine
        .inspect(&name)
        .expect("recreated under the same name");
    assert_ne!(after["Id"], before["Id"], "a new container");
    for field in [
        "/Config/Env",
        "/Config/Cmd",
        "/Config/Labels",
        "/HostConfig/RestartPolicy",
        "/HostConfig/NetworkMode",
        "/HostConfig/Binds",
        "/Image",
    ] {
        assert_eq!(after.pointer(field), before.pointer(field), "{field} kept");
    }
    let restore = first_event(&medic.events(), "restart_done").clone();
    assert!(
        restore["message"].as_str().unwrap().contains("recreated"),
        "{restore}"
    );
    let alerts = medic.wait_alert("restored_removed");
    let restored: Vec<_> = alerts
        .iter()
        .filter(|a| a["kind"] == "restored_removed")
        .collect();
    assert_eq!(
        restored.len(),
        1,
        "one alert for the restoration: {alerts:?}"
    );
    assert_eq!(restored[0]["severity"], "warning");
    assert_eq!(restored[0]["resolved"], true, "it ends the incident");
}

#[test]
fn a_bad_image_is_rolled_back_to_the_last_known_good() {
    let Some(engine) = Engine::get() else { return };
    let (name, port) = (unique("rollback"), free_port());
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    let scratch = tempfile::tempdir().unwrap();
    run_good(&engine, &name, port, scratch.path());
    let medic = watch(&name, port);

    // A deploy replaces the container with one from an image that exits at start.
    engine.run(&["rm", "-f", &name]);
    engine.run_on_host(&name, &["medic-test/bad:1"]);
    let events = medic.wait_event("rolled back", |e| e["event"] == "rolled_back");
    let web = kinds(&events, "web");
    let trace: Vec<String> = events
        .iter()
        .map(|e| format!("{} {} {}", e["ts"], e["event"], e["message"]))
        .collect();
    assert_eq!(
        web.iter().filter(|k| *k == "restart").count(),
        3,
        "{}",
        trace.join("\n")
    );
    eventually("HTTP after rollback", || health_ok(port).then_some(()));
    let now = engine.inspect(&name).unwrap();
    assert_eq!(
        now["Image"],
        engine.image_id("medic-test/good:1"),
        "runs the good image again"
    );

    let forensic = engine.run(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={name}.medic-failed-"),
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(
        forensic.lines().count(),
        1,
        "the failed container is kept: {forensic}"
    );
    let alerts = medic.wait_alert("rolled_back");
    let rolled_back = alerts
        .iter()
        .find(|a| a["kind"] == "rolled_back")
        .expect("a rolled_back alert");
    assert_eq!(rolled_back["severity"], "warning");
    assert_eq!(rolled_back["evidence"]["exit_code"], 3, "{rolled_back}");
}

#[test]
fn a_paused_service_is_left_alone_until_resumed() {
    let Some(engine) = Engine::get() else { return };
    let (name, port) = (unique("pause"), free_port());
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    let scratch = tempfile::tempdir().unwrap();
    run_good(&engine, &name, port, scratch.path());
    let medic = watch(&name, port);

    let out = medic.cli(&["pause", "web"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    engine.run(&["stop", "-t", "1", &name]);
    medic.wait_event("the failure seen while paused", |e| e["event"] == "failing");
    let status = medic.cli(&["status", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(report["services"][0]["paused"], true, "{report}");
    assert_eq!(status.status.code(), Some(1), "unhealthy while stopped");

    assert!(medic.cli(&["resume", "web"]).status.success());
    let events = medic.wait_event("recovered after resume", |e| e["event"] == "recovered");
    let web = kinds(&events, "web");
    let resumed = web.iter().position(|k| k == "resumed").unwrap();
    let restart = web.iter().position(|k| k == "restart").unwrap();
    assert!(restart > resumed, "no restart while paused: {web:?}");
}

#[test]
fn a_failing_docker_health_check_gets_the_container_restarted() {
    let Some(engine) = Engine::get() else { return };
    let (name, port) = (unique("health"), free_port());
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    let serve = format!("touch /tmp/healthy; exec httpd -f -p 127.0.0.1:{port} -h /www");
    run_health_checked(&engine, &name, "test -f /tmp/healthy", &serve);
    let medic = watch(&name, port);

    engine.run(&["exec", &name, "rm", "/tmp/healthy"]);
    let events = medic.wait_event("recovered from unhealthy", |e| e["event"] == "recovered");
    let failing = first_event(&events, "failing");
    assert!(
        failing["message"].as_str().unwrap().contains("unhealthy"),
        "{failing}"
    );
    assert!(failing["evidence"]["health_log"].is_array(), "{failing}");
    eventually("healthy again in Docker's eyes", || {
        let state = engine.inspect(&name)?;
        (state["State"]["Health"]["Status"] == "healthy").then_some(())
    });
}

#[test]
fn a_label_selector_watches_each_container_with_its_own_overrides() {
    let Some(engine) = Engine::get() else { return };
    let label = format!("medic.e2e={}", unique("labels"));
    let (one, two) = (unique("labels-one"), unique("labels-two"));
    let bad = unique("labels-bad");
    let _cleanup = Cleanup(&engine, vec![one.clone(), two.clone(), bad.clone()]);
    let (port_one, port_two) = (free_port(), free_port());
    for (name, port, extra) in [
        (&one, port_one, "medic.max_attempts=5"),
        (&two, port_two, "medic.on_stop=leave"),
        (&bad, free_port(), "medic.max_attempts=0"),
    ] {
        engine.run_on_host(
            name,
            &[
                "-e",
                &format!("PORT={port}"),
                "-l",
                &label,
                "-l",
                extra,
                "medic-test/good:1",
            ],
        );
    }
    let config = FAST.to_owned()
        + &format!("[[service]]\nname = \"apps\"\ncontainer = {{ label = \"{label}\" }}\n");
    let medic = Medic::start_with("reconcile_interval = \"1s\"", &config);
    let (unit_one, unit_two) = (format!("apps/{one}"), format!("apps/{two}"));
    let unit_bad = format!("apps/{bad}");
    for unit in [&unit_one, &unit_two, &unit_bad] {
        medic.wait_event("both containers healthy", |e| {
            e["service"] == *unit && e["event"] == "healthy"
        });
    }
    // A bad label is said, read by the config's code, and the container is
    // watched all the same, with the service's policy.
    let rejected = medic.wait_alert("labels_rejected");
    let rejected = rejected
        .iter()
        .find(|a| a["service"] == *unit_bad)
        .expect("the bad label's alert names its unit");
    assert_eq!(
        rejected["evidence"]["errors"][0],
        "medic.max_attempts=0: `max_attempts` must be at least 1 (the default is 3)",
        "{rejected}"
    );
    engine.run(&["kill", &one]);
    medic.wait_event("the killed one recovered", |e| {
        e["service"] == *unit_one && e["event"] == "recovered"
    });
    eventually("HTTP of the killed one", || {
        health_ok(port_one).then_some(())
    });
    let restart = medic
        .events()
        .into_iter()
        .find(|e| e["service"] == *unit_one && e["event"] == "restart")
        .unwrap();
    assert_eq!(
        restart["message"], "restart attempt 1 of 5",
        "medic.max_attempts=5 applies"
    );

    engine.run(&["stop", "-t", "1", &two]);
    let status = eventually("the stopped one observed as left alone", || {
        let out = medic.cli(&["status", "--json"]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let two = report["services"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == *unit_two)?
            .clone();
        two["probes"][0]["message"]
            .as_str()?
            .contains("left alone")
            .then_some(two)
    });
    assert_eq!(status["state"], "healthy", "{status}");
    assert!(!kinds(&medic.events(), &unit_two).contains(&"restart".to_owned()));
}

#[test]
fn a_restarting_docker_engine_makes_medic_blind_not_trigger_happy() {
    let Some(shared) = Engine::get() else { return };
    let mut own = OwnEngine::start(&shared, &["medic-test/good:1"]);
    let (name, port) = (unique("engine"), free_port());
    let scratch = tempfile::tempdir().unwrap();
    run_good(&own.engine, &name, port, scratch.path());
    let medic = Medic::start_with(
        &format!("docker_host = \"{}\"", own.host()),
        &config(&name, port),
    );
    medic.wait_event("healthy", |e| e["event"] == "healthy");

    own.stop();
    medic.wait_event("blind while the engine is down", |e| e["event"] == "blind");
    // The HTTP probe fails too (the engine stopped the container), but medic does not act blind.
    let web = kinds(&medic.events(), "web");
    assert!(
        !web.contains(&"restart".to_owned()),
        "no action while blind: {web:?}"
    );

    own.spawn();
    let events = medic.wait_event("recovered once the engine is back", |e| {
        e["event"] == "recovered"
    });
    let web = kinds(&events, "web");
    let blind = web.iter().position(|k| k == "blind").unwrap();
    let sight = web
        .iter()
        .position(|k| k == "sight_restored")
        .expect("sight restored");
    let first_restart = web.iter().position(|k| k == "restart");
    assert!(
        first_restart.is_none_or(|r| r > sight && sight > blind),
        "acts only after reconciling: {web:?}"
    );
    eventually("HTTP after the engine restart", || {
        health_ok(port).then_some(())
    });
    drop(medic);
}

#[test]
fn a_container_sharing_a_network_namespace_is_restarted_after_its_parent() {
    let Some(engine) = Engine::get() else { return };
    let (parent, child) = (unique("ns-parent"), unique("ns-child"));
    let _cleanup = Cleanup(&engine, vec![parent.clone(), child.clone()]);
    let (parent_port, child_port) = (free_port(), free_port());
    engine.run_on_host(
        &parent,
        &["-e", &format!("PORT={parent_port}"), "medic-test/good:1"],
    );
    engine.run(&[
        "run",
        "-d",
        "--name",
        &child,
        "--network",
        &format!("container:{parent}"),
        "-e",
        &format!("PORT={child_port}"),
        "medic-test/good:1",
    ]);
    let config = FAST.to_owned()
        + &format!(
            r#"
[[service]]
name = "parent"
container = {{ name = "{parent}" }}

[[service]]
name = "child"
container = {{ name = "{child}" }}
"#
        );
    let medic = Medic::start(&config);
    eventually("both last known good specs", || {
        let state = medic.saved_state()?;
        (state["units"]["parent"]["last_known_good"].is_object()
            && state["units"]["child"]["last_known_good"].is_object())
        .then_some(())
    });
    let started = |name: &str| engine.inspect(name).unwrap()["State"]["StartedAt"].clone();
    let child_started = started(&child);

    engine.run(&["kill", &parent]);
    let events = medic.wait_event("the parent recovered", |e| {
        e["service"] == "parent" && e["event"] == "recovered"
    });
    let done = events
        .iter()
        .find(|e| e["service"] == "parent" && e["event"] == "restart_done")
        .unwrap();
    assert_eq!(
        done["evidence"]["dependents_restarted"],
        serde_json::json!([child]),
        "{done}"
    );
    assert_ne!(
        started(&child),
        child_started,
        "the child was restarted after its parent"
    );
    eventually("the child answers", || health_ok(child_port).then_some(()));
}

/// medic killed mid-incident on a real engine: the new medic resumes the same
/// incident and finishes its ladder (three restarts in all, then the rollback).
#[test]
fn medic_killed_mid_incident_resumes_it_on_the_engine() {
    let Some(engine) = Engine::get() else { return };
    let (name, port) = (unique("resume"), free_port());
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    let scratch = tempfile::tempdir().unwrap();
    run_good(&engine, &name, port, scratch.path());
    let mut medic = watch(&name, port);

    engine.run(&["rm", "-f", &name]);
    engine.run_on_host(&name, &["medic-test/bad:1"]);
    medic.wait_event("the first restart", |e| {
        e["event"] == "restart" && e["attempt"] == 1
    });
    medic.kill9();
    medic.spawn();
    let events = medic.wait_event("rolled back", |e| e["event"] == "rolled_back");
    let web = kinds(&events, "web");
    // The same ladder as without the kill: attempts 2 and 3 once each, then one
    // rollback. Attempt 1 is logged once or twice, depending on where the kill
    // lands: an attempt that found the container gone (the `rm -f` before the
    // bad image's `run`) is not a failed attempt and runs again, while one cut
    // short by the kill is verified after the restart instead.
    let attempts: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] == "restart")
        .filter_map(|e| e["attempt"].as_u64())
        .collect();
    let once = |k: u64| attempts.iter().filter(|a| **a == k).count() == 1;
    assert!(once(2) && once(3), "{attempts:?} {web:?}");
    assert!(
        (1..=2).contains(&attempts.iter().filter(|a| **a == 1).count()),
        "{attempts:?}"
    );
    assert_eq!(
        web.iter().filter(|k| *k == "rollback").count(),
        1,
        "{web:?}"
    );
    assert_eq!(web.iter().filter(|k| *k == "resumed").count(), 1, "{web:?}");
    let incidents: std::collections::BTreeSet<&str> = events
        .iter()
        .skip_while(|e| e["event"] != "failing")
        .filter_map(|e| e["incident"].as_str())
        .collect();
    assert_eq!(incidents.len(), 1, "one incident throughout: {incidents:?}");
    eventually("HTTP after rollback", || health_ok(port).then_some(()));
}

/// Issue #14: three crashes, each restarted and verified, then a deploy's
/// `docker rm -f web && docker run --name web new-image`. A removal waits
/// `replace_grace`: the deploy's `docker run` succeeds (no name conflict) and
/// medic adopts the new container, a replacement and no incident (issue #35),
/// so no rollback of a flapping service either.
#[test]
fn crash_crash_crash_then_a_redeploy_is_adopted_not_raced() {
    let Some(engine) = Engine::get() else { return };
    let (name, port) = (unique("redeploy"), free_port());
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    let scratch = tempfile::tempdir().unwrap();
    run_good(&engine, &name, port, scratch.path());
    let config = config(&name, port).replace("replace_grace = \"1s\"", "replace_grace = \"30s\"");
    let medic = Medic::start(&config);
    medic.wait_event("healthy", |e| e["event"] == "healthy");
    for round in 1..=3 {
        engine.run(&["kill", &name]);
        eventually("recovered", || {
            (kinds(&medic.events(), "web")
                .iter()
                .filter(|k| *k == "recovered")
                .count()
                >= round)
                .then_some(())
        });
        eventually("HTTP after a crash", || health_ok(port).then_some(()));
    }
    engine.run(&["rm", "-f", &name]);
    engine.run_on_host(&name, &["-e", &format!("PORT={port}"), "medic-test/good:2"]);
    let events = medic.wait_event("the replacement adopted", |e| e["event"] == "replaced");
    let web = kinds(&events, "web");
    assert!(!web.contains(&"rollback".to_owned()), "{web:?}");
    assert_eq!(
        web.iter().filter(|k| *k == "failing").count(),
        3,
        "the replacement is no incident: {web:?}"
    );
    assert_eq!(
        engine.inspect(&name).unwrap()["Image"],
        engine.image_id("medic-test/good:2"),
        "the deploy's container runs: {web:?}"
    );
}

/// A deploy's replacement that crash-loops (up 300 ms each run) is seen
/// running by the container probe, the only probe here, yet it never becomes
/// the last known good: the fourth incident is flapping and the rollback
/// returns to the good version. Before the fix the first glimpse was recorded
/// and the rollback escalated, "already on the last known good spec".
#[test]
fn a_crash_looping_replacement_never_becomes_the_last_known_good() {
    let Some(engine) = Engine::get() else { return };
    let (name, port) = (unique("crashloop"), free_port());
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    let scratch = tempfile::tempdir().unwrap();
    run_good(&engine, &name, port, scratch.path());
    let medic = watch_with(&format!(
        "{FAST}\n[[service]]\nname = \"web\"\ncontainer = {{ name = \"{name}\" }}\n"
    ));
    engine.run(&["rm", "-f", &name]);
    engine.run_on_host(
        &name,
        &["medic-test/good:2", "sh", "-c", "sleep 0.3; exit 1"],
    );
    let events = eventually("the crash loop ended", || {
        let events = medic.events();
        let web = kinds(&events, "web");
        web.iter()
            .any(|k| k == "rolled_back" || k == "escalated")
            .then_some(events)
    });
    let web: Vec<_> = events
        .iter()
        .filter(|e| e["service"] == "web")
        .map(|e| {
            format!(
                "{}: {}",
                e["event"].as_str().unwrap_or_default(),
                e["message"]
            )
        })
        .collect();
    assert!(web.iter().any(|e| e.starts_with("rolled_back")), "{web:#?}");
    let state = medic.saved_state().expect("the saved state");
    let good = engine.image_id("medic-test/good:1");
    assert_eq!(state["units"]["web"]["last_known_good"]["image_id"], good);
    eventually("the good version answers", || health_ok(port).then_some(()));
    assert_eq!(engine.inspect(&name).unwrap()["Image"], good);
}

/// systemd's READY=1 (and the "first round" line) come only once a selector
/// has listed its containers and each was observed: never "0 services" while
/// discovery has not answered yet.
#[test]
fn ready_waits_for_the_selectors_first_listing() {
    let Some(engine) = Engine::get() else {
        return;
    };
    let (name, port) = (unique("ready"), free_port());
    let label = format!("medic.e2e={name}");
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    engine.run_on_host(
        &name,
        &[
            "-e",
            &format!("PORT={port}"),
            "-l",
            &label,
            "medic-test/good:1",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    let config = FAST.to_owned()
        + &format!("[[service]]\nname = \"apps\"\ncontainer = {{ label = \"{label}\" }}\n");
    let mut medic = Medic::prepare(&config);
    medic.spawn_under_watchdog(&[("NOTIFY_SOCKET", &path.display().to_string())]);
    socket
        .set_read_timeout(Some(crate::support::medic::DEADLINE))
        .unwrap();
    let mut buffer = [0u8; 4096];
    let ready = loop {
        let n = socket
            .recv(&mut buffer)
            .expect("READY=1 within the deadline");
        let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
        if message.lines().any(|l| l == "READY=1") {
            break message;
        }
    };
    assert!(
        ready.contains("STATUS=1 services: 1 healthy"),
        "READY once the container is watched: {ready}"
    );
}

/// `medic logs S --output` of a container target shows the container's own log
/// (stdout and stderr) from the engine, and `-f` follows what it writes next.
#[test]
fn logs_output_shows_and_follows_the_container_log() {
    let Some(engine) = Engine::get() else { return };
    let name = unique("output");
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    let script = "echo started; echo oops >&2; while sleep 0.2; do [ -e /tmp/more ] && echo written later && rm /tmp/more; done";
    engine.run_on_host(&name, &["medic-test/good:1", "sh", "-c", script]);
    let medic = Medic::prepare(&format!(
        "[[service]]\nname = \"web\"\ncontainer = {{ name = \"{name}\" }}\n"
    ));
    // stdout and stderr both (the engine keeps no order across the two pipes).
    eventually("both lines in the container log", || {
        let output = medic.cli(&["logs", "web", "--output"]);
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        (output.status.success() && text.contains("started") && text.contains("oops"))
            .then_some(text)
    });

    let mut follow = std::process::Command::new(crate::support::medic::bin("medic"))
        .args(["logs", "web", "--output", "-f", "--config"])
        .arg(&medic.config)
        .envs(std::env::var("MEDIC_TEST_DOCKER_HOST").map(|host| ("DOCKER_HOST", host)))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run medic logs -f");
    let mut stdout = follow.stdout.take().expect("its stdout");
    let (sender, chunks) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = std::io::Read::read(&mut stdout, &mut buf) {
            let chunk = String::from_utf8_lossy(&buf[..n]).into_owned();
            if sender.send(chunk).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Duration::from_secs(20);
    let mut seen = String::new();
    let mut read_until = |what: &str| {
        while !seen.contains(what) {
            match chunks.recv_timeout(deadline) {
                Ok(chunk) => seen.push_str(&chunk),
                Err(_) => panic!("no {what:?} from medic logs -f: {seen}"),
            }
        }
    };
    read_until("started");
    engine.run(&["exec", &name, "touch", "/tmp/more"]);
    read_until("written later");
    follow.kill().ok();
    follow.wait().ok();
}
