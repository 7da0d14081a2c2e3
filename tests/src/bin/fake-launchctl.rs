//! A fake `launchctl` for the end-to-end tests on Linux: keeps launchd's state
//! in `$FAKE_LAUNCHCTL_DIR` and answers `print`, `list`, `kickstart`,
//! `bootstrap` and `bootout` in the real formats and with the real exit codes
//! (see crates/medic-launchd/tests/fixtures). A job really runs: its
//! ProgramArguments are started under a small detached supervisor (this binary
//! with `__run`) that records the pid and, when the program ends, its exit code
//! or signal. Like the real one, `bootout` returns before the job is torn down.
//!
//! State of a job, in `$FAKE_LAUNCHCTL_DIR/jobs/<domain with / as _>/<label>/`:
//! `plist` (the path it was loaded from), `runs`, `pid` (while it runs),
//! `exit` (`code N` or `signal N`), `tearing` (after bootout, until it is gone).
//! `gui/<uid>` exists only when `$FAKE_LAUNCHCTL_DIR/gui` does (no GUI login otherwise).
//! With `$FAKE_LAUNCHCTL_LEGACY` set it has no `print`, like OS X 10.9.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The longest the fake waits for a job it started or killed to report.
const WAIT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(root) = std::env::var_os("FAKE_LAUNCHCTL_DIR").map(PathBuf::from) else {
        eprintln!("fake launchctl: FAKE_LAUNCHCTL_DIR is not set");
        return ExitCode::from(64);
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let legacy = std::env::var_os("FAKE_LAUNCHCTL_LEGACY").is_some();
    let code = match args.as_slice() {
        // The launchctl of OS X 10.9 and older: no `print`, only `list`.
        ["print", _] if legacy => {
            eprintln!("Unrecognized subcommand: print");
            64
        }
        ["print", target] => print(&root, target),
        ["list"] => list_all(&root),
        ["list", label] => list(&root, label),
        ["kickstart", "-k", target] | ["kickstart", target] => {
            kickstart(&root, target, args.contains(&"-k"))
        }
        ["bootstrap", domain, plist] => bootstrap(&root, domain, Path::new(plist)),
        ["bootout", target] => bootout(&root, target),
        ["__run", job] => supervise(Path::new(job)),
        ["__teardown", job] => teardown(Path::new(job)),
        _ => {
            eprintln!("Unrecognized subcommand: {}", args.join(" "));
            64
        }
    };
    ExitCode::from(code)
}

fn job_dir(root: &Path, domain: &str, label: &str) -> PathBuf {
    root.join("jobs").join(domain.replace('/', "_")).join(label)
}

