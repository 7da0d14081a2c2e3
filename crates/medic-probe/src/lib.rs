//! medic's probes: http, tcp and exec, each built once from its config and
//! run on every interval; plus `run_command`, the one implementation of "run
//! an argv with a timeout, kill its process group, keep its output capped",
//! shared by exec probes and command targets.
//!
//! Every probe returns an [`Observation`] and never takes longer than its
//! timeout (plus a short slack to kill and reap a command's process group).

mod command;
mod http;
pub mod reason;
mod tcp;

use std::time::Duration;

use medic_core::Observation;
use medic_core::config::{Probe, ProbeKind};

pub use command::{CommandOutcome, run_command};
pub use http::ClientPool;

/// A probe could not be built from its config.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Container and launch_agent probes are run by their adapters.
    #[error("{0} probes are handled by their adapter, not medic-probe")]
    NotHere(&'static str),
    /// The URL of an http probe does not parse.
    #[error("invalid URL `{url}`: {source}")]
    Url {
        /// The URL, with any password removed.
        url: String,
        /// Why it does not parse.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The method of an http probe is not an HTTP token.
    #[error("invalid HTTP method `{0}`")]
    Method(String),
    /// A header name or value of an http probe is not valid HTTP.
    #[error("invalid HTTP header `{0}`")]
    Header(String),
    /// The CA file could not be read.
    #[error("cannot read CA file {path}: {source}")]
    CaFileRead {
        /// The file.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The CA file holds no usable PEM certificate.
    #[error("CA file {path} holds no usable PEM certificate")]
    CaFileContent {
        /// The file.
        path: String,
        /// The parse error, when there was one.
        source: Option<reqwest::Error>,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    /// An exec probe has no command.
    #[error("an exec probe needs a command")]
    EmptyCommand,
}

/// Built once per probe from the config; cheap to call [`check`](Self::check) on every interval.
#[derive(Debug)]
pub struct ProbeRunner {
    timeout: Duration,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Http(Box<http::HttpCheck>),
    Tcp(String),
    Exec(medic_core::config::ExecProbe),
}

impl ProbeRunner {
    /// Builds the runner for an http, tcp or exec probe; http probes share
    /// clients from `clients`. Container and launch_agent probes are an error:
    /// their adapters run them.
    pub fn new(probe: &Probe, clients: &ClientPool) -> Result<Self, ProbeError> {
        let kind = match &probe.kind {
            ProbeKind::Http(spec) => Kind::Http(Box::new(http::HttpCheck::new(spec, clients)?)),
            ProbeKind::Tcp(spec) => Kind::Tcp(spec.address.clone()),
            ProbeKind::Exec(spec) if spec.argv.is_empty() => return Err(ProbeError::EmptyCommand),
            ProbeKind::Exec(spec) => Kind::Exec(spec.clone()),
            ProbeKind::Container => return Err(ProbeError::NotHere("container")),
            ProbeKind::LaunchAgent => return Err(ProbeError::NotHere("launch_agent")),
            ProbeKind::SystemdUnit => return Err(ProbeError::NotHere("systemd_unit")),
        };
        Ok(Self {
            timeout: probe.timeout,
            kind,
        })
    }

    /// The timeout every [`check`](Self::check) is bounded by.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs the probe once. Never panics, never returns an error (a broken
    /// service is a failed observation), never outlives the probe timeout
    /// (exec: plus a short slack to kill and reap the process group).
    pub async fn check(&self) -> Observation {
        match &self.kind {
            Kind::Http(check) => check.run(self.timeout).await,
            Kind::Tcp(address) => tcp::check(address, self.timeout).await,
            Kind::Exec(spec) => command::check(spec, self.timeout).await,
        }
    }
}

/// Milliseconds as evidence: a JSON integer.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
