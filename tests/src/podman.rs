//! Containers on real Podman (`podman system service`, Docker-compatible
//! API), driven with `podman --remote` as a Podman user would: a killed
//! container is started again, a removed one is recreated as it was (its
//! ulimits, which Podman's inspect names `RLIMIT_NOFILE`, included), a bad
//! image is rolled back, `medic check` names the engine, Podman's own
//! `--health-on-failure=restart` goes first, a socket-activated service
//! that stops is reconnected to (a kill meanwhile is still repaired), and a
//! `podman rm -f` racing medic's restart or rollback is a removal every time.

use crate::docker::config;
use crate::support::docker::{Cleanup, Engine, unique};
use crate::support::medic::{Medic, eventually, first_event, free_port, kinds};
use crate::support::server::health_ok;

/// `podman run` of a good:1 container on `port`.
pub(crate) fn run_good(engine: &Engine, name: &str, port: u16, image: &str) {
    run_with(engine, name, port, image, &[]);
}

/// `run_good` with more `podman run` options.
fn run_with(engine: &Engine, name: &str, port: u16, image: &str, extra: &[&str]) {
    let env = format!("PORT={port}");
    let mut args = vec!["-e", &env, "-l", "team=web"];
    args.extend_from_slice(extra);
    args.push(image);
    engine.run_on_host(name, &args);
}

/// medic on one container of the Podman service, healthy with a recorded last known good spec.
fn watch(engine: &Engine, name: &str, port: u16) -> Medic {
    watch_with(engine, name, port, ("", ""))
}

