//! What launchctl says about one job, parsed from `launchctl print` or
//! `launchctl list <label>`, and the verdict medic draws from it.
//!
//! Neither output is an official format. `print` is parsed by top-level keys
//! only: nested blocks (`endpoints = {`, `environment = {`, `event triggers`)
//! carry their own `pid` and `state` lines that must not be mistaken for the
//! job's. The `list <label>` dict is parsed the same way, top level only.

use std::path::PathBuf;

/// How a job's last run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastExit {
    /// It has not exited since it was loaded.
    Never,
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl LastExit {
    /// From a raw wait(2) status, as `launchctl list <label>` shows `LastExitStatus`
    /// (256 is exit 1, 9 is SIGKILL); a negative value is the negated signal, as in
    /// the `launchctl list` table.
    pub fn from_wait_status(status: i64) -> Self {
        if status < 0 {
            return Self::Signal(i32::try_from(-status).unwrap_or(i32::MAX));
        }
        let signal = status & 0x7f;
        if signal != 0 && signal != 0x7f {
            Self::Signal(signal as i32)
        } else {
            Self::Code(((status >> 8) & 0xff) as i32)
        }
    }

    /// From the status column of the `launchctl list` table: the exit code, or a
    /// negative number that is the negated signal that killed the job.
    pub fn from_list_column(status: i64) -> Self {
        if status < 0 {
            Self::Signal(i32::try_from(-status).unwrap_or(i32::MAX))
        } else {
            Self::Code(i32::try_from(status).unwrap_or(i32::MAX))
        }
    }
}

/// Which launchctl output the facts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `launchctl print <domain>/<label>` (macOS 10.10 and later).
    Print,
    /// `launchctl list <label>`, where print is not available.
    List,
}

/// What launchctl reports about one loaded job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFacts {
    /// The job's label.
    pub label: String,
    /// `running`, `not running`, `spawn scheduled`, … (`print` only; `list` implies it from the pid).
    pub state: Option<String>,
    /// The pid while it runs.
    pub pid: Option<u32>,
    /// How its last run ended, when launchctl says.
    pub last_exit: Option<LastExit>,
    /// Why it was last started or stopped, when launchctl says (`immediate reason`, `last exit reason`).
    pub reason: Option<String>,
    /// How often it was started since it was loaded (`print` only).
    pub runs: Option<u64>,
    /// The plist it was loaded from (`path = …` in print).
    pub plist: Option<PathBuf>,
    /// Its StandardOutPath.
    pub stdout_path: Option<PathBuf>,
    /// Its StandardErrorPath.
    pub stderr_path: Option<PathBuf>,
    /// Something starts it later on its own: StartInterval, StartCalendarInterval,
    /// WatchPaths, sockets, Mach services or other event triggers.
    pub scheduled: bool,
    /// Where the facts came from.
    pub source: Source,
}

impl JobFacts {
    /// It runs now.
    pub fn is_running(&self) -> bool {
        self.pid.is_some_and(|p| p > 0) || self.state.as_deref() == Some("running")
    }
}

/// medic's reading of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    /// Running.
    Healthy,
    /// Not running, last exit 0, and something starts it again (a schedule, a trigger).
    Idle,
    /// Not running after a non-zero exit or a signal, or not running with nothing to start it.
    Failed,
    /// Not loaded at all.
    Missing,
}

impl Classification {
    /// The lowercase word used in evidence, status and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Healthy => "healthy",
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
    /// "running (pid 123)", "exited with 3", "killed by signal 9", "not loaded".
    pub message: String,
}

/// Classifies a job from its facts; `None` means launchctl does not know the label.
pub fn classify(facts: Option<&JobFacts>) -> Verdict {
    let Some(facts) = facts else {
        return Verdict {
            class: Classification::Missing,
            message: "not loaded".into(),
        };
    };
    let (class, message) = match (facts.is_running(), facts.last_exit) {
        (true, _) => {
            let pid = facts.pid.map_or(String::new(), |p| format!(" (pid {p})"));
            (Classification::Healthy, format!("running{pid}"))
        }
        (false, Some(LastExit::Signal(signal))) => (
            Classification::Failed,
            format!("not running: killed by signal {signal}"),
        ),
        (false, Some(LastExit::Code(code))) if code != 0 => (
            Classification::Failed,
            format!("not running: exited with {code}"),
        ),
        (false, exit) if facts.scheduled => {
            let last = match exit {
                Some(LastExit::Code(_)) => "last exit 0",
                _ => "not run yet",
            };
            (
                Classification::Idle,
                format!("idle: not running, {last}, waits for its schedule"),
            )
        }
        (false, Some(LastExit::Code(_))) => (
            Classification::Failed,
            "not running: exited 0 and nothing starts it again".into(),
        ),
        (false, _) => (
            Classification::Failed,
            "not running and nothing starts it".into(),
        ),
    };
    Verdict { class, message }
}

