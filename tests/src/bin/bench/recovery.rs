//! Recovery speed: kill → running and answering HTTP, a bare `docker start`
//! right after the kill (the baseline) versus medic bringing the container back
//! on its own; and detection latency, from Docker's `die` event to medic's
//! decision (the `failing` event in the recovery log), beside the engine's
//! floor: an inspect sent the moment the `die` event arrives, which dockerd
//! answers once the container is torn down (medic's decision waits for it).
//!
//! medic runs with its default settings. The rounds follow each other within
//! seconds, and by default the fourth incident within 10 minutes is flapping
//! (it goes straight to rollback), so each medic, with a fresh state
//! directory, takes `flap_limit` (3) rounds: its first, second and third
//! incident, each printed, each expected as fast as the first.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::util::{docker, events, medic_table, ms, percentile, run_medic, wait_for};

const ROUNDS: usize = 21;
/// Incidents one medic gets before the next one counts as flapping (the default `flap_limit`).
const PER_MEDIC: usize = 3;
const PORT: u16 = 18765;
const NAME: &str = "medic-bench-web";

pub fn run() {
    docker(&["rm", "-f", NAME]).ok();
    docker(&[
        "run",
        "-d",
        "--name",
        NAME,
        "--network",
        "host",
        "-e",
        &format!("PORT={PORT}"),
        "medic-test/good:1",
    ])
    .expect("start the container");
    wait_http();

    let (subscribed, ready) = std::sync::mpsc::channel();
    let floor = std::thread::spawn(move || inspect_after_die(&subscribed));
    ready.recv().expect("subscribed to events");
    let bare: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            docker(&["kill", NAME]).expect("kill");
            wait_exited();
            let start = Instant::now();
            docker(&["start", NAME]).expect("start");
            wait_http();
            start.elapsed()
        })
        .collect();
    let floor = floor.join().expect("the engine floor");

    let now = jiff::Timestamp::now();
    let since = format!("{}.{:09}", now.as_second(), now.subsec_nanosecond());
    let mut with_medic = Vec::new();
    let mut decided = Vec::new();
    let mut by_incident = vec![Vec::new(); PER_MEDIC];
    for group in 0..ROUNDS / PER_MEDIC {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("medic.toml");
        std::fs::write(
            &config,
            format!(
                "{}[[service]]\nname = \"web\"\ncontainer = {{ name = \"{NAME}\" }}\n",
                medic_table(dir.path())
            ),
        )
        .expect("write config");
        let mut daemon = run_medic(&config);
        let log = dir.path().join("state/recovery.jsonl");
        wait_for(|| events(&log).iter().any(|e| e["event"] == "healthy"));
        for incident in 1..=PER_MEDIC {
            docker(&["kill", NAME]).expect("kill");
            let start = Instant::now();
            wait_exited_or_restarted();
            wait_http();
            let took = start.elapsed();
            println!(
                "round {:>2}: medic {}, incident {incident}: kill → HTTP {}",
                group * PER_MEDIC + incident,
                group + 1,
                ms(took)
            );
            with_medic.push(took);
            by_incident[incident - 1].push(took);
            wait_for(|| {
                events(&log)
                    .iter()
                    .filter(|e| e["event"] == "recovered")
                    .count()
                    >= incident
            });
        }
        if std::env::var_os("MEDIC_BENCH_DEBUG").is_some() {
            for e in events(&log) {
                eprintln!("{} {} {}", e["ts"], e["event"], e["message"]);
            }
        }
        decided.extend(
            events(&log)
                .into_iter()
                .filter(|e| e["event"] == "failing")
                .filter_map(|e| jiff_ts(e["ts"].as_str()?)),
        );
        daemon.0.kill().ok();
        daemon.0.wait().ok();
    }
    let until = jiff::Timestamp::now().as_second() + 1;
    let died = docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until.to_string(),
        "--filter",
        &format!("container={NAME}"),
        "--filter",
        "event=die",
        "--format",
        "{{.TimeNano}}",
    ])
    .expect("docker events");
    if std::env::var_os("MEDIC_BENCH_DEBUG").is_some() {
        eprintln!("die events:\n{died}");
    }
    let detection: Vec<Duration> = died
        .lines()
        .filter_map(|l| l.trim().parse::<i128>().ok())
        .zip(decided)
        .map(|(died, decided)| {
            Duration::from_nanos(u64::try_from((decided - died).max(0)).unwrap_or(0))
        })
        .collect();
    docker(&["rm", "-f", NAME]).ok();

    let (bare_p50, medic_p50) = (percentile(&bare, 50), percentile(&with_medic, 50));
    println!("## Recovery ({ROUNDS} rounds)");
    println!("{:<44} {:>10} {:>10}", "measure", "p50", "p99");
    row("kill → HTTP answering, bare `docker start`", &bare);
    row("kill → HTTP answering, medic", &with_medic);
    row("detection: Docker die event → medic decision", &detection);
    row("engine floor: die → inspect answered", &floor);
    for (k, samples) in by_incident.iter().enumerate() {
        row(
            &format!("kill → HTTP, medic, incident {} of {PER_MEDIC}", k + 1),
            samples,
        );
    }
    println!(
        "ratio medic / bare docker start (p50): {:.2}×\n",
        medic_p50.as_secs_f64() / bare_p50.as_secs_f64()
    );
}

