//! `scripts/bench`: medic's recovery speed against a baseline measured in the
//! same run on the same engine.
//!
//! 1. kill → running and answering HTTP: a bare `docker start` right after the
//!    kill (the baseline) versus medic bringing the container back on its own.
//! 2. Detection latency: from Docker's `die` event to medic's decision (the
//!    `failing` event in the recovery log).
//!
//! The rounds follow each other within seconds; medic's attempt window is set
//! to 100 ms so that every round is a first restart (attempt 1 runs at once),
//! not a flapping service getting backoff, which is what production would do.
//!
//! Needs DOCKER_HOST pointing at an engine with medic-test/good:1 (scripts/bench provides it).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 20;
const PORT: u16 = 18765;
const NAME: &str = "medic-bench-web";

fn main() {
    let medic = sibling("medic");
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
        "[medic]\nstate_dir = \"{0}/state\"\ncontrol_socket = \"{0}/control.sock\"\nmetrics_listen = \"\"\n\n[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\nattempt_window = \"100ms\"\n\n[[service]]\nname = \"web\"\ncontainer = {{ name = \"{NAME}\" }}\n",
        dir.path().display()
    )).expect("write config");
    let mut daemon = Daemon(
        Command::new(&medic)
            .args(["run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start medic"),
    );
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
    println!("medic recovery benchmark ({ROUNDS} rounds, {})", host());
    println!("{:<44} {:>10} {:>10}", "measure", "p50", "p99");
    row("kill → HTTP answering, bare `docker start`", &bare);
    row("kill → HTTP answering, medic", &with_medic);
    row("detection: Docker die event → medic decision", &detection);
    println!(
        "ratio medic / bare docker start (p50): {:.2}×",
        medic_p50.as_secs_f64() / bare_p50.as_secs_f64()
    );
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn row(name: &str, samples: &[Duration]) {
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    println!(
        "{name:<44} {:>10} {:>10}",
        ms(percentile(samples, 50)),
        ms(percentile(samples, 99))
    );
}

fn percentile(samples: &[Duration], p: usize) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let index = (sorted.len().saturating_sub(1) * p).div_ceil(100);
    sorted.get(index).copied().unwrap_or_default()
}

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn wait_for(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(1));
    }
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

fn events(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn jiff_ts(text: &str) -> Option<i128> {
    text.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_nanosecond())
}

fn sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.with_file_name(name)
}

fn host() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    format!(
        "{cpus} CPUs, {}",
        docker(&["version", "-f", "Docker {{.Server.Version}}"]).unwrap_or_default()
    )
}
