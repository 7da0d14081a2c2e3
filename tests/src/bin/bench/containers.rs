//! A container storm: N containers (default 200) on the engine, watched
//! through one label selector at medic's defaults, all killed at once (an OOM
//! sweep, a runtime hiccup) and brought back by medic. Beside it, the engine's
//! floor from the same run: the same kill, then `docker start` of every
//! container by `max_concurrent_actions` (4) workers, as a script would.
//! Printed: time until every container runs and is healthy again, restarts,
//! CPU share of one core, peak RSS, `medic status --json` latency and lines
//! written, while healthy and through the storm.

use std::time::{Duration, Instant};

use crate::storm::{Files, healthy, sample, wait_until};
use crate::util::{config_file, docker, events, ms, percentile, run_idle_container, run_medic_to};

const LABEL: &str = "medic.bench=storm";
/// medic's default `max_concurrent_actions`, which the floor's workers match.
const WORKERS: usize = 4;
/// The healthy phase, and the limit for the storm's recovery.
const HEALTHY: Duration = Duration::from_secs(30);
const LIMIT: Duration = Duration::from_secs(900);

pub fn run(size: usize) {
    println!(
        "## Container storm: {size} containers (one label selector, defaults), all killed at once"
    );
    let names: Vec<String> = (0..size)
        .map(|i| format!("medic-bench-storm-{i}"))
        .collect();
    remove_all();
    let created = Instant::now();
    in_chunks(&names, 8, |chunk| {
        for name in chunk {
            run_idle_container(name, LABEL);
        }
    });
    println!(
        "{size} containers started in {:.1} s (8 docker CLIs at once)",
        created.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let config = config_file(
        dir.path(),
        &format!("\n[[service]]\nname = \"apps\"\ncontainer = {{ label = \"{LABEL}\" }}\n"),
    );
    let stderr = dir.path().join("medic.stderr");
    let medic = run_medic_to(&config, &stderr);
    let pid = medic.0.id();
    let start = Instant::now();
    wait_until(&config, LIMIT, |s| healthy(s) == size);
    println!(
        "all {size} healthy {:.1} s after medic started",
        start.elapsed().as_secs_f64()
    );
    let files = Files::new(dir.path(), &stderr);

    let calm = sample(&config, pid, &files, HEALTHY, |_| false);
    let killed = Instant::now();
    in_chunks(&names, 8, kill);
    let storm = sample(&config, pid, &files, LIMIT, |s| healthy(s) == size);
    let medic_back = killed.elapsed();
    let log = events(&dir.path().join("state/recovery.jsonl"));
    let restarts = log.iter().filter(|e| e["event"] == "restart").count();
    let recovered = log.iter().filter(|e| e["event"] == "recovered").count();
    drop(medic);

    let killed = Instant::now();
    in_chunks(&names, 8, kill);
    let kill_time = killed.elapsed();
    let started = Instant::now();
    in_chunks(&names, WORKERS, |chunk| {
        let mut args = vec!["start"];
        args.extend(chunk.iter().map(String::as_str));
        docker(&args).expect("docker start");
    });
    let floor = started.elapsed() + kill_time;
    remove_all();

    println!(
        "{:<8} {:>9} {:>8} {:>10} {:>12} {:>12} {:>26}",
        "phase",
        "seconds",
        "CPU %",
        "peak RSS",
        "status p50",
        "status p99",
        "lines log/alerts/stderr"
    );
    for (name, p) in [("healthy", &calm), ("storm", &storm)] {
        println!(
            "{:<8} {:>9.1} {:>8.1} {:>6.1} MiB {:>12} {:>12} {:>26}",
            name,
            p.wall.as_secs_f64(),
            p.cpu,
            p.peak_rss_mib,
            ms(percentile(&p.status, 50)),
            ms(percentile(&p.status, 99)),
            format!("{}/{}/{}", p.lines.0, p.lines.1, p.lines.2),
        );
    }
    println!(
        "every container running and healthy again {:.1} s after the kill began ({restarts} restarts, {recovered} recovered); \
         the floor, the same kill then `docker start` by {WORKERS} workers: {:.1} s ({:.2}×)\n",
        medic_back.as_secs_f64(),
        floor.as_secs_f64(),
        medic_back.as_secs_f64() / floor.as_secs_f64()
    );
}

/// `docker kill` of the chunk's containers in one call.
fn kill(chunk: &[String]) {
    let mut args = vec!["kill"];
    args.extend(chunk.iter().map(String::as_str));
    docker(&args).ok();
}

/// Runs `work` on `workers` threads, each on its share of `names` (also the idle part's).
pub(crate) fn in_chunks(names: &[String], workers: usize, work: impl Fn(&[String]) + Sync) {
    std::thread::scope(|scope| {
        for chunk in names.chunks(names.len().div_ceil(workers).max(1)) {
            scope.spawn(|| work(chunk));
        }
    });
}

/// Removes every container of this bench (also ones a stopped run left).
fn remove_all() {
    remove_labelled(LABEL);
}

/// Removes every container labelled `label` (also the idle part's).
pub(crate) fn remove_labelled(label: &str) {
    let ids = docker(&["ps", "-aq", "--filter", &format!("label={label}")]).unwrap_or_default();
    let ids: Vec<String> = ids.split_whitespace().map(str::to_owned).collect();
    if ids.is_empty() {
        return;
    }
    in_chunks(&ids, 8, |chunk| {
        let mut args = vec!["rm", "-f"];
        args.extend(chunk.iter().map(String::as_str));
        docker(&args).ok();
    });
}