/// For each of `ROUNDS` `die` events: the time from the die to the answer of
/// an inspect sent as soon as the event arrived, over the raw engine API.
fn inspect_after_die(subscribed: &std::sync::mpsc::Sender<()>) -> Vec<Duration> {
    let host = std::env::var("DOCKER_HOST").expect("DOCKER_HOST");
    let socket = host.strip_prefix("unix://").expect("a unix:// DOCKER_HOST");
    let filters = format!(r#"{{"container":["{NAME}"],"event":["die"]}}"#);
    let mut events = UnixStream::connect(socket).expect("engine socket");
    write!(
        events,
        "GET /events?filters={} HTTP/1.0\r\n\r\n",
        filters
            .replace('"', "%22")
            .replace('{', "%7B")
            .replace('}', "%7D")
    )
    .expect("subscribe");
    let mut lines = BufReader::new(events).lines().map_while(Result::ok);
    lines
        .by_ref()
        .find(String::is_empty)
        .expect("response headers");
    subscribed.send(()).expect("bench waiting");
    let mut floor = Vec::new();
    for line in lines {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let died = event["timeNano"].as_i64().expect("timeNano");
        let mut inspect = UnixStream::connect(socket).expect("engine socket");
        write!(inspect, "GET /containers/{NAME}/json HTTP/1.0\r\n\r\n").expect("inspect");
        inspect
            .read_to_end(&mut Vec::new())
            .expect("inspect answer");
        let answered = jiff::Timestamp::now().as_nanosecond();
        floor.push(Duration::from_nanos(
            u64::try_from(answered - i128::from(died)).unwrap_or(0),
        ));
        if floor.len() == ROUNDS {
            break;
        }
    }
    floor
}

fn row(name: &str, samples: &[Duration]) {
    println!(
        "{name:<44} {:>10} {:>10}",
        ms(percentile(samples, 50)),
        ms(percentile(samples, 99))
    );
}

fn wait_http() {
    crate::util::wait_http(PORT);
}

fn wait_exited() {
    wait_for(|| docker(&["inspect", "-f", "{{.State.Running}}", NAME]).is_ok_and(|r| r == "false"));
}

/// After a kill medic may restart the container before we look: either is fine.
fn wait_exited_or_restarted() {
    wait_for(|| {
        TcpStream::connect(("127.0.0.1", PORT)).is_err()
            || docker(&["inspect", "-f", "{{.State.Running}}", NAME]).is_ok()
    });
}

fn jiff_ts(text: &str) -> Option<i128> {
    text.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_nanosecond())
}
