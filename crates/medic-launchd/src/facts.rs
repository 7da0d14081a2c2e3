//! What launchctl says about one job, parsed from `launchctl print` or
//! `launchctl list <label>`, and the verdict a person reading it would draw.
//!
//! Neither output is an official format; `tests/fixtures` holds real captures
//! from macOS 10.15 to 26 with their sources. `print` is read by top-level keys
//! only: nested blocks (`endpoints`, `resource coalition`, `event triggers`)
//! carry their own `pid` and `state = active` lines that are not the job's.
//! Older macOS prints empty `event triggers = { }` and `sockets = { }` blocks
//! for every job, so a block counts as a trigger only when something is in it.
//! Its `properties` are a `|`-separated line on macOS 11 and later
//! (`keepalive | runatload | penalty box`) and a block of `name = 0|1` lines
//! before; both are read. What medic concludes from the facts is in `verdict.rs`.

use std::path::PathBuf;

use crate::names;

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

    /// "exited 78 (EX_CONFIG)", "killed by signal 9 (SIGKILL)", "never exited".
    pub fn describe(self, printed_name: Option<&str>) -> String {
        match self {
            LastExit::Never => "never exited".into(),
            LastExit::Code(code) => match printed_name.or(names::exit_code(code)) {
                Some(name) => format!("exited {code} ({name})"),
                None => format!("exited {code}"),
            },
            LastExit::Signal(signal) => match names::signal(signal) {
                Some(name) => format!("killed by signal {signal} ({name})"),
                None => format!("killed by signal {signal}"),
            },
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
    /// `running`, `not running`, `spawn scheduled`, `xpcproxy`, … (`print` only;
    /// `list` implies it from the pid).
    pub state: Option<String>,
    /// `job state = spawn failed | exited | running | …` (recent macOS).
    pub job_state: Option<String>,
    /// `active count`: 1 while launchd holds the job active (running or being spawned).
    pub active_count: Option<u32>,
    /// The pid while it runs.
    pub pid: Option<u32>,
    /// How its last run ended, when launchctl says.
    pub last_exit: Option<LastExit>,
    /// The name launchctl printed beside the exit code (`78: EX_CONFIG`,
    /// `134: Abort trap`) or the signal (`Killed: 9`).
    pub exit_name: Option<String>,
    /// `last exit reason` (OS_REASON_CODESIGNING, JETSAM_REASON_MEMORY_IDLE_EXIT …).
    pub exit_reason: Option<String>,
    /// How often it was started since it was loaded (`print` only).
    pub runs: Option<u64>,
    /// The plist it was loaded from (`path = …` in print), when it is a file.
    pub plist: Option<PathBuf>,
    /// Who registered it when it has no plist file: `path = (submitted by smd.553)`
    /// (SMAppService, or a process that submitted the job).
    pub submitted_by: Option<String>,
    /// Its StandardOutPath.
    pub stdout_path: Option<PathBuf>,
    /// Its StandardErrorPath.
    pub stderr_path: Option<PathBuf>,
    /// Something starts it later on its own: StartInterval, StartCalendarInterval,
    /// WatchPaths, QueueDirectories, sockets or other event triggers (non-empty).
    pub scheduled: bool,
    /// It is started on demand through Mach services or sockets (or it is an
    /// XPC service, `type = XPCService`), so launchd may stop it when idle and
    /// start it at the next request.
    pub on_demand: bool,
    /// It is meant to stay up: `keepalive` in `print`'s properties, `"OnDemand"
    /// = false` in `list <label>`, or `KeepAlive = true` in its plist.
    pub keep_alive: bool,
    /// launchd holds it back for exiting too soon too often (`penalty box` in
    /// `print`'s properties).
    pub throttled: bool,
    /// Where the facts came from.
    pub source: Source,
}

impl JobFacts {
    /// It runs now.
    pub fn is_running(&self) -> bool {
        let state = self.state.as_deref();
        self.pid.is_some_and(|p| p > 0) && matches!(state, None | Some("running"))
            || state == Some("running")
    }

    /// launchd is starting it right now: `xpcproxy` (between fork and exec) or
    /// `spawn scheduled` / `spawning` while it holds the job active.
    pub fn is_starting(&self) -> bool {
        match self.state.as_deref() {
            Some("xpcproxy" | "spawning") => true,
            Some("spawn scheduled") => {
                self.active_count.unwrap_or(0) > 0 || self.last_exit_was_clean()
            }
            _ => false,
        }
    }

    fn last_exit_was_clean(&self) -> bool {
        self.exit_reason.is_none()
            && matches!(
                self.last_exit,
                None | Some(LastExit::Never | LastExit::Code(0))
            )
    }

    /// launchd stopped it for being idle (jetsam's idle exit, or SIGKILL of an
    /// on-demand job as `launchctl list` shows it); it starts again on demand.
    pub fn idle_exit(&self) -> bool {
        if let Some(reason) = &self.exit_reason {
            return names::is_idle_exit(reason);
        }
        self.on_demand && self.last_exit == Some(LastExit::Signal(9))
    }

    /// Its plist is a file medic can read, restore and bootstrap from.
    pub fn has_plist_file(&self) -> bool {
        self.submitted_by.is_none()
    }

    /// The facts a person needs to see why a job is in its state, as evidence:
    /// state, job state, pid, runs, the exit code and its name or the signal
    /// and its name, the exit reason, and the plist or who submitted the job.
    pub fn evidence(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut map = serde_json::Map::new();
        let mut put = |key: &str, value: serde_json::Value| {
            map.insert(key.to_owned(), value);
        };
        if let Some(state) = &self.state {
            put("state", state.clone().into());
        }
        if let Some(job_state) = &self.job_state {
            put("job_state", job_state.clone().into());
        }
        if let Some(active) = self.active_count {
            put("active_count", active.into());
        }
        if let Some(pid) = self.pid {
            put("pid", pid.into());
        }
        if let Some(runs) = self.runs {
            put("runs", runs.into());
        }
        match self.last_exit {
            Some(LastExit::Code(code)) => {
                put("last_exit_code", code.into());
                let name = self.exit_name.as_deref().or(names::exit_code(code));
                if let Some(name) = name {
                    put("last_exit_name", name.into());
                }
            }
            Some(LastExit::Signal(signal)) => {
                put("last_signal", signal.into());
                if let Some(name) = names::signal(signal) {
                    put("last_signal_name", name.into());
                }
            }
            Some(LastExit::Never) | None => {}
        }
        if let Some(reason) = &self.exit_reason {
            put("exit_reason", reason.clone().into());
        }
        if self.keep_alive {
            put("keep_alive", true.into());
        }
        if self.throttled {
            put("throttled", true.into());
        }
        if let Some(line) = self.last_exit_line() {
            put("last_exit", line.into());
        }
        if let Some(plist) = &self.plist {
            put("plist", plist.display().to_string().into());
        }
        if let Some(by) = &self.submitted_by {
            put("submitted_by", by.clone().into());
        }
        map
    }

    /// One line on how the last run ended: "exited 78 (EX_CONFIG)",
    /// "OS_REASON_CODESIGNING", "killed by signal 9 (SIGKILL)".
    pub fn last_exit_line(&self) -> Option<String> {
        match (&self.exit_reason, self.last_exit) {
            (Some(reason), Some(exit @ (LastExit::Code(_) | LastExit::Signal(_)))) => Some(
                format!("{reason}, {}", exit.describe(self.exit_name.as_deref())),
            ),
            (Some(reason), _) => Some(reason.clone()),
            (None, Some(exit)) => Some(exit.describe(self.exit_name.as_deref())),
            (None, None) => None,
        }
    }
}

/// A nested block being read at depth 1 of `print`: its name and whether anything is in it.
struct OpenBlock {
    name: String,
    empty: bool,
}

impl OpenBlock {
    /// A `name = 1` line inside the old-style `properties = { … }` block.
    fn read_property(&self, facts: &mut JobFacts, line: &str) {
        if self.name != "properties" {
            return;
        }
        if let Some((name, "1")) = line.split_once(" = ").map(|(k, v)| (k.trim(), v.trim())) {
            read_property(facts, name);
        }
    }
}

/// Parses `launchctl print <domain>/<label>`: top-level keys only.
pub fn parse_print(label: &str, text: &str) -> JobFacts {
    let mut facts = empty(label, Source::Print);
    let mut depth = 0usize;
    let mut block: Option<OpenBlock> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed == "}" {
            depth = depth.saturating_sub(1);
            if depth == 1
                && let Some(closed) = block.take()
                && !closed.empty
            {
                mark_block(&mut facts, &closed.name);
            }
            continue;
        }
        if depth >= 2
            && !trimmed.is_empty()
            && let Some(open) = &mut block
        {
            open.empty = false;
            if depth == 2 {
                open.read_property(&mut facts, trimmed);
            }
        }
        if let Some(head) = trimmed.strip_suffix('{') {
            // A block opens; at depth 1 its name is a top-level key.
            if depth == 1 {
                let name = head.trim().trim_end_matches('=').trim();
                block = Some(OpenBlock {
                    name: name.to_owned(),
                    empty: true,
                });
            }
            depth += 1;
            continue;
        }
        // Depth 0 holds keys only when the output was filtered (`| grep`).
        if depth > 1 {
            continue;
        }
        let Some((key, value)) = trimmed.split_once(" = ") else {
            continue;
        };
        read_print_key(&mut facts, key.trim(), value.trim());
    }
    facts
}

