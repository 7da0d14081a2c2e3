//! The engine restarts some containers itself: its restart policy after a
//! crash (an incident), a person's `docker restart` / `podman restart` (no
//! incident, one `restarted` event). medic gives the engine the first chance
//! (`ENGINE_GRACE`), acts only when it did not (a `docker stop` the policy
//! never undoes), and says who brought the container back.

use crate::docker::config;
use crate::support::docker::{Cleanup, Engine, unique};
use crate::support::medic::{Medic, eventually, first_event, free_port, kinds, restarted_by};
use crate::support::server::health_ok;

/// Serves on `port` until `/tmp/crash` appears, then exits with 3 by itself
/// (a crash, with no command of the engine's involved).
fn crashable(port: u16) -> String {
    format!(
        "httpd -p 127.0.0.1:{port} -h /www; while [ ! -e /tmp/crash ]; do sleep 0.1; done; rm /tmp/crash; exit 3"
    )
}

/// Starts medic on one container and waits until it is healthy with a recorded last known good spec.
fn watch(engine: &Engine, name: &str, port: u16) -> Medic {
    let medic = Medic::start_with(
        &format!("docker_host = \"{}\"", engine.host()),
        &config(name, port),
    );
    medic.wait_event("healthy", |e| e["event"] == "healthy");
    medic
}

#[test]
fn the_restart_policy_gets_the_first_chance_and_medic_acts_when_it_does_not() {
    let Some(engine) = Engine::get() else { return };
    let (name, port) = (unique("policy"), free_port());
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    engine.run_on_host(
        &name,
        &[
            "--restart",
            "always",
            "medic-test/good:1",
            "sh",
            "-c",
            &crashable(port),
        ],
    );
    let medic = watch(&engine, &name, port);

    // A crash: Docker's policy restarts it; medic waits and records that.
    engine.run(&["exec", &name, "touch", "/tmp/crash"]);
    let recovered = restarted_by(&medic);
    assert_eq!(
        recovered["evidence"]["restarted_by"], "its restart policy `always`",
        "{recovered}"
    );
    eventually("HTTP after the engine's restart", || {
        health_ok(port).then_some(())
    });
    assert_eq!(
        engine.inspect(&name).unwrap()["RestartCount"],
        1,
        "one restart, the engine's"
    );

    // `docker stop`: no policy undoes it, so medic starts it after the grace.
    engine.run(&["stop", "-t", "1", &name]);
    let events = medic.wait_event("medic's own recovery after docker stop", |e| {
        e["event"] == "recovered" && e["message"].as_str().unwrap_or("").contains("attempt 1")
    });
    let web = kinds(&events, "web");
    assert_eq!(web.iter().filter(|k| *k == "restart").count(), 1, "{web:?}");
    eventually("HTTP after medic's restart", || {
        health_ok(port).then_some(())
    });
}

/// A person's restart: one `restarted` event saying who, no incident.
#[track_caller]
fn restarted_by_a_person(medic: &Medic) -> serde_json::Value {
    let events = medic.wait_event("the restart logged", |e| e["event"] == "restarted");
    let web = kinds(&events, "web");
    assert!(
        !web.iter().any(|k| k == "failing" || k == "restart"),
        "no incident, no restart of medic's: {web:?}"
    );
    first_event(&events, "restarted").clone()
}

#[test]
fn a_persons_docker_restart_is_not_restarted_again() {
    let Some(engine) = Engine::get() else { return };
    let (name, port) = (unique("person"), free_port());
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    engine.run_on_host(&name, &["-e", &format!("PORT={port}"), "medic-test/good:1"]);
    // The container probe alone, as the default job watches: an HTTP probe
    // failing its threshold before the container's stop is seen opens an
    // incident (its failures are all medic knows then).
    let medic = crate::flapping::watching(&engine, &name);

    // kill (SIGTERM), kill (SIGKILL: httpd ignores SIGTERM as PID 1), die 137, stop, start, restart.
    engine.run(&["restart", "-t", "1", &name]);
    let restarted = restarted_by_a_person(&medic);
    assert_eq!(
        restarted["message"], "restarted by `docker restart` (a person or a script)",
        "{restarted}"
    );
    assert!(medic.alerts().is_empty(), "{:?}", medic.alerts());
    eventually("HTTP after the restart", || health_ok(port).then_some(()));
}

#[test]
fn a_persons_podman_restart_is_not_restarted_again() {
    let Some(engine) = Engine::podman() else {
        return;
    };
    let (name, port) = (unique("podman-person"), free_port());
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    crate::podman::run_good(&engine, &name, port, "medic-test/good:1");
    let medic = crate::flapping::watching(&engine, &name);

    // Podman reports restart first, then died, init, start.
    engine.run(&["restart", "-t", "1", &name]);
    let restarted = restarted_by_a_person(&medic);
    assert_eq!(
        restarted["evidence"]["restarted_by"], "`podman restart` (a person or a script)",
        "{restarted}"
    );
    eventually("HTTP after the restart", || health_ok(port).then_some(()));
}
