//! The launchctl commands medic runs: print (falling back to list), list,
//! kickstart, bootstrap and bootout, each one process with a timeout.
//!
//! Two bounded loops live here although timing policy belongs to the core:
//! they are protocol facts of launchctl, not recovery policy. `bootout`
//! returns before launchd has torn the job down, so [`Launchctl::bootout`]
//! polls `print` until the job is gone (every 100 ms, up to `BOOTOUT_WAIT`);
//! and a `bootstrap` right after a bootout can fail with "Input/output error"
//! (exit 5) while the old instance is still going, so [`Launchctl::bootstrap`]
//! tries up to `BOOTSTRAP_TRIES` times, 250 ms apart. Both are one action to
//! the core, which still decides whether and when to act.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::LaunchdError;
use crate::facts::{JobFacts, ListEntry, parse_list, parse_list_table, parse_print};

/// launchctl's exit code for an unknown service or domain (ESRCH as launchd reports it).
pub const EXIT_NOT_FOUND: i32 = 113;
/// launchctl's exit code for "Input/output error" (EIO), e.g. bootstrap during teardown.
pub const EXIT_IO_ERROR: i32 = 5;
/// How long a bootout may take to finish tearing the job down.
pub const BOOTOUT_WAIT: Duration = Duration::from_secs(10);
/// How often bootstrap is tried while launchd answers "Input/output error".
pub const BOOTSTRAP_TRIES: u32 = 4;

/// The launchctl program on this system: `/bin/launchctl` on macOS; elsewhere
/// (tests with a fake) the first `launchctl` on PATH.
#[cfg(target_os = "macos")]
pub const DEFAULT_PROGRAM: &str = "/bin/launchctl";
/// The launchctl program on this system: `/bin/launchctl` on macOS; elsewhere
/// (tests with a fake) the first `launchctl` on PATH.
#[cfg(not(target_os = "macos"))]
pub const DEFAULT_PROGRAM: &str = "launchctl";

/// The user medic runs as.
pub fn current_uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// Runs launchctl.
#[derive(Debug, Clone)]
pub struct Launchctl {
    program: PathBuf,
    timeout: Duration,
}

/// What one launchctl run printed.
#[derive(Debug)]
struct Answer {
    command: String,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Answer {
    fn ok(&self) -> bool {
        self.code == 0
    }

    /// "Could not find service" (exit 113): the label is not loaded in the domain.
    fn not_found(&self) -> bool {
        self.code == EXIT_NOT_FOUND
            || self.stderr.contains("Could not find service")
            || self.stdout.contains("Could not find service")
    }

    /// This launchctl predates `print` (OS X 10.9 and older).
    fn unsupported(&self) -> bool {
        let text = format!("{}{}", self.stderr, self.stdout).to_lowercase();
        text.contains("unrecognized subcommand") || text.contains("unknown subcommand")
    }

    fn error(self) -> LaunchdError {
        let message = if self.stderr.trim().is_empty() {
            self.stdout.trim().to_owned()
        } else {
            self.stderr.trim().to_owned()
        };
        LaunchdError::Failed {
            command: self.command,
            code: self.code,
            message,
        }
    }
}

impl Launchctl {
    /// launchctl at `program`; each call may take up to `timeout`.
    pub fn new(program: impl Into<PathBuf>, timeout: Duration) -> Self {
        Self {
            program: program.into(),
            timeout,
        }
    }

    /// The system's launchctl ([`DEFAULT_PROGRAM`]).
    pub fn system(timeout: Duration) -> Self {
        Self::new(DEFAULT_PROGRAM, timeout)
    }

