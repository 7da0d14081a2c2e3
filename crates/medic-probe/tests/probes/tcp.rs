//! tcp probes against a real listener on 127.0.0.1.

use std::time::Duration;

use medic_core::Outcome;
use medic_core::config::{ProbeKind, TcpProbe};

use crate::util::{closed_port, expect, run};

fn tcp(address: String) -> ProbeKind {
    ProbeKind::Tcp(TcpProbe { address })
}

#[tokio::test]
async fn an_open_port_is_ok() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let observation = run(tcp(address.clone()), Duration::from_secs(1)).await;
    expect(
        &observation,
        Outcome::Ok,
        &format!("connected to {address}"),
    );
    assert_eq!(observation.evidence["address"], address);
    assert!(observation.evidence["latency_ms"].is_u64());
}

#[tokio::test]
async fn a_closed_port_fails() {
    let address = format!("127.0.0.1:{}", closed_port());
    let observation = run(tcp(address.clone()), Duration::from_secs(1)).await;
    expect(
        &observation,
        Outcome::Fail,
        &format!("cannot connect to {address}: connection refused"),
    );
    assert_eq!(observation.evidence["address"], address);
}
