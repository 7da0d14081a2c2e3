//! The per-service recovery policy: thresholds, attempts, windows and timers.

use std::time::Duration;

/// When one probe is expected to report; drives staleness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTiming {
    /// Time between two runs of the probe.
    pub interval: Duration,
    /// The longest one run may take.
    pub timeout: Duration,
}

impl ProbeTiming {
    /// No observation within `2 × interval + timeout` means the probe's last word is stale.
    pub fn stale_after(&self) -> Duration {
        self.interval.saturating_mul(2).saturating_add(self.timeout)
    }
}

/// The longest flap delay (Kubernetes' CrashLoopBackOff cap), unless
/// `flap_backoff` itself is longer.
pub const FLAP_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// How one service is judged and recovered. Built from the validated config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Consecutive failed observations of one probe that open an incident.
    pub failure_threshold: u32,
    /// Consecutive successes of every probe that close an incident without action.
    pub success_threshold: u32,
    /// Grace after start during which normal failures do not count.
    pub start_period: Duration,
    /// Failed restarts each incident gets before rolling back.
    pub max_attempts: u32,
    /// Incidents within `flap_window` that make the next one flapping: it skips
    /// the restarts and goes straight to rollback (or escalation).
    pub flap_limit: u32,
    /// The sliding window in which incidents are counted for flapping.
    pub flap_window: Duration,
    /// Once flapping with nothing different to roll back to: the delay before
    /// the next incident's first restart; doubles for each further one, at
    /// most [`FLAP_BACKOFF_MAX`], and is forgotten after `flap_window` healthy.
    pub flap_backoff: Duration,
    /// Delay before the second attempt; doubles for each further one.
    pub backoff_base: Duration,
    /// Upper bound of one backoff delay.
    pub backoff_max: Duration,
    /// How long a restart or rollback has to show fresh successes before it counts as failed.
    pub recover_timeout: Duration,
    /// How often the probes are re-run while a recovery is being verified.
    pub verify_interval: Duration,
    /// How long a restart or rollback may run before it counts as failed (the
    /// shell's own timeouts should end it first: this is the core's backstop).
    pub action_timeout: Duration,
    /// How long to wait for a replacement of something that was removed before restoring it.
    pub replace_grace: Duration,
    /// The target can be restarted (false: watch only).
    pub can_restart: bool,
    /// The target can be rolled back (the executor may still find no different last known good).
    pub can_rollback: bool,
    /// A rollback cut short by a stop of medic is run again by the next one
    /// (a container's: stop, rename, create and start, each safe to repeat
    /// from the last known good spec); otherwise it is only verified.
    pub rollback_resumes: bool,
    /// One entry per probe, in config order.
    pub probes: Vec<ProbeTiming>,
}

impl Default for Policy {
    /// The defaults of DESIGN.md, with one 10 s / 2 s probe and a restartable target.
    fn default() -> Self {
        Self {
            failure_threshold: 3,
            success_threshold: 1,
            start_period: Duration::ZERO,
            max_attempts: 3,
            flap_limit: 3,
            flap_window: Duration::from_secs(600),
            flap_backoff: Duration::from_secs(10),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            recover_timeout: Duration::from_secs(60),
            verify_interval: Duration::from_secs(1),
            replace_grace: Duration::from_secs(30),
            action_timeout: Duration::from_secs(300),
            can_restart: true,
            can_rollback: true,
            rollback_resumes: false,
            probes: vec![ProbeTiming {
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(2),
            }],
        }
    }
}