    async fn run(&self, args: &[&str]) -> Result<Answer, LaunchdError> {
        let command = args.join(" ");
        let mut child = tokio::process::Command::new(&self.program);
        child
            .args(args)
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null());
        let output = tokio::time::timeout(self.timeout, child.output())
            .await
            .map_err(|_| LaunchdError::Timeout {
                command: command.clone(),
                secs: self.timeout.as_secs_f64(),
            })?
            .map_err(|source| LaunchdError::Spawn {
                program: self.program.display().to_string(),
                source,
            })?;
        Ok(Answer {
            command,
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// The facts of a job, `None` when it is not loaded: `print`, or `list`
    /// where this launchctl has no `print`.
    pub async fn inspect(
        &self,
        domain: &str,
        label: &str,
    ) -> Result<Option<JobFacts>, LaunchdError> {
        let answer = self.run(&["print", &format!("{domain}/{label}")]).await?;
        if answer.ok() {
            return Ok(Some(parse_print(label, &answer.stdout)));
        }
        if answer.not_found() {
            return Ok(None);
        }
        if answer.unsupported() {
            return self.list(label).await;
        }
        Err(answer.error())
    }

    /// `launchctl list <label>`: the facts of a job in the caller's domain, `None` when unknown.
    pub async fn list(&self, label: &str) -> Result<Option<JobFacts>, LaunchdError> {
        let answer = self.run(&["list", label]).await?;
        if answer.ok() {
            return Ok(Some(parse_list(label, &answer.stdout)));
        }
        if answer.not_found() {
            return Ok(None);
        }
        Err(answer.error())
    }

    /// `launchctl list`: every job loaded in the caller's domain.
    pub async fn list_all(&self) -> Result<Vec<ListEntry>, LaunchdError> {
        let answer = self.run(&["list"]).await?;
        if !answer.ok() {
            return Err(answer.error());
        }
        Ok(parse_list_table(&answer.stdout))
    }

    /// The domain to use: the configured one, else `gui/<uid>` when a GUI login
    /// exists, else `user/<uid>` (as Homebrew does under ssh or sudo).
    pub async fn resolve_domain(&self, configured: Option<&str>) -> Result<String, LaunchdError> {
        if let Some(domain) = configured {
            return Ok(domain.to_owned());
        }
        let uid = current_uid();
        let gui = format!("gui/{uid}");
        if self.run(&["print", &gui]).await?.ok() {
            Ok(gui)
        } else {
            Ok(format!("user/{uid}"))
        }
    }

    /// `launchctl kickstart -k <domain>/<label>`: kill the running instance, if any, and start it.
    pub async fn kickstart(&self, domain: &str, label: &str) -> Result<(), LaunchdError> {
        let answer = self
            .run(&["kickstart", "-k", &format!("{domain}/{label}")])
            .await?;
        if answer.ok() {
            Ok(())
        } else {
            Err(answer.error())
        }
    }

    /// `launchctl bootstrap <domain> <plist>`, tried again while launchd answers
    /// "Input/output error" (the previous instance is still being torn down).
    pub async fn bootstrap(&self, domain: &str, plist: &Path) -> Result<(), LaunchdError> {
        let plist = plist.display().to_string();
        let mut tries = 0;
        loop {
            tries += 1;
            let answer = self.run(&["bootstrap", domain, &plist]).await?;
            if answer.ok() {
                return Ok(());
            }
            if answer.code != EXIT_IO_ERROR || tries >= BOOTSTRAP_TRIES {
                return Err(answer.error());
            }
            tokio::time::sleep(Duration::from_millis(250) * tries).await;
        }
    }

    /// `launchctl bootout <domain>/<label>`, then waits until `print` no longer
    /// knows the job. A job that is not loaded is already booted out.
    pub async fn bootout(&self, domain: &str, label: &str) -> Result<(), LaunchdError> {
        let target = format!("{domain}/{label}");
        let answer = self.run(&["bootout", &target]).await?;
        // 3 is "No such process": not loaded, nothing to do.
        if !answer.ok() && !answer.not_found() && answer.code != 3 {
            return Err(answer.error());
        }
        let deadline = Instant::now() + BOOTOUT_WAIT;
        loop {
            if self.inspect(domain, label).await?.is_none() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(LaunchdError::StillLoaded {
                    target,
                    secs: BOOTOUT_WAIT.as_secs_f64(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