fn read_print_key(facts: &mut JobFacts, key: &str, value: &str) {
    match key {
        "state" => facts.state = Some(value.to_owned()),
        "job state" => facts.job_state = Some(value.to_owned()),
        "active count" => facts.active_count = value.parse().ok(),
        "pid" => facts.pid = value.parse().ok(),
        "runs" => facts.runs = value.parse().ok(),
        "path" => match value
            .strip_prefix("(submitted by ")
            .and_then(|v| v.strip_suffix(')'))
        {
            Some(by) => facts.submitted_by = Some(by.to_owned()),
            None if value.starts_with('/') => facts.plist = Some(PathBuf::from(value)),
            None => {}
        },
        "stdout path" => facts.stdout_path = Some(PathBuf::from(value)),
        "stderr path" => facts.stderr_path = Some(PathBuf::from(value)),
        "last exit code" | "last exit status" => {
            // "78: EX_CONFIG", "134: Abort trap", "1", "(never exited)"
            let (number, name) = match value.split_once(':') {
                Some((n, name)) => (n.trim(), Some(name.trim())),
                None => (value, None),
            };
            match number.parse::<i32>() {
                Ok(code) if key == "last exit status" => {
                    facts.last_exit = Some(LastExit::from_wait_status(i64::from(code)));
                }
                Ok(code) => {
                    if !matches!(facts.last_exit, Some(LastExit::Signal(_))) {
                        facts.last_exit = Some(LastExit::Code(code));
                        facts.exit_name = name.filter(|n| !n.is_empty()).map(str::to_owned);
                    }
                }
                Err(_) if value.contains("never exited") => {
                    facts.last_exit.get_or_insert(LastExit::Never);
                }
                Err(_) => {}
            }
        }
        "last terminating signal" => {
            // "Killed: 9", "Terminated: 15", "Abort trap: 6"
            let (name, number) = value.rsplit_once(':').unwrap_or(("", value));
            if let Ok(signal) = number.trim().parse() {
                facts.last_exit = Some(LastExit::Signal(signal));
                facts.exit_name = Some(name.trim().to_owned()).filter(|n| !n.is_empty());
            }
        }
        "last exit reason" => facts.exit_reason = Some(value.to_owned()),
        "run interval" => facts.scheduled = true,
        "type" if value == "XPCService" => facts.on_demand = true,
        "properties" => value
            .split('|')
            .for_each(|name| read_property(facts, name.trim())),
        _ => {}
    }
}

