//! Issue #35 on the real engine, with medic's defaults: a deploy's
//! replacement under the same name and a person's `docker restart` are no
//! incidents (they count toward neither flapping nor a storm), and a flapping
//! service whose restarts work is never left down: it is restarted after a
//! growing delay, with one critical alert. Needs the test engine.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::docker::run_health_checked;
use crate::support::docker::{Cleanup, Engine, unique};
use crate::support::medic::{Medic, eventually, free_port, kinds};
use crate::support::server::health_ok;

/// One service on one container, every other key at its default.
pub(crate) fn watching(engine: &Engine, container: &str) -> Medic {
    let medic = Medic::start_with(
        &format!("docker_host = \"{}\"", engine.host()),
        &format!("[[service]]\nname = \"web\"\ncontainer = {{ name = \"{container}\" }}\n"),
    );
    medic.wait_event("healthy", |e| e["event"] == "healthy");
    medic
}

/// How many events of `kind` the recovery log has for `service`.
fn count(events: &[Value], service: &str, kind: &str) -> usize {
    kinds(events, service).iter().filter(|k| *k == kind).count()
}

/// The deploy: `docker rm -f web && docker run --name web …` three
/// times, then a `docker kill`, all within ten minutes. Each replacement is
/// one `replaced` event; the kill is a first incident, restarted at once.
#[test]
fn three_replacements_then_a_kill_is_restarted_at_once() {
    let Some(engine) = Engine::get() else { return };
    let (name, port) = (unique("replaced"), free_port());
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    let run = || engine.run_on_host(&name, &["-e", &format!("PORT={port}"), "medic-test/good:1"]);
    run();
    let medic = watching(&engine, &name);
    for round in 1..=3 {
        engine.run(&["rm", "-f", &name]);
        let id = run();
        let events = medic.wait_event("the replacement", |e| {
            e["event"] == "replaced" && e["evidence"]["replacement"] == id.as_str()
        });
        assert_eq!(count(&events, "web", "replaced"), round, "{events:?}");
        let replaced = events.iter().rfind(|e| e["event"] == "replaced").unwrap();
        let short = &id[..12];
        assert_eq!(
            replaced["message"],
            format!("replaced: new container {short}… under the same name"),
        );
    }
    engine.run(&["kill", &name]);
    let events = medic.wait_event("recovered after the kill", |e| e["event"] == "recovered");
    let web = kinds(&events, "web");
    assert_eq!(count(&events, "web", "failing"), 1, "one incident: {web:?}");
    let restarts: Vec<&Value> = events.iter().filter(|e| e["event"] == "restart").collect();
    assert_eq!(restarts.len(), 1, "{web:?}");
    assert_eq!(restarts[0]["message"], "restart attempt 1 of 3", "{web:?}");
    assert!(
        !web.iter().any(|k| k == "rollback" || k == "flapping"),
        "{web:?}"
    );
    eventually("HTTP after the restart", || health_ok(port).then_some(()));
    let critical: Vec<Value> = medic
        .alerts()
        .into_iter()
        .filter(|a| a["severity"] == "critical")
        .collect();
    assert!(critical.is_empty(), "{critical:?}");
}

