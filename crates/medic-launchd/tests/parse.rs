//! Table tests over every recorded `launchctl` capture in `tests/fixtures`
//! (sources in fixtures/README.md): the classification a person reading the
//! output would give, the message, and the evidence medic attaches.

use std::path::Path;

use medic_launchd::{
    Classification, Expect, LastExit, classify, parse_list, parse_list_table, parse_print,
};
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses one `print` (or `procinfo`) or `list <label>` capture.
fn facts(name: &str) -> medic_launchd::JobFacts {
    let text = fixture(name);
    if name.starts_with("list_") {
        parse_list("job", &text)
    } else {
        parse_print("job", &text)
    }
}

/// Parses one capture and compares classification, message and evidence
/// under the default expectation (a clean exit is the job done).
#[track_caller]
fn check(name: &str, class: Classification, message: &str, evidence: Value) {
    check_expecting(name, Expect::ExitedOk, class, message, evidence);
}

/// [`check`] under a given `expect`.
#[track_caller]
fn check_expecting(
    name: &str,
    expect: Expect,
    class: Classification,
    message: &str,
    evidence: Value,
) {
    let facts = facts(name);
    let verdict = classify(Some(&facts), expect);
    assert_eq!(
        (verdict.class, verdict.message.as_str()),
        (class, message),
        "{name}: {facts:#?}"
    );
    assert_eq!(Value::Object(facts.evidence()), evidence, "{name}");
}

#[test]
fn print_captures() {
    check(
        "print_catalina_system_running.txt",
        Classification::Healthy,
        "running (pid 1061); previous run: exited 0",
        json!({"active_count": 1, "state": "running", "pid": 1061, "runs": 2, "last_exit_code": 0,
               "last_exit": "exited 0", "plist": "/Library/LaunchDaemons/com.wazuh.agent.plist"}),
    );
    check(
        "print_system_daemon_running.txt",
        Classification::Healthy,
        "running (pid 4205)",
        json!({"active_count": 1, "state": "running", "pid": 4205, "runs": 1, "last_exit": "never exited",
               "plist": "/Library/LaunchDaemons/com.wazuh.agent.plist"}),
    );
    check(
        "print_gui_running_keepalive.txt",
        Classification::Healthy,
        "running (pid 94358)",
        json!({"active_count": 1, "state": "running", "pid": 94358, "runs": 1, "last_exit": "never exited",
               "keep_alive": true,
               "plist": "/Users/ny/Library/LaunchAgents/ai.openclaw.gateway.plist"}),
    );
    check(
        "print_running_after_codesigning_kill.txt",
        Classification::Healthy,
        "running (pid 77880); previous run: OS_REASON_CODESIGNING",
        json!({"state": "running", "pid": 77880, "runs": 24991, "exit_reason": "OS_REASON_CODESIGNING",
               "keep_alive": true,
               "last_exit": "OS_REASON_CODESIGNING",
               "plist": "/Users/daniel/Library/LaunchAgents/com.pogo.daemon.plist"}),
    );
    check(
        "print_user_scheduled_exit0.txt",
        Classification::Idle,
        "idle: not running, exited 0, waits for its schedule",
        json!({"active_count": 0, "state": "not running", "runs": 1, "last_exit_code": 0, "last_exit": "exited 0",
               "plist": "/Users/cp/Library/LaunchAgents/local.resticprofile.self.check.agent.plist"}),
    );
    check(
        "print_gui_calendar_never_run.txt",
        Classification::Idle,
        "idle: not running, not run yet, waits for its schedule",
        json!({"active_count": 0, "state": "not running", "runs": 0, "last_exit": "never exited",
               "plist": "/Users/ny/Library/LaunchAgents/ai.openclaw.auto-detect-and-unfollow-inactive.plist"}),
    );
    check(
        "print_system_jetsam_idle_exit.txt",
        Classification::Idle,
        "idle: launchd stopped it when idle (JETSAM_REASON_MEMORY_IDLE_EXIT); it starts on demand",
        json!({"active_count": 0, "state": "not running", "runs": 1, "exit_reason": "JETSAM_REASON_MEMORY_IDLE_EXIT",
               "last_exit": "JETSAM_REASON_MEMORY_IDLE_EXIT",
               "plist": "/System/Library/LaunchDaemons/com.byliu.egress-guard.daemon.plist"}),
    );
    check(
        "print_xpcproxy_starting.txt",
        Classification::Starting,
        "starting (xpcproxy)",
        json!({"active_count": 1, "state": "xpcproxy", "runs": 1, "last_exit": "never exited"}),
    );
    check(
        "print_smappservice_running.txt",
        Classification::Healthy,
        "running (pid 64011); previous run: exited 0",
        json!({"active_count": 1, "state": "running", "job_state": "running", "pid": 64011, "runs": 2,
               "last_exit_code": 0, "last_exit": "exited 0", "submitted_by": "smd.89007"}),
    );
    check(
        "print_smappservice_spawn_failed.txt",
        Classification::Failed,
        "failed: launchd cannot start it (spawn failed, exited 78 (EX_CONFIG), 22138 runs)",
        json!({"active_count": 0, "state": "spawn scheduled", "job_state": "spawn failed", "runs": 22138,
               "last_exit_code": 78, "last_exit_name": "EX_CONFIG", "last_exit": "exited 78 (EX_CONFIG)",
               "submitted_by": "smd.553"}),
    );
    check(
        "print_codesigning_spawn_failed.txt",
        Classification::Failed,
        "failed: launchd cannot start it (spawn failed, OS_REASON_CODESIGNING, 6 runs)",
        json!({"active_count": 0, "state": "spawn scheduled", "job_state": "spawn failed", "runs": 6,
               "exit_reason": "OS_REASON_CODESIGNING", "last_exit": "OS_REASON_CODESIGNING"}),
    );
    check(
        "print_system_submitted_crash_loop.txt",
        Classification::Failed,
        "failed: not running, exited 1, 199773 runs; launchd retries it",
        json!({"active_count": 0, "state": "spawn scheduled", "runs": 199773, "last_exit_code": 1,
               "last_exit": "exited 1", "submitted_by": "smd[532]"}),
    );
    check(
        "print_abort_trap.txt",
        Classification::Failed,
        "failed: not running, exited 134 (Abort trap), 2 runs",
        json!({"active_count": 0, "state": "not running", "job_state": "exited", "runs": 2,
               "last_exit_code": 134, "last_exit_name": "Abort trap", "last_exit": "exited 134 (Abort trap)",
               "plist": "/Users/robert/Library/LaunchAgents/com.devthrottle.cc-launcher.plist"}),
    );
    // Filtered with grep: only the one line, outside any block.
    check(
        "print_tahoe_exit_150.txt",
        Classification::Failed,
        "failed: exited 150",
        json!({"last_exit_code": 150, "last_exit": "exited 150"}),
    );
}

