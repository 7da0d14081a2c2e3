//! Errors of the launchctl adapter.

use std::path::PathBuf;

/// What can go wrong talking to launchctl or handling a plist.
#[derive(Debug, thiserror::Error)]
pub enum LaunchdError {
    /// launchctl could not be started (not installed, not executable).
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        /// The launchctl program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// launchctl did not answer within the timeout.
    #[error("`launchctl {command}` did not answer within {secs}s")]
    Timeout {
        /// The subcommand and its arguments.
        command: String,
        /// The timeout.
        secs: f64,
    },
    /// launchctl answered with a non-zero exit.
    #[error("`launchctl {command}` exited {code}: {message}")]
    Failed {
        /// The subcommand and its arguments.
        command: String,
        /// Its exit code (-1 when killed by a signal).
        code: i32,
        /// Its stderr (or stdout), trimmed.
        message: String,
    },
    /// A job that should be gone was still loaded at the deadline.
    #[error("`{target}` was still loaded {secs}s after bootout")]
    StillLoaded {
        /// domain/label.
        target: String,
        /// How long medic waited.
        secs: f64,
    },
    /// No plist to bootstrap the job from.
    #[error("no plist found for `{label}` (set `plist` in the launch_agent target)")]
    NoPlist {
        /// The job's label.
        label: String,
    },
    /// The job was submitted (SMAppService or another process), not loaded
    /// from a plist file: there is nothing to capture, restore or bootstrap.
    #[error(
        "`{label}` was registered by {by} (SMAppService or another process), not from a plist file: there is no plist to roll back to or bootstrap from; re-register it from the app that owns it"
    )]
    Submitted {
        /// The job's label.
        label: String,
        /// Who submitted it (`smd.553`).
        by: String,
    },
    /// A plist could not be read, parsed or written.
    #[error("plist {path}: {source}")]
    Plist {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: plist::Error,
    },
    /// A file could not be read, renamed or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl LaunchdError {
    /// launchctl's exit code, when it ran and failed.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            LaunchdError::Failed { code, .. } => Some(*code),
            _ => None,
        }
    }
}