/// Like `watch`, with one setting of the tests' config replaced (`from`, `to`).
fn watch_with(engine: &Engine, name: &str, port: u16, (from, to): (&str, &str)) -> Medic {
    let medic = Medic::start_with(
        &format!("docker_host = \"{}\"", engine.host()),
        &config(name, port).replacen(from, to, usize::from(!from.is_empty())),
    );
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
fn podman_killed_and_removed_containers_come_back() {
    let Some(engine) = Engine::podman() else {
        return;
    };
    let (name, port) = (unique("podman-kill"), free_port());
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    run_good(&engine, &name, port, "medic-test/good:1");
    let before = engine.inspect(&name).unwrap();
    let medic = watch(&engine, &name, port);

    let check = medic.cli(&["check"]);
    let table = String::from_utf8_lossy(&check.stdout);
    assert!(
        table.contains("container engine: Podman 4."),
        "medic check names the engine: {table}"
    );

    engine.run(&["kill", &name]);
    medic.wait_event("recovered after kill", |e| e["event"] == "recovered");
    eventually("HTTP after kill", || health_ok(port).then_some(()));
    let failing = first_event(&medic.events(), "failing").clone();
    assert_eq!(failing["evidence"]["exit_code"], 137, "{failing}");

    engine.run(&["rm", "-f", &name]);
    medic.wait_event("restored after the removal", |e| {
        e["event"] == "restart_done" && e["message"].as_str().unwrap_or("").contains("recreated")
    });
    eventually("recovered after the removal", || {
        let recovered = medic
            .events()
            .iter()
            .filter(|e| e["event"] == "recovered")
            .count();
        (recovered >= 2).then_some(())
    });
    eventually("HTTP after removal", || health_ok(port).then_some(()));
    let after = engine
        .inspect(&name)
        .expect("recreated under the same name");
    assert_ne!(after["Id"], before["Id"], "a new container");
    for field in [
        "/HostConfig/Ulimits",
        "/Config/Cmd",
        "/Config/Labels",
        "/HostConfig/NetworkMode",
        "/Image",
    ] {
        assert_eq!(after.pointer(field), before.pointer(field), "{field} kept");
    }
    medic.wait_alert("restored_removed");
}

#[test]
fn podman_bad_image_is_rolled_back() {
    let Some(engine) = Engine::podman() else {
        return;
    };
    let (name, port) = (unique("podman-rollback"), free_port());
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    run_good(&engine, &name, port, "medic-test/good:1");
    let good_image = engine.inspect(&name).unwrap()["Image"].clone();
    // The default replace_grace: the deploy below removes and creates the
    // container, and `podman run` may take longer than the tests' 1 s.
    let medic = watch_with(
        &engine,
        &name,
        port,
        ("replace_grace = \"1s\"", "replace_grace = \"30s\""),
    );

    // A deploy replaces the container with one from an image that exits at start.
    engine.run(&["rm", "-f", "-t", "0", &name]);
    run_good(&engine, &name, port, "medic-test/bad:1");
    let events = medic.wait_event("rolled back", |e| e["event"] == "rolled_back");
    let web = kinds(&events, "web");
    assert_eq!(web.iter().filter(|k| *k == "restart").count(), 3, "{web:?}");
    eventually("HTTP after rollback", || health_ok(port).then_some(()));
    assert_eq!(
        engine.inspect(&name).unwrap()["Image"],
        good_image,
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
    assert_eq!(forensic.lines().count(), 1, "kept: {forensic}");
}

#[test]
fn podmans_health_on_failure_restart_goes_first() {
    let Some(engine) = Engine::podman() else {
        return;
    };
    let (name, port) = (unique("podman-health-restart"), free_port());
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    let health = [
        "--health-cmd",
        "test ! -e /tmp/sick",
        "--health-retries",
        "1",
        "--health-on-failure",
        "restart",
        "--stop-timeout",
        "1",
    ];
    run_with(&engine, &name, port, "medic-test/good:1", &health);
    // Podman runs health checks from systemd timers, which do not run here:
    // the test runs each one.
    engine.run(&["healthcheck", "run", &name]);
    let medic = watch(&engine, &name, port);

    engine.run(&["exec", &name, "sh", "-c", ": > /tmp/sick"]);
    // Unhealthy (exit 1), and Podman restarts the container itself.
    let (healthy, said) = engine.try_run(&["healthcheck", "run", &name]);
    assert!(!healthy, "the check fails: {said}");
    let recovered = crate::support::medic::restarted_by(&medic);
    let failing = first_event(&medic.events(), "failing").clone();
    assert_eq!(failing["evidence"]["health"], "unhealthy", "{failing}");
    assert_eq!(
        recovered["evidence"]["restarted_by"], "Podman's `--health-on-failure=restart`",
        "{recovered}"
    );
    eventually("HTTP after Podman's restart", || {
        health_ok(port).then_some(())
    });
}

/// A socket-activated Podman service, as systemd runs one: the real
/// `systemd-socket-activate` listens on the socket and starts `podman system
/// service --time=2` (idle exit after 2 s) on the first connection, which gets
/// the socket as `LISTEN_FDS`; when the service ends, the socket is listened on
/// again. Same storage as the test service. Stopped (its process group) when dropped.
struct Activated {
    loop_: std::process::Child,
    socket: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Activated {
    fn start(root: &str) -> Self {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().expect("a temp dir");
        let socket = dir.path().join("podman.sock");
        let script = r#"while :; do
  rm -f "$1"
  systemd-socket-activate -l "$1" podman --storage-driver vfs --root "$2/root" \
    --runroot "$2/run" --tmpdir "$2/tmp" system service --time=2
done"#;
        let loop_ = std::process::Command::new("bash")
            .args(["-c", script, "activated"])
            .arg(&socket)
            .arg(root)
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("bash and systemd-socket-activate");
        eventually("the activation socket", || socket.exists().then_some(()));
        Self {
            loop_,
            socket,
            _dir: dir,
        }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Stops the service running now, as its idle exit or `systemctl stop
    /// podman.service` would; the socket is listened on again.
    fn stop_service(&self) {
        let pid = self.loop_.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .expect("the loop's children");
        let service: i32 = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a running service");
        let service = nix::unistd::Pid::from_raw(service);
        nix::sys::signal::kill(service, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    }
}

impl Drop for Activated {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.loop_.id().cast_signed());
        nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL).ok();
        self.loop_.wait().ok();
    }
}

#[test]
fn podman_socket_activated_service_that_stops_is_reconnected_and_a_kill_meanwhile_repaired() {
    let (Some(engine), Some(root)) = (Engine::podman(), crate::support::env::podman_root()) else {
        return;
    };
    let (name, port) = (unique("podman-activated"), free_port());
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    run_good(&engine, &name, port, "medic-test/good:1");
    let activated = Activated::start(&root);
    // medic's first call starts the service (its open event stream then
    // keeps it from idling out).
    let medic = Medic::start_with(
        &format!("docker_host = \"{}\"", activated.host()),
        &config(&name, port),
    );
    medic.wait_event("healthy", |e| e["event"] == "healthy");

    // The service stops; the container is killed before it is back.
    activated.stop_service();
    engine.run(&["kill", &name]);
    medic.wait_event("recovered after the kill", |e| e["event"] == "recovered");
    let failing = first_event(&medic.events(), "failing").clone();
    assert_eq!(failing["evidence"]["exit_code"], 137, "{failing}");
    eventually("HTTP after the kill", || health_ok(port).then_some(()));
}

/// `podman events` for one container's `died`, replayed from `since` (so
/// none is missed however late the stream subscribes); ends at the first.
fn died_since(engine: &Engine, name: &str, since: &str) -> std::process::Child {
    std::process::Command::new("podman")
        .args([
            "--remote",
            "--url",
            engine.host(),
            "events",
            "--since",
            since,
        ])
        .args(["--filter", &format!("container={name}")])
        .args(["--filter", "event=died", "--format", "{{.Status}}"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("podman events")
}

/// Waits for the first line of `events` (a `died`), then stops it.
fn first_line(mut events: std::process::Child) {
    use std::io::BufRead;
    let stdout = events.stdout.take().expect("piped stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("podman events");
    events.kill().ok();
    events.wait().ok();
    assert_eq!(line.trim(), "died", "the container died");
}

/// The pids listening on `port` (`ss`), whoever started them.
fn listeners(port: u16) -> Vec<String> {
    let out = std::process::Command::new("ss")
        .args(["-ltnpH", &format!("sport = :{port}")])
        .output()
        .expect("ss");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut pids: Vec<String> = text
        .split("pid=")
        .skip(1)
        .filter_map(|rest| rest.split(',').next().map(str::to_owned))
        .collect();
    pids.sort();
    pids.dedup();
    pids
}

/// Waits until the events after the first `seen` pass `pred`; returns
/// them. On timeout (two minutes: a round may wait flapping's delay, up
/// to 40 s by round six) the panic shows them.
#[track_caller]
fn wait_after(
    medic: &Medic,
    seen: usize,
    what: &str,
    pred: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let start = std::time::Instant::now();
    loop {
        let events = medic.events().split_off(seen);
        if pred(&events) {
            return events;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "timed out waiting for {what}: {:#?}\nstderr: {}",
            trace(&events),
            medic.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Events as `event: message` lines, for failure messages.
fn trace(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("{}: {}", e["event"], e["message"]))
        .collect()
}

/// Six rounds of a kill and a `podman rm -f`; from the fourth the service
/// flaps and the restore is a rollback, which the removal races: it meets
/// the rollback's stop, rename, or the container just made under the name.
/// Once a rollback finds nothing different to roll back to, each later
/// round also waits flapping's restart delay (the default: 10 s, doubling).
/// Still ignored (issue #31), passing about two runs in three: Podman 4.3 can
/// leave a container the `rm -f` raced still listed with its storage gone
/// (the rollback's stop refused `unable to determine if …/shm is mounted`,
/// the new container's start `cannot chown run directory`), or the `rm -f`
/// kills the new container while the rollback is verified (`exited` 137):
/// the rollback fails and the service escalates. Run it with
/// `cargo test -p medic-tests --test e2e -- --ignored podman_rm_f`.
#[test]
#[ignore = "known gap, issue #31: Podman 4.3 can break or kill the rollback's new container"]
fn podman_rm_f_racing_a_restart_is_a_removal_restored_every_round() {
    let Some(engine) = Engine::podman() else {
        return;
    };
    let (name, port) = (unique("podman-rm-race"), free_port());
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    run_good(&engine, &name, port, "medic-test/good:1");
    let medic = watch_with(&engine, &name, port, ("", ""));

    for round in 1..=6 {
        let seen = medic.events().len();
        if round % 2 == 1 {
            // `podman rm -f` the moment the `died` of a kill arrives.
            let died = died_since(&engine, &name, &jiff::Timestamp::now().to_string());
            engine.run(&["kill", &name]);
            first_line(died);
        } else {
            // `podman rm -f` while medic's restart runs (a rollback, once it flaps).
            engine.run(&["kill", &name]);
            let what = format!("round {round}: medic's restart");
            wait_after(&medic, seen, &what, |events| {
                events
                    .iter()
                    .any(|e| e["event"] == "restart" || e["event"] == "rollback")
            });
        }
        engine.run(&["rm", "-f", "-t", "0", &name]);
        // Closed after the recreation (a restart may have recovered first;
        // by the third round the service flaps: a rollback recreates it).
        let what = format!("round {round}: the removed container restored");
        let events = wait_after(&medic, seen, &what, |events| {
            let recreated = events.iter().position(|e| {
                (e["event"] == "restart_done" || e["event"] == "rollback_done")
                    && e["message"].as_str().unwrap_or("").contains("recreated")
            });
            let ended = |e: &serde_json::Value| {
                e["event"] == "recovered"
                    || e["event"] == "rolled_back"
                    || e["event"] == "escalated"
            };
            events.iter().any(|e| e["event"] == "escalated")
                || recreated.is_some_and(|at| events[at..].iter().any(ended))
        });
        // `rm -f` kills before it removes: when medic sees the exit first
        // (137, the kill), that death counts like any crash. The removal
        // itself never does: the attempt after `is gone` repeats the one before.
        let lines = trace(&events);
        let mut attempt = None;
        let mut after_gone = false;
        for e in &events {
            let message = e["message"].as_str().unwrap_or("");
            if e["event"] == "restart" {
                assert!(
                    !after_gone || attempt == Some(message),
                    "round {round}: the removal counted an attempt: {lines:#?}"
                );
                (attempt, after_gone) = (Some(message), false);
            } else if e["event"] == "restart_failed" && message.contains("is gone") {
                after_gone = true;
            }
        }
        assert!(
            !events.iter().any(|e| e["event"] == "escalated"),
            "round {round}: {lines:#?}"
        );
        eventually("HTTP after the removal", || health_ok(port).then_some(()));
        // No process left that Podman does not list: the one listener is the container's.
        let pid = engine.inspect(&name).expect("restored")["State"]["Pid"].to_string();
        eventually("only the container listens", || {
            (listeners(port) == [pid.clone()]).then_some(())
        });
    }
}