#[test]
fn list_label_captures() {
    check(
        "list_label_running_over_ssh.txt",
        Classification::Healthy,
        "running (pid 40425); previous run: exited 0",
        json!({"state": "running", "pid": 40425, "last_exit_code": 0, "last_exit": "exited 0"}),
    );
    // LastExitStatus is a wait(2) status: 1 is SIGHUP, not exit 1.
    check(
        "list_label_keepalive_exited.txt",
        Classification::Failed,
        "failed: not running, killed by signal 1 (SIGHUP)",
        json!({"state": "not running", "last_signal": 1, "last_signal_name": "SIGHUP",
               "last_exit": "killed by signal 1 (SIGHUP)", "keep_alive": true}),
    );
}

#[test]
fn a_missing_label_is_missing() {
    assert!(fixture("print_missing_gui.stderr").contains("Could not find service"));
    let verdict = classify(None, Expect::ExitedOk);
    assert_eq!(verdict.class, Classification::Missing);
    assert_eq!(verdict.message, "not loaded");
}

#[track_caller]
fn table(name: &str) -> Vec<(String, Option<u32>, Option<LastExit>)> {
    parse_list_table(&fixture(name))
        .into_iter()
        .map(|e| (e.label, e.pid, e.last_exit))
        .collect()
}

