//! A unit's journal as medic reads it: `journalctl -o json` (so the static
//! binary needs no libsystemd), one line per entry with its priority named.

/// The journalctl program.
pub const JOURNALCTL: &str = "journalctl";

/// The argv that prints the last `lines` entries of `unit` as JSON, one
/// object a line (`--user-unit` for a unit of the user manager).
pub fn command(unit: &str, user: bool, lines: usize) -> Vec<String> {
    let which = if user { "--user-unit" } else { "--unit" };
    [
        JOURNALCTL,
        "--output=json",
        "--no-pager",
        "--quiet",
        which,
        unit,
        "--lines",
        &lines.to_string(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The entries of journalctl's JSON output as lines, oldest first:
/// `err: connection refused`. Lines that are not JSON objects (a truncated
/// last line) are skipped; a message that is not UTF-8 (journald sends it as
/// an array of bytes) is decoded lossily.
pub fn parse(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|entry| {
            let message = message(entry.get("MESSAGE")?)?;
            let priority = entry
                .get("PRIORITY")
                .and_then(|p| p.as_str())
                .and_then(|p| p.parse::<u8>().ok())
                .map_or("info", priority);
            Some(format!("{priority}: {message}"))
        })
        .collect()
}

fn message(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Array(bytes) => {
            let bytes: Vec<u8> = bytes
                .iter()
                .filter_map(|b| u8::try_from(b.as_u64()?).ok())
                .collect();
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        _ => None,
    }
}

/// syslog's name of a priority (`PRIORITY=3` is `err`).
fn priority(priority: u8) -> &'static str {
    match priority {
        0 => "emerg",
        1 => "alert",
        2 => "crit",
        3 => "err",
        4 => "warning",
        5 => "notice",
        6 => "info",
        _ => "debug",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_become_lines_with_their_priority() {
        let output = concat!(
            r#"{"MESSAGE":"Started api.service.","PRIORITY":"6","_PID":"1"}"#,
            "\n",
            r#"{"MESSAGE":"panic: listen tcp :8080: bind: address already in use","PRIORITY":"3"}"#,
            "\n",
            r#"{"MESSAGE":[104,105,255],"PRIORITY":"4"}"#,
            "\n",
            r#"{"MESSAGE":null}"#,
            "\n",
            r#"{"MESSAGE":"no priority"}"#,
            "\n",
            r#"{"MESSAGE":"cut sh"#,
        );
        assert_eq!(
            parse(output),
            [
                "info: Started api.service.",
                "err: panic: listen tcp :8080: bind: address already in use",
                "warning: hi\u{fffd}",
                "info: no priority",
            ]
        );
    }

    #[test]
    fn the_user_manager_has_its_own_flag() {
        assert_eq!(
            command("api.service", true, 20)[4..].join(" "),
            "--user-unit api.service --lines 20"
        );
        assert_eq!(command("api.service", false, 20)[4], "--unit");
    }
}
