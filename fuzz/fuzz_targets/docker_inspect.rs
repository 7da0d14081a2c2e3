//! Any JSON as a container inspect (what bollard decodes `GET
//! /containers/{id}/json` into) through medic's readers of it: the facts and
//! their verdict, evidence and who restarts the container, the override
//! labels, the create spec captured as last known good, and that spec as the
//! state store keeps it, read back and turned into a create body for a
//! rollback: no engine answer, and no saved spec, can panic medic.
#![no_main]

use bollard::models::ContainerInspectResponse;
use libfuzzer_sys::fuzz_target;
use medic_docker::{ContainerFacts, ContainerSpec, HealthOnFailure, StopCommand, spec_differs};

fuzz_target!(|data: &[u8]| {
    if let Ok(inspect) = serde_json::from_slice::<ContainerInspectResponse>(data) {
        read(&inspect);
    }
    // The state store's form of a last known good spec.
    if let Ok(spec) = serde_json::from_slice::<ContainerSpec>(data) {
        let _ = spec.create_body();
        let _ = (spec.image_id(), spec.network_parent());
        let _ = spec_differs(&spec, &spec);
    }
});

fn read(inspect: &ContainerInspectResponse) {
    let mut facts = ContainerFacts::from_inspect(inspect);
    for on_failure in [
        None,
        Some(HealthOnFailure::Restart),
        Some(HealthOnFailure::Kill),
        Some(HealthOnFailure::Stop),
    ] {
        facts.health_on_failure = on_failure;
        for command in [
            None,
            Some(StopCommand::Graceful),
            Some(StopCommand::Kill),
            Some(StopCommand::Restart),
        ] {
            let _ = facts.restart_expected_from(command);
        }
    }
    let _ = facts.verdict();
    let _ = serde_json::Value::Object(facts.evidence()).to_string();
    let _ = facts.overrides();
    let _ = (
        facts.is_running(),
        facts.is_removing(),
        facts.is_stopping(),
        facts.has_stopped(),
    );
    // Captured as last known good, kept in the state store, read back, recreated.
    let image_config = inspect
        .config
        .clone()
        .map(|config| bollard::models::ImageConfig {
            env: config.env,
            labels: config.labels,
            cmd: config.cmd,
            entrypoint: config.entrypoint,
            ..Default::default()
        });
    let spec = ContainerSpec::from_inspect(inspect.clone(), image_config, Some("parent"));
    let stored = serde_json::to_value(&spec).expect("a spec serializes");
    let again: ContainerSpec = serde_json::from_value(stored).expect("a stored spec reads back");
    let _ = again.create_body();
    let _ = spec_differs(&spec, &again);
}
