//! The validated configuration: what the rest of medic works with. Built only by
//! [`super::parse`], so every value here has passed validation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use crate::policy::Policy;

/// A whole validated config file.
#[derive(Debug, Clone)]
pub struct Config {
    /// Daemon-wide settings (`[medic]`).
    pub medic: Settings,
    /// The services, in file order; names are unique.
    pub services: Vec<Service>,
    /// Notification sinks (`[[alert]]`), in file order; names are unique.
    pub alerts: Vec<AlertSink>,
    /// `[report]`: the scheduled digest, when configured.
    pub report: Option<ReportDigest>,
    /// What is valid but should change (deprecated keys), as `file:line: warning: …`.
    pub warnings: Vec<String>,
}

/// Daemon-wide settings from `[medic]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Where the state store and, unless set one by one, the logs live.
    pub state_dir: PathBuf,
    /// The recovery log (JSON Lines).
    pub recovery_log: PathBuf,
    /// The critical alerts file (JSON Lines).
    pub alerts_file: PathBuf,
    /// The control API's unix socket.
    pub control_socket: PathBuf,
    /// Who may use the control socket: its mode, owner and group.
    pub control_access: SocketAccess,
    /// The control API over TCP, with the bearer token it requires; off when `None`.
    pub control_tcp: Option<TcpControl>,
    /// Prometheus metrics and status page address; `None` when set to "".
    pub metrics_listen: Option<String>,
    /// Where the status page (`/`, `/api/status`) is served.
    pub status_listen: StatusListen,
    /// The web config file (exporter-toolkit format): TLS and basic auth for
    /// the metrics and status listeners, TLS for TCP control; read by the daemon.
    pub web_config: Option<PathBuf>,
    /// Where people reach the status page (`https://medic.host1.example/`); alerts link to it.
    pub external_url: Option<String>,
    /// Docker engine address; `None` means `DOCKER_HOST` or the local socket.
    pub docker_host: Option<String>,
    /// How often the Docker adapter lists and inspects everything, so missed events never hide a failure.
    pub reconcile_interval: Duration,
    /// How long medic waits for running actions at shutdown before logging them as interrupted.
    pub shutdown_grace: Duration,
    /// Services blind (e.g. Docker unreachable) longer than this raise one critical alert.
    pub blind_alert_after: Duration,
    /// Most restarts and rollbacks running at once, so a host-wide failure causes no restart storm.
    pub max_concurrent_actions: usize,
    /// Most probes running at once, so 10,000 of them starting (or hanging)
    /// together never hold 10,000 connections and their buffers.
    pub max_concurrent_probes: usize,
    /// The recovery log and the alerts file rotate past this many bytes.
    pub journal_max_size: u64,
    /// Rotated files kept of each (`recovery.jsonl.1` newest … `.N`).
    pub journal_keep: usize,
    /// When many services failing together are one storm (one summary, one alert).
    pub storm: crate::storm::StormRule,
}

/// Where the status page is served: it shows every incident's evidence, so a
/// listener opened for Prometheus can leave it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusListen {
    /// On `metrics_listen`, beside `/metrics` (`status_listen` unset).
    WithMetrics,
    /// On its own address; `metrics_listen` then serves `/metrics` alone.
    Own(String),
    /// Nowhere (`status_listen = ""`).
    Off,
}

/// Permissions applied to the control socket after it is bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketAccess {
    /// Permission bits (default 0o600: medic's user and root only).
    pub mode: u32,
    /// A user name to chown the socket to.
    pub owner: Option<String>,
    /// A group name to chown the socket to (with mode 0660, that group may use it).
    pub group: Option<String>,
}

/// The control API on a TCP address, for remote tools; every request needs the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpControl {
    /// Where to listen, e.g. "127.0.0.1:9465".
    pub listen: String,
    /// The file whose content (trimmed) is the bearer token; read by the daemon at start.
    pub token_file: PathBuf,
}

/// One service: a target to act on and the probes that judge it.
#[derive(Debug, Clone)]
pub struct Service {
    /// Unique name, used in logs, the CLI and the control API.
    pub name: String,
    /// What medic acts on; `None` means watch only.
    pub target: Option<Target>,
    /// How medic knows; never empty (a container or launch_agent target implies its probe).
    pub probes: Vec<Probe>,
    /// Thresholds, attempts and timers; shared with the unit and its state
    /// machine, so 10,000 services hold one copy each, not three.
    pub policy: Arc<Policy>,
    /// Services that must be healthy before this one is restarted.
    pub depends_on: Vec<String>,
    /// Availability objective (0.999 = 99.9 %), for the error budget in metrics.
    pub slo: f64,
    /// User labels (valid Prometheus label names) copied to metrics and alerts.
    pub labels: Vec<(String, String)>,
}

