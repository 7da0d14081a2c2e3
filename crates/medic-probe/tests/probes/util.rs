//! Shared test helpers: loopback servers, probe specs, assertions, polling.

use std::time::Duration;

use axum::Router;
use medic_core::config::{HttpProbe, Probe, ProbeKind};
use medic_core::{Observation, Outcome};
use medic_probe::{ClientPool, ProbeRunner};

/// Serves `app` on 127.0.0.1 on a free port; returns the port.
pub async fn serve(app: Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    port
}

/// A loopback port nobody listens on (bound, then released).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An http probe spec with the config defaults.
pub fn http(url: String) -> HttpProbe {
    HttpProbe {
        url,
        method: "GET".into(),
        headers: Vec::new(),
        expect_status: (200..300).collect::<Vec<u16>>().into(),
        body_contains: None,
        body_regex: None,
        json_pointer: None,
        max_latency: None,
        tls_verify: true,
        ca_file: None,
        follow_redirects: false,
        max_body: 1 << 20,
    }
}

pub fn probe(kind: ProbeKind, timeout: Duration) -> Probe {
    Probe {
        interval: Duration::from_secs(10),
        timeout,
        kind,
    }
}

/// Builds the probe and runs it once.
pub async fn run(kind: ProbeKind, timeout: Duration) -> Observation {
    ProbeRunner::new(&probe(kind, timeout), &ClientPool::default())
        .unwrap()
        .check()
        .await
}

/// Runs an http probe once.
pub async fn run_http(spec: HttpProbe, timeout: Duration) -> Observation {
    run(ProbeKind::Http(std::sync::Arc::new(spec)), timeout).await
}

#[track_caller]
pub fn expect(observation: &Observation, outcome: Outcome, message: &str) {
    assert_eq!(observation.outcome, outcome, "{observation:#?}");
    assert!(
        observation.message.contains(message),
        "{:?} does not contain {message:?}",
        observation.message
    );
}

/// Polls `condition` every 10 ms until it holds; panics with `what` after `limit`.
pub async fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
