//! The launchctl parsers and the classification on recorded real outputs (see fixtures/README.md).

use std::path::{Path, PathBuf};

use medic_launchd::{
    Classification, JobFacts, LastExit, Source, classify, parse_list, parse_list_table, parse_print,
};

const LABEL: &str = "com.example.vtt-watcher";

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What the tests compare: pid, last exit, runs, scheduled, classification.
#[track_caller]
fn check(facts: &JobFacts, pid: Option<u32>, exit: Option<LastExit>, class: Classification) {
    assert_eq!(facts.pid, pid, "pid of {facts:#?}");
    assert_eq!(facts.last_exit, exit, "last exit of {facts:#?}");
    assert_eq!(classify(Some(facts)).class, class, "class of {facts:#?}");
}

#[test]
fn print_running_reads_top_level_keys_only() {
    let facts = parse_print(LABEL, &fixture("print_running.txt"));
    // The endpoints block has its own `pid = 77` and `state = waiting`.
    check(
        &facts,
        Some(4242),
        Some(LastExit::Never),
        Classification::Healthy,
    );
    assert_eq!(facts.state.as_deref(), Some("running"));
    assert_eq!(facts.runs, Some(3));
    assert_eq!(facts.source, Source::Print);
    assert_eq!(
        facts.plist,
        Some(PathBuf::from(
            "/Users/ada/Library/LaunchAgents/com.example.vtt-watcher.plist"
        ))
    );
    assert_eq!(
        facts.stderr_path,
        Some(PathBuf::from("/Users/ada/Library/Logs/vtt-watcher.err.log"))
    );
    assert!(!facts.scheduled);
    assert_eq!(classify(Some(&facts)).message, "running (pid 4242)");
}

#[test]
fn print_exited_0_with_a_schedule_is_idle() {
    let facts = parse_print(LABEL, &fixture("print_exited_0.txt"));
    check(&facts, None, Some(LastExit::Code(0)), Classification::Idle);
    assert!(facts.scheduled);
    assert_eq!(facts.runs, Some(12));
    assert_eq!(facts.state.as_deref(), Some("not running"));
}

#[test]
fn print_exited_nonzero_is_failed() {
    let facts = parse_print(LABEL, &fixture("print_exited_nonzero.txt"));
    check(
        &facts,
        None,
        Some(LastExit::Code(3)),
        Classification::Failed,
    );
    assert_eq!(classify(Some(&facts)).message, "not running: exited with 3");
}

#[test]
fn print_killed_by_a_signal_is_failed() {
    let facts = parse_print(LABEL, &fixture("print_signal.txt"));
    check(
        &facts,
        None,
        Some(LastExit::Signal(9)),
        Classification::Failed,
    );
    assert_eq!(facts.reason.as_deref(), Some("Killed: 9"));
    assert_eq!(
        classify(Some(&facts)).message,
        "not running: killed by signal 9"
    );
}

#[test]
fn a_missing_label_is_missing() {
    assert!(fixture("print_missing.stderr").contains("Could not find service"));
    assert!(fixture("list_missing.stderr").contains("Could not find service"));
    let verdict = classify(None);
    assert_eq!(verdict.class, Classification::Missing);
    assert_eq!(verdict.message, "not loaded");
}

#[test]
fn list_running() {
    let facts = parse_list(LABEL, &fixture("list_running.txt"));
    check(
        &facts,
        Some(4242),
        Some(LastExit::Code(0)),
        Classification::Healthy,
    );
    assert_eq!(facts.source, Source::List);
    assert_eq!(
        facts.stdout_path,
        Some(PathBuf::from("/Users/ada/Library/Logs/vtt-watcher.out.log"))
    );
}

#[test]
fn list_exited_0_on_demand_is_idle() {
    let facts = parse_list(LABEL, &fixture("list_exited_0.txt"));
    check(&facts, None, Some(LastExit::Code(0)), Classification::Idle);
}

#[test]
fn list_exit_status_is_a_wait_status() {
    let facts = parse_list(LABEL, &fixture("list_exited_nonzero.txt"));
    check(
        &facts,
        None,
        Some(LastExit::Code(3)),
        Classification::Failed,
    );
    let facts = parse_list(LABEL, &fixture("list_signal.txt"));
    check(
        &facts,
        None,
        Some(LastExit::Signal(9)),
        Classification::Failed,
    );
}

#[test]
fn list_table_negative_status_is_the_signal() {
    let entries = parse_list_table(&fixture("list_table.txt"));
    let got: Vec<(&str, Option<u32>, Option<LastExit>)> = entries
        .iter()
        .map(|e| (e.label.as_str(), e.pid, e.last_exit))
        .collect();
    assert_eq!(
        got,
        [
            (LABEL, Some(4242), Some(LastExit::Code(0))),
            ("com.example.backup", None, Some(LastExit::Code(0))),
            ("com.example.indexer", None, Some(LastExit::Signal(9))),
            ("com.example.sync", None, Some(LastExit::Code(78))),
            ("com.apple.Finder", Some(633), Some(LastExit::Code(0))),
        ]
    );
}

#[test]
fn not_running_after_exit_0_without_a_schedule_is_failed() {
    let mut facts = parse_print(LABEL, &fixture("print_exited_0.txt"));
    facts.scheduled = false;
    assert_eq!(classify(Some(&facts)).class, Classification::Failed);
}
