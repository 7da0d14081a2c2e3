//! exec probes and `run_command` with real processes.

use std::path::Path;
use std::time::Duration;

use medic_core::Outcome;
use medic_core::config::{ExecProbe, ProbeKind};
use medic_probe::run_command;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::util::{expect, run, wait_until};

const SECONDS: Duration = Duration::from_secs(5);

fn exec(argv: &[&str]) -> ProbeKind {
    exec_expecting(argv, 0)
}

fn exec_expecting(argv: &[&str], expect_exit: i32) -> ProbeKind {
    ProbeKind::Exec(ExecProbe {
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        expect_exit,
        max_output: 64,
    })
}

fn argv(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// Alive means present in /proc and not a zombie (a zombie has been killed;
/// whoever inherited it reaps it).
fn alive(pid: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
    !matches!(state.and_then(|s| s.chars().next()), Some('Z' | 'X') | None)
}

/// Waits until a script has written `count` pids to `file`.
async fn pids(file: &Path, count: usize) -> Vec<String> {
    let read = || {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    wait_until(SECONDS, "the script writes its pids", || {
        read().len() >= count
    })
    .await;
    read()
}

#[tokio::test]
async fn exit_zero_is_ok() {
    let observation = run(exec(&["true"]), SECONDS).await;
    expect(&observation, Outcome::Ok, "`true` exited 0");
    assert_eq!(observation.evidence["exit_code"], 0);
    assert_eq!(observation.evidence["timed_out"], false);
    assert_eq!(observation.evidence["output"], "");
}

#[tokio::test]
async fn another_exit_code_fails_with_the_output() {
    let script = ["sh", "-c", "echo out; echo broken >&2; echo again; exit 3"];
    let observation = run(exec(&script), SECONDS).await;
    expect(&observation, Outcome::Fail, "`sh` exited 3, expected 0");
    assert_eq!(observation.evidence["exit_code"], 3);
    // stdout and stderr share one pipe: interleaved as written.
    assert_eq!(observation.evidence["output"], "out\nbroken\nagain\n");

    expect(
        &run(exec_expecting(&script, 3), SECONDS).await,
        Outcome::Ok,
        "exited 3",
    );
}

#[tokio::test]
async fn a_signal_is_reported() {
    let observation = run(exec(&["sh", "-c", "kill -TERM $$"]), SECONDS).await;
    expect(&observation, Outcome::Fail, "`sh` was killed by SIGTERM");
    assert_eq!(observation.evidence["signal"], 15);
    assert!(!observation.evidence.contains_key("exit_code"));
}

#[tokio::test]
async fn the_output_tail_is_kept() {
    let observation = run(exec(&["sh", "-c", "seq 1 100000; exit 1"]), SECONDS).await;
    assert_eq!(observation.evidence["output_truncated"], true);
    let output = observation.evidence["output"].as_str().unwrap();
    assert_eq!(output.len(), 64);
    assert!(output.ends_with("99999\n100000\n"), "{output:?}");
}

#[tokio::test]
async fn a_missing_program_cannot_run() {
    for program in ["/nonexistent/medic-probe", "medic-no-such-program"] {
        let observation = run(exec(&[program]), SECONDS).await;
        expect(
            &observation,
            Outcome::Fail,
            &format!("cannot run `{program}`: No such file or directory"),
        );
        assert_eq!(
            observation.evidence["spawn_error"],
            "No such file or directory"
        );
    }
    let outcome = run_command(&[], SECONDS, 64).await;
    assert_eq!(outcome.spawn_error.as_deref(), Some("empty command"));
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pids");
    let script = format!(
        "sleep 30 & echo $! > {0}; sleep 30 & echo $! >> {0}; echo $$ >> {0}; echo waiting; wait",
        file.display()
    );
    let timeout = Duration::from_millis(500);
    let started = std::time::Instant::now();
    let observation = run(exec(&["sh", "-c", &script]), timeout).await;
    let took = started.elapsed();
    assert!(
        took < timeout + Duration::from_millis(1500),
        "took {took:?}"
    );
    expect(&observation, Outcome::Fail, "`sh` timed out after 500ms");
    assert_eq!(observation.evidence["timed_out"], true);
    assert_eq!(observation.evidence["signal"], 9);
    assert_eq!(observation.evidence["output"], "waiting\n");

    let pids = pids(&file, 3).await;
    for pid in &pids {
        wait_until(SECONDS, &format!("process {pid} dies"), || !alive(pid)).await;
    }
}

#[tokio::test]
async fn a_cancelled_run_kills_the_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pids");
    let script = format!(
        "sleep 30 & echo $! > {0}; echo $$ >> {0}; wait",
        file.display()
    );
    let command = argv(&["sh", "-c", &script]);
    let mut run = Box::pin(run_command(&command, Duration::from_secs(30), 64));
    // Run until the script is up, then drop the future.
    let pids = tokio::select! {
        _ = &mut run => panic!("the script finished on its own"),
        pids = pids(&file, 2) => pids,
    };
    drop(run);
    for pid in &pids {
        wait_until(SECONDS, &format!("process {pid} dies"), || !alive(pid)).await;
    }
}

#[tokio::test]
async fn background_processes_do_not_hold_up_a_finished_command() {
    // Like a restart command that starts a daemon: it exits at once, but the
    // daemon keeps the output pipe open.
    let started = std::time::Instant::now();
    let outcome = run_command(
        &argv(&["sh", "-c", "sleep 30 & echo $!"]),
        Duration::from_secs(10),
        64,
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!((outcome.exit, outcome.timed_out), (Some(0), false));
    let daemon = outcome.output.trim();
    assert!(alive(daemon), "a finished command's group is left alone");
    kill(Pid::from_raw(daemon.parse().unwrap()), Signal::SIGKILL).unwrap();
}
