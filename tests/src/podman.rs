//! Containers on real Podman (`podman system service`, Docker-compatible
//! API), driven with `podman --remote` as a Podman user would: a killed
//! container is started again, a removed one is recreated as it was (its
//! ulimits, which Podman's inspect names `RLIMIT_NOFILE`, included), a bad
//! image is rolled back, and `medic check` names the engine.

use crate::docker::config;
use crate::support::docker::{Cleanup, Engine, unique};
use crate::support::medic::{Medic, eventually, first_event, free_port, kinds};
use crate::support::server::health_ok;

/// `podman run` of a good:1 container on `port`.
pub(crate) fn run_good(engine: &Engine, name: &str, port: u16, image: &str) {
    engine.run_on_host(
        name,
        &["-e", &format!("PORT={port}"), "-l", "team=web", image],
    );
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
        let state = std::fs::read(medic.state("state.json")).ok()?;
        let state: serde_json::Value = serde_json::from_slice(&state).ok()?;
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