/// What medic acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A Docker container (or several, by selector).
    Container(ContainerTarget),
    /// A launchd job.
    LaunchAgent(LaunchAgentTarget),
    /// User-supplied restart and rollback commands.
    Command(CommandTarget),
    /// A systemd unit (or several, by pattern).
    SystemdUnit(SystemdUnitTarget),
}

/// A container target.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerTarget {
    /// Which containers.
    pub selector: ContainerSelector,
    /// Seconds Docker waits after SIGTERM before SIGKILL on restart.
    pub stop_timeout: Duration,
    /// What to do with a container that was stopped (not removed).
    pub on_stop: OnStop,
}

/// How a container target finds its containers.
#[derive(Debug, Clone, PartialEq)]
pub enum ContainerSelector {
    /// Exactly this container name.
    Name(String),
    /// Every container carrying all these labels (`key` or `key=value`).
    Labels(Vec<(String, Option<String>)>),
    /// The containers of one compose service.
    Compose {
        /// `com.docker.compose.project`
        project: String,
        /// `com.docker.compose.service`
        service: String,
    },
}

/// What to do with a stopped container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStop {
    /// Start it again (default): nothing watched disappears silently.
    Restore,
    /// Leave it stopped; someone stopped it on purpose.
    Leave,
}

/// A launchd job target.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchAgentTarget {
    /// Which jobs.
    pub selector: LabelSelector,
    /// `gui/<uid>`, `user/<uid>` or `system`; `None` means `gui/<uid>` of the current user.
    pub domain: Option<String>,
    /// The job's plist, when not found from launchctl output or the standard folders.
    pub plist: Option<PathBuf>,
    /// Whether a clean exit is the job done or the job down.
    pub expect: Expect,
}

/// What a job that is not running means when its last run ended cleanly
/// (`expect` in config; launch_agent and systemd_unit targets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expect {
    /// A clean exit (0, or a normal stop) is the job done: one-shot, scheduled
    /// and on-demand jobs finish, and read `idle`. The default.
    #[default]
    ExitedOk,
    /// The job is meant to stay up: not running is a failure, however it ended.
    Running,
}

/// Which launchd jobs a target covers.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelSelector {
    /// One job.
    Label(String),
    /// Every job whose label starts with this.
    Prefix(String),
}

/// A systemd unit target.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemdUnitTarget {
    /// Which units.
    pub selector: UnitSelector,
    /// The user's manager (`systemctl --user`) instead of the system's.
    pub user: bool,
    /// Whether a one-shot unit that exited 0 is done or down.
    pub expect: Expect,
}

/// Which systemd units a target covers.
#[derive(Debug, Clone, PartialEq)]
pub enum UnitSelector {
    /// One unit (`api.service`).
    Name(String),
    /// Every unit whose name matches this shell-style pattern (`app-*.service`).
    Pattern(String),
}

/// User-supplied commands.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandTarget {
    /// argv run to restart the service.
    pub restart: Vec<String>,
    /// argv run to roll back to the last known good version.
    pub rollback: Option<Vec<String>>,
    /// Longest a command may run before its process group is killed.
    pub timeout: Duration,
}

/// One probe of a service.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Time between two runs.
    pub interval: Duration,
    /// The longest one run may take.
    pub timeout: Duration,
    /// What the probe does.
    pub kind: ProbeKind,
}

impl Probe {
    /// The short kind name used in tables and logs.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ProbeKind::Container => "container",
            ProbeKind::LaunchAgent => "launch_agent",
            ProbeKind::SystemdUnit => "systemd_unit",
            ProbeKind::Http(_) => "http",
            ProbeKind::Tcp(_) => "tcp",
            ProbeKind::Exec(_) => "exec",
        }
    }
}

/// What a probe does.
#[derive(Debug, Clone)]
pub enum ProbeKind {
    /// State and Docker health of the target's containers.
    Container,
    /// State, pid and last exit of the target's launchd jobs.
    LaunchAgent,
    /// State, result, exit status and restarts of the target's systemd units.
    SystemdUnit,
    /// An HTTP request (behind an Arc: it is much larger than the other kinds,
    /// and the running probe shares it instead of copying its checks).
    Http(Arc<HttpProbe>),
    /// A TCP connect.
    Tcp(TcpProbe),
    /// A command.
    Exec(ExecProbe),
}

