//! A hung engine call: containers stuck in removal, whose `wait` the engine
//! never answers, fail their restart at the call's deadline and give their
//! action slot back, so a fifth service's restart still runs, in the same
//! medic. Needs the private dockerd, behind the fault proxy
//! (`support/fault_proxy.rs`) that holds the `wait` answers and says
//! "removing" in the stuck containers' inspect (the state a real stuck
//! removal leaves, which no test can bring a healthy engine into). The
//! proxy's own faults are checked with the docker CLI through it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::docker::{FAST, GoodContainer};
use crate::support::docker::Engine;
use crate::support::fault_proxy::{Edit, Fault, FaultProxy};
use crate::support::medic::{Medic, eventually};

/// The four stuck services (the default `max_concurrent_actions`) and the one that must still recover.
const STUCK: [&str; 4] = ["stuck-1", "stuck-2", "stuck-3", "stuck-4"];

#[test]
fn hung_waits_time_out_and_free_their_slots() {
    let Some(free) = GoodContainer::start("hung-free") else {
        return;
    };
    let stuck: Vec<GoodContainer> = STUCK
        .iter()
        .filter_map(|tag| GoodContainer::start(&format!("hung-{tag}")))
        .collect();
    let proxy = FaultProxy::start(free.engine.host());
    // Fast probes; everything about actions (max_concurrent_actions, their timeouts) is the default.
    let mut services = FAST.to_owned();
    for (service, container) in STUCK.iter().zip(&stuck).chain([(&"free", &free)]) {
        services += &format!(
            "\n[[service]]\nname = \"{service}\"\ncontainer = {{ name = \"{}\" }}\n",
            container.name
        );
    }
    let medic = Medic::start_with(&format!("docker_host = \"{}\"", proxy.host()), &services);
    eventually("every service healthy", || {
        let events = medic.events();
        let healthy = |service: &str| {
            events
                .iter()
                .any(|e| e["service"] == service && e["event"] == "healthy")
        };
        (STUCK.iter().all(|s| healthy(s)) && healthy("free")).then_some(())
    });

    // The four get stuck in removal: the engine calls them `removing`, and
    // their `wait` (medic waits for the removal to end before it acts) never ends.
    for container in &stuck {
        let removing: crate::support::fault_proxy::Edit =
            std::sync::Arc::new(|inspect: &mut Value| {
                inspect["State"]["Status"] = "removing".into();
            });
        proxy.on(
            "GET",
            &format!("/containers/{}/json", container.name),
            Fault::Edit(removing),
        );
        proxy.on(
            "POST",
            &format!("/containers/{}/wait", container.name),
            Fault::HoldBody,
        );
    }
    eventually("four restarts hung in the engine's wait", || {
        (proxy.held() == STUCK.len()).then_some(())
    });

    // Every slot is held by a hung call; the fifth service fails now.
    free.engine.run(&["kill", &free.name]);
    let events = medic.wait_event("the fifth service recovered", |e| {
        e["service"] == "free" && e["event"] == "recovered"
    });
    let position = |pred: &dyn Fn(&Value) -> bool| events.iter().position(pred);
    let first_timeout = position(&|e| e["event"] == "restart_failed" && e["service"] != "free")
        .expect("a hung restart failed before the fifth one ran");
    let free_restart = position(&|e| e["service"] == "free" && e["event"] == "restart_done")
        .expect("the fifth service was restarted");
    assert!(
        first_timeout < free_restart,
        "the fifth restart ran once a hung one gave its slot back: {events:#?}"
    );

    // Each hung restart ends as a failed attempt that says which call hung and for how long.
    for service in STUCK {
        let events = medic.wait_event("each hung restart to fail", |e| {
            e["service"] == service && e["event"] == "restart_failed"
        });
        let failed = events
            .iter()
            .find(|e| e["service"] == service && e["event"] == "restart_failed")
            .expect("found above");
        let message = failed["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("cannot wait for") && message.contains("timed out after 31s"),
            "{failed}"
        );
        assert_eq!(failed["evidence"]["timed_out_call"], "wait", "{failed}");
        assert_eq!(failed["evidence"]["call_deadline"], "31s", "{failed}");
        assert_eq!(failed["evidence"]["state"], "removing", "{failed}");
    }
    // The same medic goes on: it answers, the fifth service is healthy.
    let status = medic.cli(&["status", "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).expect("status answers in JSON");
    let free_status = status["services"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == "free"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(free_status["health"], "healthy", "{status:#}");
}

#[test]
fn the_fault_proxy_does_what_it_is_told() {
    let Some(engine) = Engine::get() else { return };
    let proxy = FaultProxy::start(engine.host());
    let docker = |args: &[&str]| {
        let out = std::process::Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", proxy.host())
            .output()
            .expect("run docker");
        let text = [out.stdout, out.stderr].concat();
        (
            out.status.success(),
            String::from_utf8_lossy(&text).into_owned(),
        )
    };
    assert!(docker(&["ps"]).0, "passes through by default");
    assert!(proxy.count("GET", "/containers/json") >= 1);

    proxy.on("GET", "/containers/json", Fault::Status(500));
    let (ok, text) = docker(&["ps"]);
    assert!(!ok && text.contains("fault proxy: injected 500"), "{text}");

    proxy.on("GET", "/containers/json", Fault::Drop);
    let (ok, text) = docker(&["ps"]);
    assert!(!ok, "a dropped call fails: {text}");

    proxy.on(
        "GET",
        "/containers/json",
        Fault::Delay(Duration::from_millis(100)),
    );
    assert!(docker(&["ps"]).0, "a delayed call still answers");

    let named: Edit = Arc::new(|version: &mut Value| {
        version["Version"] = "0.0.0-proxied".into();
    });
    proxy.on("GET", "/version", Fault::Edit(named));
    let (ok, text) = docker(&["version", "--format", "{{.Server.Version}}"]);
    assert!(ok && text.contains("0.0.0-proxied"), "{text}");

    proxy.clear();
    let (ok, text) = docker(&["version", "--format", "{{.Server.Version}}"]);
    assert!(ok && !text.contains("proxied"), "{text}");
    assert_eq!(proxy.held(), 0);
}