#[test]
fn list_tables() {
    let rows = table("list_table_grep_exit78.txt");
    assert_eq!(rows.len(), 6);
    assert_eq!(
        rows[4],
        (
            "homebrew.mxcl.postgresql".into(),
            None,
            Some(LastExit::Code(78))
        )
    );
    assert_eq!(
        rows[0],
        (
            "homebrew.mxcl.elasticsearch".into(),
            Some(805),
            Some(LastExit::Code(0))
        )
    );
    assert_eq!(
        table("list_table_catalina_sigkill.txt"),
        [(
            "com.zackelia.bclm.plist".into(),
            None,
            Some(LastExit::Signal(9))
        )]
    );
    let rows = table("list_table_sequoia_system.txt");
    // The prompt, the header and the truncation note are not rows.
    assert_eq!(rows.len(), 30);
    // Running again after a crash: a pid and the negated signal of the previous run.
    assert!(rows.contains(&(
        "com.apple.WindowServer".into(),
        Some(282),
        Some(LastExit::Signal(11))
    )));
}

/// Empty trigger blocks, as older macOS prints them for every job, schedule nothing.
#[test]
fn empty_trigger_blocks_do_not_make_a_job_scheduled() {
    let facts = parse_print(
        "com.wazuh.agent",
        &fixture("print_catalina_system_running.txt"),
    );
    assert!(!facts.scheduled && !facts.on_demand, "{facts:#?}");
    let facts = parse_print("job", &fixture("print_user_scheduled_exit0.txt"));
    assert!(facts.scheduled);
}

/// A person reads the same job the same way from `print` and from `list`:
/// an on-demand job that launchd SIGKILLed when idle is idle in both.
#[test]
fn print_and_list_agree_on_an_idle_exit() {
    let print = parse_print("job", &fixture("print_system_jetsam_idle_exit.txt"));
    let list = parse_list(
        "job",
        "{\n\t\"MachServices\" = {\n\t\t\"com.example.job\" = mach-port-object;\n\t};\n\t\"Label\" = \"job\";\n\t\"LastExitStatus\" = 9;\n};\n",
    );
    assert_eq!(
        classify(Some(&print), Expect::ExitedOk).class,
        Classification::Idle
    );
    assert_eq!(
        classify(Some(&list), Expect::ExitedOk).class,
        Classification::Idle
    );
    // Without Mach services or sockets nothing starts it again: a SIGKILL is a failure.
    let plain = parse_list(
        "job",
        "{\n\t\"Label\" = \"job\";\n\t\"LastExitStatus\" = 9;\n};\n",
    );
    assert_eq!(
        classify(Some(&plain), Expect::ExitedOk).class,
        Classification::Failed
    );
}

#[test]
fn exit_codes_and_signals_have_names() {
    assert_eq!(medic_launchd::names::exit_code(78), Some("EX_CONFIG"));
    assert_eq!(medic_launchd::names::exit_code(134), Some("SIGABRT"));
    assert_eq!(medic_launchd::names::exit_code(3), None);
    assert_eq!(LastExit::Code(78).describe(None), "exited 78 (EX_CONFIG)");
    assert_eq!(
        LastExit::Signal(9).describe(None),
        "killed by signal 9 (SIGKILL)"
    );
    assert_eq!(LastExit::from_wait_status(768), LastExit::Code(3));
}

/// States no public capture showed whole, read from constructed `print` output
/// in the layout of the captures above.
#[test]
fn constructed_states() {
    let read = |body: &str| {
        let facts = parse_print("job", &format!("gui/501/job = {{\n{body}}}\n"));
        classify(Some(&facts), Expect::ExitedOk)
    };
    let starting =
        read("\tactive count = 1\n\tstate = spawn scheduled\n\truns = 3\n\tlast exit code = 0\n");
    assert_eq!(starting.class, Classification::Starting, "{starting:?}");
    for reason in ["OS_REASON_DYLD", "OS_REASON_TCC"] {
        let failed = read(&format!(
            "\tactive count = 0\n\tstate = not running\n\truns = 4\n\tlast exit reason = {reason}\n"
        ));
        assert_eq!(failed.class, Classification::Failed, "{failed:?}");
        assert_eq!(
            failed.message,
            format!("failed: not running, {reason}, 4 runs")
        );
    }
}

