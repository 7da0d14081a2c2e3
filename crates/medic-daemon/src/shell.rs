//! The vocabulary the supervisor loop shares with its adapters: the handles
//! every task gets (`Shell`), what wakes the loop (`Event`), and the control
//! requests with their answers. Adapters import this module, never `daemon`,
//! so the loop depends on its adapters and not the other way round.

use std::time::Duration;

use medic_core::{ActionResult, Observation};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Everything that can wake the supervisor loop.
#[derive(Debug)]
pub enum Event {
    /// A probe reported.
    Observed {
        /// The unit.
        unit: String,
        /// The probe's index.
        probe: usize,
        /// What it saw.
        observation: Observation,
    },
    /// A job the core launched ended (see `launcher.rs`).
    Finished {
        /// The unit.
        unit: String,
        /// Which job.
        job: medic_core::JobId,
        /// How.
        result: ActionResult,
    },
    /// The scheduled report digest is due: hand it to these sinks.
    Digest {
        /// The digest, as an alert line (kind `report`).
        line: medic_records::journal::AlertLine,
        /// The `[[alert]]` sinks it goes to.
        sinks: Vec<String>,
    },
    /// A unit's last known good spec was captured.
    LastKnownGood {
        /// The unit.
        unit: String,
        /// The spec.
        spec: serde_json::Value,
        /// The container whose network namespace it joins (`network_mode: container:X`).
        namespace_parent: Option<String>,
    },
    /// Docker reported a change to a container: check it now.
    ContainerChanged {
        /// The container's name.
        container: String,
        /// die, destroy, start, health_status, …
        action: String,
    },
    /// The Docker event stream is back after a break: check every container
    /// (what happened meanwhile was not streamed) and run the discovery.
    EngineReconnected,
    /// A container matching a service's selector exists: watch it as a unit of its own.
    Found {
        /// The service whose selector matched.
        service: String,
        /// The container's name.
        container: String,
        /// Its labels, for per-container overrides (`medic.max_attempts=5`, …).
        labels: std::collections::HashMap<String, String>,
    },
    /// A selector service's discovery round ended: how many instances its
    /// engine lists (each one was reported as `Found` first), or why it cannot list them.
    Sight {
        /// The selector service.
        service: String,
        /// The number of instances, or the error (`Docker engine unreachable: …`).
        sight: Result<usize, String>,
    },
    /// The containers a selector service matches now, listed for a reload or a deploy.
    Listed {
        /// The service.
        service: String,
        /// Why they were listed.
        why: Listing,
        /// Each container's name and labels, or why the engine could not list them.
        found: Result<Vec<Found>, String>,
    },
    /// A person's command from the control API.
    Control(ControlRequest),
}

/// One instance a discovery round or a listing found: its name (container or
/// launchd label) and labels (for `medic.*` overrides and Compose names).
pub type Found = (String, std::collections::HashMap<String, String>);

/// Why the instances of a selector service are being listed.
#[derive(Debug, Clone)]
pub enum Listing {
    /// A reload changed the selector: units it no longer matches are retired.
    Reload,
    /// A guarded deploy's command ended: the instances now are the new set
    /// (the deploy, by the name the person gave).
    Deploy(String),
}

/// A command for the supervisor loop with a channel for its answer.
#[derive(Debug)]
pub enum ControlRequest {
    /// Status of every unit, or of `only` these (sorted), as JSON (see `status::render`).
    Status {
        /// The units a name means; None for all.
        only: Option<Vec<String>>,
        /// The answer's bytes.
        reply: oneshot::Sender<Vec<u8>>,
    },
    /// Re-read the config file: Ok, or why it was rejected (the old config stays).
    Reload(oneshot::Sender<Result<(), String>>),
    /// The Prometheus exposition, in the format the scraper asked for.
    Metrics(medic_exposition::Format, oneshot::Sender<String>),
    /// The status page's figures.
    Page(oneshot::Sender<crate::page_snapshot::PageSnapshot>),
    /// `medic deploy` begins: Ok carries the version from before the deploy.
    DeployBegin {
        /// The unit.
        unit: String,
        /// The deploy command must report back within this.
        command_timeout: Duration,
        /// The new version must be healthy within this.
        verify_timeout: Duration,
        /// The version before, or why the deploy cannot begin.
        reply: oneshot::Sender<Result<Option<serde_json::Value>, String>>,
    },
    /// The deploy command ended; answered when the deploy has ended.
    DeployFinish {
        /// The unit.
        unit: String,
        /// How the command ended.
        result: ActionResult,
        /// Promoted, rolled back or escalated.
        reply: oneshot::Sender<DeployOutcome>,
    },
    /// The units a name means (a unit, a service's instances, a Compose service's).
    Resolve {
        /// The name as the person gave it.
        name: String,
        /// The units, empty when none.
        reply: oneshot::Sender<Vec<String>>,
    },
    /// `medic forget`: stop watching instances removed on purpose.
    Forget {
        /// An instance, or a service or Compose service for all its instances.
        name: String,
        /// The units retired, or why not.
        reply: oneshot::Sender<Result<Vec<String>, String>>,
    },
    /// pause / resume / reset / recover one unit.
    Unit {
        /// The unit (or service: applies to all its instances).
        unit: String,
        /// The command.
        control: ControlCommand,
        /// Ok, or why not.
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// A person's command on one unit.
#[derive(Debug, Clone, Copy)]
pub enum ControlCommand {
    /// Pause, optionally for a while.
    Pause(Option<Duration>),
    /// Resume.
    Resume,
    /// Clear escalation and attempts.
    Reset,
    /// Restart now.
    Recover,
}

/// Handles the daemon gives to its adapters.
#[derive(Debug, Clone)]
pub struct Shell {
    /// Where adapters send what they see.
    pub events: mpsc::Sender<Event>,
    /// Tracks every task, so shutdown waits for them.
    pub tracker: TaskTracker,
    /// Cancelled at shutdown.
    pub cancel: CancellationToken,
}

/// How a deploy ended: the answer `medic deploy` waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployOutcome {
    /// The new version is healthy; it becomes the last known good once it stays healthy.
    pub promoted: bool,
    /// One line: why it ended like this.
    pub message: String,
    /// The version before the deploy (image and image id for containers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
    /// The version running at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<serde_json::Value>,
    /// The incident a failed deploy opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// A deploy of several instances: how each one fared, before and after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceOutcome>,
}

/// How one instance fared in a deploy of several: part of the answer to `medic deploy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceOutcome {
    /// The unit (`service/container`).
    pub unit: String,
    /// `promoted`, `retired`, `rolled_back`, `escalated`, …
    pub outcome: String,
    /// Its version before the deploy (none for an instance the deploy created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
    /// Its version at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<serde_json::Value>,
}
