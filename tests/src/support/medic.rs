//! Runs the real `medic` binary in a temporary directory and reads what it
//! writes: the recovery log, the alerts file and the state store.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any wait in these tests may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A binary built from this workspace (`cargo build --workspace --bins` runs first).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    // target/debug/deps/e2e-… → target/debug/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/*/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (`cargo build --workspace --bins`; scripts/test does this)",
        path.display()
    );
    path
}

/// Polls `probe` until it returns Some, or panics after DEADLINE naming `what`.
#[track_caller]
pub fn eventually<T>(what: &str, probe: impl FnMut() -> Option<T>) -> T {
    eventually_within(DEADLINE, what, probe)
}

/// [`eventually`] with its own deadline, for what takes longer by design
/// (an alert's `for:` of a minute).
#[track_caller]
pub fn eventually_within<T>(
    deadline: Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("a bound address").port()
}

/// One medic daemon under test, with its own state directory.
pub struct Medic {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    child: Option<Child>,
}

impl Medic {
    /// Writes the config (`{dir}` is replaced by the temp dir; a `[medic]` table
    /// pointing every file into it is prepended) without starting medic.
    pub fn prepare(services: &str) -> Self {
        Self::prepare_with("", services)
    }

    /// Like `prepare`, with extra `[medic]` keys.
    pub fn prepare_with(medic_keys: &str, services: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let root = dir.path().display().to_string();
        // No metrics listener unless a test asks for one: tests run in parallel.
        let metrics = if medic_keys.contains("metrics_listen") {
            ""
        } else {
            "metrics_listen = \"\"\n"
        };
        let medic = format!(
            "[medic]\nstate_dir = \"{root}/state\"\ncontrol_socket = \"{root}/control.sock\"\n{metrics}shutdown_grace = \"2s\"\n{medic_keys}\n\n"
        );
        let config = dir.path().join("medic.toml");
        std::fs::write(&config, medic + &services.replace("{dir}", &root))
            .expect("write the config");
        Self {
            dir,
            config,
            child: None,
        }
    }

    /// Writes the config and starts `medic run`.
    pub fn start(services: &str) -> Self {
        Self::start_with("", services)
    }

    /// Like `start`, with extra `[medic]` keys.
    pub fn start_with(medic_keys: &str, services: &str) -> Self {
        let mut medic = Self::prepare_with(medic_keys, services);
        medic.spawn();
        medic
    }

    /// Starts (or starts again) `medic run` on the same directory.
    pub fn spawn(&mut self) {
        self.spawn_with_env(&[]);
    }

    /// Starts `medic run` with extra environment variables.
    pub fn spawn_with_env(&mut self, env: &[(&str, &str)]) {
        let mut command = Command::new(bin("medic"));
        command.args(["run", "--config"]).arg(&self.config);
        self.spawn_command(command, env);
    }

    /// Starts `medic run` as systemd would with a watchdog: WATCHDOG_PID is medic's own pid.
    pub fn spawn_under_watchdog(&mut self, env: &[(&str, &str)]) {
        let mut command = Command::new("sh");
        command
            .args(["-c", "WATCHDOG_PID=$$ exec \"$0\" run --config \"$1\""])
            .arg(bin("medic"))
            .arg(&self.config);
        self.spawn_command(command, env);
    }