fn split(target: &str) -> Option<(String, String)> {
    // gui/501/com.x, user/501/com.x, system/com.x
    let parts: Vec<&str> = target.splitn(3, '/').collect();
    match parts.as_slice() {
        ["system", label] => Some(("system".into(), (*label).into())),
        [kind, uid, label] => Some((format!("{kind}/{uid}"), (*label).into())),
        _ => None,
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn not_found(label: &str, domain: &str) -> u8 {
    eprintln!("Bad request.\nCould not find service \"{label}\" in domain for user {domain}");
    113
}

fn print(root: &Path, target: &str) -> u8 {
    let Some((domain, label)) = split(target) else {
        if target.starts_with("gui/") && !root.join("gui").exists() {
            eprintln!("Bad request.\nCould not find domain for port identifier: {target}");
            return 113;
        }
        println!("{target} = {{\n\ttype = domain\n}}");
        return 0;
    };
    let dir = job_dir(root, &domain, &label);
    let Some(plist_path) = read(&dir.join("plist")) else {
        return not_found(&label, &domain);
    };
    let plist = Plist::read(Path::new(&plist_path));
    let pid = running_pid(&dir);
    let mut out = format!(
        "{target} = {{\n\tactive count = {}\n",
        u8::from(pid.is_some())
    );
    out += &format!("\tpath = {plist_path}\n\ttype = LaunchAgent\n");
    out += &format!(
        "\tstate = {}\n\n",
        if pid.is_some() {
            "running"
        } else {
            "not running"
        }
    );
    if let Some(program) = plist.args.first() {
        out += &format!("\tprogram = {program}\n\targuments = {{\n");
        for arg in &plist.args {
            out += &format!("\t\t{arg}\n");
        }
        out += "\t}\n\n";
    }
    if let Some(path) = &plist.stdout {
        out += &format!("\tstdout path = {path}\n");
    }
    if let Some(path) = &plist.stderr {
        out += &format!("\tstderr path = {path}\n");
    }
    out += &format!("\tenvironment = {{\n\t\tXPC_SERVICE_NAME => {label}\n\t}}\n\n");
    out += &format!("\tdomain = {domain} [100005]\n");
    if let Some(interval) = plist.start_interval {
        out += &format!("\trun interval = {interval} seconds\n");
    }
    out += &format!(
        "\truns = {}\n",
        read(&dir.join("runs")).unwrap_or("0".into())
    );
    if let Some(pid) = pid {
        out += &format!("\tpid = {pid}\n");
    }
    match last_exit(&dir) {
        Some(Exit::Code(code)) => out += &format!("\tlast exit code = {}\n", named(code)),
        Some(Exit::Signal(signal)) => {
            out += &format!(
                "\tlast terminating signal = {}: {signal}\n",
                signal_name(signal)
            );
        }
        Some(Exit::SpawnFailed(code)) => out += &format!("\tlast exit code = {}\n", named(code)),
        None => out += "\tlast exit code = (never exited)\n",
    }
    // A nested block with its own state, as real output has (resource coalition).
    out += "\n\tresource coalition = {\n\t\tID = 1348\n\t\ttype = resource\n\t\tstate = active\n\t\tactive count = 1\n\t}\n\n";
    let job_state = match (pid, last_exit(&dir)) {
        (Some(_), _) => "running",
        (None, Some(Exit::SpawnFailed(_))) => "spawn failed",
        (None, Some(_)) => "exited",
        (None, None) => "",
    };
    if !job_state.is_empty() {
        out += &format!("\tjob state = {job_state}\n");
    }
    out += "\tspawn type = daemon (3)\n";
    let mut properties = Vec::new();
    if plist.keep_alive {
        properties.push("keepalive");
    }
    if plist.run_at_load {
        properties.push("runatload");
    }
    properties.push("inferred program");
    out += &format!("\tproperties = {}\n}}\n", properties.join(" | "));
    print!("{out}");
    0
}

/// An exit code as recent macOS prints it: `78: EX_CONFIG` for the sysexits.h codes.
fn named(code: i32) -> String {
    const SYSEXITS: [&str; 15] = [
        "EX_USAGE",
        "EX_DATAERR",
        "EX_NOINPUT",
        "EX_NOUSER",
        "EX_NOHOST",
        "EX_UNAVAILABLE",
        "EX_SOFTWARE",
        "EX_OSERR",
        "EX_OSFILE",
        "EX_CANTCREAT",
        "EX_IOERR",
        "EX_TEMPFAIL",
        "EX_PROTOCOL",
        "EX_NOPERM",
        "EX_CONFIG",
    ];
    match usize::try_from(code - 64)
        .ok()
        .and_then(|i| SYSEXITS.get(i))
    {
        Some(name) => format!("{code}: {name}"),
        None => code.to_string(),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        6 => "Abort trap",
        9 => "Killed",
        15 => "Terminated",
        _ => "Signal",
    }
}

enum Exit {
    Code(i32),
    Signal(i32),
    /// launchd could not start the program at all (`job state = spawn failed`).
    SpawnFailed(i32),
}

fn last_exit(dir: &Path) -> Option<Exit> {
    let text = read(&dir.join("exit"))?;
    let (kind, number) = text.split_once(' ')?;
    let number = number.parse().ok()?;
    Some(match kind {
        "signal" => Exit::Signal(number),
        "spawnfail" => Exit::SpawnFailed(number),
        _ => Exit::Code(number),
    })
}

fn running_pid(dir: &Path) -> Option<i32> {
    let pid: i32 = read(&dir.join("pid"))?.parse().ok()?;
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    alive.then_some(pid)
}

/// Every loaded job: (domain dir name, label, job dir).
fn jobs(root: &Path) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    let Ok(domains) = std::fs::read_dir(root.join("jobs")) else {
        return found;
    };
    for domain in domains.flatten() {
        let Ok(labels) = std::fs::read_dir(domain.path()) else {
            continue;
        };
        for job in labels.flatten() {
            if job.path().join("plist").exists() {
                found.push((job.file_name().to_string_lossy().into_owned(), job.path()));
            }
        }
    }
    found.sort();
    found
}

fn list_all(root: &Path) -> u8 {
    println!("PID\tStatus\tLabel");
    for (label, dir) in jobs(root) {
        let pid = running_pid(&dir).map_or("-".to_owned(), |p| p.to_string());
        let status = match last_exit(&dir) {
            Some(Exit::Code(code) | Exit::SpawnFailed(code)) => code.to_string(),
            Some(Exit::Signal(signal)) => format!("-{signal}"),
            None => "0".into(),
        };
        println!("{pid}\t{status}\t{label}");
    }
    0
}

fn list(root: &Path, label: &str) -> u8 {
    let Some((_, dir)) = jobs(root).into_iter().find(|(l, _)| l == label) else {
        eprintln!("Could not find service \"{label}\" in domain for port");
        return 113;
    };
    let plist = Plist::read(Path::new(&read(&dir.join("plist")).unwrap_or_default()));
    let mut out = String::from("{\n");
    if let Some(path) = &plist.stdout {
        out += &format!("\t\"StandardOutPath\" = \"{path}\";\n");
    }
    out += "\t\"LimitLoadToSessionType\" = \"Aqua\";\n";
    if let Some(path) = &plist.stderr {
        out += &format!("\t\"StandardErrorPath\" = \"{path}\";\n");
    }
    // KeepAlive by its legacy name, inverted, as launchctl list shows it.
    out += &format!(
        "\t\"Label\" = \"{label}\";\n\t\"OnDemand\" = {};\n",
        !plist.keep_alive
    );
    let status = match last_exit(&dir) {
        Some(Exit::Code(code) | Exit::SpawnFailed(code)) => code << 8,
        Some(Exit::Signal(signal)) => signal,
        None => 0,
    };
    out += &format!("\t\"LastExitStatus\" = {status};\n");
    if let Some(pid) = running_pid(&dir) {
        out += &format!("\t\"PID\" = {pid};\n");
    }
    out += "\t\"ProgramArguments\" = (\n";
    for arg in &plist.args {
        out += &format!("\t\t\"{arg}\";\n");
    }
    out += "\t);\n};\n";
    print!("{out}");
    0
}

fn kickstart(root: &Path, target: &str, kill: bool) -> u8 {
    let Some((domain, label)) = split(target) else {
        eprintln!("Unrecognized target specifier.");
        return 64;
    };
    let dir = job_dir(root, &domain, &label);
    if !dir.join("plist").exists() {
        return not_found(&label, &domain);
    }
    if running_pid(&dir).is_some() {
        if !kill {
            return 0;
        }
        stop(&dir, nix::sys::signal::Signal::SIGKILL);
    }
    start(&dir)
}

fn bootstrap(root: &Path, domain: &str, plist_path: &Path) -> u8 {
    let plist = Plist::read(plist_path);
    let Some(label) = plist.label else {
        eprintln!("Bootstrap failed: 5: Input/output error");
        return 5;
    };
    let dir = job_dir(root, domain, &label);
    if dir.join("plist").exists() {
        // Already loaded, or still being torn down after a bootout.
        eprintln!("Bootstrap failed: 5: Input/output error");
        return 5;
    }
    std::fs::create_dir_all(&dir).expect("create the job dir");
    for stale in ["runs", "pid", "exit"] {
        std::fs::remove_file(dir.join(stale)).ok();
    }
    std::fs::write(dir.join("plist"), plist_path.display().to_string()).expect("write plist");
    if plist.run_at_load { start(&dir) } else { 0 }
}

fn bootout(root: &Path, target: &str) -> u8 {
    let Some((domain, label)) = split(target) else {
        eprintln!("Unrecognized target specifier.");
        return 64;
    };
    let dir = job_dir(root, &domain, &label);
    if !dir.join("plist").exists() {
        eprintln!("Boot-out failed: 3: No such process");
        return 3;
    }
    std::fs::write(dir.join("tearing"), "").ok();
    // Returns at once; the job goes away a little later, as with the real launchctl.
    #[expect(
        clippy::zombie_processes,
        reason = "detached on purpose: it outlives this process and init reaps it"
    )]
    Command::new(std::env::current_exe().expect("own path"))
        .arg("__teardown")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start the teardown");
    0
}

