//! Running an argv with a deadline: its own process group, killed as a whole
//! on timeout, stdin closed, stdout and stderr kept up to a cap (the tail,
//! where the errors are).

use std::process::Stdio;
use std::time::Duration;

use medic_core::config::ExecProbe;
use medic_core::{Evidence, Observation};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::time::Instant;

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    /// The exit code, when it exited.
    pub exit: Option<i32>,
    /// The signal that killed it, when one did.
    pub signal: Option<i32>,
    /// The tail of stdout and stderr, interleaved as read.
    pub output: String,
    /// The output was longer than the cap.
    pub truncated: bool,
    /// It ran past the timeout and its process group was killed.
    pub timed_out: bool,
    /// It could not be started.
    pub spawn_error: Option<String>,
    /// How long it ran.
    pub duration: Duration,
}

impl CommandOutcome {
    /// Exit status, signal, timing and output as evidence.
    pub fn evidence(&self) -> Evidence {
        let mut evidence = Evidence::new();
        if let Some(code) = self.exit {
            evidence.insert("exit_code".into(), code.into());
        }
        if let Some(signal) = self.signal {
            evidence.insert("signal".into(), signal.into());
        }
        if self.timed_out {
            evidence.insert("timed_out".into(), true.into());
        }
        if let Some(error) = &self.spawn_error {
            evidence.insert("spawn_error".into(), error.clone().into());
        }
        evidence.insert(
            "duration_ms".into(),
            u64::try_from(self.duration.as_millis())
                .unwrap_or(u64::MAX)
                .into(),
        );
        evidence.insert("output".into(), self.output.clone().into());
        if self.truncated {
            evidence.insert("output_truncated".into(), true.into());
        }
        evidence
    }
}

/// Runs `argv` (no shell) for at most `timeout`; keeps the last `max_output` bytes of output.
pub async fn run_command(argv: &[String], timeout: Duration, max_output: usize) -> CommandOutcome {
    let started = Instant::now();
    let mut outcome = CommandOutcome {
        exit: None,
        signal: None,
        output: String::new(),
        truncated: false,
        timed_out: false,
        spawn_error: None,
        duration: Duration::ZERO,
    };
    let Some((program, args)) = argv.split_first() else {
        outcome.spawn_error = Some("empty command".into());
        return outcome;
    };
    let spawned = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            outcome.spawn_error = Some(error.to_string());
            outcome.duration = started.elapsed();
            return outcome;
        }
    };
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let mut tail = Tail::new(max_output);
    let run = async {
        let (out, err) = tokio::join!(read_all(stdout), read_all(stderr));
        let status = child.wait().await;
        (out, err, status)
    };
    match tokio::time::timeout(timeout, run).await {
        Ok((out, err, status)) => {
            tail.push(&out);
            tail.push(&err);
            if let Ok(status) = status {
                use std::os::unix::process::ExitStatusExt;
                outcome.exit = status.code();
                outcome.signal = status.signal();
            }
        }
        Err(_) => {
            outcome.timed_out = true;
            if let Some(group) = group {
                // The whole group: a shell's children die with it.
                killpg(group, Signal::SIGKILL).ok();
            }
            if let Ok(status) = child.wait().await {
                use std::os::unix::process::ExitStatusExt;
                outcome.signal = status.signal();
            }
        }
    }
    outcome.truncated = tail.truncated;
    outcome.output = tail.text();
    outcome.duration = started.elapsed();
    outcome
}

/// Reads a pipe to its end. Bounded by the caller's timeout; a flood of output
/// is kept only up to the tail cap afterwards, so reading stays linear.
async fn read_all(pipe: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Some(mut pipe) = pipe {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&chunk[..n]);
            // Keep memory bounded for chatty commands: 4 MiB is far above any cap in use.
            if bytes.len() > 4 << 20 {
                bytes.drain(..bytes.len() - (2 << 20));
            }
        }
    }
    bytes
}

/// The last `cap` bytes of everything pushed.
struct Tail {
    cap: usize,
    bytes: Vec<u8>,
    truncated: bool,
}

impl Tail {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            bytes: Vec::new(),
            truncated: false,
        }
    }

    fn push(&mut self, more: &[u8]) {
        self.bytes.extend_from_slice(more);
        if self.bytes.len() > self.cap {
            self.truncated = true;
            let cut = self.bytes.len() - self.cap;
            self.bytes.drain(..cut);
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// The exec probe: ok when the command exits with the expected code in time.
pub async fn check(spec: &ExecProbe, timeout: Duration) -> Observation {
    let outcome = run_command(&spec.argv, timeout, spec.max_output).await;
    let program = spec.argv.first().map_or("", String::as_str);
    let message = match (&outcome.spawn_error, outcome.timed_out, outcome.exit) {
        (Some(error), _, _) => format!("cannot run `{program}`: {error}"),
        (_, true, _) => format!("`{program}` timed out after {timeout:?}"),
        (_, _, Some(code)) if code == spec.expect_exit => format!("`{program}` exited {code}"),
        (_, _, Some(code)) => format!("`{program}` exited {code}, expected {}", spec.expect_exit),
        (_, _, None) => format!(
            "`{program}` was killed by signal {}",
            outcome.signal.unwrap_or(0)
        ),
    };
    let ok = outcome.spawn_error.is_none()
        && !outcome.timed_out
        && outcome.exit == Some(spec.expect_exit);
    let mut observation = if ok {
        Observation::ok(outcome.duration, message)
    } else {
        Observation::fail(outcome.duration, message)
    };
    observation.evidence = outcome.evidence();
    observation
}
