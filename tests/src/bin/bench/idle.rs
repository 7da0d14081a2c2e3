//! Idle footprint: medic and Monit, one after the other, each watching the
//! same containers on the engine at rest: 1, 50 and 200 containers with the
//! container probe at its default interval, and 50 containers with a container
//! and an HTTP probe each every 1 s. From one interval after every container
//! was seen healthy, `seconds` of CPU share of one core and resident set
//! (sampled every 500 ms: mean and largest), the ratios, and the targets of
//! issue #36 met or not.
//!
//! Monit watches each container the way it watches any process: `check
//! process` on the container's main pid (a pidfile written from `docker
//! inspect`), `docker start` as its start program, and in the HTTP part `if
//! failed port … protocol http`: reading /proc and connecting, no docker CLI
//! spawned at rest, so neither tool's figures include child processes.
//!
//! `MEDIC_BENCH_BASELINE=PATH` measures another build of medic as well (row
//! `before`), in the same run: a change's effect beside the same load.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{
    Guard, Usage, config_file, cpu_percent, docker, events, run_medic_binary, sibling, wait_for,
};

/// medic's default probe interval, and Monit's cycle beside it.
const DEFAULT_INTERVAL: u64 = 10;
/// Ports of the HTTP part's containers: `HTTP_PORT + i`.
const HTTP_PORT: u16 = 18800;
const HTTP_CONTAINERS: usize = 50;
/// Every container of this bench carries it (removal of a stopped run's leftovers).
const LABEL: &str = "medic.bench=idle";

/// One measured setting.
struct Scenario {
    title: String,
    /// The containers, in order; the first `count` are watched.
    names: Vec<String>,
    /// Seconds between two probes of a container (and Monit's cycle).
    interval: u64,
    /// Each container also answers HTTP on `HTTP_PORT + i`, probed every `interval`.
    http: bool,
}

/// One tool's figures over the measured window.
#[derive(Debug, Clone, Copy)]
struct Figures {
    cpu: f64,
    rss_mean_mib: f64,
    rss_max_mib: f64,
}

pub fn run(seconds: u64) {
    remove_all();
    let idle: Vec<String> = (0..200).map(|i| format!("medic-bench-idle-{i}")).collect();
    let web: Vec<String> = (0..HTTP_CONTAINERS)
        .map(|i| format!("medic-bench-idle-web-{i}"))
        .collect();
    start_containers(&idle, false);
    start_containers(&web, true);
    let monit = Command::new("monit")
        .arg("-V")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("This is ")
                .to_owned()
        })
        .unwrap_or_default();
    println!(
        "## Idle: medic beside {monit} watching the same containers, {seconds} s each from one interval after all are healthy"
    );
    println!(
        "{:<34} {:<6} {:>8} {:>10} {:>10}",
        "containers", "tool", "CPU %", "RSS mean", "RSS max"
    );
    let scenarios = [
        (1, DEFAULT_INTERVAL, false),
        (50, DEFAULT_INTERVAL, false),
        (200, DEFAULT_INTERVAL, false),
        (HTTP_CONTAINERS, 1, true),
    ]
    .map(|(count, interval, http)| Scenario {
        title: format!(
            "{count} container{}{}, every {interval} s",
            if count == 1 { "" } else { "s" },
            if http { " + HTTP" } else { "" }
        ),
        names: if http { &web } else { &idle }[..count].to_vec(),
        interval,
        http,
    });
    let baseline = std::env::var_os("MEDIC_BENCH_BASELINE").map(std::path::PathBuf::from);
    let mut verdicts = Vec::new();
    for scenario in &scenarios {
        let dir = tempfile::tempdir().expect("temp dir");
        let medic = measure_medic(
            &sibling("medic"),
            &dir.path().join("medic"),
            scenario,
            seconds,
        );
        let before = baseline
            .as_ref()
            .map(|binary| measure_medic(binary, &dir.path().join("before"), scenario, seconds));
        let monit = measure_monit(dir.path(), scenario, seconds);
        let rows = [
            ("medic", Some(medic)),
            ("before", before),
            ("monit", Some(monit)),
        ];
        for (tool, f) in rows.into_iter().filter_map(|(t, f)| Some((t, f?))) {
            println!(
                "{:<34} {tool:<6} {:>8.2} {:>6.1} MiB {:>6.1} MiB",
                scenario.title, f.cpu, f.rss_mean_mib, f.rss_max_mib
            );
        }
        let ratio = |name: &str, other: Figures| {
            println!(
                "{:<34} {:<6} medic / {name}: CPU {:.2}×, RSS {:.2}× (mean)",
                scenario.title,
                "ratio",
                medic.cpu / other.cpu.max(0.001),
                medic.rss_mean_mib / other.rss_mean_mib
            );
        };
        ratio("monit", monit);
        if let Some(before) = before {
            ratio("before", before);
        }
        verdicts.push(verdict(scenario, medic, monit));
    }
    remove_all();
    println!("targets (issue #36; RSS is the largest sample of the window):");
    for line in verdicts.into_iter().flatten() {
        println!("  {line}");
    }
    println!();
}

