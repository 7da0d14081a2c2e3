//! Deadlines on engine calls, in virtual time, against a peer on a unix
//! socket that answers `/version` and then holds what a hung engine holds:
//! a `wait`'s body (its headers come at once), or every byte of an answer.
//! The same calls against a real engine and behind the fault proxy are in
//! `engine.rs` and the end-to-end suite (`tests/src/hung_engine.rs`).

use std::time::Duration;

use futures_util::StreamExt;
use medic_docker::DockerClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::time::Instant;

/// What the peer does after `/version`.
#[derive(Clone, Copy)]
enum Peer {
    /// Sends a streaming answer's headers, then nothing more.
    HoldBody,
    /// Sends nothing at all.
    Silent,
}

/// A peer on a socket in `dir`; the client that talks to it.
fn hung_engine(dir: &tempfile::TempDir, peer: Peer) -> DockerClient {
    let socket = dir.path().join("docker.sock");
    let listener = UnixListener::bind(&socket).expect("bind");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream, peer));
        }
    });
    DockerClient::connect_to(socket.to_str().expect("a UTF-8 path")).expect("a unix address")
}

/// Answers each request on one connection until it is held.
async fn answer(mut stream: UnixStream, peer: Peer) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let Ok(n) = stream.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        request.extend_from_slice(&buf[..n]);
        let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&request[..end]).into_owned();
        request.drain(..end + 4);
        if head.contains(" /version ") {
            let body = r#"{"ApiVersion":"1.41","Version":"20.10.24"}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if stream.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        if let Peer::HoldBody = peer {
            let headers = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
            stream.write_all(headers.as_bytes()).await.ok();
        }
        // Held: the connection stays open and says nothing more.
        std::future::pending::<()>().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_held_wait_ends_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let client = hung_engine(&dir, Peer::HoldBody);
    let began = Instant::now();
    let within = Duration::from_secs(40);
    let error = client
        .wait_stopped("web", medic_docker::ContainerState::Removing, within)
        .await
        .unwrap_err();
    assert!(error.is_timed_out(), "{error}");
    assert_eq!(began.elapsed(), within);
    assert_eq!(
        error.to_string(),
        "engine call `wait` timed out after 40s without a complete answer"
    );
}

#[tokio::test(start_paused = true)]
async fn an_action_call_that_never_answers_ends_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let client = hung_engine(&dir, Peer::Silent);
    let began = Instant::now();
    let stop_timeout = Duration::from_secs(10);
    let within = Duration::from_secs(30);
    let error = client
        .restart("web", stop_timeout, within)
        .await
        .unwrap_err();
    assert!(error.is_timed_out(), "{error}");
    assert_eq!(
        began.elapsed(),
        stop_timeout + within,
        "the stop timeout on top"
    );
    let error = client.start("web", within).await.unwrap_err();
    assert!(error.is_timed_out(), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_read_whose_body_never_comes_ends_at_the_read_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let client = hung_engine(&dir, Peer::HoldBody);
    let error = client.inspect("web").await.unwrap_err();
    assert!(error.is_timed_out(), "{error}");
    let error = client.tail_logs("web", 10).await.unwrap_err();
    assert!(error.is_timed_out(), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_quiet_event_stream_is_kept_and_a_silent_connect_fails() {
    // Connected, no events for an hour: an idle host, not a dead stream.
    let dir = tempfile::tempdir().unwrap();
    let client = hung_engine(&dir, Peer::HoldBody);
    let mut events = std::pin::pin!(client.events());
    let quiet = tokio::time::timeout(Duration::from_secs(3600), events.next()).await;
    assert!(quiet.is_err(), "a quiet stream stays open: {quiet:?}");

    // An engine that never starts answering: the stream fails and the caller reconnects.
    let dir = tempfile::tempdir().unwrap();
    let client = hung_engine(&dir, Peer::Silent);
    let mut events = std::pin::pin!(client.events());
    let first = tokio::time::timeout(Duration::from_secs(3600), events.next()).await;
    let error = first
        .expect("the connect has a deadline")
        .expect("an item")
        .unwrap_err();
    assert!(error.is_unreachable(), "{error}");
}