/// Finished jobs are done, not failed: a clean exit reads idle with the exit
/// code in the evidence, whatever starts the job (nothing, a schedule, a request).
#[test]
fn finished_jobs_are_idle() {
    // `launchctl list <label>`: OnDemand = true, no PID, LastExitStatus 0.
    check(
        "list_label_k5start_ondemand_exit0.txt",
        Classification::Idle,
        "idle: not running, exited 0, nothing starts it again until someone does (launchctl kickstart)",
        json!({"state": "not running", "last_exit_code": 0, "last_exit": "exited 0"}),
    );
    // A system-domain job loaded with `load -w`, not started yet.
    check(
        "list_label_system_loaded_not_started.txt",
        Classification::Idle,
        "idle: not running, exited 0, nothing starts it again until someone does (launchctl kickstart)",
        json!({"state": "not running", "last_exit_code": 0, "last_exit": "exited 0"}),
    );
    // An SMAppService login item that ran once and exited 0; its endpoint starts it on demand.
    check(
        "print_smappservice_login_item_exited.txt",
        Classification::Idle,
        "idle: not running, exited 0, starts on demand",
        json!({"active_count": 0, "state": "not running", "job_state": "exited", "runs": 1,
               "last_exit_code": 0, "last_exit": "exited 0", "submitted_by": "smd.500"}),
    );
}

/// `expect = "running"` turns every clean end into a failure, with the same evidence.
#[test]
fn expect_running_turns_clean_exits_into_failures() {
    check_expecting(
        "list_label_k5start_ondemand_exit0.txt",
        Expect::Running,
        Classification::Failed,
        "failed: not running (exited 0) but it is meant to stay up (expect = \"running\")",
        json!({"state": "not running", "last_exit_code": 0, "last_exit": "exited 0"}),
    );
    check_expecting(
        "print_smappservice_login_item_exited.txt",
        Expect::Running,
        Classification::Failed,
        "failed: not running (exited 0, 1 runs) but it is meant to stay up (expect = \"running\")",
        json!({"active_count": 0, "state": "not running", "job_state": "exited", "runs": 1,
               "last_exit_code": 0, "last_exit": "exited 0", "submitted_by": "smd.500"}),
    );
    check_expecting(
        "print_user_scheduled_exit0.txt",
        Expect::Running,
        Classification::Failed,
        "failed: not running (exited 0, 1 runs) but it is meant to stay up (expect = \"running\")",
        json!({"active_count": 0, "state": "not running", "runs": 1, "last_exit_code": 0, "last_exit": "exited 0",
               "plist": "/Users/cp/Library/LaunchAgents/local.resticprofile.self.check.agent.plist"}),
    );
    // A running job is healthy whatever is expected, and a failure stays a failure.
    check_expecting(
        "print_system_daemon_running.txt",
        Expect::Running,
        Classification::Healthy,
        "running (pid 4205)",
        json!({"active_count": 1, "state": "running", "pid": 4205, "runs": 1, "last_exit": "never exited",
               "plist": "/Library/LaunchDaemons/com.wazuh.agent.plist"}),
    );
}

/// The properties line of macOS 11+ and the properties block of older launchd,
/// `run interval`, `spawn type = adaptive`, and a previous run ended by SIGTERM.
#[test]
fn properties_and_newer_fields() {
    // KeepAlive after a clean exit, launchd about to spawn it again: starting.
    check(
        "print_gui_keepalive_spawn_scheduled_exit0.txt",
        Classification::Starting,
        "starting (spawn scheduled)",
        json!({"active_count": 0, "state": "spawn scheduled", "job_state": "exited", "runs": 311,
               "last_exit_code": 0, "last_exit": "exited 0", "keep_alive": true,
               "plist": "/Library/LaunchAgents/com.jamf.protect.agent.plist"}),
    );
    check(
        "print_system_adaptive_running.txt",
        Classification::Healthy,
        "running (pid 928)",
        json!({"active_count": 7, "state": "running", "job_state": "running", "pid": 928, "runs": 1,
               "last_exit": "never exited", "plist": "/System/Library/LaunchDaemons/com.apple.akd.plist"}),
    );
    check(
        "print_gui_run_interval_running_after_sigterm.txt",
        Classification::Healthy,
        "running (pid 35711); previous run: killed by signal 15 (SIGTERM)",
        json!({"active_count": 1, "state": "running", "pid": 35711, "runs": 2, "last_signal": 15,
               "last_signal_name": "SIGTERM", "last_exit": "killed by signal 15 (SIGTERM)",
               "plist": "/Users/tsgsz/Library/LaunchAgents/ai.openclaw.enhance.monitor.plist"}),
    );
    assert!(facts("print_gui_run_interval_running_after_sigterm.txt").scheduled);
    check(
        "print_gui_runatload_exit1.txt",
        Classification::Failed,
        "failed: not running, exited 1, 1 runs",
        json!({"active_count": 0, "state": "not running", "runs": 1, "last_exit_code": 1, "last_exit": "exited 1",
               "plist": "/Users/qingchang/Library/LaunchAgents/com.alphaloop.rsshub.plist"}),
    );
    // The old block form: `keepalive = 0` and `penalty box = 0` are off.
    let block = facts("procinfo_ios_properties_block.txt");
    assert!(!block.keep_alive && !block.throttled, "{block:#?}");
    assert_eq!(
        classify(Some(&block), Expect::ExitedOk).message,
        "running (pid 518)"
    );
}