/// The targets for this scenario, each `met` or `NOT met`.
fn verdict(scenario: &Scenario, medic: Figures, monit: Figures) -> Option<String> {
    let mark = |ok: bool| if ok { "met" } else { "NOT met" };
    let count = scenario.names.len();
    let mut line = String::new();
    match (count, scenario.http) {
        (1, false) => write!(
            line,
            "1 container: RSS {:.1} MiB ≤ Monit's {:.1} MiB: {}",
            medic.rss_max_mib,
            monit.rss_max_mib,
            mark(medic.rss_max_mib <= monit.rss_max_mib)
        ),
        (200, false) => write!(
            line,
            "200 containers: RSS {:.1} MiB ≤ 12 MiB: {}; CPU {:.2} % ≤ 0.5 %: {}",
            medic.rss_max_mib,
            mark(medic.rss_max_mib <= 12.0),
            medic.cpu,
            mark(medic.cpu <= 0.5)
        ),
        (_, true) => write!(
            line,
            "{count} containers + HTTP every 1 s: RSS {:.1} MiB ≤ 10 MiB: {}; CPU {:.2} % < half Monit's {:.2} %: {}",
            medic.rss_max_mib,
            mark(medic.rss_max_mib <= 10.0),
            medic.cpu,
            monit.cpu,
            mark(medic.cpu < monit.cpu / 2.0)
        ),
        _ => return None,
    }
    .expect("write to a string");
    Some(line)
}

/// medic (`binary`) with the defaults on the scenario's containers (by name;
/// the HTTP part sets `interval` and adds an http probe to each), in `dir`.
fn measure_medic(binary: &Path, dir: &Path, scenario: &Scenario, seconds: u64) -> Figures {
    std::fs::create_dir_all(dir).expect("a directory for medic");
    let mut config = String::new();
    if scenario.interval != DEFAULT_INTERVAL {
        write!(
            config,
            "\n[defaults]\ninterval = \"{}s\"\n",
            scenario.interval
        )
        .ok();
    }
    for (i, name) in scenario.names.iter().enumerate() {
        write!(
            config,
            "\n[[service]]\nname = \"{name}\"\ncontainer = {{ name = \"{name}\" }}\n"
        )
        .ok();
        if scenario.http {
            write!(
                config,
                "  [[service.probe]]\n  kind = \"http\"\n  url = \"http://127.0.0.1:{}/health\"\n",
                port(i)
            )
            .ok();
        }
    }
    let medic = run_medic_binary(binary, &config_file(dir, &config));
    let log = dir.join("state/recovery.jsonl");
    let count = scenario.names.len();
    wait_for(|| {
        events(&log)
            .iter()
            .filter(|e| e["event"] == "healthy")
            .count()
            == count
    });
    // The one-off work after the first round (each container's last known
    // good spec recorded) is over within one interval.
    std::thread::sleep(Duration::from_secs(scenario.interval.max(DEFAULT_INTERVAL)));
    sample(&medic, seconds)
}

