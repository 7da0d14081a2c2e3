//! Any JSON as a Docker or Podman event (what bollard decodes each line of
//! `GET /events` into) through medic's reading of it, `ContainerEvent`, and
//! everything asked of one: no event stream can panic medic.
#![no_main]

use bollard::models::EventMessage;
use libfuzzer_sys::fuzz_target;
use medic_docker::ContainerEvent;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = serde_json::from_slice::<EventMessage>(data) else {
        return;
    };
    let event = ContainerEvent::from_message(message);
    let _ = (event.kind(), event.health(), event.is_graceful_kill());
    let _ = medic_docker::overrides(&event.labels);
});
