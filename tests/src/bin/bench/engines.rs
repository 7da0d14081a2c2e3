//! The same recoveries on Docker and on Podman (`podman system service`,
//! Docker-compatible API): kill → HTTP answering again, `rm -f` → recreated
//! and answering (this includes the default `replace_grace` of 30 s, in case
//! a deploy puts a replacement in place), and a bad image (the container
//! removed and created again from it) → rolled back: `replace_grace` again,
//! three failed restarts with backoff, then the last known good. Podman's figures
//! are printed as ratios against Docker's from the same run.
//!
//! medic runs with its defaults; a fresh medic (new state) for each measure,
//! so that each is a first incident, not a flapping service.
//!
//! Each engine is killed with its own CLI, as its users do: Podman 4.3's
//! compatible API makes `docker kill` wait until it sees the container
//! exited (it looks every 250 ms), and when medic has started it again
//! before that look, the call only returns after 20 s, though the container
//! was back in a fraction of a second.

use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::{config_file, docker_on, events, ms, percentile, run_medic, wait_for};

const ROUNDS: usize = 2;
/// A bad image waits `replace_grace`, then three restarts and a rollback: longer than `wait_for`'s minute.
const SLOW: Duration = Duration::from_secs(180);
const PORT: u16 = 18766;
const NAME: &str = "medic-bench-engine";

/// One engine's figures: kill, rm, bad image.
struct Figures {
    kill: Vec<Duration>,
    removed: Vec<Duration>,
    rolled_back: Vec<Duration>,
}

pub fn run() {
    let docker = std::env::var("DOCKER_HOST").expect("DOCKER_HOST");
    let Ok(podman) = std::env::var("MEDIC_TEST_PODMAN_HOST") else {
        println!("## Engines: skipped (MEDIC_TEST_PODMAN_HOST unset: run scripts/bench)\n");
        return;
    };
    let on_docker = measure(&docker, Kill::Docker);
    let on_podman = measure(&podman, Kill::Podman);
    println!("## Engines: Docker vs Podman ({ROUNDS} rounds each, medic's defaults)");
    println!(
        "{:<38} {:>10} {:>10} {:>8}",
        "measure (p50)", "Docker", "Podman", "ratio"
    );
    let row = |name: &str, docker: &[Duration], podman: &[Duration]| {
        let (d, p) = (percentile(docker, 50), percentile(podman, 50));
        println!(
            "{name:<38} {:>10} {:>10} {:>7.2}×",
            ms(d),
            ms(p),
            p.as_secs_f64() / d.as_secs_f64().max(1e-9)
        );
    };
    row("kill → HTTP answering", &on_docker.kill, &on_podman.kill);
    row(
        "rm -f → recreated, HTTP answering",
        &on_docker.removed,
        &on_podman.removed,
    );
    row(
        "bad image → rolled back",
        &on_docker.rolled_back,
        &on_podman.rolled_back,
    );
    println!();
}

/// Which CLI kills the container.
#[derive(Clone, Copy)]
enum Kill {
    /// `docker kill`.
    Docker,
    /// `podman --remote kill`.
    Podman,
}

impl Kill {
    fn run(self, host: &str) {
        match self {
            Self::Docker => docker_on(Some(host), &["kill", NAME]).map(drop),
            Self::Podman => std::process::Command::new("podman")
                .args(["--remote", "--url", host, "kill", NAME])
                .output()
                .map_err(|e| e.to_string())
                .and_then(|out| match out.status.success() {
                    true => Ok(()),
                    false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
                }),
        }
        .expect("kill");
    }
}

/// The three recoveries, `ROUNDS` times, on the engine at `host`, each under
/// a medic of its own (a fresh state: every measure is a first incident).
fn measure(host: &str, kill: Kill) -> Figures {
    let engine = |args: &[&str]| docker_on(Some(host), args);
    engine(&["rm", "-f", NAME]).ok();
    run_image(host, "medic-test/good:1");
    wait_http();
    let mut figures = Figures {
        kill: Vec::new(),
        removed: Vec::new(),
        rolled_back: Vec::new(),
    };
    for _ in 0..ROUNDS {
        let medic = Watching::start(host);
        let start = Instant::now();
        kill.run(host);
        wait_for(|| {
            TcpStream::connect(("127.0.0.1", PORT)).is_err() || medic.count("recovered") > 0
        });
        wait_http();
        figures.kill.push(start.elapsed());
        wait_for(|| medic.count("recovered") > 0);
        drop(medic);

        let medic = Watching::start(host);
        let start = Instant::now();
        engine(&["rm", "-f", NAME]).expect("rm");
        medic.wait_long("recovered after rm -f", "recovered");
        wait_http();
        figures.removed.push(start.elapsed());
        drop(medic);

        // A deploy of a bad image: removed and created again from it at once.
        let medic = Watching::start(host);
        let start = Instant::now();
        engine(&["rm", "-f", NAME]).expect("rm");
        run_image(host, "medic-test/bad:1");
        medic.wait_long("rolled back", "rolled_back");
        wait_http();
        figures.rolled_back.push(start.elapsed());
    }
    let copies = engine(&["ps", "-aq", "--filter", &format!("name={NAME}")]).unwrap_or_default();
    for id in copies.split_whitespace() {
        engine(&["rm", "-f", id]).ok();
    }
    figures
}

/// medic with its default config watching the bench container (and its HTTP
/// health: a container probe alone can catch a crash-looping bad image
/// running for an instant and take it for recovered), healthy with a recorded
/// last known good spec; stopped when dropped.
struct Watching {
    _daemon: crate::util::Guard,
    dir: tempfile::TempDir,
}

impl Watching {
    fn start(host: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = config_file(
            dir.path(),
            &format!(
                "docker_host = \"{host}\"\n\n[[service]]\nname = \"web\"\ncontainer = {{ name = \"{NAME}\" }}\n  [[service.probe]]\n  kind = \"http\"\n  url = \"http://127.0.0.1:{PORT}/health\"\n"
            ),
        );
        let watching = Self {
            _daemon: run_medic(&config),
            dir,
        };
        wait_for(|| watching.count("healthy") >= 1 && has_last_known_good(watching.dir.path()));
        watching
    }

    /// Waits up to [`SLOW`] for an `event` line; panics with the recovery log.
    fn wait_long(&self, what: &str, event: &str) {
        let deadline = Instant::now() + SLOW;
        while self.count(event) == 0 {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.path().join("state/recovery.jsonl"));
                panic!("timed out waiting for {what}: {}", log.unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// How many `event` lines the recovery log holds.
    fn count(&self, event: &str) -> usize {
        let log = self.dir.path().join("state/recovery.jsonl");
        events(&log).iter().filter(|e| e["event"] == event).count()
    }
}

/// `docker run` of the bench container from `image` (the ulimits Podman needs here, on both).
fn run_image(host: &str, image: &str) {
    docker_on(
        Some(host),
        &[
            "run",
            "-d",
            "--name",
            NAME,
            "--network",
            "host",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "-e",
            &format!("PORT={PORT}"),
            image,
        ],
    )
    .expect("start the container");
}

/// medic recorded the container's spec (a removal is restored from it).
fn has_last_known_good(dir: &Path) -> bool {
    let state = std::fs::read(dir.join("state/state.json")).unwrap_or_default();
    serde_json::from_slice::<serde_json::Value>(&state)
        .is_ok_and(|s| s["units"]["web"]["last_known_good"].is_object())
}

fn wait_http() {
    crate::util::wait_http(PORT);
}
