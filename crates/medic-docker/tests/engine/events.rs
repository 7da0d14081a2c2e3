//! The event stream (start, die, destroy) and Docker health checks in facts and events.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use medic_docker::{ContainerEvent, Health};
use tokio::time::Instant;

use crate::{DEADLINE, Engine, eventually, unique};

#[tokio::test]
async fn events_report_start_die_and_destroy() {
    let Some(engine) = Engine::get() else { return };
    let (marker, name) = (unique("ev-marker"), unique("ev"));
    let _cleanup = engine.cleanup(&[&marker, &name]);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<ContainerEvent>();
    let events = engine.client.events();
    let reader = tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            if tx.send(event.unwrap()).is_err() {
                return;
            }
        }
    });
    // The stream is live once it reports something: create markers until it does.
    let deadline = Instant::now() + DEADLINE;
    let mut markers = 0; // all removed by the cleanup of `marker`, a name prefix
    'live: loop {
        engine.docker(&[
            "create",
            "--network",
            "none",
            "--name",
            &format!("{marker}-{markers}"),
            "medic-test/good:1",
        ]);
        markers += 1;
        let wait = tokio::time::sleep(Duration::from_millis(200));
        tokio::pin!(wait);
        loop {
            tokio::select! {
                Some(event) = rx.recv() => {
                    if event.name.starts_with(&marker) {
                        break 'live;
                    }
                }
                () = &mut wait => break,
            }
        }
        assert!(
            Instant::now() < deadline,
            "the event stream never delivered"
        );
    }

    let id = engine.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &name,
        "-l",
        "team=web",
        "medic-test/good:1",
        "sleep",
        "600",
    ]);
    engine.docker(&["kill", &name]);
    engine.docker(&["rm", &name]);
    let mut seen: HashMap<String, ContainerEvent> = HashMap::new();
    while !["create", "start", "kill", "die", "destroy"]
        .iter()
        .all(|a| seen.contains_key(*a))
    {
        let event = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("events so far: {:?}", seen.keys()))
            .unwrap();
        if event.id == id {
            seen.insert(event.action.clone(), event);
        }
    }
    let die = &seen["die"];
    assert_eq!(die.name, name);
    assert_eq!(die.exit_code, Some(137), "killed: 128 + SIGKILL");
    assert_eq!(die.labels.get("team").map(String::as_str), Some("web"));
    assert_eq!(die.image.as_deref(), Some("medic-test/good:1"));
    assert!(die.time_nanos > 0 && seen["destroy"].time_nanos >= die.time_nanos);
    reader.abort();
}

#[tokio::test]
async fn docker_health_checks_show_in_facts_and_events() {
    let Some(engine) = Engine::get() else { return };
    let name = unique("health");
    let _cleanup = engine.cleanup(&[&name]);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<ContainerEvent>();
    let events = engine.client.events();
    let reader = tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        while let Some(Ok(event)) = events.next().await {
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    // Healthy while /tmp/ok exists.
    let id = engine.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &name,
        "--health-cmd",
        "test -f /tmp/ok && echo fine || { echo missing; exit 1; }",
        "--health-interval",
        "1s",
        "--health-retries",
        "1",
        "medic-test/good:1",
        "sh",
        "-c",
        "touch /tmp/ok; exec sleep 600",
    ]);
    let facts = eventually("healthy", || async {
        engine
            .client
            .inspect(&name)
            .await
            .unwrap()
            .filter(|f| f.health == Some(Health::Healthy))
    })
    .await;
    assert!(facts.verdict().ok);
    engine.docker(&["exec", &name, "rm", "/tmp/ok"]);
    let facts = eventually("unhealthy", || async {
        engine
            .client
            .inspect(&name)
            .await
            .unwrap()
            .filter(|f| f.health == Some(Health::Unhealthy))
    })
    .await;
    let verdict = facts.verdict();
    assert!(!verdict.ok);
    assert!(
        verdict.message.contains("unhealthy: missing"),
        "{}",
        verdict.message
    );
    assert_eq!(
        facts.evidence()["health_log"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["output"],
        "missing"
    );

    let deadline = Instant::now() + DEADLINE;
    loop {
        let event = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("a health_status event")
            .unwrap();
        if event.id == id && event.health() == Some("unhealthy") {
            assert_eq!(event.kind(), "health_status");
            break;
        }
    }
    reader.abort();
}