/// One of the job's properties, named as `print` names them.
fn read_property(facts: &mut JobFacts, name: &str) {
    match name {
        "keepalive" => facts.keep_alive = true,
        "penalty box" => facts.throttled = true,
        _ => {}
    }
}

/// A non-empty top-level block that starts the job later or on demand.
fn mark_block(facts: &mut JobFacts, name: &str) {
    match name {
        "event triggers" | "watch paths" | "queue directories" => facts.scheduled = true,
        "sockets" | "endpoints" => facts.on_demand = true,
        _ => {}
    }
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
            if top {
                match unquote(key.trim()) {
                    "MachServices" | "Sockets" => facts.on_demand = true,
                    "WatchPaths" | "QueueDirectories" | "StartCalendarInterval" => {
                        facts.scheduled = true;
                    }
                    _ => {}
                }
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
            // The legacy name of KeepAlive, inverted: false means "keep it up".
            "OnDemand" => facts.keep_alive = value == "false",
            _ => {}
        }
    }
    let running = facts.pid.is_some();
    facts.state = Some(if running { "running" } else { "not running" }.into());
    facts
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
/// negative status is the negated signal that killed the job). Lines that are
/// not rows (a prompt, the header, a note) are skipped.
pub fn parse_list_table(text: &str) -> Vec<ListEntry> {
    text.lines()
        .filter_map(|line| {
            let mut columns = line.split('\t');
            let (pid, status, label) = (columns.next()?, columns.next()?, columns.next()?);
            let pid = pid.trim();
            if pid == "PID" || !(pid == "-" || pid.parse::<u32>().is_ok()) {
                return None;
            }
            Some(ListEntry {
                label: label.trim().to_owned(),
                pid: pid.parse().ok(),
                last_exit: status.trim().parse().ok().map(LastExit::from_list_column),
            })
        })
        .collect()
}

fn empty(label: &str, source: Source) -> JobFacts {
    JobFacts {
        label: label.to_owned(),
        state: None,
        job_state: None,
        active_count: None,
        pid: None,
        last_exit: None,
        exit_name: None,
        exit_reason: None,
        runs: None,
        plist: None,
        submitted_by: None,
        stdout_path: None,
        stderr_path: None,
        scheduled: false,
        on_demand: false,
        keep_alive: false,
        throttled: false,
        source,
    }
}
