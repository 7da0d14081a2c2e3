//! Disk use per N services (default 10,000) per day, measured: N HTTP
//! endpoints probed with medic's defaults, started, healthy for three
//! availability writes (from just after one to just after the third next,
//! about three minutes, so the rate holds whole minutes), then one storm (all answering 404 for 60 s, then back until every
//! service is healthy). Per phase: the bytes medic itself wrote to storage
//! (`write_bytes` in /proc/PID/io: journals, their fsyncs, every rewrite of
//! state.json and availability.json) and the size of each file in state_dir.
//! The day's figure is the healthy rate × 24 h, plus the cost of each storm
//! above that rate. medic's stderr (journald's in production) is counted apart.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::storm::{Upstream, healthy, serve, wait_until, walk, write_config};
use crate::util::{Guard, human, medic, written_bytes};

/// The healthy phase: this many writes of availability.json (once a minute).
const HEALTHY_WRITES: usize = 3;
const STORM: Duration = Duration::from_secs(60);
const DAY: f64 = 86_400.0;

/// What one phase wrote, and the files as it left them.
struct Phase {
    name: &'static str,
    wall: Duration,
    written: u64,
    stderr: u64,
    files: Vec<(PathBuf, u64)>,
}

pub fn run(size: usize) {
    let upstream = Arc::new(Upstream::default());
    let port = serve(upstream.clone());
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), port, size);
    let state = dir.path().join("state");
    let mut child = Command::new(medic())
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start medic");
    let stderr = Arc::new(AtomicU64::new(0));
    let mut pipe = child.stderr.take().expect("stderr is piped");
    let counted = stderr.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n @ 1..) = pipe.read(&mut buf) {
            counted.fetch_add(n as u64, Ordering::Relaxed);
        }
    });
    let medic = Guard(child);
    let pid = medic.0.id();
    println!(
        "## Disk use: {size} HTTP endpoints every 10 s (defaults), healthy for {HEALTHY_WRITES} availability writes, then one storm (all 404 for {} s, then back)",
        STORM.as_secs()
    );
    println!(
        "(state_dir on {}; bytes written are /proc/PID/io write_bytes)",
        fs_of(dir.path())
    );
    let all_healthy = |s: &serde_json::Value| healthy(s) == size;
    let mut mark = (Instant::now(), written_bytes(pid), 0);
    let phase = |name, mark: &mut (Instant, u64, u64)| {
        let now = (
            Instant::now(),
            written_bytes(pid),
            stderr.load(Ordering::Relaxed),
        );
        let phase = Phase {
            name,
            wall: now.0 - mark.0,
            written: now.1 - mark.1,
            stderr: now.2 - mark.2,
            files: files(&state),
        };
        *mark = now;
        phase
    };

    wait_until(&config, Duration::from_secs(300), all_healthy);
    let start = phase("start", &mut mark);
    let history = state.join("availability.json");
    let mut written_at = history_written(&history, modified(&history));
    phase("until a write of availability.json", &mut mark);
    for _ in 0..HEALTHY_WRITES {
        written_at = history_written(&history, written_at);
    }
    let calm = phase("healthy", &mut mark);
    upstream.down.store(true, Ordering::SeqCst);
    std::thread::sleep(STORM);
    upstream.down.store(false, Ordering::SeqCst);
    wait_until(&config, Duration::from_secs(300), all_healthy);
    // The saves of the last changes (state.json within a second).
    std::thread::sleep(Duration::from_secs(5));
    let storm = phase("storm", &mut mark);
    drop(medic);

    print_table(&[&start, &calm, &storm]);
    let rate = calm.written as f64 / calm.wall.as_secs_f64();
    let storm_cost = storm.written as f64 - rate * storm.wall.as_secs_f64();
    println!(
        "healthy: {}/s written, so {} a day; one storm: {} above that rate; stderr: {} a healthy day, {} a storm",
        human(rate),
        human(rate * DAY),
        human(storm_cost),
        human(calm.stderr as f64 / calm.wall.as_secs_f64() * DAY),
        human(storm.stderr as f64),
    );
    println!(
        "per {size} services per day: {} written + {} per storm; on disk after the storm: {}",
        human(rate * DAY),
        human(storm_cost),
        human(storm.files.iter().map(|(_, b)| *b as f64).sum()),
    );
    println!();
}

/// One row per file (size after each phase), then the bytes each phase wrote.
fn print_table(phases: &[&Phase]) {
    let mut names: Vec<&PathBuf> = phases
        .iter()
        .flat_map(|p| p.files.iter().map(|(f, _)| f))
        .collect();
    names.sort();
    names.dedup();
    print!("{:<28}", "file (size after phase)");
    for p in phases {
        print!(
            " {:>14}",
            format!("{} ({:.0} s)", p.name, p.wall.as_secs_f64())
        );
    }
    println!();
    for name in names {
        print!("{:<28}", name.display().to_string());
        for p in phases {
            let size = p.files.iter().find(|(f, _)| f == name).map(|(_, b)| *b);
            print!(" {:>14}", size.map_or("-".into(), |b| human(b as f64)));
        }
        println!();
    }
    print!("{:<28}", "written by medic");
    for p in phases {
        print!(" {:>14}", human(p.written as f64));
    }
    println!();
    print!("{:<28}", "stderr (to journald)");
    for p in phases {
        print!(" {:>14}", human(p.stderr as f64));
    }
    println!();
}

/// Every file under `state` (relative path) with its size.
fn files(state: &Path) -> Vec<(PathBuf, u64)> {
    walk(state)
        .into_iter()
        .map(|p| {
            let size = std::fs::metadata(&p).map_or(0, |m| m.len());
            (p.strip_prefix(state).unwrap_or(&p).to_owned(), size)
        })
        .collect()
}

/// Waits until `path` is replaced after `before` (its modification time), and returns the new one.
fn history_written(path: &Path, before: Option<SystemTime>) -> Option<SystemTime> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let now = modified(path);
        if now.is_some() && now != before {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "{} was not written",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The file system type holding `dir`, as `df` names it.
fn fs_of(dir: &Path) -> String {
    Command::new("df")
        .args(["--output=fstype,source"])
        .arg(dir)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.lines()
                .nth(1)
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "an unknown file system".into())
}
