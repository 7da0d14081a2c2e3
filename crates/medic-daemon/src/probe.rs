//! One probe of a unit, whatever its kind (http, tcp, exec, container,
//! launchd job, systemd unit), behind one `run()`.

use std::sync::Arc;

use medic_core::Observation;
use medic_probe::ProbeRunner;

use crate::docker::ContainerCheck;
use crate::launchd::LaunchAgentCheck;
use crate::systemd::SystemdUnitCheck;
use crate::world::World;

/// One probe of a unit.
#[derive(Debug, Clone)]
pub enum Check {
    /// http, tcp or exec.
    Runner(Arc<ProbeRunner>),
    /// A container's state and Docker health.
    Container(ContainerCheck),
    /// A launchd job's state, pid and last exit.
    LaunchAgent(LaunchAgentCheck),
    /// A systemd unit's state, result and exit status.
    SystemdUnit(SystemdUnitCheck),
    /// Any probe of a unit in a world other than the host's (a simulation).
    World {
        /// The world.
        world: Arc<dyn World>,
        /// The unit.
        unit: Arc<str>,
        /// The probe's index.
        probe: usize,
    },
}

impl Check {
    /// Runs the probe once; never fails, never exceeds its timeout.
    pub async fn run(&self) -> Observation {
        match self {
            Check::Runner(runner) => runner.check().await,
            Check::Container(check) => check.run().await,
            Check::LaunchAgent(check) => check.run().await,
            Check::SystemdUnit(check) => check.run().await,
            Check::World { world, unit, probe } => world.check(unit, *probe).await,
        }
    }
}
