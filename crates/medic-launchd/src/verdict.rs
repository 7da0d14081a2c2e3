//! medic's reading of a job's facts, as a person reading launchctl would draw
//! it: running, starting, idle (done, waiting for a schedule or a request),
//! failed or missing — and what a clean exit means for this job (`Expect`).

use crate::facts::{JobFacts, LastExit};

/// What a clean end of this job means (the service's `expect` in medic's
/// config, which the daemon passes in: this crate imports no medic crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expect {
    /// A clean exit (0, or SIGTERM) is the job done: idle. The default.
    #[default]
    ExitedOk,
    /// The job must stay up: not running is a failure however it ended.
    Running,
}

/// medic's reading of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    /// Running.
    Healthy,
    /// launchd is spawning it right now (`xpcproxy`, `spawn scheduled` while active).
    Starting,
    /// Not running, and nothing is wrong: finished cleanly, between scheduled
    /// runs, waiting for a request, or stopped by launchd for being idle.
    Idle,
    /// Not running after a non-zero exit, a crash or a kill, an exit reason, a
    /// failed spawn, while throttled, or while it is meant to stay up.
    Failed,
    /// Not loaded at all.
    Missing,
}

impl Classification {
    /// The lowercase word used in evidence, status and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Healthy => "healthy",
            Classification::Starting => "starting",
            Classification::Idle => "idle",
            Classification::Failed => "failed",
            Classification::Missing => "missing",
        }
    }

    /// Healthy and idle jobs are fine.
    pub fn is_ok(self) -> bool {
        matches!(self, Classification::Healthy | Classification::Idle)
    }
}

/// A classification and one human line explaining it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The class.
    pub class: Classification,
    /// "running (pid 123)", "failed: spawn failed, exited 78 (EX_CONFIG), 22138 runs".
    pub message: String,
}

/// SIGTERM: how launchd and people stop a job (`launchctl stop`, `kill`,
/// bootout, shutdown). A run that ended on it ended as asked, like exit 0.
const NORMAL_STOP: i32 = 15;

/// Classifies a job from its facts as a person reading launchctl would;
/// `None` means launchctl does not know the label. A job that is not running
/// failed when its last run exited non-zero, crashed or was killed (any signal
/// but SIGTERM, and SIGKILL of an idle on-demand job), has an exit reason,
/// cannot be spawned, or is throttled. Otherwise it ended cleanly or has not
/// run yet: that is idle, unless it is meant to stay up (`KeepAlive`, or
/// `expect = "running"` in medic's config), which makes it failed.
pub fn classify(facts: Option<&JobFacts>, expect: Expect) -> Verdict {
    let Some(facts) = facts else {
        return verdict(Classification::Missing, "not loaded".into());
    };
    let runs = facts
        .runs
        .map(|r| format!(", {r} runs"))
        .unwrap_or_default();
    let last = facts.last_exit_line();
    if facts.is_running() {
        let pid = facts.pid.map_or(String::new(), |p| format!(" (pid {p})"));
        let previous = match &last {
            Some(line) if facts.last_exit != Some(LastExit::Never) => {
                format!("; previous run: {line}")
            }
            _ => String::new(),
        };
        return verdict(Classification::Healthy, format!("running{pid}{previous}"));
    }
    if facts.job_state.as_deref() == Some("spawn failed") {
        let why = last.map(|l| format!(", {l}")).unwrap_or_default();
        return verdict(
            Classification::Failed,
            format!("failed: launchd cannot start it (spawn failed{why}{runs})"),
        );
    }
    if facts.throttled {
        let why = last.map(|l| format!(", {l}")).unwrap_or_default();
        return verdict(
            Classification::Failed,
            format!("failed: launchd throttles it for exiting too soon (penalty box{why}{runs})"),
        );
    }
    if facts.is_starting() {
        let state = facts.state.as_deref().unwrap_or("spawning");
        return verdict(Classification::Starting, format!("starting ({state})"));
    }
    if facts.idle_exit() {
        let why = last.unwrap_or_else(|| "idle".into());
        return verdict(
            Classification::Idle,
            format!("idle: launchd stopped it when idle ({why}); it starts on demand"),
        );
    }
    let retrying = if facts.state.as_deref() == Some("spawn scheduled") {
        "; launchd retries it"
    } else {
        ""
    };
    let failed_exit = facts.exit_reason.is_some()
        || matches!(facts.last_exit, Some(LastExit::Signal(s)) if s != NORMAL_STOP)
        || matches!(facts.last_exit, Some(LastExit::Code(code)) if code != 0);
    if failed_exit {
        let line = last.unwrap_or_default();
        let state = if facts.state.is_some() {
            "not running, "
        } else {
            ""
        };
        return verdict(
            Classification::Failed,
            format!("failed: {state}{line}{runs}{retrying}"),
        );
    }
    // A clean end (exit 0, SIGTERM) or no run yet.
    let ended = match facts.last_exit {
        Some(exit @ (LastExit::Code(_) | LastExit::Signal(_))) => {
            exit.describe(facts.exit_name.as_deref())
        }
        Some(LastExit::Never) => "not run yet".into(),
        None => "no last exit known".into(),
    };
    let meant_to_stay_up = match (expect, facts.keep_alive) {
        (Expect::Running, _) => Some("expect = \"running\""),
        (Expect::ExitedOk, true) => Some("KeepAlive"),
        (Expect::ExitedOk, false) => None,
    };
    if let Some(why) = meant_to_stay_up {
        return verdict(
            Classification::Failed,
            format!("failed: not running ({ended}{runs}) but it is meant to stay up ({why})"),
        );
    }
    let waits = if facts.scheduled {
        "waits for its schedule"
    } else if facts.on_demand {
        "starts on demand"
    } else {
        "nothing starts it again until someone does (launchctl kickstart)"
    };
    verdict(
        Classification::Idle,
        format!("idle: not running, {ended}, {waits}"),
    )
}

fn verdict(class: Classification, message: String) -> Verdict {
    Verdict { class, message }
}
