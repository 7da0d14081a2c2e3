//! medic's probes: http, tcp and exec, each built once from its config and
//! run on every interval; plus `run_command`, the one implementation of "run
//! an argv with a timeout, kill its process group, keep its output capped",
//! shared by exec probes and command targets.

mod command;
mod http;
mod tcp;

use medic_core::Observation;
use medic_core::config::{Probe, ProbeKind};

pub use command::{CommandOutcome, run_command};
pub use http::ClientPool;

/// A probe could not be built from its config.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Container and launch_agent probes are run by their adapters.
    #[error("{0} probes are run by their adapter, not medic-probe")]
    NotHere(&'static str),
    /// The CA file could not be read or parsed.
    #[error("cannot use CA file {path}: {message}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// One configured probe, ready to run.
#[derive(Debug)]
pub struct ProbeRunner {
    timeout: std::time::Duration,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Http(Box<http::HttpCheck>),
    Tcp(String),
    Exec(medic_core::config::ExecProbe),
}

impl ProbeRunner {
    /// Builds the runner; HTTP probes share clients from `clients`.
    pub fn new(probe: &Probe, clients: &ClientPool) -> Result<Self, ProbeError> {
        let kind = match &probe.kind {
            ProbeKind::Http(spec) => {
                Kind::Http(Box::new(http::HttpCheck::new((**spec).clone(), clients)?))
            }
            ProbeKind::Tcp(spec) => Kind::Tcp(spec.address.clone()),
            ProbeKind::Exec(spec) => Kind::Exec(spec.clone()),
            ProbeKind::Container => return Err(ProbeError::NotHere("container")),
            ProbeKind::LaunchAgent => return Err(ProbeError::NotHere("launch_agent")),
        };
        Ok(Self {
            timeout: probe.timeout,
            kind,
        })
    }

    /// Runs the probe once; never fails and never outlives its timeout.
    pub async fn check(&self) -> Observation {
        match &self.kind {
            Kind::Http(check) => check.run(self.timeout).await,
            Kind::Tcp(address) => tcp::check(address, self.timeout).await,
            Kind::Exec(spec) => command::check(spec, self.timeout).await,
        }
    }
}
