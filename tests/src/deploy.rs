//! `medic deploy` on a real engine: a good new image is promoted to last known
//! good; a bad image, a deploy that only removes the container, and a failing
//! deploy command are rolled back to the version from before; a selector
//! service with no instance yet is deployed into existence; an instance
//! retired during a deploy of several does not hold it.

use std::process::{Command, Output};

use crate::docker::{GoodContainer, config, watch};
use crate::support::docker::{Cleanup, Engine, unique};
use crate::support::medic::{Medic, bin, eventually, first_event};
use crate::support::server::health_ok;

/// `medic deploy web --timeout 5s -- sh -c SCRIPT` against this medic's config.
fn deploy(medic: &Medic, script: &str) -> Output {
    Command::new(bin("medic"))
        .args(["deploy", "--config"])
        .arg(&medic.config)
        .args(["web", "--timeout", "5s", "--", "sh", "-c", script])
        .envs(std::env::var("MEDIC_TEST_DOCKER_HOST").map(|host| ("DOCKER_HOST", host)))
        .output()
        .expect("run medic deploy")
}

/// Replaces container `name` with one from `image` serving on `port`.
fn replace_with(name: &str, port: u16, image: &str) -> String {
    format!(
        "docker rm -f {name} && docker run -d --name {name} --network host -e PORT={port} {image}"
    )
}

pub(crate) fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The image id the state store holds as web's last known good.
fn last_known_good_image(medic: &Medic) -> Option<String> {
    let state = medic.saved_state()?;
    state["units"]["web"]["last_known_good"]["image_id"]
        .as_str()
        .map(str::to_owned)
}

