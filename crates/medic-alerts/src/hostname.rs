//! This host's name, stamped on alerts (`host`), metrics and reports.

/// This host's name, for the `host` label and field: `gethostname(3)`, which
/// macOS answers as well as Linux (the files it used to read are Linux's alone).
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
