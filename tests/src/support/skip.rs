//! `MEDIC_TEST_SKIP`: the one way a test that needs a component passes without
//! running. It holds component names separated by commas (`docker`,
//! `alertmanager`, `package` (scripts/package's artefacts), `chromium`, `tmux`, `systemd-analyze`, `runuser`,
//! `podman`, `prometheus`, `root`, …). A named component is skipped: the test
//! returns at once, says so on stderr and appends one line to the file
//! `MEDIC_TEST_SKIP_LOG` names, which `scripts/test` sums up at the end of the
//! run. A component that is missing and not named fails the test, with or
//! without `CI=true`.
//!
//! Std only: `crates/medic-docker/tests` includes this file with `#[path]`.

use std::io::Write;

/// None when `MEDIC_TEST_SKIP` names `component` (the skip is recorded), else Some.
#[track_caller]
pub fn unless_skipped(component: &str) -> Option<()> {
    if !named(component) {
        return Some(());
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("(unnamed test)")
        .to_owned();
    // Straight to stderr, past the test harness's output capture.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED (MEDIC_TEST_SKIP names {component}): {test}"
    );
    if let Some(log) = std::env::var_os("MEDIC_TEST_SKIP_LOG").filter(|l| !l.is_empty()) {
        // One short O_APPEND write per line: lines from parallel tests never interleave.
        let line = format!("{component}\t{test}\n");
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(error) = appended {
            panic!("cannot record the skip in MEDIC_TEST_SKIP_LOG={log:?}: {error}");
        }
    }
    None
}

/// A component this test needs is missing: None when `MEDIC_TEST_SKIP` names
/// it (recorded), else the test fails with `problem` and how to fix it.
#[track_caller]
pub fn missing<T>(component: &str, problem: &str) -> Option<T> {
    unless_skipped(component)?;
    panic!(
        "{problem}: run the tests with scripts/test, or name `{component}` in MEDIC_TEST_SKIP \
         (e.g. MEDIC_TEST_SKIP={component}) to skip the tests that need it"
    );
}

/// Whether `MEDIC_TEST_SKIP` names `component`.
fn named(component: &str) -> bool {
    std::env::var("MEDIC_TEST_SKIP").is_ok_and(|list| {
        list.split(',')
            .map(str::trim)
            .any(|name| name.eq_ignore_ascii_case(component))
    })
}