/// A moment after bootout returned, kills the job's program and unloads it.
fn teardown(dir: &Path) -> u8 {
    std::thread::sleep(Duration::from_millis(200));
    stop(dir, nix::sys::signal::Signal::SIGTERM);
    std::fs::remove_dir_all(dir).ok();
    0
}

/// Signals the running program and waits until its supervisor recorded the exit.
fn stop(dir: &Path, signal: nix::sys::signal::Signal) {
    let Some(pid) = running_pid(dir) else {
        return;
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).ok();
    wait_for(|| !dir.join("pid").exists());
}

/// Starts the job's program under a detached supervisor; returns once it runs or ended.
fn start(dir: &Path) -> u8 {
    let runs: u64 = read(&dir.join("runs"))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    std::fs::write(dir.join("runs"), (runs + 1).to_string()).ok();
    std::fs::remove_file(dir.join("exit")).ok();
    let spawned = Command::new(std::env::current_exe().expect("own path"))
        .arg("__run")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    if let Err(error) = spawned {
        eprintln!("Could not start the job: {error}");
        return 5;
    }
    wait_for(|| dir.join("pid").exists() || dir.join("exit").exists());
    0
}

fn wait_for(mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() && start.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The supervisor of one run: starts the program, records its pid and how it ended.
fn supervise(dir: &Path) -> u8 {
    let plist = Plist::read(Path::new(&read(&dir.join("plist")).unwrap_or_default()));
    let Some((program, args)) = plist.args.split_first() else {
        std::fs::write(dir.join("exit"), "spawnfail 78").ok();
        return 0;
    };
    let log = |path: &Option<String>| match path {
        Some(path) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_or(Stdio::null(), Stdio::from),
        None => Stdio::null(),
    };
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log(&plist.stdout))
        .stderr(log(&plist.stderr))
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(_) => {
            std::fs::write(dir.join("exit"), "spawnfail 78").ok();
            return 0;
        }
    };
    let temp = dir.join("pid.tmp");
    std::fs::write(&temp, child.id().to_string()).ok();
    std::fs::rename(&temp, dir.join("pid")).ok();
    let status = child.wait().expect("wait for the job");
    let exit = match (status.code(), status.signal()) {
        (Some(code), _) => format!("code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => "code 0".into(),
    };
    std::fs::write(dir.join("exit"), exit).ok();
    std::fs::remove_file(dir.join("pid")).ok();
    0
}