/// Monit checking each container's main process (and its HTTP port) every
/// `interval`, after two cycles.
fn measure_monit(dir: &Path, scenario: &Scenario, seconds: u64) -> Figures {
    let docker_cli = which("docker");
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    let mut inspect = vec!["inspect", "-f", "{{.State.Pid}}"];
    inspect.extend(scenario.names.iter().map(String::as_str));
    let pids = docker(&inspect).expect("docker inspect");
    let mut config = format!(
        "set daemon {}\nset logfile {1}/monit.log\nset idfile {1}/monit.id\nset statefile {1}/monit.state\n\n",
        scenario.interval,
        dir.display()
    );
    for (i, (name, pid)) in scenario.names.iter().zip(pids.lines()).enumerate() {
        let pidfile = dir.join(format!("{name}.pid"));
        std::fs::write(&pidfile, pid).expect("write a pidfile");
        write!(
            config,
            "check process {name} with pidfile {}\n  start program = \"/usr/bin/env DOCKER_HOST={host} {docker_cli} start {name}\"\n",
            pidfile.display()
        )
        .ok();
        if scenario.http {
            writeln!(
                config,
                "  if failed host 127.0.0.1 port {} protocol http request \"/health\" with timeout 2 seconds then restart",
                port(i)
            )
            .ok();
        }
    }
    let monit = crate::probes::run_monit(dir, &config);
    std::thread::sleep(Duration::from_secs(
        2 * scenario.interval.max(DEFAULT_INTERVAL),
    ));
    sample(&monit, seconds)
}

/// CPU share over `seconds` and the resident set sampled every 500 ms.
fn sample(tool: &Guard, seconds: u64) -> Figures {
    let pid = tool.0.id();
    let (t0, u0) = (Instant::now(), Usage::of(pid));
    let end = t0 + Duration::from_secs(seconds);
    let mut rss = Vec::new();
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(500));
        rss.push(Usage::of(pid).rss_kib as f64 / 1024.0);
    }
    let (t1, u1) = (Instant::now(), Usage::of(pid));
    Figures {
        cpu: cpu_percent(u0, u1, t1 - t0),
        rss_mean_mib: rss.iter().sum::<f64>() / rss.len().max(1) as f64,
        rss_max_mib: rss.iter().copied().fold(0.0, f64::max),
    }
}

fn port(i: usize) -> u16 {
    HTTP_PORT + u16::try_from(i).expect("a port")
}

/// Starts `names` (8 docker CLIs at once): idle ones without a network, or
/// busybox httpd on the host's loopback at `HTTP_PORT + i`.
fn start_containers(names: &[String], http: bool) {
    crate::containers::in_chunks(names, 8, |chunk| {
        for name in chunk {
            let i: usize = name
                .rsplit('-')
                .next()
                .and_then(|i| i.parse().ok())
                .expect("numbered");
            let env = format!("PORT={}", port(i));
            let mut args = vec!["run", "-d", "--name", name, "-l", LABEL];
            if http {
                args.extend(["--network", "host", "-e", &env, "medic-test/good:1"]);
            } else {
                args.extend(["--network", "none", "medic-test/good:1", "sleep", "86400"]);
            }
            docker(&args).expect("start a container");
        }
    });
    if http {
        for i in 0..names.len() {
            crate::util::wait_http(port(i));
        }
    }
}

/// Removes every container of this bench (also ones a stopped run left).
fn remove_all() {
    crate::containers::remove_labelled(LABEL);
}

/// The absolute path of `program` on PATH (Monit runs programs with a bare environment).
fn which(program: &str) -> String {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())
        .map_or_else(|| program.to_owned(), |path| path.display().to_string())
}