/// After a failed deploy: exit 1, a critical alert, and good:1 running and answering again.
fn assert_rolled_back(engine: &Engine, medic: &Medic, name: &str, port: u16, out: &Output) {
    assert_eq!(out.status.code(), Some(1), "{}", text(out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("deploy of web failed"),
        "{}",
        text(out)
    );
    let good = engine.image_id("medic-test/good:1");
    let now = engine.inspect(name).expect("the container is there");
    assert_eq!(
        now["Image"], good,
        "runs the version from before the deploy"
    );
    eventually("HTTP after the rollback", || health_ok(port).then_some(()));
    let alert = medic
        .wait_alert("deploy_failed")
        .into_iter()
        .find(|a| a["kind"] == "deploy_failed")
        .expect("a deploy_failed alert");
    assert_eq!(alert["severity"], "critical", "{alert}");
    assert!(alert["evidence"].is_object(), "{alert}");
    assert_eq!(last_known_good_image(medic), Some(good), "LKG unchanged");
}

/// The recovery log's `deploy_failed` event.
fn deploy_failed_event(medic: &Medic) -> serde_json::Value {
    first_event(&medic.events(), "deploy_failed").clone()
}

/// The daemon supervises web again: neither paused nor deploying.
fn assert_supervised(medic: &Medic) {
    let status = medic.cli(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let web = &status["services"][0];
    assert_eq!(web["paused"], false, "never left paused: {web}");
    assert_ne!(web["state"], "deploying", "{web}");
}

#[test]
fn a_healthy_new_image_is_promoted_to_last_known_good() {
    let Some(web) = GoodContainer::start("deploy-good") else {
        return;
    };
    let (engine, name, port) = (&web.engine, web.name.as_str(), web.port);
    let medic = watch(name, port);

    let out = deploy(&medic, &replace_with(name, port, "medic-test/good:2"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("deployed web: medic-test/good:1")
            && stdout.contains("→ medic-test/good:2"),
        "{}",
        text(&out)
    );
    let deployed = medic.wait_event("deployed", |e| e["event"] == "deployed");
    let deployed = first_event(&deployed, "deployed");
    assert_eq!(
        deployed["evidence"]["before"]["image"], "medic-test/good:1",
        "{deployed}"
    );
    assert_eq!(
        deployed["evidence"]["after"]["image"], "medic-test/good:2",
        "{deployed}"
    );
    let good2 = engine.image_id("medic-test/good:2");
    eventually("good:2 as last known good", || {
        (last_known_good_image(&medic).as_deref() == Some(good2.as_str())).then_some(())
    });
    assert!(medic.alerts().is_empty(), "{:?}", medic.alerts());
    assert_supervised(&medic);
}

#[test]
fn a_bad_image_is_rolled_back_and_the_deploy_fails() {
    let Some(web) = GoodContainer::start("deploy-bad") else {
        return;
    };
    let (engine, name, port) = (&web.engine, web.name.as_str(), web.port);
    let medic = watch(name, port);

    let out = deploy(&medic, &replace_with(name, port, "medic-test/bad:1"));
    assert_rolled_back(engine, &medic, name, port, &out);
    assert_supervised(&medic);
    let failed = deploy_failed_event(&medic);
    assert_eq!(
        failed["evidence"]["exit_code"], 3,
        "the new container's exit: {failed}"
    );
}

#[test]
fn a_deploy_that_only_removes_the_container_is_restored_and_fails() {
    let Some(web) = GoodContainer::start("deploy-rm") else {
        return;
    };
    let (engine, name, port) = (&web.engine, web.name.as_str(), web.port);
    let medic = watch(name, port);

    let out = deploy(&medic, &format!("docker rm -f {name}"));
    assert_rolled_back(engine, &medic, name, port, &out);
    assert_supervised(&medic);
}

#[test]
fn a_failing_deploy_command_is_rolled_back() {
    let Some(web) = GoodContainer::start("deploy-cmd") else {
        return;
    };
    let (engine, name, port) = (&web.engine, web.name.as_str(), web.port);
    let medic = watch(name, port);

    let out = deploy(&medic, "echo pulling the new version; exit 3");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("pulling the new version"),
        "output streamed through: {}",
        text(&out)
    );
    assert_rolled_back(engine, &medic, name, port, &out);
    assert_supervised(&medic);
    let failed = deploy_failed_event(&medic);
    assert_eq!(failed["evidence"]["exit_code"], 3, "{failed}");
    assert_eq!(
        failed["evidence"]["output_tail"][0], "pulling the new version",
        "{failed}"
    );
}

#[test]
fn without_a_daemon_the_deploy_guards_itself() {
    let Some(web) = GoodContainer::start("deploy-alone") else {
        return;
    };
    let (engine, name, port) = (&web.engine, web.name.as_str(), web.port);
    let medic = Medic::prepare(&config(name, port));

    let out = deploy(&medic, &replace_with(name, port, "medic-test/bad:1"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("guarding the deploy in-process"),
        "{}",
        text(&out)
    );
    assert_rolled_back(engine, &medic, name, port, &out);
}

/// A label selector service `web` over `medic.test.selector=<value>`, fast probes.
fn selector_config(value: &str) -> String {
    format!(
        r#"
[defaults]
interval = "500ms"
timeout = "400ms"
failure_threshold = 2
backoff = "200ms"
replace_grace = "1s"
recover_timeout = "10s"
stop_timeout = "1s"

[[service]]
name = "web"
container = {{ label = "medic.test.selector={value}" }}
"#
    )
}

/// `docker run` of a good:1 container carrying the selector's label.
fn run_labelled(name: &str, value: &str) -> String {
    format!(
        "docker run -d --name {name} --network host -l medic.test.selector={value} -e PORT={} medic-test/good:1",
        crate::support::medic::free_port()
    )
}

/// `medic deploy web -- sh -c SCRIPT` with a verify timeout of `timeout`.
fn deploy_within(medic: &Medic, timeout: &str, script: &str) -> Output {
    Command::new(bin("medic"))
        .args(["deploy", "--config"])
        .arg(&medic.config)
        .args(["web", "--timeout", timeout, "--", "sh", "-c", script])
        .envs(std::env::var("MEDIC_TEST_DOCKER_HOST").map(|host| ("DOCKER_HOST", host)))
        .output()
        .expect("run medic deploy")
}

/// A selector service with no instance yet is deployed into existence: the
/// deploy creates the first container, which is verified and promoted.
#[test]
fn a_selector_service_with_no_instance_yet_is_deployed() {
    let Some(engine) = Engine::get() else { return };
    let (value, name) = (unique("fresh"), unique("fresh-web"));
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    let medic = Medic::start(&selector_config(&value));
    medic.wait_listening();

    let out = deploy_within(&medic, "30s", &run_labelled(&name, &value));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let unit = format!("web/{name}");
    let status = medic.cli(&["status", "--json", "--service", &unit]);
    let report: serde_json::Value = serde_json::from_slice(&status.stdout)
        .unwrap_or_else(|_| panic!("status: {}", text(&status)));
    assert_eq!(report["services"][0]["health"], "healthy", "{report}");
}

/// An instance retired while a deploy of several runs (here `medic forget`
/// from the deploy command itself) no longer holds the deploy until its
/// timeout: the rest is verified and the deploy ends, the retired one named.
#[test]
fn an_instance_retired_during_a_deploy_does_not_hold_it() {
    let Some(engine) = Engine::get() else { return };
    let value = unique("retire");
    let (a, b) = (unique("retire-a"), unique("retire-b"));
    let _cleanup = Cleanup(&engine, vec![a.clone(), b.clone()]);
    for name in [&a, &b] {
        engine.run(
            &run_labelled(name, &value)
                .split(' ')
                .skip(1)
                .collect::<Vec<_>>(),
        );
    }
    let medic = Medic::start(&selector_config(&value));
    for name in [&a, &b] {
        let unit = format!("web/{name}");
        medic.wait_event(&format!("{unit} healthy"), |e| {
            e["service"] == unit && e["event"] == "healthy"
        });
    }

    let forget = format!(
        "{} forget --config {} web/{b}",
        bin("medic").display(),
        medic.config.display()
    );
    let out = deploy_within(&medic, "60s", &forget);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("  web/{b}: retired")),
        "{}",
        text(&out)
    );
}
