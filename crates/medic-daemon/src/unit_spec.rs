//! What a unit is: its name, policy, target and probes (built by `units`,
//! acted on by the executor).

use std::sync::Arc;
use std::time::Duration;

use medic_core::Policy;
use medic_core::config::{CommandTarget, ContainerTarget};

use crate::launchd::AgentJob;
use crate::probe::Check;
use crate::systemd::SystemdUnit;

/// One thing medic keeps alive: a service, or one container of a service whose selector matches several.
#[derive(Debug, Clone)]
pub struct UnitSpec {
    /// `service`, or `service/container` for a selector's instances.
    pub name: String,
    /// The service it belongs to.
    pub service: String,
    /// How it is judged and recovered.
    pub policy: Arc<Policy>,
    /// What acting on it means.
    pub target: UnitTarget,
    /// Its probes and their intervals, in policy order (the daemon hands
    /// them to the probe tasks, which own them from then on).
    pub checks: Vec<(Check, Duration)>,
    /// Each probe's kind (http, tcp, …), in the same order, for tables and metrics.
    pub probe_kinds: Vec<&'static str>,
    /// Units it must not be restarted before.
    pub depends_on: Vec<String>,
    /// The unit whose network namespace it joins (`network_mode: container:X`).
    pub namespace_parent: Option<String>,
}

/// What acting on a unit means.
#[derive(Debug, Clone)]
pub enum UnitTarget {
    /// Watch only.
    None,
    /// Run the user's commands.
    Command(CommandTarget),
    /// One Docker container, by name.
    Container {
        /// The container's name.
        container: String,
        /// Restart and restore settings.
        target: ContainerTarget,
    },
    /// One launchd job, by label.
    LaunchAgent(AgentJob),
    /// One systemd unit, by name.
    SystemdUnit(SystemdUnit),
}

impl UnitSpec {
    /// The container it is, for a container unit.
    pub fn container(&self) -> Option<&str> {
        match &self.target {
            UnitTarget::Container { container, .. } => Some(container),
            _ => None,
        }
    }
}
