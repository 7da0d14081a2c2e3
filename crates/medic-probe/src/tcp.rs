//! The tcp probe: a connect (name lookup included) within the timeout.

use std::time::Duration;

use medic_core::Observation;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::{millis, reason};

/// Connects to `address` (host:port); ok when the connection is accepted in time.
pub async fn check(address: &str, timeout: Duration) -> Observation {
    let started = Instant::now();
    let result = tokio::time::timeout(timeout, TcpStream::connect(address)).await;
    let latency = started.elapsed();
    let observation = match result {
        Ok(Ok(stream)) => {
            let peer = stream.peer_addr().map(|a| a.to_string()).ok();
            let observation = Observation::ok(latency, format!("connected to {address}"));
            match peer {
                Some(peer) if peer != address => observation.with("peer", peer),
                _ => observation,
            }
        }
        Ok(Err(error)) => Observation::fail(
            latency,
            format!("cannot connect to {address}: {}", reason::io(&error)),
        ),
        Err(_) => Observation::fail(
            latency,
            format!("connect to {address} timed out after {timeout:?}"),
        )
        .with("timed_out", true),
    };
    observation
        .with("address", address)
        .with("latency_ms", millis(latency))
}
