//! The tcp probe: a connect within the timeout.

use std::time::Duration;

use medic_core::Observation;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Connects to `address`; ok when the connection is accepted in time.
pub async fn check(address: &str, timeout: Duration) -> Observation {
    let started = Instant::now();
    let result = tokio::time::timeout(timeout, TcpStream::connect(address)).await;
    let latency = started.elapsed();
    let observation = match result {
        Ok(Ok(_)) => Observation::ok(latency, format!("connected to {address}")),
        Ok(Err(error)) => {
            Observation::fail(latency, format!("cannot connect to {address}: {error}"))
        }
        Err(_) => Observation::fail(
            latency,
            format!("connect to {address} timed out after {timeout:?}"),
        ),
    };
    observation.with("address", address).with(
        "latency_ms",
        u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
    )
}
