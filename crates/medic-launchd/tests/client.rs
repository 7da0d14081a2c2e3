//! The launchctl commands against small scripted launchctl programs: the print →
//! list fallback, "Could not find service", the domain fallback, bootstrap retried
//! on "Input/output error", bootout polled until the job is gone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use medic_launchd::{BOOTSTRAP_TRIES, Launchctl, LaunchdError, Source, current_uid};

/// One test at a time: a script written while another thread forks can fail to
/// exec with "Text file busy" (ETXTBSY) until that child has exec'd.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A launchctl that runs `body` (a sh script; `$STATE` is a scratch dir, `$FIXTURES` the fixtures).
fn scripted(dir: &Path, body: &str) -> Launchctl {
    let program = dir.join("launchctl");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let script = format!(
        "#!/bin/sh\nSTATE={}\nFIXTURES={}\necho \"$*\" >> \"$STATE/calls\"\n{body}\n",
        dir.display(),
        fixtures.display()
    );
    std::fs::write(&program, script).unwrap();
    let mut permissions = std::fs::metadata(&program).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&program, permissions).unwrap();
    Launchctl::new(program, Duration::from_secs(5))
}

fn calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn print_falls_back_to_list_and_unknown_labels_are_none() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = scripted(
        dir.path(),
        r#"case "$1 $2" in
  "print "*) echo 'Unrecognized subcommand: print' >&2; exit 64 ;;
  "list com.example.vtt-watcher") cat "$FIXTURES/list_label_running_over_ssh.txt" ;;
  *) cat "$FIXTURES/print_missing_gui.stderr" >&2; exit 113 ;;
esac"#,
    );
    let facts = ctl
        .inspect("gui/501", "com.example.vtt-watcher")
        .await
        .unwrap()
        .expect("found through list");
    assert_eq!((facts.source, facts.pid), (Source::List, Some(40425)));
    assert_eq!(
        ctl.inspect("gui/501", "com.example.gone").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn print_answers_and_missing_labels_exit_113() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = scripted(
        dir.path(),
        r#"case "$2" in
  gui/501/com.example.vtt-watcher) cat "$FIXTURES/print_abort_trap.txt" ;;
  *) cat "$FIXTURES/print_missing_gui.stderr" >&2; exit 113 ;;
esac"#,
    );
    let facts = ctl
        .inspect("gui/501", "com.example.vtt-watcher")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(facts.source, Source::Print);
    assert_eq!(
        ctl.inspect("gui/501", "com.example.gone").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn without_a_gui_login_the_domain_is_user() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = scripted(
        dir.path(),
        r#"case "$2" in
  gui/*) echo "Could not find domain for port identifier: $2" >&2; exit 113 ;;
  *) echo "$2 = {"; echo "}" ;;
esac"#,
    );
    let uid = current_uid();
    assert_eq!(
        ctl.resolve_domain(None).await.unwrap(),
        format!("user/{uid}")
    );
    assert_eq!(ctl.resolve_domain(Some("system")).await.unwrap(), "system");
    let gui = scripted(dir.path(), "exit 0");
    assert_eq!(
        gui.resolve_domain(None).await.unwrap(),
        format!("gui/{uid}")
    );
}

#[tokio::test]
async fn bootstrap_is_retried_on_input_output_error() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    // Fails twice with EIO (teardown still running), then loads.
    let ctl = scripted(
        dir.path(),
        r#"n=$(grep -c '^bootstrap' "$STATE/calls")
if [ "$n" -le 2 ]; then echo 'Bootstrap failed: 5: Input/output error' >&2; exit 5; fi"#,
    );
    let plist = PathBuf::from("/tmp/x.plist");
    ctl.bootstrap("gui/501", &plist).await.unwrap();
    assert_eq!(calls(dir.path()).len(), 3);

    let dir = tempfile::tempdir().unwrap();
    let always = scripted(
        dir.path(),
        "echo 'Bootstrap failed: 5: Input/output error' >&2; exit 5",
    );
    let error = always.bootstrap("gui/501", &plist).await.unwrap_err();
    assert_eq!(error.exit_code(), Some(5));
    assert_eq!(calls(dir.path()).len(), BOOTSTRAP_TRIES as usize);

    // Other failures are not retried.
    let dir = tempfile::tempdir().unwrap();
    let other = scripted(
        dir.path(),
        "echo 'Bootstrap failed: 17: File exists' >&2; exit 17",
    );
    assert!(other.bootstrap("gui/501", &plist).await.is_err());
    assert_eq!(calls(dir.path()).len(), 1);
}

#[tokio::test]
async fn bootout_waits_until_the_job_is_gone() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    // bootout returns at once; print still knows the job twice more.
    let ctl = scripted(
        dir.path(),
        r#"case "$1" in
  bootout) exit 0 ;;
  print) n=$(grep -c '^print' "$STATE/calls")
    if [ "$n" -le 2 ]; then cat "$FIXTURES/print_gui_running_keepalive.txt"; else cat "$FIXTURES/print_missing_gui.stderr" >&2; exit 113; fi ;;
esac"#,
    );
    ctl.bootout("gui/501", "com.example.vtt-watcher")
        .await
        .unwrap();
    let calls = calls(dir.path());
    assert_eq!(
        calls.first().map(String::as_str),
        Some("bootout gui/501/com.example.vtt-watcher")
    );
    assert_eq!(calls.iter().filter(|c| c.starts_with("print")).count(), 3);

    // Not loaded at all ("No such process") is already booted out.
    let dir = tempfile::tempdir().unwrap();
    let gone = scripted(
        dir.path(),
        r#"case "$1" in
  bootout) echo 'Boot-out failed: 3: No such process' >&2; exit 3 ;;
  *) exit 113 ;;
esac"#,
    );
    gone.bootout("gui/501", "com.example.x").await.unwrap();
}

#[tokio::test]
async fn a_missing_launchctl_is_a_spawn_error() {
    let _serial = SERIAL.lock().await;
    let ctl = Launchctl::new("/nonexistent/launchctl", Duration::from_secs(1));
    let error = ctl.inspect("gui/501", "x").await.unwrap_err();
    assert!(matches!(error, LaunchdError::Spawn { .. }), "{error}");
}
