//! systemd_unit targets under a real systemd: the .deb installed in the
//! systemd-as-PID-1 container of `systemd.rs` (image from scripts/test,
//! `MEDIC_TEST_SYSTEMD_IMAGE`, and the package, `MEDIC_TEST_DEB`), medic
//! running as its own unit with the packaged hardening. One container serves
//! every check: doctor predicting a denied restart without the polkit rule, a
//! unit killed with SIGKILL restarted through D-Bus with the signal in the
//! evidence, a finished one-shot idle, a `Restart=always` unit left to
//! systemd, a unit past its start limit reset and started, and a pattern
//! picking up a unit that appears.

use serde_json::Value;

use crate::support::docker::Engine;
use crate::support::env;
use crate::support::medic::eventually;
use crate::systemd::Machine;

/// The units, written to /etc/systemd/system.
const UNITS: &[(&str, &str)] = &[
    (
        "crash.service",
        "[Service]\nExecStart=/bin/sleep infinity\n",
    ),
    (
        "once.service",
        "[Service]\nType=oneshot\nExecStart=/bin/true\n",
    ),
    (
        "always.service",
        "[Service]\nExecStart=/bin/sleep infinity\nRestart=always\nRestartSec=1s\n",
    ),
    (
        "limited.service",
        "[Unit]\nStartLimitIntervalSec=1h\nStartLimitBurst=2\n[Service]\nExecStart=/bin/sh -c 'test -e /etc/limited-ok || exit 1; exec sleep infinity'\nRestart=on-failure\nRestartSec=100ms\n",
    ),
    (
        "app-1.service",
        "[Service]\nExecStart=/bin/sleep infinity\n",
    ),
];

const CONFIG: &str = r#"
[[service]]
name = "crash"
systemd_unit = { name = "crash.service" }

[[service]]
name = "once"
systemd_unit = { name = "once.service" }

[[service]]
name = "always"
systemd_unit = { name = "always.service" }

[[service]]
name = "limited"
systemd_unit = { name = "limited.service" }

[[service]]
name = "apps"
systemd_unit = { pattern = "app-*.service" }
"#;

/// The recovery log's lines of `service`.
fn events(machine: &Machine<'_>, service: &str) -> Vec<Value> {
    machine
        .sh("cat /var/lib/medic/recovery.jsonl")
        .1
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["service"] == service)
        .collect()
}

/// The status of `service` as `medic status --json` reports it.
fn status(machine: &Machine<'_>, service: &str) -> Option<Value> {
    let out = machine.sh("medic status --json").1;
    let report: Value = serde_json::from_str(&out).ok()?;
    report["services"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == service)
        .cloned()
}