/// Ten containers under one label selector, one replaced every 2 s for two
/// minutes: no incident, no alert, no storm.
#[test]
fn ten_containers_replaced_every_two_seconds_raise_nothing() {
    let Some(engine) = Engine::get() else { return };
    let label = format!("medic.e2e={}", unique("rolling"));
    let names: Vec<String> = (0..10).map(|i| unique(&format!("rolling-{i}"))).collect();
    let _cleanup = Cleanup(&engine, names.clone());
    let run = |name: &str| {
        engine.run(&[
            "run",
            "-d",
            "--name",
            name,
            "-l",
            &label,
            "medic-test/good:1",
        ]);
    };
    for name in &names {
        run(name);
    }
    let medic = Medic::start_with(
        &format!("docker_host = \"{}\"", engine.host()),
        &format!("[[service]]\nname = \"apps\"\ncontainer = {{ label = \"{label}\" }}\n"),
    );
    eventually("ten healthy instances", || {
        let events = medic.events();
        let healthy = events.iter().filter(|e| e["event"] == "healthy").count();
        (healthy >= names.len()).then_some(())
    });
    let start = Instant::now();
    for round in 0..60u32 {
        let name = &names[round as usize % names.len()];
        engine.run(&["rm", "-f", name]);
        run(name);
        // The deploy's rhythm: one replacement every 2 s.
        let next = start + Duration::from_secs(2) * (round + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let status = eventually("every instance healthy again", || {
        let out = medic.cli(&["status", "--json"]);
        let report: Value = serde_json::from_slice(&out.stdout).ok()?;
        (report["overall"] == "healthy").then_some(report)
    });
    assert_eq!(status["services"].as_array().map(Vec::len), Some(10));
    let events = medic.events();
    let trouble: Vec<&Value> = events
        .iter()
        .filter(|e| {
            !matches!(
                e["event"].as_str(),
                Some("watching" | "healthy" | "replaced")
            )
        })
        .collect();
    assert!(trouble.is_empty(), "{trouble:#?}");
    assert!(
        events.iter().any(|e| e["event"] == "replaced"),
        "the replacements are in the recovery log"
    );
    // No alert at all: no incident's, and no storm's.
    assert_eq!(medic.alerts(), Vec::<Value>::new());
}

/// Serves `/health` from a file its Docker health check also tests; every
/// start writes it again, so a restart cures what removing it broke.
fn run_sick(engine: &Engine, name: &str, port: u16) {
    let serve = format!(
        "echo ok > /tmp/health; trap 'exit 0' TERM; httpd -f -p 127.0.0.1:{port} -h /tmp & wait"
    );
    run_health_checked(engine, name, "test -e /tmp/health", &serve);
}

/// Docker's own verdict on the container.
fn docker_health(engine: &Engine, name: &str) -> Option<String> {
    let inspect = engine.inspect(name)?;
    inspect["State"]["Health"]["Status"]
        .as_str()
        .map(str::to_owned)
}

/// The harness: two `docker restart`s and two unhealthy episodes,
/// then five more, each begun 15 s after the previous one ended healthy.
/// The restarts are no incidents; the sixth incident within ten minutes
/// flaps, the rollback finds nothing different, and from then on each
/// incident restarts after 10 s, 20 s, 40 s, 80 s: every episode ends
/// healthy, with exactly one critical alert.
#[test]
fn a_flapping_service_whose_restarts_work_ends_every_episode_healthy() {
    let Some(engine) = Engine::get() else { return };
    let (name, port) = (unique("flapping"), free_port());
    let _cleanup = Cleanup(&engine, vec![name.clone()]);
    run_sick(&engine, &name, port);
    let healthy = || {
        eventually("Docker's health check healthy", || {
            (docker_health(&engine, &name).as_deref() == Some("healthy")).then_some(())
        });
    };
    healthy();
    let medic = watching(&engine, &name);
    for round in 1..=2 {
        engine.run(&["restart", &name]);
        medic.wait_event("the restart logged", |_| {
            count(&medic.events(), "web", "restarted") >= round
        });
        healthy();
    }
    // (episode, the flap delay its restart waits)
    let delays = [0, 0, 0, 0, 10, 20, 40, 80];
    for (episode, delay) in delays.iter().enumerate().skip(1) {
        if episode > 1 {
            std::thread::sleep(Duration::from_secs(15));
        }
        engine.run(&["exec", &name, "rm", "/tmp/health"]);
        let within = Duration::from_secs(60 + delay);
        let events = medic.wait_event_within(within, "the episode ended healthy", |_| {
            let events = medic.events();
            count(&events, "web", "recovered") >= episode
        });
        healthy();
        eventually("/health answers", || health_ok(port).then_some(()));
        let failing = events
            .iter()
            .filter(|e| e["event"] == "failing")
            .nth(episode - 1);
        let restart = events
            .iter()
            .filter(|e| e["event"] == "restart" && e["attempt"] == 1)
            .nth(episode - 1);
        let (Some(failing), Some(restart)) = (failing, restart) else {
            panic!("episode {episode}: {:?}", kinds(&events, "web"));
        };
        // An event's stamp is the wall clock when it is written, not when it
        // was decided: `failing` may be stamped up to a second late under load.
        let waited = ts(restart).duration_since(ts(failing)) + jiff::SignedDuration::from_secs(1);
        assert!(
            waited >= jiff::SignedDuration::from_secs(*delay as i64),
            "episode {episode} restarted after {waited}, before its flap delay of {delay}s"
        );
    }
    let events = medic.events();
    let web = kinds(&events, "web");
    assert_eq!(count(&events, "web", "restarted"), 2, "{web:?}");
    assert_eq!(count(&events, "web", "failing"), 7, "{web:?}");
    assert_eq!(count(&events, "web", "flapping"), 1, "{web:?}");
    assert!(!web.iter().any(|k| k == "escalated"), "{web:?}");
    let alerts = medic.alerts();
    let critical: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["severity"] == "critical")
        .collect();
    assert_eq!(critical.len(), 1, "{alerts:#?}");
    assert_eq!(critical[0]["kind"], "flapping");
    let message = critical[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("flapping: 4 incidents in 10 min; already on the last known good spec")
            && message.ends_with("still restarting, next in 10s"),
        "{message}"
    );
    let out = medic.cli(&["status", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    let web = &report["services"][0];
    assert_eq!(web["flapping"]["next_delay_secs"], 160, "{web}");
}

fn ts(event: &Value) -> jiff::Timestamp {
    event["ts"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .expect("an RFC 3339 ts")
}