    fn spawn_command(&mut self, mut command: Command, env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("medic.stderr"))
            .expect("open the stderr log");
        let child = command
            .env("RUST_LOG", "medic=debug,info")
            .envs(std::env::var("MEDIC_TEST_DOCKER_HOST").map(|host| ("DOCKER_HOST", host)))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start medic");
        self.child = Some(child);
    }

    /// A path inside the state directory.
    pub fn state(&self, name: &str) -> PathBuf {
        self.dir.path().join("state").join(name)
    }

    /// The state store as a restarted medic reads it (medic's own loader:
    /// `state.json` with the newer lines of `state.changes.jsonl` applied), as JSON.
    pub fn saved_state(&self) -> Option<Value> {
        let dir = self.dir.path().join("state");
        let store = medic_daemon::store::Store::open(&dir, jiff::Timestamp::now()).ok()?;
        serde_json::to_value(&*store.file).ok()
    }

    /// Every complete line of the recovery log.
    pub fn events(&self) -> Vec<Value> {
        read_jsonl(&self.state("recovery.jsonl"))
    }

    /// Every complete line of the critical alerts file.
    pub fn alerts(&self) -> Vec<Value> {
        read_jsonl(&self.state("alerts/critical.jsonl"))
    }

    /// Waits until the recovery log has an event matching `pred`; returns all events.
    /// On timeout the panic shows the events so far and medic's stderr.
    #[track_caller]
    pub fn wait_event(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.wait_event_within(DEADLINE, what, pred)
    }

    /// [`Self::wait_event`] for something that takes longer by rule (a flap
    /// delay of 80 s): fails after `deadline`.
    #[track_caller]
    pub fn wait_event_within(
        &self,
        deadline: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let events = self.events();
            if events.iter().any(&pred) {
                return events;
            }
            if start.elapsed() > deadline {
                let trace: Vec<String> = events
                    .iter()
                    .map(|e| format!("{} {} {}", e["service"], e["event"], e["message"]))
                    .collect();
                let stderr = self.stderr();
                let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
                panic!(
                    "timed out waiting for {what}\nevents:\n{}\nstderr (newest first):\n{}",
                    trace.join("\n"),
                    tail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the alerts file has a line of `kind`; returns all lines.
    /// The file has its own writer, so its line may land after the log's.
    #[track_caller]
    pub fn wait_alert(&self, kind: &str) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let alerts = self.alerts();
            if alerts.iter().any(|a| a["kind"] == kind) {
                return alerts;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "no {kind} alert in {alerts:?}\nstderr: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs a medic subcommand against this daemon's config.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_env(args, &[])
    }

    /// Runs a medic subcommand with extra environment variables.
    pub fn cli_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(bin("medic"))
            .args(args)
            .envs(env.iter().copied())
            .envs(std::env::var("MEDIC_TEST_DOCKER_HOST").map(|host| ("DOCKER_HOST", host)))
            .arg("--config")
            .arg(&self.config)
            .output()
            .expect("run medic")
    }

    /// medic's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("medic is running").id()
    }

    /// Waits until the control socket answers `medic status` (whatever the health).
    pub fn wait_listening(&self) {
        eventually("medic to answer on its control socket", || {
            let output = self.cli(&["status", "--json"]);
            serde_json::from_slice::<Value>(&output.stdout).ok()
        });
    }

    /// Sends a signal to medic.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let child = self.child.as_ref().expect("medic is running");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("a pid fits i32"));
        nix::sys::signal::kill(pid, signal).expect("send a signal");
    }

    /// Sends SIGTERM and waits for the exit (panics after DEADLINE).
    pub fn terminate(&mut self) -> (ExitStatus, Duration) {
        let start = Instant::now();
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let child = self.child.as_mut().expect("medic is running");
        let status = eventually("medic to exit after SIGTERM", || {
            child.try_wait().expect("wait")
        });
        self.child = None;
        (status, start.elapsed())
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// What medic wrote to stderr, for failure messages.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("medic.stderr")).unwrap_or_default()
    }
}

impl Drop for Medic {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Every complete, parseable line of a JSON Lines file; panics on a corrupt complete line.
pub fn read_jsonl(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("corrupt line in {}: {e}: {l}", path.display()))
        })
        .collect()
}

/// The first event named `kind`; panics naming the kinds there were.
pub fn first_event<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == kind)
        .unwrap_or_else(|| {
            let kinds: Vec<&Value> = events.iter().map(|e| &e["event"]).collect();
            panic!("no `{kind}` event among {kinds:?}")
        })
}

/// The `event` names of a service's events, in order.
pub fn kinds(events: &[Value], service: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["service"] == service)
        .map(|e| e["event"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The recovery log's `recovered` event that says who brought the container back.
#[track_caller]
pub fn restarted_by(medic: &Medic) -> serde_json::Value {
    let events = medic.wait_event("recovered without medic acting", |e| {
        e["event"] == "recovered" && e["evidence"]["restarted_by"].is_string()
    });
    let web = kinds(&events, "web");
    assert!(
        !web.iter().any(|k| k == "restart"),
        "medic restarted nothing itself: {web:?}"
    );
    events
        .into_iter()
        .find(|e| e["event"] == "recovered")
        .expect("a recovered event")
}
