//! A storm: N HTTP endpoints (default 10,000) probed every 10 s with medic's
//! defaults, healthy for a minute, then all answering 404 for 60 s (one shared
//! upstream down), then healthy again. Per phase: probes made versus
//! scheduled (counted by the server), services `unknown` at worst (medic's
//! own lateness), CPU share of one core, peak RSS, `medic status --json`
//! latency, lines written to the recovery log, alerts file and stderr, bytes
//! medic wrote to storage (`write_bytes` of /proc/PID/io); after the storm,
//! how long until every service is healthy again.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::util::{
    Usage, config_file, cpu_percent, human, medic, ms, percentile, run_medic_to, written_bytes,
};

const INTERVAL: Duration = Duration::from_secs(10);
const STORM: Duration = Duration::from_secs(60);

/// What the server saw (also used by `disk.rs`).
#[derive(Default)]
pub struct Upstream {
    pub down: AtomicBool,
    probes: AtomicU64,
}

/// One phase's figures.
struct Phase {
    name: &'static str,
    probes: u64,
    worst_unknown: usize,
    sample: Sample,
}

/// What medic did over a stretch of time, seen from outside.
pub struct Sample {
    pub wall: Duration,
    /// Share of one core.
    pub cpu: f64,
    pub peak_rss_mib: f64,
    /// `medic status --json` latencies.
    pub status: Vec<Duration>,
    /// Lines written to the recovery log, the alerts file and stderr.
    pub lines: (usize, usize, usize),
    /// Bytes medic wrote to storage (`write_bytes` of /proc/PID/io).
    pub written: u64,
}

pub fn run(size: usize) {
    let upstream = Arc::new(Upstream::default());
    let port = serve(upstream.clone());
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), port, size);
    let stderr = dir.path().join("medic.stderr");
    let medic = run_medic_to(&config, &stderr);
    let pid = medic.0.id();
    println!("## Storm: {size} HTTP endpoints every 10 s (defaults), all 404 for 60 s, then back");
    println!("(the machine is shared: other builds run beside it; figures vary by ±30 %)");
    let start = Instant::now();
    wait_until(&config, Duration::from_secs(300), |s| healthy(s) == size);
    println!(
        "all {size} healthy {:.1} s after start",
        start.elapsed().as_secs_f64()
    );
    // One interval more, so the rounds settle on their offsets.
    std::thread::sleep(INTERVAL);

    let files = Files::new(dir.path(), &stderr);
    let run = |name, length, done: &dyn Fn(&serde_json::Value) -> bool| {
        phase(name, &config, pid, &upstream, &files, length, size, done)
    };
    let never = |_: &serde_json::Value| false;
    let mut phases = vec![run("healthy", STORM, &never)];
    upstream.down.store(true, Ordering::SeqCst);
    phases.push(run("storm", STORM, &never));
    upstream.down.store(false, Ordering::SeqCst);
    let back = Instant::now();
    phases.push(run("recovery", Duration::from_secs(300), &|s| {
        healthy(s) == size
    }));
    let all_back = back.elapsed();
    phases.push(run("after", STORM, &never));

    println!(
        "{:<9} {:>7} {:>22} {:>9} {:>8} {:>10} {:>12} {:>12} {:>26} {:>10}",
        "phase",
        "seconds",
        "probes made (sched)",
        "unknown",
        "CPU %",
        "peak RSS",
        "status p50",
        "status p99",
        "lines log/alerts/stderr",
        "written"
    );
    let mut written = 0;
    for p in &phases {
        let (name, probes, worst_unknown, p) = (p.name, p.probes, p.worst_unknown, &p.sample);
        let scheduled = size as f64 * p.wall.as_secs_f64() / INTERVAL.as_secs_f64();
        println!(
            "{:<9} {:>7.1} {:>22} {:>9} {:>8.1} {:>6.1} MiB {:>12} {:>12} {:>26} {:>10}",
            name,
            p.wall.as_secs_f64(),
            format!(
                "{} ({:.0}) {:.1}%",
                probes,
                scheduled,
                probes as f64 / scheduled * 100.0
            ),
            worst_unknown,
            p.cpu,
            p.peak_rss_mib,
            ms(percentile(&p.status, 50)),
            ms(percentile(&p.status, 99)),
            format!("{}/{}/{}", p.lines.0, p.lines.1, p.lines.2),
            human(p.written as f64),
        );
        written += p.written;
    }
    println!(
        "written by medic over the four phases: {} (/proc/PID/io write_bytes)",
        human(written as f64)
    );
    println!(
        "every service healthy again {:.1} s after the upstream came back (target: interval + success_threshold × interval)",
        all_back.as_secs_f64()
    );
    let disk = dir_size(&dir.path().join("state"));
    println!(
        "state directory after the run: {:.1} MiB",
        disk as f64 / 1048576.0
    );
    println!();
    drop(medic);
}

