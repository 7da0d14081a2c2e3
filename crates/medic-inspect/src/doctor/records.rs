//! The lines of medic's append-only files (the recovery log, the alerts
//! file, the state store's change lines, the alert outbox): a line that does
//! not parse is skipped by every reader, so doctor names each with its file
//! and line number. A torn last line (medic killed mid-write) is not one:
//! the next start closes it.

use std::path::Path;

use medic_core::config::Config;
use medic_records::journal::{AlertLine, RecoveryLine};
use medic_records::lines::{self, BadLine};
use serde::de::DeserializeOwned;

use super::findings::Findings;

/// Bad lines named per file; the rest are counted.
const NAMED: usize = 3;

/// One finding per file that exists: every line readable, or the bad ones.
pub(super) fn check_records(config: &Config, out: &mut Findings) {
    let state_dir = &config.medic.state_dir;
    check::<RecoveryLine>("recovery log", &config.medic.recovery_log, out);
    check::<AlertLine>("alerts file", &config.medic.alerts_file, out);
    check::<medic_daemon::store::StoreChange>(
        "state store's change lines",
        &medic_daemon::store::changes_path(state_dir),
        out,
    );
    check::<medic_alerts::outbox::Record>(
        "alert outbox",
        &medic_alerts::outbox_path(state_dir),
        out,
    );
}

fn check<T: DeserializeOwned>(what: &str, path: &Path, out: &mut Findings) {
    if !path.exists() {
        return;
    }
    match lines::read::<T>(path) {
        Ok(read) if read.bad.is_empty() => out.ok(
            "records",
            None,
            format!(
                "{what} {}: {} lines, all readable",
                path.display(),
                read.values.len()
            ),
        ),
        Ok(read) => out.warn(
            "records",
            None,
            bad_lines(what, path, &read.bad),
            "a line cut by a crash stays unreadable and can be left (the start after it ended it with a newline); a line edited by hand can be mended or deleted",
        ),
        Err(error) => out.warn(
            "records",
            None,
            format!("cannot read the {what} {}: {error}", path.display()),
            format!(
                "give the user medic runs as read access to {}",
                path.display()
            ),
        ),
    }
}

/// "recovery log: 2 lines do not parse and are skipped: /x/recovery.jsonl:17 (…), …"
fn bad_lines(what: &str, path: &Path, bad: &[BadLine]) -> String {
    let named: Vec<String> = bad
        .iter()
        .take(NAMED)
        .map(|b| format!("{}:{} ({})", path.display(), b.line, b.error))
        .collect();
    let more = match bad.len().saturating_sub(NAMED) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    let count = match bad.len() {
        1 => "1 line does not parse and is skipped".to_owned(),
        n => format!("{n} lines do not parse and are skipped"),
    };
    format!("{what}: {count}: {}{more}", named.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_line_is_named_with_its_file_and_number_and_a_torn_tail_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("[medic]\nstate_dir = \"{}\"\n", dir.path().display());
        let config = medic_core::config::parse(&text, "t.toml").unwrap();
        let (recovery, alerts) = (&config.medic.recovery_log, &config.medic.alerts_file);
        let line = r#"{"ts":"2026-11-22T16:00:01Z","service":"web","event":"healthy","state":"healthy","message":"ok"}"#;
        std::fs::write(recovery, format!("{line}\n{{\"ts\":\n{line}\n{{\"torn")).unwrap();
        std::fs::create_dir_all(alerts.parent().unwrap()).unwrap();
        std::fs::write(alerts, "").unwrap();
        let mut out = Findings::default();
        check_records(&config, &mut out);
        let said: Vec<(&str, &str)> = out
            .0
            .iter()
            .map(|f| (f.severity.as_str(), f.message.as_str()))
            .collect();
        assert_eq!(said.len(), 2, "{said:?}");
        assert_eq!(said[0].0, "warning");
        let at = format!("{}:2 (", recovery.display());
        assert!(
            said[0]
                .1
                .starts_with("recovery log: 1 line does not parse and is skipped: ")
                && said[0].1.contains(&at),
            "{}",
            said[0].1
        );
        assert_eq!(said[1].0, "ok");
        assert!(
            said[1].1.ends_with(": 0 lines, all readable"),
            "{}",
            said[1].1
        );
    }
}