/// What no public capture showed whole (see fixtures/README.md), read from
/// output constructed in the layout of the captures: a KeepAlive job that
/// exited 0 and is not being restarted, a throttled job, a RunAtLoad one-shot
/// that exited 0, an XPC service after a clean exit, a job stopped by SIGTERM,
/// and the old properties block with `keepalive = 1`.
#[test]
fn constructed_finished_and_kept_alive_jobs() {
    let read = |body: &str, expect: Expect| {
        let facts = parse_print("job", &format!("gui/501/job = {{\n{body}}}\n"));
        classify(Some(&facts), expect)
    };
    let exited = "\tactive count = 0\n\tstate = not running\n\truns = 1\n\tlast exit code = 0\n";
    let keepalive = read(
        &format!("{exited}\tproperties = keepalive | runatload | inferred program\n"),
        Expect::ExitedOk,
    );
    assert_eq!(keepalive.class, Classification::Failed, "{keepalive:?}");
    assert_eq!(
        keepalive.message,
        "failed: not running (exited 0, 1 runs) but it is meant to stay up (KeepAlive)"
    );
    let block = read(
        &format!("{exited}\tproperties = {{\n\t\tkeepalive = 1\n\t\trunatload = 1\n\t}}\n"),
        Expect::ExitedOk,
    );
    assert_eq!(block.class, Classification::Failed, "{block:?}");
    let throttled = read(
        &format!("{exited}\tproperties = runatload | penalty box | inferred program\n"),
        Expect::ExitedOk,
    );
    assert_eq!(throttled.class, Classification::Failed, "{throttled:?}");
    assert_eq!(
        throttled.message,
        "failed: launchd throttles it for exiting too soon (penalty box, exited 0, 1 runs)"
    );
    let one_shot = read(
        &format!("{exited}\tproperties = runatload | inferred program\n"),
        Expect::ExitedOk,
    );
    assert_eq!(one_shot.class, Classification::Idle, "{one_shot:?}");
    let xpc = read(&format!("\ttype = XPCService\n{exited}"), Expect::ExitedOk);
    assert_eq!(
        (xpc.class, xpc.message.as_str()),
        (
            Classification::Idle,
            "idle: not running, exited 0, starts on demand"
        )
    );
    let stopped = "\tstate = not running\n\tlast terminating signal = Terminated: 15\n";
    assert_eq!(read(stopped, Expect::ExitedOk).class, Classification::Idle);
    assert_eq!(read(stopped, Expect::Running).class, Classification::Failed);
    let crashed = "\tstate = not running\n\tlast terminating signal = Segmentation fault: 11\n";
    assert_eq!(
        read(crashed, Expect::ExitedOk).class,
        Classification::Failed
    );
}

/// `list <label>` shows KeepAlive by its legacy name, inverted.
#[test]
fn list_reads_keepalive_from_ondemand() {
    let list = |on_demand: &str| {
        parse_list(
            "job",
            &format!(
                "{{\n\t\"Label\" = \"job\";\n\t\"OnDemand\" = {on_demand};\n\t\"LastExitStatus\" = 0;\n}};\n"
            ),
        )
    };
    assert!(list("false").keep_alive);
    assert!(!list("true").keep_alive);
    assert_eq!(
        classify(Some(&list("false")), Expect::ExitedOk).class,
        Classification::Failed
    );
}