/// Runs one phase for `length` (or until `done` holds on a status answer),
/// counting the probes the server saw and the services `unknown` at worst.
#[allow(clippy::too_many_arguments)]
fn phase(
    name: &'static str,
    config: &Path,
    pid: u32,
    upstream: &Upstream,
    files: &Files,
    length: Duration,
    size: usize,
    done: &dyn Fn(&serde_json::Value) -> bool,
) -> Phase {
    let probes0 = upstream.probes.load(Ordering::SeqCst);
    let mut worst_unknown = 0;
    let sample = sample(config, pid, files, length, |answer| {
        let unknown = answer["services"].as_array().map_or(size, |s| {
            s.iter().filter(|s| s["health"] == "unknown").count()
        });
        worst_unknown = worst_unknown.max(unknown);
        done(answer)
    });
    Phase {
        name,
        probes: upstream.probes.load(Ordering::SeqCst) - probes0,
        worst_unknown,
        sample,
    }
}

/// Asks `medic status --json` twice a second for `length`, or until `done`
/// holds on an answer; medic's CPU, RSS and lines written meanwhile.
pub fn sample(
    config: &Path,
    pid: u32,
    files: &Files,
    length: Duration,
    mut done: impl FnMut(&serde_json::Value) -> bool,
) -> Sample {
    let (lines0, written0) = (files.lines(), written_bytes(pid));
    let (t0, u0) = (Instant::now(), Usage::of(pid));
    let (mut status, mut peak_rss) = (Vec::new(), 0);
    while t0.elapsed() < length {
        let asked = Instant::now();
        let answer = ask_status(config);
        status.push(asked.elapsed());
        peak_rss = peak_rss.max(Usage::of(pid).rss_kib);
        if answer.is_some_and(|a| done(&a)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500).saturating_sub(asked.elapsed()));
    }
    let (t1, u1) = (Instant::now(), Usage::of(pid));
    let lines1 = files.lines();
    Sample {
        wall: t1 - t0,
        cpu: cpu_percent(u0, u1, t1 - t0),
        peak_rss_mib: peak_rss.max(u1.rss_kib) as f64 / 1024.0,
        status,
        lines: (
            lines1.0 - lines0.0,
            lines1.1 - lines0.1,
            lines1.2 - lines0.2,
        ),
        written: written_bytes(pid) - written0,
    }
}

pub fn ask_status(config: &Path) -> Option<serde_json::Value> {
    let out = Command::new(medic())
        .args(["status", "--json", "--config"])
        .arg(config)
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

pub fn healthy(status: &serde_json::Value) -> usize {
    status["services"]
        .as_array()
        .map_or(0, |s| s.iter().filter(|s| s["health"] == "healthy").count())
}

pub fn wait_until(config: &Path, limit: Duration, done: impl Fn(&serde_json::Value) -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ask_status(config).is_some_and(|s| done(&s)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("medic did not get there within {limit:?}");
}

/// The files whose lines a phase counts.
pub struct Files {
    recovery: std::path::PathBuf,
    alerts: std::path::PathBuf,
    stderr: std::path::PathBuf,
}

impl Files {
    pub fn new(dir: &Path, stderr: &Path) -> Self {
        Self {
            recovery: dir.join("state/recovery.jsonl"),
            alerts: dir.join("state/alerts/critical.jsonl"),
            stderr: stderr.to_owned(),
        }
    }

    pub fn lines(&self) -> (usize, usize, usize) {
        let count = |path: &Path| -> usize {
            // The live file and its rotated ones (`recovery.jsonl.1`, …).
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let dir = path.parent().unwrap_or(Path::new("."));
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&name))
                .map(|e| {
                    std::fs::read(e.path()).map_or(0, |b| b.iter().filter(|c| **c == b'\n').count())
                })
                .sum()
        };
        (
            count(&self.recovery),
            count(&self.alerts),
            count(&self.stderr),
        )
    }
}

fn dir_size(dir: &Path) -> u64 {
    walk(dir)
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum()
}

pub fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

pub fn write_config(dir: &Path, port: u16, size: usize) -> std::path::PathBuf {
    // The control socket is needed for `medic status`; everything else is default.
    let mut config = "\n".to_owned();
    for i in 0..size {
        config.push_str(&format!(
            "[[service]]\nname = \"ep{i}\"\n  [[service.probe]]\n  kind = \"http\"\n  url = \"http://127.0.0.1:{port}/e/{i}\"\n\n"
        ));
    }
    config_file(dir, &config)
}

/// `GET /e/{i}`: `ok`, or 404 while the upstream is down; counts every probe.
pub fn serve(upstream: Arc<Upstream>) -> u16 {
    crate::util::serve(axum::Router::new().route(
        "/e/{i}",
        axum::routing::get(move || {
            let upstream = upstream.clone();
            async move {
                upstream.probes.fetch_add(1, Ordering::Relaxed);
                if upstream.down.load(Ordering::Relaxed) {
                    (axum::http::StatusCode::NOT_FOUND, "gone")
                } else {
                    (axum::http::StatusCode::OK, "ok")
                }
            }
        }),
    ))
}
