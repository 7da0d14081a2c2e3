//! Running an argv with a deadline: no shell, stdin closed, its own process
//! group killed as a whole on timeout (or when the caller gives up), stdout and
//! stderr through one pipe (interleaved as written) with only the last bytes
//! kept, where the errors are. Used by exec probes and command targets.

use std::collections::VecDeque;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use medic_core::config::ExecProbe;
use medic_core::{Evidence, Observation};
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep_until};

use crate::{millis, reason};

/// After the command exits, how long output from background processes that
/// still hold its stdout is read (bounded by the timeout too). A command that
/// leaves a daemon behind is done when it exits, not when the daemon does.
const DRAIN_GRACE: Duration = Duration::from_millis(250);

/// After SIGKILL, how long to wait for the group to die and the pipe to close.
const KILL_SLACK: Duration = Duration::from_secs(1);

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    /// The exit code, when it exited.
    pub exit: Option<i32>,
    /// The signal that ended it, when one did (9 after a timeout).
    pub signal: Option<i32>,
    /// The last `max_output` bytes of stdout and stderr, interleaved as
    /// written, decoded as lossy UTF-8.
    pub output: String,
    /// The output was longer than the cap; `output` is its tail.
    pub truncated: bool,
    /// It ran past the timeout and its process group was killed.
    pub timed_out: bool,
    /// It could not be started: "No such file or directory", "Permission denied", …
    pub spawn_error: Option<String>,
    /// How long it ran.
    pub duration: Duration,
    /// The timeout it ran under.
    pub timeout: Duration,
}

impl CommandOutcome {
    fn new(timeout: Duration) -> Self {
        Self {
            exit: None,
            signal: None,
            output: String::new(),
            truncated: false,
            timed_out: false,
            spawn_error: None,
            duration: Duration::ZERO,
            timeout,
        }
    }

    /// It ran to the end and exited with `expect_exit`.
    pub fn succeeded(&self, expect_exit: i32) -> bool {
        self.spawn_error.is_none() && !self.timed_out && self.exit == Some(expect_exit)
    }

    /// One line for messages: "`x` exited 3, expected 0", "cannot run `x`: No
    /// such file or directory", "`x` timed out after 2s", …
    pub fn summary(&self, program: &str, expect_exit: i32) -> String {
        if let Some(error) = &self.spawn_error {
            return format!("cannot run `{program}`: {error}");
        }
        if self.timed_out {
            return format!(
                "`{program}` timed out after {:?}; its process group was killed",
                self.timeout
            );
        }
        match (self.exit, self.signal) {
            (Some(code), _) if code == expect_exit => format!("`{program}` exited {code}"),
            (Some(code), _) => format!("`{program}` exited {code}, expected {expect_exit}"),
            (None, Some(signal)) => {
                format!("`{program}` was killed by {}", signal_name(signal))
            }
            (None, None) => format!("`{program}` ended without an exit status"),
        }
    }

    /// Exit code or signal, `timed_out`, duration and the output tail as evidence.
    pub fn evidence(&self) -> Evidence {
        let mut evidence = Evidence::new();
        if let Some(code) = self.exit {
            evidence.insert("exit_code".into(), code.into());
        }
        if let Some(signal) = self.signal {
            evidence.insert("signal".into(), signal.into());
            evidence.insert("signal_name".into(), signal_name(signal).into());
        }
        evidence.insert("timed_out".into(), self.timed_out.into());
        if let Some(error) = &self.spawn_error {
            evidence.insert("spawn_error".into(), error.clone().into());
        }
        evidence.insert("duration_ms".into(), millis(self.duration).into());
        evidence.insert("output".into(), self.output.clone().into());
        if self.truncated {
            evidence.insert("output_truncated".into(), true.into());
        }
        evidence
    }
}

/// "SIGKILL", or "signal 42" for one nix does not name.
fn signal_name(signal: i32) -> String {
    Signal::try_from(signal).map_or_else(|_| format!("signal {signal}"), |s| s.as_str().into())
}

/// Runs `argv` (no shell; `argv[0]` looked up in `PATH`) for at most
/// `timeout`, then SIGKILLs its whole process group. Keeps the last
/// `max_output` bytes of stdout+stderr. Never panics; returns within
/// `timeout` plus about a second of slack to kill and reap.
///
/// Background processes the command leaves behind are not killed when it
/// exits in time; their output is read for a moment (250 ms) and then the
/// pipe is closed, so a daemon started this way should redirect its output.
/// If the returned future is dropped early, the process group is killed.
pub async fn run_command(argv: &[String], timeout: Duration, max_output: usize) -> CommandOutcome {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut outcome = CommandOutcome::new(timeout);
    let Some((program, args)) = argv.split_first() else {
        outcome.spawn_error = Some("empty command".into());
        return outcome;
    };
    let (child, mut output) = match spawn(program, args) {
        Ok(spawned) => spawned,
        Err(error) => {
            outcome.spawn_error = Some(reason::io(&error));
            outcome.duration = started.elapsed();
            return outcome;
        }
    };
    let mut group = Group::new(child);
    let mut tail = Tail::new(max_output);
    let mut chunk = vec![0u8; 16 * 1024];
    let mut status: Option<io::Result<ExitStatus>> = None;
    let mut eof = false;
    let mut stop_at = deadline;
    loop {
        tokio::select! {
            read = output.read(&mut chunk), if !eof => match read {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => tail.push(&chunk[..n]),
            },
            exited = group.child.wait(), if status.is_none() => {
                // Reaped (or lost to an error): from now on the pid, and so the
                // group id, may be reused, so the group is never signalled again.
                group.reaped = true;
                status = Some(exited);
                if !outcome.timed_out {
                    stop_at = deadline.min(Instant::now() + DRAIN_GRACE);
                }
            },
            () = sleep_until(stop_at) => {
                if status.is_some() || outcome.timed_out {
                    break;
                }
                outcome.timed_out = true;
                group.kill();
                stop_at = Instant::now() + KILL_SLACK;
            },
        }
        if eof && status.is_some() {
            break;
        }
    }
    match status {
        Some(Ok(status)) => {
            outcome.exit = status.code();
            outcome.signal = status.signal();
        }
        Some(Err(error)) => {
            tracing::warn!(program, %error, "Cannot wait for command");
        }
        None => tracing::warn!(program, "Command survived SIGKILL for {KILL_SLACK:?}"),
    }
    outcome.truncated = tail.truncated;
    outcome.output = tail.text();
    outcome.duration = started.elapsed();
    outcome
}

