//! `medic doctor` against the real engine and real files: a stopped container,
//! a missing plist, a dependency cycle, a command target under the installed
//! unit's hardening, and a setup with nothing to report.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::docker::{Cleanup, Engine, unique};
use crate::support::env;
use crate::support::medic::{bin, free_port};

/// Runs `medic doctor --json --config <dir>/medic.toml ARGS`: (exit code, report).
fn doctor(dir: &Path, config: &str, args: &[&str]) -> (i32, Value) {
    let path = dir.join("medic.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(bin("medic"))
        .args(["doctor", "--json", "--config"])
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json is JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

/// The findings of one check (and service, when given).
fn findings<'a>(report: &'a Value, check: &str, service: Option<&str>) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check && service.is_none_or(|s| f["service"] == s))
        .collect()
}

/// `dir/root` with what `medic install systemd --root` writes: an installed unit.
fn installed_root(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("root");
    let install = Command::new(bin("medic"))
        .args(["install", "systemd", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(install.status.success());
    root
}

/// `[medic]` keeping every file in `dir`, with the engine given.
fn medic_table(dir: &Path, docker_host: &str) -> String {
    format!(
        "[medic]\nstate_dir = \"{0}/state\"\ncontrol_socket = \"{0}/run/control.sock\"\ndocker_host = \"{docker_host}\"\n",
        dir.display()
    )
}

#[test]
fn doctor_finds_a_stopped_container_and_a_missing_plist_and_says_how_to_fix_them() {
    let Some(engine) = Engine::get() else { return };
    let stopped = unique("doctor-stopped");
    let _cleanup = Cleanup(&engine, vec![stopped.clone()]);
    engine.run(&[
        "create",
        "--name",
        &stopped,
        "--network",
        "host",
        "medic-test/good:1",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let host = std::env::var("MEDIC_TEST_DOCKER_HOST").unwrap();
    let plist = dir.path().join("com.example.gone.plist");
    let config = format!(
        r#"{medic}
[[service]]
name = "web"
container = {{ name = "{stopped}" }}

[[service]]
name = "agent"
launch_agent = {{ label = "com.example.gone", plist = "{plist}" }}

[[service]]
name = "fleet"
container = {{ label = "medic.e2e.none={stopped}" }}
"#,
        medic = medic_table(dir.path(), &host),
        plist = plist.display()
    );
    let (code, report) = doctor(dir.path(), &config, &[]);
    assert_eq!(code, 2, "errors exit 2: {report:#}");

    let engine_found = findings(&report, "engine", None);
    assert_eq!(engine_found[0]["severity"], "ok", "{report:#}");
    assert!(
        engine_found[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Docker ")
    );

    let web = findings(&report, "target", Some("web"));
    assert_eq!(web[0]["severity"], "warning", "{report:#}");
    assert!(
        web[0]["message"]
            .as_str()
            .unwrap()
            .contains("exists but is created")
    );
    assert_eq!(web[0]["fix"], format!("docker start {stopped}"));
    let implied = findings(&report, "probe", Some("web"));
    assert!(
        implied[0]["message"]
            .as_str()
            .unwrap()
            .contains("only the implied container probe"),
        "{report:#}"
    );

    let fleet = findings(&report, "target", Some("fleet"));
    assert_eq!(fleet[0]["severity"], "warning", "{report:#}");
    assert!(
        fleet[0]["message"]
            .as_str()
            .unwrap()
            .contains("matches no container")
    );

    let agent = findings(&report, "target", Some("agent"));
    assert_eq!(agent[0]["severity"], "error", "{report:#}");
    assert!(agent[0]["message"].as_str().unwrap().contains("is missing"));
    assert!(agent[0]["fix"].is_string());
    assert_eq!(
        report["errors"].as_u64().unwrap() as usize,
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] == "error")
            .count()
    );

    // The plist exists but its program does not: still an error, naming it.
    std::fs::write(
        &plist,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>Label</key><string>com.example.gone</string>
<key>ProgramArguments</key><array><string>/opt/gone/bin/agent</string></array></dict></plist>
"#,
    )
    .unwrap();
    let (_, report) = doctor(dir.path(), &config, &[]);
    let agent = findings(&report, "target", Some("agent"));
    assert!(
        agent[0]["message"]
            .as_str()
            .unwrap()
            .contains("/opt/gone/bin/agent"),
        "{report:#}"
    );
}

#[test]
fn doctor_says_when_no_engine_answers() {
    let dir = tempfile::tempdir().unwrap();
    let socket = format!("unix://{}/docker.sock", dir.path().display());
    let config = medic_table(dir.path(), &socket)
        + "\n[[service]]\nname = \"web\"\ncontainer = { name = \"web\" }\n";
    let (code, report) = doctor(dir.path(), &config, &[]);
    assert_eq!(code, 2, "{report:#}");
    let engine = findings(&report, "engine", None);
    assert_eq!(engine[0]["severity"], "error", "{report:#}");
    assert!(engine[0]["message"].as_str().unwrap().contains(&socket));
    assert!(
        engine[0]["fix"]
            .as_str()
            .unwrap()
            .contains("start the engine")
    );
}

#[test]
fn doctor_names_podman_when_podman_answers() {
    let Some(podman) = env::podman_host() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = medic_table(dir.path(), &podman)
        + "\n[[service]]\nname = \"web\"\ncontainer = { name = \"medic-e2e-doctor-absent\" }\n";
    let (_, report) = doctor(dir.path(), &config, &[]);
    let engine = findings(&report, "engine", None);
    assert_eq!(engine[0]["severity"], "ok", "{report:#}");
    assert!(
        engine[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Podman "),
        "{report:#}"
    );
    let web = findings(&report, "target", Some("web"));
    assert_eq!(web[0]["severity"], "error", "{report:#}");
}

#[test]
fn doctor_reports_a_dependency_cycle_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let service = |name: &str, on: &str| {
        format!(
            "[[service]]\nname = \"{name}\"\ndepends_on = [\"{on}\"]\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:1\"\n\n"
        )
    };
    let config = service("a", "b") + &service("b", "a");
    let (code, report) = doctor(dir.path(), &config, &[]);
    assert_eq!(code, 2, "{report:#}");
    let config_errors = findings(&report, "config", None);
    let cycle = config_errors
        .iter()
        .find(|f| f["message"].as_str().unwrap().contains("cycle"))
        .unwrap_or_else(|| panic!("a cycle finding: {report:#}"));
    assert_eq!(cycle["severity"], "error");
    let file = dir.path().join("medic.toml").display().to_string();
    assert!(
        cycle["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{file}:")),
        "file:line:column: {cycle}"
    );
}

/// A config with errors of several kinds does not hide the rest: the config
/// errors first (a dependency cycle, an unknown key, a bad duration), then
/// every check of what still builds: a container that does not exist, an exec
/// probe whose program is missing, and the engine and a good probe, ok; the
/// service with the unknown key is left out.
#[test]
fn doctor_reports_everything_past_a_config_error() {
    let Some(engine) = Engine::get() else { return };
    let missing = unique("doctor-missing");
    let _cleanup = Cleanup(&engine, vec![missing.clone()]);
    let dir = tempfile::tempdir().unwrap();
    let host = std::env::var("MEDIC_TEST_DOCKER_HOST").unwrap();
    let config = format!(
        r#"{medic}
[[service]]
name = "a"
depends_on = ["b"]
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:1"

[[service]]
name = "b"
depends_on = ["a"]
container = {{ name = "{missing}" }}

[[service]]
name = "job"
  [[service.probe]]
  kind = "exec"
  command = ["/nonexistent/medic-e2e-check", "--quick"]

[[service]]
name = "typo"
colour = "blue"
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:1"

[[service]]
name = "sh"
interval = "soon"
  [[service.probe]]
  kind = "exec"
  command = ["sh", "-c", "true"]
"#,
        medic = medic_table(dir.path(), &host),
    );
    let (code, report) = doctor(dir.path(), &config, &[]);
    assert_eq!(code, 2, "{report:#}");
    let all = report["findings"].as_array().unwrap();
    let config_errors: Vec<&str> = all
        .iter()
        .filter(|f| f["check"] == "config" && f["severity"] == "error")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    for (what, said) in [
        ("the cycle", "cycle"),
        ("the unknown key", "colour"),
        ("the bad duration", "soon"),
    ] {
        assert!(
            config_errors.iter().any(|m| m.contains(said)),
            "{what} among {config_errors:#?}"
        );
    }
    // The config errors first, then the checks.
    let last_config = all.iter().rposition(|f| f["check"] == "config").unwrap();
    let first_other = all.iter().position(|f| f["check"] != "config").unwrap();
    assert!(last_config < first_other, "config errors first: {report:#}");

    assert_eq!(
        findings(&report, "engine", None)[0]["severity"],
        "ok",
        "{report:#}"
    );
    let target = findings(&report, "target", Some("b"));
    assert_eq!(target[0]["severity"], "error", "{report:#}");
    assert!(
        target[0]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{report:#}"
    );
    let exec = findings(&report, "probe", Some("job"));
    assert_eq!(exec[0]["severity"], "error", "{report:#}");
    assert!(
        exec[0]["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/medic-e2e-check"),
        "{report:#}"
    );
    let fine = findings(&report, "probe", Some("sh"));
    assert_eq!(fine[0]["severity"], "ok", "{report:#}");
    // A service whose table does not decode is the broken part: not checked.
    assert!(!all.iter().any(|f| f["service"] == "typo"), "{report:#}");
}

#[test]
fn doctor_warns_about_command_targets_the_installed_unit_forbids() {
    let dir = tempfile::tempdir().unwrap();
    let root = installed_root(dir.path());
    let config = format!(
        r#"[medic]
state_dir = "{0}/state"
control_socket = "{0}/run/control.sock"

[[service]]
name = "api"
command = {{ restart = ["systemctl", "restart", "api"], rollback = ["/bin/sh", "-c", "echo previous > /opt/api/current"] }}
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:{port}"

[[service]]
name = "legacy"
command = {{ restart = ["sudo", "/usr/local/bin/restart-legacy"] }}
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:{port}"
"#,
        dir.path().display(),
        port = free_port()
    );
    let root_arg = root.display().to_string();
    let (code, report) = doctor(dir.path(), &config, &["--root", &root_arg]);
    assert_eq!(code, 2, "{report:#}");
    let api = findings(&report, "hardening", Some("api"));
    assert_eq!(api[0]["severity"], "warning", "{report:#}");
    assert!(
        api[0]["message"]
            .as_str()
            .unwrap()
            .contains("may not restart api.service")
    );
    assert!(
        api[0]["fix"]
            .as_str()
            .unwrap()
            .contains("medic-command-targets.rules")
    );
    assert_eq!(
        api[1]["severity"], "warning",
        "rollback: read-only: {report:#}"
    );
    let legacy = findings(&report, "hardening", Some("legacy"));
    assert_eq!(legacy[0]["severity"], "error", "{report:#}");
    assert!(
        legacy[0]["message"]
            .as_str()
            .unwrap()
            .contains("NoNewPrivileges")
    );

    // The opt-in files, as docs/running.md says: the polkit rule and the drop-in.
    let rules = root.join("etc/polkit-1/rules.d");
    let dropins = root.join("etc/systemd/system/medic.service.d");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::create_dir_all(&dropins).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd");
    std::fs::copy(
        repo.join("medic-command-targets.rules"),
        rules.join("50-medic.rules"),
    )
    .unwrap();
    std::fs::copy(
        repo.join("command-targets.conf"),
        dropins.join("command-targets.conf"),
    )
    .unwrap();
    let (_, report) = doctor(dir.path(), &config, &["--root", &root_arg]);
    let api = findings(&report, "hardening", Some("api"));
    assert!(
        api.iter().all(|f| f["severity"] == "ok"),
        "the rule names api.service and the drop-in opens /opt/api: {report:#}"
    );
}

#[test]
fn doctor_exits_0_when_all_is_well() {
    let Some(engine) = Engine::get() else { return };
    let running = unique("doctor-running");
    let _cleanup = Cleanup(&engine, vec![running.clone()]);
    let port = free_port();
    engine.run_on_host(
        &running,
        &["-e", &format!("PORT={port}"), "medic-test/good:1"],
    );
    let dir = tempfile::tempdir().unwrap();
    let root = installed_root(dir.path());
    let host = std::env::var("MEDIC_TEST_DOCKER_HOST").unwrap();
    let config = format!(
        r#"{medic}metrics_listen = "127.0.0.1:{metrics}"

[[service]]
name = "web"
container = {{ name = "{running}" }}
  [[service.probe]]
  kind = "http"
  url = "http://localhost:{port}/health"
"#,
        medic = medic_table(dir.path(), &host),
        metrics = free_port()
    );
    let root_arg = root.display().to_string();
    let (code, report) = doctor(dir.path(), &config, &["--root", &root_arg]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["warnings"], 0);
    assert!(
        findings(&report, "target", Some("web"))[0]["message"]
            .as_str()
            .unwrap()
            .contains("is running")
    );
}