/// An HTTP probe.
#[derive(Debug, Clone)]
pub struct HttpProbe {
    /// http:// or https:// URL.
    pub url: String,
    /// Request method, upper case.
    pub method: String,
    /// Request headers; the values are secrets (`Authorization: Bearer …`).
    pub headers: Vec<(String, Secret)>,
    /// Accepted status codes; the default (any 2xx) is one list shared by every
    /// probe, not 200 bytes in each of 10,000.
    pub expect_status: Arc<[u16]>,
    /// The body must contain this text.
    pub body_contains: Option<String>,
    /// The body must match this regex.
    pub body_regex: Option<Regex>,
    /// The body parsed as JSON must have this value at this JSON pointer.
    pub json_pointer: Option<(String, serde_json::Value)>,
    /// Slower than this is a failure even with a good answer.
    pub max_latency: Option<Duration>,
    /// Verify TLS certificates.
    pub tls_verify: bool,
    /// An extra CA certificate (PEM) to trust.
    pub ca_file: Option<PathBuf>,
    /// Follow redirects (off by default: a redirect is usually a login page).
    pub follow_redirects: bool,
    /// Most bytes of the body read; the rest is discarded.
    pub max_body: u64,
}

/// A TCP connect probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpProbe {
    /// host:port
    pub address: String,
}

/// A command probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecProbe {
    /// argv; no shell unless the user writes one.
    pub argv: Vec<String>,
    /// The exit code that means healthy.
    pub expect_exit: i32,
    /// Most bytes of stdout+stderr kept as evidence.
    pub max_output: usize,
}

/// A value that must not be shown: a webhook URL, a token, an HMAC key, a
/// probe's header value.
/// Its `Debug` prints `<redacted>`; [`Secret::expose`] is the only way in.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a resolved secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One `[[alert]]` notification sink.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSink {
    /// Unique name.
    pub name: String,
    /// Where and how alerts go.
    pub kind: SinkKind,
    /// Lowest severity sent; the line that resolves an incident the sink was told about is always sent.
    pub min_severity: crate::Severity,
    /// Only these services (and `service/instance` units of them); `None`: all.
    pub services: Option<Vec<String>>,
    /// Per delivery attempt.
    pub timeout: Duration,
    /// Most alerts waiting for delivery.
    pub queue: usize,
    /// First retry delay (doubling, with jitter).
    pub retry_backoff: Duration,
    /// Longest retry delay.
    pub retry_backoff_max: Duration,
}

impl AlertSink {
    /// Whether alerts of `unit` (a service or `service/instance`) go to this sink.
    pub fn wants_service(&self, unit: &str) -> bool {
        let service = unit.split('/').next().unwrap_or(unit);
        self.services
            .as_ref()
            .is_none_or(|s| s.iter().any(|s| s == service || s == unit))
    }
}

/// The kinds of sink.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkKind {
    /// JSON POST of the alert line.
    Webhook {
        /// Where.
        url: Secret,
        /// Extra headers.
        headers: Vec<(String, Secret)>,
        /// Key for the `X-Medic-Signature` HMAC-SHA256 of the body.
        hmac_secret: Option<Secret>,
    },
    /// Slack-compatible incoming webhook: `{"text": …}`.
    Slack {
        /// Where.
        url: Secret,
        /// Extra headers.
        headers: Vec<(String, Secret)>,
    },
    /// Prometheus Alertmanager v2 API: one alert per incident.
    Alertmanager {
        /// Base URLs (`http://host:9093`), one per Alertmanager of a cluster;
        /// alerts go to `/api/v2/alerts` of each.
        urls: Vec<Secret>,
        /// Extra headers (e.g. `Authorization`).
        headers: Vec<(String, Secret)>,
        /// How often firing alerts are posted again.
        repeat_interval: Duration,
    },
    /// A command that gets the alert JSON on stdin.
    Exec {
        /// argv.
        command: Vec<Secret>,
    },
}

impl SinkKind {
    /// `webhook`, `slack`, `alertmanager` or `exec`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SinkKind::Webhook { .. } => "webhook",
            SinkKind::Slack { .. } => "slack",
            SinkKind::Alertmanager { .. } => "alertmanager",
            SinkKind::Exec { .. } => "exec",
        }
    }
}

/// `[report]`: send the Markdown report of the last `every` to `sinks`, once
/// per period, at period boundaries aligned to Monday 00:00 UTC.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportDigest {
    /// The period (and how often it is sent).
    pub every: Duration,
    /// Names of `[[alert]]` sinks.
    pub sinks: Vec<String>,
}