/// Starts the command in its own process group with stdin closed and stdout
/// and stderr both on the write end of one pipe; returns the read end.
fn spawn(program: &str, args: &[String]) -> io::Result<(Child, pipe::Receiver)> {
    let (writer, reader) = pipe::pipe()?;
    let stdout = writer.into_blocking_fd()?;
    let stderr = stdout.try_clone()?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        // medic's link to systemd is medic's alone: a child that inherited it
        // (systemctl does) would send notifications systemd rejects and logs.
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_PID")
        .env_remove("WATCHDOG_USEC")
        .kill_on_drop(true);
    let child = command.spawn()?;
    // `command` still holds our copies of the write end; drop them now, or the
    // pipe would never reach end-of-file.
    drop(command);
    Ok((child, reader))
}

/// A child that leads its own process group; the group is SIGKILLed on
/// timeout and on drop, but only while the leader is unreaped, so the group
/// id cannot have been reused by an unrelated process group.
struct Group {
    child: Child,
    pgid: Option<Pid>,
    reaped: bool,
}

impl Group {
    fn new(child: Child) -> Self {
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        Self {
            child,
            pgid,
            reaped: false,
        }
    }

    fn kill(&self) {
        let Some(pgid) = self.pgid.filter(|_| !self.reaped) else {
            return;
        };
        match killpg(pgid, Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => tracing::debug!(%pgid, "Killed process group"),
            Err(error) => tracing::warn!(%pgid, %error, "Cannot kill process group"),
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // The caller gave up (cancelled future) or the leader ignored SIGKILL
        // past the slack: take the whole group down; tokio's kill_on_drop then
        // reaps the leader in the background.
        self.kill();
    }
}

/// The last `cap` bytes of everything pushed, in amortised linear time.
struct Tail {
    cap: usize,
    bytes: VecDeque<u8>,
    truncated: bool,
}

impl Tail {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            bytes: VecDeque::new(),
            truncated: false,
        }
    }

    fn push(&mut self, more: &[u8]) {
        let more = if more.len() > self.cap {
            self.truncated = true;
            self.bytes.clear();
            &more[more.len() - self.cap..]
        } else {
            more
        };
        self.bytes.extend(more);
        if self.bytes.len() > self.cap {
            self.truncated = true;
            let excess = self.bytes.len() - self.cap;
            self.bytes.drain(..excess);
        }
    }

    fn text(&mut self) -> String {
        let mut bytes: &[u8] = self.bytes.make_contiguous();
        if self.truncated {
            // The cut may have split a character: drop its continuation bytes.
            while let Some((&first, rest)) = bytes.split_first() {
                if first & 0xC0 != 0x80 {
                    break;
                }
                bytes = rest;
            }
        }
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// The exec probe: ok when the command exits with the expected code in time.
pub async fn check(spec: &ExecProbe, timeout: Duration) -> Observation {
    let outcome = run_command(&spec.argv, timeout, spec.max_output).await;
    let program = spec.argv.first().map_or("", String::as_str);
    let message = outcome.summary(program, spec.expect_exit);
    let mut observation = if outcome.succeeded(spec.expect_exit) {
        Observation::ok(outcome.duration, message)
    } else {
        Observation::fail(outcome.duration, message)
    };
    observation.evidence = outcome.evidence();
    observation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_bytes() {
        let mut tail = Tail::new(4);
        tail.push(b"ab");
        assert_eq!((tail.text(), tail.truncated), ("ab".into(), false));
        tail.push(b"cd");
        assert_eq!((tail.text(), tail.truncated), ("abcd".into(), false));
        tail.push(b"e");
        assert_eq!((tail.text(), tail.truncated), ("bcde".into(), true));
        tail.push(b"0123456789");
        assert_eq!(tail.text(), "6789");
        let mut empty = Tail::new(0);
        empty.push(b"x");
        assert_eq!((empty.text(), empty.truncated), (String::new(), true));
    }

    #[test]
    fn the_tail_does_not_start_inside_a_character() {
        let mut tail = Tail::new(2);
        tail.push("xé!".as_bytes()); // 4 bytes: the cut keeps é's second byte and `!`
        assert_eq!(tail.text(), "!");
    }
}
