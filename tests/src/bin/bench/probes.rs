//! HTTP probe scale: 100, 1,000 and 10,000 endpoints on one local server, each
//! probed every 10 s, by medic and by Monit in the same run. The server records
//! when each endpoint was asked, so both are measured the same way from outside:
//! probes per second achieved versus scheduled, lateness (how much longer than
//! the interval the gap between two probes of one endpoint was), endpoints
//! probed less often than scheduled, CPU share of one core and peak RSS.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::{Guard, Usage, config_file, cpu_percent, ms, percentile, run_medic};

const INTERVAL: Duration = Duration::from_secs(10);
const SIZES: [usize; 3] = [100, 1_000, 10_000];

type Arrivals = Arc<Mutex<Vec<(u32, Instant)>>>;

/// One tool's figures at one size.
struct Figures {
    achieved: f64,
    lateness_p50: Duration,
    lateness_p99: Duration,
    skipped: usize,
    cpu: f64,
    peak_rss_mib: f64,
}

pub fn run(seconds: u64) {
    let arrivals: Arrivals = Arc::default();
    let port = serve(arrivals.clone());
    println!("## HTTP probes every 10 s, {seconds} s per run");
    println!(
        "{:<6} {:>7} {:>16} {:>12} {:>12} {:>8} {:>8} {:>10}",
        "tool",
        "checks",
        "probes/s (sched)",
        "late p50",
        "late p99",
        "skipped",
        "CPU %",
        "peak RSS"
    );
    for size in SIZES {
        let dir = tempfile::tempdir().expect("temp dir");
        let medic = measure(&arrivals, size, seconds, || {
            start_medic(dir.path(), port, size)
        });
        let monit = measure(&arrivals, size, seconds, || {
            start_monit(dir.path(), port, size)
        });
        for (tool, f) in [("medic", &medic), ("monit", &monit)] {
            println!(
                "{tool:<6} {size:>7} {:>16} {:>12} {:>12} {:>8} {:>8.2} {:>6.1} MiB",
                format!(
                    "{:.1} ({:.1})",
                    f.achieved,
                    size as f64 / INTERVAL.as_secs_f64()
                ),
                ms(f.lateness_p50),
                ms(f.lateness_p99),
                f.skipped,
                f.cpu,
                f.peak_rss_mib
            );
        }
        println!(
            "{:<6} {size:>7}  monit / medic: CPU {:.1}×, peak RSS {:.1}×",
            "ratio",
            monit.cpu / medic.cpu.max(0.01),
            monit.peak_rss_mib / medic.peak_rss_mib
        );
    }
    println!();
}

/// Starts a tool, waits until every endpoint was asked once and then one
/// interval more (the rounds after the first settle on their offsets), then
/// measures for `seconds`.
fn measure(
    arrivals: &Arrivals,
    size: usize,
    seconds: u64,
    start: impl FnOnce() -> Guard,
) -> Figures {
    arrivals.lock().expect("arrivals").clear();
    let tool = start();
    let pid = tool.0.id();
    let warm = Instant::now() + INTERVAL * 3;
    while Instant::now() < warm {
        let seen: std::collections::HashSet<u32> = arrivals
            .lock()
            .expect("arrivals")
            .iter()
            .map(|(i, _)| *i)
            .collect();
        if seen.len() == size {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(INTERVAL);
    let (t0, u0) = (Instant::now(), Usage::of(pid));
    std::thread::sleep(Duration::from_secs(seconds));
    let (t1, u1) = (Instant::now(), Usage::of(pid));
    drop(tool);

    let mut by_endpoint: HashMap<u32, Vec<Instant>> = HashMap::new();
    for (i, at) in arrivals.lock().expect("arrivals").iter() {
        by_endpoint.entry(*i).or_default().push(*at);
    }
    let mut lateness = Vec::new();
    let mut in_window = 0usize;
    let mut skipped = 0usize;
    let expected = (seconds / INTERVAL.as_secs()).saturating_sub(1) as usize;
    for i in 0..size as u32 {
        let times = by_endpoint.get(&i).map(Vec::as_slice).unwrap_or_default();
        let inside = times.iter().filter(|t| **t >= t0 && **t < t1).count();
        in_window += inside;
        if inside < expected {
            skipped += 1;
        }
        for pair in times.windows(2) {
            if pair[1] >= t0 && pair[1] < t1 {
                lateness.push((pair[1] - pair[0]).saturating_sub(INTERVAL));
            }
        }
    }
    Figures {
        achieved: in_window as f64 / (t1 - t0).as_secs_f64(),
        lateness_p50: percentile(&lateness, 50),
        lateness_p99: percentile(&lateness, 99),
        skipped,
        cpu: cpu_percent(u0, u1, t1 - t0),
        peak_rss_mib: u1.peak_rss_kib as f64 / 1024.0,
    }
}

/// The endpoints: `GET /e/{i}` answers `ok` and records when it was asked.
fn serve(arrivals: Arrivals) -> u16 {
    crate::util::serve(axum::Router::new().route(
        "/e/{i}",
        axum::routing::get(move |axum::extract::Path(i): axum::extract::Path<u32>| {
            let arrivals = arrivals.clone();
            async move {
                arrivals.lock().expect("arrivals").push((i, Instant::now()));
                "ok"
            }
        }),
    ))
}

fn start_medic(dir: &Path, port: u16, size: usize) -> Guard {
    let mut config = "\n[defaults]\ninterval = \"10s\"\ntimeout = \"2s\"\n\n".to_owned();
    for i in 0..size {
        config.push_str(&format!(
            "[[service]]\nname = \"e{i}\"\n  [[service.probe]]\n  kind = \"http\"\n  url = \"http://127.0.0.1:{port}/e/{i}\"\n\n"
        ));
    }
    let path = config_file(dir, &config);
    std::fs::remove_dir_all(dir.join("state")).ok();
    run_medic(&path)
}

fn start_monit(dir: &Path, port: u16, size: usize) -> Guard {
    let mut config = format!(
        "set daemon 10\nset logfile {0}/monit.log\nset idfile {0}/monit.id\nset statefile {0}/monit.state\n\n",
        dir.display()
    );
    for i in 0..size {
        config.push_str(&format!(
            "check host e{i} with address 127.0.0.1\n  if failed port {port} protocol http request \"/e/{i}\" with timeout 2 seconds then alert\n"
        ));
    }
    run_monit(dir, &config)
}

/// Monit in the foreground on `config` (written to `dir/monitrc`, 0600 as
/// Monit demands), its files in `dir`; also the idle part's.
pub(crate) fn run_monit(dir: &Path, config: &str) -> Guard {
    let path = dir.join("monitrc");
    std::fs::write(&path, config).expect("write the monit config");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod monitrc");
    Guard(
        Command::new("monit")
            .args(["-I", "-c"])
            .arg(&path)
            .arg("-p")
            .arg(dir.join("monit.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start monit (apt-get install monit)"),
    )
}