/// Parses `launchctl print <domain>/<label>`: top-level keys only.
pub fn parse_print(label: &str, text: &str) -> JobFacts {
    let mut facts = empty(label, Source::Print);
    let mut depth = 0usize;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed == "}" {
            depth = depth.saturating_sub(1);
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('{') {
            // A block opens; at depth 1 its name is a top-level key.
            if depth == 1 {
                let name = head.trim().trim_end_matches('=').trim();
                if is_trigger_block(name) {
                    facts.scheduled = true;
                }
            }
            depth += 1;
            continue;
        }
        if depth != 1 {
            continue;
        }
        let Some((key, value)) = trimmed.split_once(" = ") else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "state" => facts.state = Some(value.to_owned()),
            "pid" => facts.pid = value.parse().ok(),
            "runs" => facts.runs = value.parse().ok(),
            "path" => facts.plist = Some(PathBuf::from(value)),
            "stdout path" => facts.stdout_path = Some(PathBuf::from(value)),
            "stderr path" => facts.stderr_path = Some(PathBuf::from(value)),
            "last exit code" => {
                facts.last_exit = match value.parse::<i32>() {
                    Ok(code) => Some(LastExit::Code(code)),
                    Err(_) if value.contains("never exited") => Some(LastExit::Never),
                    Err(_) => facts.last_exit,
                };
            }
            "last terminating signal" => {
                // "Killed: 9", "Terminated: 15", "Abort trap: 6"
                let number = value.rsplit(':').next().map(str::trim);
                if let Some(signal) = number.and_then(|n| n.parse().ok()) {
                    facts.last_exit = Some(LastExit::Signal(signal));
                }
                facts.reason = Some(value.to_owned());
            }
            "last exit reason" => facts.reason = Some(value.to_owned()),
            "immediate reason" => {
                facts.reason.get_or_insert_with(|| value.to_owned());
            }
            "run interval" => facts.scheduled = true,
            _ => {}
        }
    }
    facts
}

/// Event triggers, sockets, Mach services and watch paths start a job on demand.
fn is_trigger_block(name: &str) -> bool {
    matches!(
        name,
        "event triggers" | "sockets" | "watch paths" | "queue directories"
    )
}

/// Parses `launchctl list <label>`: the top-level keys of its dict.
pub fn parse_list(label: &str, text: &str) -> JobFacts {
    let mut facts = empty(label, Source::List);
    let mut depth = 0usize;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed == "};" || trimmed == ");" || trimmed == "}" || trimmed == ")" {
            depth = depth.saturating_sub(1);
            continue;
        }
        let Some((key, value)) = trimmed.split_once(" = ") else {
            if trimmed == "{" {
                depth += 1;
            }
            continue;
        };
        let value = value.trim().trim_end_matches(';').trim();
        let opens = value == "{" || value == "(";
        let top = depth == 1;
        if opens {
            if top && is_trigger_key(unquote(key.trim())) {
                facts.scheduled = true;
            }
            depth += 1;
            continue;
        }
        if !top {
            continue;
        }
        let value = unquote(value);
        match unquote(key.trim()) {
            "PID" => facts.pid = value.parse().ok(),
            "LastExitStatus" => {
                facts.last_exit = value.parse().ok().map(LastExit::from_wait_status);
            }
            "StandardOutPath" => facts.stdout_path = Some(PathBuf::from(value)),
            "StandardErrorPath" => facts.stderr_path = Some(PathBuf::from(value)),
            "StartInterval" | "StartCalendarInterval" => facts.scheduled = true,
            _ => {}
        }
    }
    facts.state = Some(
        if facts.pid.is_some() {
            "running"
        } else {
            "not running"
        }
        .into(),
    );
    facts
}

fn is_trigger_key(key: &str) -> bool {
    matches!(
        key,
        "Sockets" | "MachServices" | "WatchPaths" | "QueueDirectories" | "StartCalendarInterval"
    )
}

fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

/// One row of the `launchctl list` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// The job's label.
    pub label: String,
    /// The pid while it runs.
    pub pid: Option<u32>,
    /// Its last exit, when it has one.
    pub last_exit: Option<LastExit>,
}

/// Parses the `launchctl list` table (`PID\tStatus\tLabel`; `-` for none; a
/// negative status is the negated signal that killed the job).
pub fn parse_list_table(text: &str) -> Vec<ListEntry> {
    text.lines()
        .filter_map(|line| {
            let mut columns = line.split_whitespace();
            let (pid, status, label) = (columns.next()?, columns.next()?, columns.next()?);
            if pid == "PID" {
                return None;
            }
            Some(ListEntry {
                label: label.to_owned(),
                pid: pid.parse().ok(),
                last_exit: status.parse().ok().map(LastExit::from_list_column),
            })
        })
        .collect()
}

fn empty(label: &str, source: Source) -> JobFacts {
    JobFacts {
        label: label.to_owned(),
        state: None,
        pid: None,
        last_exit: None,
        reason: None,
        runs: None,
        plist: None,
        stdout_path: None,
        stderr_path: None,
        scheduled: false,
        source,
    }
}
