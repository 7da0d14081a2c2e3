//! The names a person gives launchd's numbers: exit codes (sysexits.h, the
//! shell's 126/127 and 128 + signal), signals, and the exit reasons that mean
//! "stopped for being idle" rather than "broke".

/// The conventional name of an exit code, when it has one.
pub fn exit_code(code: i32) -> Option<&'static str> {
    Some(match code {
        64 => "EX_USAGE",
        65 => "EX_DATAERR",
        66 => "EX_NOINPUT",
        67 => "EX_NOUSER",
        68 => "EX_NOHOST",
        69 => "EX_UNAVAILABLE",
        70 => "EX_SOFTWARE",
        71 => "EX_OSERR",
        72 => "EX_OSFILE",
        73 => "EX_CANTCREAT",
        74 => "EX_IOERR",
        75 => "EX_TEMPFAIL",
        76 => "EX_PROTOCOL",
        77 => "EX_NOPERM",
        78 => "EX_CONFIG",
        126 => "cannot execute",
        127 => "command not found",
        129..=159 => return signal(code - 128),
        _ => return None,
    })
}

/// The name of a signal on macOS.
pub fn signal(signal: i32) -> Option<&'static str> {
    Some(match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGEMT",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGBUS",
        11 => "SIGSEGV",
        12 => "SIGSYS",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        30 => "SIGUSR1",
        31 => "SIGUSR2",
        _ => return None,
    })
}

/// An exit reason that says launchd (jetsam) stopped the job because it was
/// idle: normal for on-demand jobs, which start again at the next request.
pub fn is_idle_exit(reason: &str) -> bool {
    reason.starts_with("JETSAM_REASON_MEMORY_IDLE_EXIT")
        || reason.starts_with("JETSAM_REASON_MEMORY_LONGIDLE_EXIT")
}
