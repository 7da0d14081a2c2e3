//! The names a person gives systemd's numbers: how a main process ended
//! (`ExecMainCode`), Linux signals, and exit codes (sysexits.h, the shell's
//! 126/127, and systemd's own 200–243 for a process it could not even start).

/// `ExecMainCode` values (`si_code` of the main process's `SIGCHLD`).
pub mod code {
    /// The process exited; `ExecMainStatus` is its exit status.
    pub const EXITED: i32 = 1;
    /// A signal killed it; `ExecMainStatus` is the signal.
    pub const KILLED: i32 = 2;
    /// A signal killed it and it dumped core; `ExecMainStatus` is the signal.
    pub const DUMPED: i32 = 3;
}

/// The name of a Linux signal.
pub fn signal(signal: i32) -> Option<&'static str> {
    Some(match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        31 => "SIGSYS",
        _ => return None,
    })
}

/// The conventional name of an exit code, when it has one.
pub fn exit_code(code: i32) -> Option<&'static str> {
    Some(match code {
        64 => "EX_USAGE",
        65 => "EX_DATAERR",
        66 => "EX_NOINPUT",
        69 => "EX_UNAVAILABLE",
        70 => "EX_SOFTWARE",
        71 => "EX_OSERR",
        74 => "EX_IOERR",
        75 => "EX_TEMPFAIL",
        77 => "EX_NOPERM",
        78 => "EX_CONFIG",
        126 => "cannot execute",
        127 => "command not found",
        200 => "systemd could not change to WorkingDirectory=",
        203 => "systemd could not execute ExecStart= (missing or not executable)",
        209 => "systemd could not set up standard output",
        217 => "systemd could not switch to User=",
        226 => "systemd could not set up the unit's namespace",
        _ => return None,
    })
}

/// How the main process ended, in words: "exited 3", "exited 78 (EX_CONFIG)",
/// "killed by signal 9 (SIGKILL)", "dumped core on signal 11 (SIGSEGV)";
/// `None` when it never ran.
pub fn main_exit(code: i32, status: i32) -> Option<String> {
    let named = |name: Option<&str>| name.map(|n| format!(" ({n})")).unwrap_or_default();
    match code {
        code::EXITED => Some(format!("exited {status}{}", named(exit_code(status)))),
        code::KILLED => Some(format!(
            "killed by signal {status}{}",
            named(signal(status))
        )),
        code::DUMPED => Some(format!(
            "dumped core on signal {status}{}",
            named(signal(status))
        )),
        _ => None,
    }
}

/// What systemd's `Result` of a service says, for a person.
pub fn result(result: &str) -> Option<&'static str> {
    Some(match result {
        "exit-code" => "its main process exited with an error",
        "signal" => "its main process was killed by a signal",
        "core-dump" => "its main process dumped core",
        "timeout" => "it timed out (start, stop or runtime)",
        "watchdog" => "its watchdog expired",
        "start-limit-hit" => {
            "start-limit-hit: it was started too often too quickly, and systemd refuses to start it again until its failed state is reset"
        }
        "resources" => "systemd could not set up its resources",
        "oom-kill" => "the kernel's OOM killer killed it",
        "protocol" => "it broke the service protocol (no PID file, no READY=1)",
        "exec-condition" => "its ExecCondition= failed",
        _ => return None,
    })
}
