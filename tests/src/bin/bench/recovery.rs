//! Recovery speed: kill → running and answering HTTP, a bare `docker start`
//! right after the kill (the baseline) versus medic bringing the container back
//! on its own; and detection latency, from Docker's `die` event to medic's
//! decision (the `failing` event in the recovery log).
//!
//! The rounds follow each other within seconds; medic's attempt window is set
//! to 100 ms so that every round is a first restart (attempt 1 runs at once),
//! not a flapping service getting backoff, which is what production would do.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util::{docker, events, medic_table, ms, percentile, run_medic, wait_for};

const ROUNDS: usize = 20;
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

    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("medic.toml");
    std::fs::write(&config, format!(
        "{}[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\nattempt_window = \"100ms\"\n\n[[service]]\nname = \"web\"\ncontainer = {{ name = \"{NAME}\" }}\n",
        medic_table(dir.path())
    )).expect("write config");
    let mut daemon = run_medic(&config);
    let log = dir.path().join("state/recovery.jsonl");
    wait_for(|| events(&log).iter().any(|e| e["event"] == "healthy"));

    let mut with_medic = Vec::new();
    let now = jiff::Timestamp::now();
    let since = format!("{}.{:09}", now.as_second(), now.subsec_nanosecond());
    for round in 1..=ROUNDS {
        docker(&["kill", NAME]).expect("kill");
        let start = Instant::now();
        wait_exited_or_restarted();
        wait_http();
        with_medic.push(start.elapsed());
        wait_for(|| {
            events(&log)
                .iter()
                .filter(|e| e["event"] == "recovered")
                .count()
                >= round
        });
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
    let decided = events(&log)
        .into_iter()
        .filter(|e| e["event"] == "failing")
        .filter_map(|e| jiff_ts(e["ts"].as_str()?));
    if std::env::var_os("MEDIC_BENCH_DEBUG").is_some() {
        eprintln!("die events:\n{died}");
        for e in events(&log) {
            eprintln!("{} {} {}", e["ts"], e["event"], e["message"]);
        }
    }
    let detection: Vec<Duration> = died
        .lines()
        .filter_map(|l| l.trim().parse::<i128>().ok())
        .zip(decided)
        .map(|(died, decided)| {
            Duration::from_nanos(u64::try_from((decided - died).max(0)).unwrap_or(0))
        })
        .collect();
    daemon.0.kill().ok();
    docker(&["rm", "-f", NAME]).ok();

    let (bare_p50, medic_p50) = (percentile(&bare, 50), percentile(&with_medic, 50));
    println!("## Recovery ({ROUNDS} rounds)");
    println!("{:<44} {:>10} {:>10}", "measure", "p50", "p99");
    row("kill → HTTP answering, bare `docker start`", &bare);
    row("kill → HTTP answering, medic", &with_medic);
    row("detection: Docker die event → medic decision", &detection);
    println!(
        "ratio medic / bare docker start (p50): {:.2}×\n",
        medic_p50.as_secs_f64() / bare_p50.as_secs_f64()
    );
}

fn row(name: &str, samples: &[Duration]) {
    println!(
        "{name:<44} {:>10} {:>10}",
        ms(percentile(samples, 50)),
        ms(percentile(samples, 99))
    );
}

fn wait_http() {
    wait_for(|| {
        use std::io::{Read, Write};
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", PORT)) else {
            return false;
        };
        let mut answer = String::new();
        stream.write_all(b"GET /health HTTP/1.0\r\n\r\n").is_ok()
            && stream.read_to_string(&mut answer).is_ok()
            && answer.trim_end().ends_with("ok")
    });
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
