//! What every benchmark shares: percentiles and rows, the docker CLI, process
//! CPU and memory from /proc, and child processes stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A child process killed and reaped when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// `medic run --config CONFIG`, quiet, stopped when the guard is dropped.
pub fn run_medic(config: &Path) -> Guard {
    run_medic_binary(&sibling("medic"), config)
}

/// `BINARY run --config CONFIG` (another build of medic), quiet, stopped
/// when the guard is dropped.
pub fn run_medic_binary(binary: &Path, config: &Path) -> Guard {
    Guard(
        Command::new(binary)
            .args(["run", "--config"])
            .arg(config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start medic"),
    )
}

/// `medic run --config CONFIG` with its stderr in the file `stderr`, stopped
/// when the guard is dropped.
pub fn run_medic_to(config: &Path, stderr: &Path) -> Guard {
    Guard(
        Command::new(sibling("medic"))
            .args(["run", "--config"])
            .arg(config)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(stderr).expect("stderr file"))
            .spawn()
            .expect("start medic"),
    )
}

/// CPU time and memory of one process, read from /proc.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// utime + stime.
    pub cpu: Duration,
    /// Peak resident set (VmHWM).
    pub peak_rss_kib: u64,
    /// Resident set now (VmRSS).
    pub rss_kib: u64,
}

impl Usage {
    pub fn of(pid: u32) -> Self {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name (which may hold spaces) in parentheses.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
        let cpu = Duration::from_millis((ticks(11) + ticks(12)) * 1000 / clock_ticks());
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        Self {
            cpu,
            peak_rss_kib: kib("VmHWM:"),
            rss_kib: kib("VmRSS:"),
        }
    }
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// CPU share of one core between two readings.
pub fn cpu_percent(before: Usage, after: Usage, wall: Duration) -> f64 {
    (after.cpu.saturating_sub(before.cpu)).as_secs_f64() / wall.as_secs_f64() * 100.0
}

pub fn percentile(samples: &[Duration], p: usize) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let index = (sorted.len().saturating_sub(1) * p).div_ceil(100);
    sorted.get(index).copied().unwrap_or_default()
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// `docker ARGS`: stdout, or stderr as the error.
pub fn docker(args: &[&str]) -> Result<String, String> {
    docker_on(None, args)
}

/// `docker ARGS` against `host` (else `DOCKER_HOST`): stdout, or stderr as the error.
pub fn docker_on(host: Option<&str>, args: &[&str]) -> Result<String, String> {
    let mut command = Command::new("docker");
    if let Some(host) = host {
        command.env("DOCKER_HOST", host);
    }
    let out = command.args(args).output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Polls `done` until it holds; panics after a minute.
pub fn wait_for(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits until busybox httpd on 127.0.0.1:`port` answers `/health` with ok.
pub fn wait_http(port: u16) {
    wait_for(|| {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let mut answer = String::new();
        stream.write_all(b"GET /health HTTP/1.0\r\n\r\n").is_ok()
            && stream.read_to_string(&mut answer).is_ok()
            && answer.trim_end().ends_with("ok")
    });
}

/// A binary built beside this one (medic, testsrv).
pub fn sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.with_file_name(name)
}

/// Writes `dir/medic.toml`: a `[medic]` table keeping everything in `dir`
/// with no listeners, then `rest` (more `[medic]` keys first, if any).
pub fn config_file(dir: &Path, rest: &str) -> PathBuf {
    let path = dir.join("medic.toml");
    let config = format!(
        "[medic]\nstate_dir = \"{0}/state\"\ncontrol_socket = \"{0}/control.sock\"\nmetrics_listen = \"\"\n{rest}",
        dir.display()
    );
    std::fs::write(&path, config).expect("write the medic config");
    path
}

/// `docker run` of an idle good:1 container labelled `label` (no network).
pub fn run_idle_container(name: &str, label: &str) {
    docker(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        "-l",
        label,
        "medic-test/good:1",
        "sleep",
        "86400",
    ])
    .expect("start an idle container");
}

/// The recovery log's events.
pub fn events(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The machine a run measured, for docs/benchmarks.md: date, CPU model and
/// count, memory, load average (figures on a loaded machine are not comparable
/// with a quiet one's) and the engine.
pub fn host() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let date = jiff::Timestamp::now()
        .strftime("%Y-%m-%d %H:%M UTC")
        .to_string();
    let proc = |file: &str| std::fs::read_to_string(file).unwrap_or_default();
    let cpuinfo = proc("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim());
    let meminfo = proc("/proc/meminfo");
    let memory_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|m| m.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let loadavg = proc("/proc/loadavg");
    let load: Vec<&str> = loadavg.split_whitespace().take(3).collect();
    format!(
        "{date}, {model}, {cpus} CPUs, {:.1} GiB, load average {}, {}",
        memory_kib as f64 / (1024.0 * 1024.0),
        load.join(" "),
        docker(&["version", "-f", "Docker {{.Server.Version}}"])
            .unwrap_or_else(|_| "no engine".into())
    )
}

/// Serves `app` on 127.0.0.1 from a thread of its own (one worker); returns the port.
pub fn serve(app: axum::Router) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    port
}