/// What the fake needs from a plist.
#[derive(Default)]
struct Plist {
    label: Option<String>,
    args: Vec<String>,
    stdout: Option<String>,
    stderr: Option<String>,
    run_at_load: bool,
    /// `KeepAlive = true` (a KeepAlive dictionary is conditional, and not this).
    keep_alive: bool,
    start_interval: Option<u64>,
}

impl Plist {
    fn read(path: &Path) -> Self {
        let Ok(value) = plist::Value::from_file(path) else {
            return Self::default();
        };
        let Some(dict) = value.as_dictionary() else {
            return Self::default();
        };
        let string = |key: &str| dict.get(key).and_then(|v| v.as_string()).map(str::to_owned);
        let mut args: Vec<String> = dict
            .get("ProgramArguments")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_string().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if args.is_empty()
            && let Some(program) = string("Program")
        {
            args.push(program);
        }
        Self {
            label: string("Label"),
            args,
            stdout: string("StandardOutPath"),
            stderr: string("StandardErrorPath"),
            run_at_load: dict
                .get("RunAtLoad")
                .and_then(|v| v.as_boolean())
                .unwrap_or(false)
                || dict.contains_key("KeepAlive"),
            keep_alive: dict
                .get("KeepAlive")
                .and_then(|v| v.as_boolean())
                .unwrap_or(false),
            start_interval: dict
                .get("StartInterval")
                .and_then(|v| v.as_unsigned_integer()),
        }
    }
}