#[test]
fn systemd_units_are_read_over_dbus_and_restarted_through_systemd() {
    let Some(engine) = Engine::get() else { return };
    let (Some(image), Some(deb)) = (env::systemd_image(), env::deb()) else {
        return;
    };
    let socket = env::docker_host()
        .and_then(|host| host.strip_prefix("unix://").map(str::to_owned))
        .expect("the test engine listens on a unix socket");
    let machine = Machine::installed(&engine, &image, &deb, &socket);
    for (name, unit) in UNITS {
        machine.write(&format!("/etc/systemd/system/{name}"), unit);
    }
    machine.must("systemctl daemon-reload");
    machine.must("systemctl start crash always app-1 && systemctl start once");
    // Past its start limit before medic starts: systemd's own restarts hit it.
    machine.sh("systemctl start limited");
    eventually("limited.service hits its start limit", || {
        (machine.show("limited", "ActiveState") == "failed").then_some(())
    });
    machine.must("touch /etc/limited-ok");
    machine.write("/etc/medic/medic.toml", CONFIG);

    // Without the polkit rule, doctor predicts that medic's restarts are refused.
    let (_, doctor) = machine.sh("medic doctor --config /etc/medic/medic.toml --json || true");
    let doctor: Value =
        serde_json::from_str(&doctor).unwrap_or_else(|e| panic!("doctor --json ({e}): {doctor}"));
    let polkit: Vec<&Value> = doctor["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["check"] == "polkit" && f["service"] == "crash")
        .collect();
    assert!(
        polkit.len() == 1
            && polkit[0]["severity"] == "error"
            && polkit[0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Interactive authentication required")),
        "doctor predicts the refused restart: {doctor:#}"
    );

    // The shipped rule, its units edited in: doctor is content.
    machine.must(
        "mkdir -p /etc/polkit-1/rules.d && sed 's|var units = .*|var units = [\"crash.service\", \"once.service\", \"always.service\", \"limited.service\", \"app-1.service\", \"app-2.service\"];|' /usr/share/doc/medic/examples/medic-systemd-units.rules > /etc/polkit-1/rules.d/50-medic-systemd-units.rules",
    );
    let (_, doctor) = machine.sh("medic doctor --config /etc/medic/medic.toml --json || true");
    assert!(
        !doctor.contains("Interactive authentication required"),
        "doctor with the rule: {doctor}"
    );
    machine.must("systemctl start medic");

    // The start limit: reset, then started.
    let limited = eventually("limited.service restarted by medic", || {
        events(&machine, "limited")
            .into_iter()
            .find(|e| e["event"] == "restart_done")
    });
    assert!(
        limited["message"]
            .as_str()
            .is_some_and(|m| m.contains("reset its failed state and start limit")),
        "{limited}"
    );
    assert_eq!(machine.show("limited", "ActiveState"), "active");

    // The finished one-shot: idle and healthy, never acted on.
    let once = eventually("once's status", || {
        status(&machine, "once").filter(|s| s["health"] == "healthy")
    });
    assert_eq!(once["classification"], "idle", "{once}");

    // SIGKILL: seen at once, restarted through D-Bus, the signal in the evidence.
    eventually("crash healthy", || {
        status(&machine, "crash").filter(|s| s["health"] == "healthy")
    });
    let pid = machine.show("crash", "MainPID");
    machine.must("systemctl kill -s KILL crash");
    let failing = eventually("crash's failing line", || {
        events(&machine, "crash")
            .into_iter()
            .find(|e| e["event"] == "failing")
    });
    let evidence = failing.to_string();
    assert!(evidence.contains("SIGKILL"), "{failing:#}");
    eventually("crash restarted through systemd", || {
        events(&machine, "crash")
            .iter()
            .any(|e| e["event"] == "restart_done")
            .then_some(())
    });
    eventually("crash runs again", || {
        let now = machine.show("crash", "MainPID");
        (machine.show("crash", "ActiveState") == "active" && now != pid && now != "0").then_some(())
    });

    // Restart=always: systemd restarts it itself; medic waits and does nothing.
    let before = machine.show("always", "NRestarts");
    machine.must("systemctl kill -s KILL always");
    eventually("systemd restarted always.service", || {
        (machine.show("always", "NRestarts") != before
            && machine.show("always", "ActiveState") == "active")
            .then_some(())
    });
    eventually("always healthy again", || {
        status(&machine, "always").filter(|s| s["health"] == "healthy")
    });
    let acted: Vec<String> = events(&machine, "always")
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_owned))
        .filter(|e| e.starts_with("restart"))
        .collect();
    assert!(
        acted.is_empty(),
        "medic left always.service to systemd: {acted:?}"
    );

    // A unit that appears is picked up by the pattern.
    machine.write(
        "/etc/systemd/system/app-2.service",
        "[Service]\nExecStart=/bin/sleep infinity\n",
    );
    machine.must("systemctl daemon-reload && systemctl start app-2");
    eventually("apps/app-2.service watched", || {
        status(&machine, "apps/app-2.service").filter(|s| s["health"] == "healthy")
    });

    // The unit's journal through medic logs --output.
    let (_, output) = machine.sh("medic logs crash --output");
    assert!(output.contains("crash.service"), "{output}");
}
