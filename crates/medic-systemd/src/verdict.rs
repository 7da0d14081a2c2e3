//! medic's reading of a unit's facts, as a person reading `systemctl status`
//! would draw it: running, starting, idle (a one-shot job done), failed (how,
//! named), being restarted by systemd itself, or missing.

use crate::facts::UnitFacts;
use crate::names;

/// What a unit that is not running means when its last run ended cleanly
/// (the service's `expect` in medic's config, which the daemon passes in:
/// this crate imports no medic crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expect {
    /// A `Type=oneshot` unit that exited 0 is done: idle. The default.
    #[default]
    ExitedOk,
    /// The unit must stay up: not running is a failure however it ended.
    Running,
}

/// medic's reading of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    /// Active.
    Healthy,
    /// Activating, reloading or deactivating: systemd is in the middle of it.
    Starting,
    /// A one-shot unit whose last run exited 0 (or that has not run yet).
    Idle,
    /// Down: failed, or inactive while it should run.
    Failed,
    /// Down, and systemd restarts it itself (`Restart=`, sub-state `auto-restart`).
    Restarting,
    /// No unit file: systemd does not know it.
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
            Classification::Restarting => "restarting",
            Classification::Missing => "missing",
        }
    }

    /// Healthy and idle units are fine.
    pub fn is_ok(self) -> bool {
        matches!(self, Classification::Healthy | Classification::Idle)
    }
}

/// A classification and one human line explaining it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The class.
    pub class: Classification,
    /// "active (running, pid 123)", "failed: killed by signal 9 (SIGKILL)".
    pub message: String,
}

/// Classifies a unit from its facts. Not loaded is missing. Active is
/// healthy, except a one-shot job that stays active after it exited
/// (`RemainAfterExit=`), which is idle like one that went inactive after
/// exit 0. `auto-restart` is systemd restarting it itself. Activating,
/// reloading and deactivating are starting. Failed is failed, its result and
/// exit status or signal named; so is any other unit that is not running
/// (stopped, never started), or a one-shot one with `expect = "running"`.
pub fn classify(facts: &UnitFacts, expect: Expect) -> Verdict {
    if !facts.is_loaded() {
        return verdict(Classification::Missing, "not loaded: no unit file".into());
    }
    if facts.load_state == "masked" {
        return verdict(
            Classification::Failed,
            "masked: systemd will not start it".into(),
        );
    }
    let restarts = match facts.n_restarts {
        0 => String::new(),
        1 => ", restarted once by systemd".into(),
        n => format!(", restarted {n} times by systemd"),
    };
    let last = facts.last_exit();
    let oneshot_done = facts.service_type == "oneshot" && expect == Expect::ExitedOk;
    match (facts.active_state.as_str(), facts.sub_state.as_str()) {
        ("active", "exited") if oneshot_done && facts.ended_cleanly() => verdict(
            Classification::Idle,
            "finished: exited 0 (active, RemainAfterExit)".into(),
        ),
        ("active", sub) => {
            let pid = match facts.main_pid {
                0 => String::new(),
                pid => format!(", pid {pid}"),
            };
            verdict(
                Classification::Healthy,
                format!("active ({sub}{pid}){restarts}"),
            )
        }
        ("activating", "auto-restart") => {
            let why = last.map(|l| format!(": {l}")).unwrap_or_default();
            verdict(
                Classification::Restarting,
                format!(
                    "down{why}; systemd restarts it itself (Restart={}){restarts}",
                    facts.restart
                ),
            )
        }
        (state @ ("activating" | "reloading" | "deactivating"), sub) => {
            verdict(Classification::Starting, format!("{state} ({sub})"))
        }
        ("inactive", _) if oneshot_done && facts.ended_cleanly() => {
            let message = match last {
                Some(line) => format!("finished: {line}"),
                None => "inactive: has not run yet".into(),
            };
            verdict(Classification::Idle, message)
        }
        (state, sub) => verdict(Classification::Failed, failed_line(facts, state, sub)),
    }
}

/// "failed: killed by signal 9 (SIGKILL), restarted 2 times by systemd",
/// "failed: start-limit-hit: …", "inactive (dead): not running; last run exited 0".
fn failed_line(facts: &UnitFacts, state: &str, sub: &str) -> String {
    let last = facts.last_exit();
    if facts.result == "start-limit-hit" {
        let previous = last.map(|l| format!("; last run {l}")).unwrap_or_default();
        return format!(
            "failed: {}{previous}",
            names::result("start-limit-hit").unwrap_or("")
        );
    }
    let restarts = match facts.n_restarts {
        0 => String::new(),
        n => format!(" (after {n} restarts by systemd)"),
    };
    if state == "failed" {
        let how = match (last, names::result(&facts.result)) {
            (Some(line), _)
                if matches!(facts.result.as_str(), "exit-code" | "signal" | "core-dump") =>
            {
                line
            }
            (Some(line), Some(why)) => format!("{why}; last run {line}"),
            (None, Some(why)) => why.to_owned(),
            (last, None) => {
                let last = last.map(|l| format!("; last run {l}")).unwrap_or_default();
                format!("result {}{last}", facts.result)
            }
        };
        return format!("failed: {how}{restarts}");
    }
    let last = last.map(|l| format!("; last run {l}")).unwrap_or_default();
    format!("{state} ({sub}): not running{last}{restarts}")
}

fn verdict(class: Classification, message: String) -> Verdict {
    Verdict { class, message }
}
