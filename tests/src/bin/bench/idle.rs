//! Idle overhead: medic watching 50 containers on the engine (a label
//! selector, the event stream, container probes every 10 s, reconcile every
//! 10 s) for a while, from one interval after all are healthy: CPU share of
//! one core and RSS.

use std::time::{Duration, Instant};

use crate::util::{
    Usage, config_file, cpu_percent, docker, events, run_idle_container, run_medic, wait_for,
};

const CONTAINERS: usize = 50;
const LABEL: &str = "medic.bench=idle";

pub fn run(seconds: u64) {
    let names: Vec<String> = (0..CONTAINERS)
        .map(|i| format!("medic-bench-idle-{i}"))
        .collect();
    for name in &names {
        docker(&["rm", "-f", name]).ok();
        run_idle_container(name, LABEL);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config_file(
        dir.path(),
        &format!(
            "\n[defaults]\ninterval = \"10s\"\n\n[[service]]\nname = \"idle\"\ncontainer = {{ label = \"{LABEL}\" }}\n"
        ),
    );
    let medic = run_medic(&config);
    let log = dir.path().join("state/recovery.jsonl");
    wait_for(|| {
        events(&log)
            .iter()
            .filter(|e| e["event"] == "healthy")
            .count()
            == CONTAINERS
    });
    // Idle is the steady state: the one-off work after the first round (each
    // container's last known good spec recorded) is over within one interval.
    std::thread::sleep(Duration::from_secs(10));
    let pid = medic.0.id();
    let (t0, u0) = (Instant::now(), Usage::of(pid));
    std::thread::sleep(Duration::from_secs(seconds));
    let (t1, u1) = (Instant::now(), Usage::of(pid));
    drop(medic);
    for name in &names {
        docker(&["rm", "-f", name]).ok();
    }
    println!(
        "## Idle: watching {CONTAINERS} containers for {seconds} s (targets ≤ 15 MiB, ≤ 0.5 %)"
    );
    println!(
        "CPU {:.2} % of one core, RSS {:.1} MiB (peak {:.1} MiB)\n",
        cpu_percent(u0, u1, t1 - t0),
        u1.rss_kib as f64 / 1024.0,
        u1.peak_rss_kib as f64 / 1024.0
    );
}
