//! systemd_unit targets under a real systemd: the .deb installed in the
//! systemd-as-PID-1 container of `systemd.rs` (image from scripts/test,
//! `MEDIC_TEST_SYSTEMD_IMAGE`, and the package, `MEDIC_TEST_DEB`), medic
//! running as its own unit with the packaged hardening. One container serves
//! every check: doctor predicting a denied restart without the polkit rule
//! and the restart's own error saying so (log and alert), a
//! unit killed with SIGKILL restarted through D-Bus with the signal in the
//! evidence, a finished one-shot idle, a `Restart=always` unit left to
//! systemd, a unit past its start limit reset and started, and a pattern
//! picking up a unit that appears.

use serde_json::Value;

use crate::support::docker::Engine;
use crate::support::medic::eventually;
use crate::support::systemd_machine::Machine;
use crate::systemd::Packaged;

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
    (
        "denied.service",
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

[[service]]
name = "denied"
systemd_unit = { name = "denied.service" }
"#;

/// The recovery log's lines of `service`.
fn events(machine: &Machine, service: &str) -> Vec<Value> {
    machine
        .sh("cat /var/lib/medic/recovery.jsonl")
        .1
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["service"] == service)
        .collect()
}

/// The status of `service` as `medic status --json` reports it.
fn status(machine: &Machine, service: &str) -> Option<Value> {
    let out = machine.sh("medic status --json").1;
    let report: Value = serde_json::from_str(&out).ok()?;
    report["services"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == service)
        .cloned()
}

/// `medic doctor --json` on `config`: the findings of `check` for
/// `service`, and the whole report (for messages).
fn doctor(machine: &Machine, config: &str, check: &str, service: &str) -> (Vec<Value>, Value) {
    let (_, out) = machine.sh(&format!("medic doctor --config {config} --json || true"));
    let report: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("doctor --json ({e}): {out}"));
    let findings = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["check"] == check && f["service"] == service)
        .cloned()
        .collect();
    (findings, report)
}

/// Installs the shipped polkit rule with `units` (quoted, comma-separated) as its list.
fn polkit_rule(machine: &Machine, units: &str) {
    machine.must(&format!(
        "mkdir -p /etc/polkit-1/rules.d && sed 's|var units = .*|var units = [{units}];|' /usr/share/doc/medic/examples/medic-systemd-units.rules > /etc/polkit-1/rules.d/50-medic-systemd-units.rules"
    ));
}

#[test]
fn systemd_units_are_read_over_dbus_and_restarted_through_systemd() {
    let Some(engine) = Engine::get() else { return };
    let Some(machine) = Packaged::boot(&engine) else {
        return;
    };
    for (name, unit) in UNITS {
        machine.write(&format!("/etc/systemd/system/{name}"), unit);
    }
    machine.must("systemctl daemon-reload");
    machine.must("systemctl start crash always app-1 denied && systemctl start once");
    // Past its start limit before medic starts: systemd's own restarts hit it.
    machine.sh("systemctl start limited");
    eventually("limited.service hits its start limit", || {
        (machine.show("limited", "ActiveState") == "failed").then_some(())
    });
    machine.must("touch /etc/limited-ok");
    machine.write("/etc/medic/medic.toml", CONFIG);

    // Without the polkit rule, doctor predicts that medic's restarts are refused.
    let (polkit, doctor) = doctor(&machine, "/etc/medic/medic.toml", "polkit", "crash");
    assert!(
        polkit.len() == 1
            && polkit[0]["severity"] == "error"
            && polkit[0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Interactive authentication required")),
        "doctor predicts the refused restart: {doctor:#}"
    );

    // The shipped rule, its units edited in (all but denied.service): doctor
    // is content with those, and still predicts the refusal for the other.
    polkit_rule(
        &machine,
        r#""crash.service", "once.service", "always.service", "limited.service", "app-1.service", "app-2.service""#,
    );
    let (polkit, doctor) = self::doctor(&machine, "/etc/medic/medic.toml", "polkit", "crash");
    assert!(
        !polkit.is_empty() && polkit.iter().all(|f| f["severity"] == "ok"),
        "doctor with the rule: {doctor:#}"
    );
    let (predicted, doctor) = self::doctor(&machine, "/etc/medic/medic.toml", "polkit", "denied");
    assert!(
        predicted.len() == 1 && predicted[0]["severity"] == "error",
        "doctor predicts denied.service's refused restarts: {doctor:#}"
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

    // Without the rule for it: the restarts fail saying why and what to
    // install, in the recovery log and in the escalation's alert.
    eventually("denied healthy", || {
        status(&machine, "denied").filter(|s| s["health"] == "healthy")
    });
    machine.must("systemctl kill -s KILL denied");
    let refused = eventually("denied's refused restart", || {
        events(&machine, "denied")
            .into_iter()
            .find(|e| e["event"] == "restart_failed")
    });
    let said = refused["message"].as_str().unwrap_or_default();
    assert!(
        said.contains("Interactive authentication required")
            && said.contains("polkit")
            && said.contains("/etc/polkit-1/rules.d/50-medic-systemd-units.rules")
            && said.contains("list denied.service in its `units`"),
        "the restart's error names the rule and what to install: {refused:#}"
    );
    let escalated = eventually("denied's escalation alert", || {
        machine
            .sh("cat /var/lib/medic/alerts/critical.jsonl")
            .1
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|a| a["service"] == "denied" && a["kind"] == "escalated")
    });
    assert_eq!(
        escalated["evidence"]["last_restart_error"], refused["message"],
        "the alert's evidence says why the restarts failed: {escalated:#}"
    );
    assert_eq!(escalated["evidence"]["attempts"], 3, "{escalated:#}");

    // The unit's journal through medic logs --output.
    let (_, output) = machine.sh("medic logs crash --output");
    assert!(output.contains("crash.service"), "{output}");
}

/// A unit file that does its job.
const GOOD_UNIT: &str = "[Service]\nExecStart=/bin/sleep infinity\n";
/// The same unit after a bad edit: it fails to start.
const BAD_UNIT: &str = "[Service]\nExecStart=/bin/sh -c 'echo bad config; exit 3'\n";

/// The services a reload adds to the packaged config: `woken` is probed once
/// an hour, so only systemd's signals can show its failure.
const ROLLBACK_CONFIG: &str = r#"
[[service]]
name = "roll"
systemd_unit = { name = "roll.service" }

[[service]]
name = "pkg"
systemd_unit = { name = "pkg.service" }

[[service]]
name = "woken"
interval = "1h"
systemd_unit = { name = "woken.service" }
"#;

#[test]
fn systemd_unit_files_are_rolled_back_to_their_last_known_good() {
    let Some(engine) = Engine::get() else { return };
    let Some(machine) = Packaged::boot(&engine) else {
        return;
    };
    // `roll` is the administrator's unit, `pkg` a package's.
    machine.write("/etc/systemd/system/roll.service", GOOD_UNIT);
    machine.write("/usr/lib/systemd/system/pkg.service", GOOD_UNIT);
    machine.write("/etc/systemd/system/woken.service", GOOD_UNIT);
    machine.must("systemctl daemon-reload && systemctl start roll pkg woken");
    polkit_rule(
        &machine,
        r#""roll.service", "pkg.service", "woken.service""#,
    );

    // Without the opt-in drop-in, doctor predicts the rollback's failure.
    machine.write("/tmp/units.toml", ROLLBACK_CONFIG);
    let (predicted, doctor) = doctor(&machine, "/tmp/units.toml", "rollback", "roll");
    assert!(
        predicted.len() == 1
            && predicted[0]["severity"] == "warning"
            && predicted[0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("read-only")),
        "doctor predicts the failing rollback: {doctor:#}"
    );
    machine.must(
        "mkdir -p /etc/systemd/system/medic.service.d && cp /usr/share/doc/medic/examples/unit-rollback.conf /etc/systemd/system/medic.service.d/ && systemctl daemon-reload",
    );
    let (granted, doctor) = self::doctor(&machine, "/tmp/units.toml", "rollback", "roll");
    assert_eq!(granted[0]["severity"], "ok", "{doctor:#}");

    // medic starts on the packaged config (no systemd unit); a reload adds the
    // first ones, and follows systemd's changes from then on.
    machine.must("systemctl start medic");
    machine.must("cp /tmp/units.toml /etc/medic/medic.toml && systemctl reload medic");
    eventually("woken healthy", || {
        status(&machine, "woken").filter(|s| s["health"] == "healthy")
    });
    machine.must("systemctl kill -s KILL woken");
    let woken = eventually("woken's failure, seen through systemd's signal", || {
        events(&machine, "woken")
            .into_iter()
            .find(|e| e["event"] == "failing")
    });
    assert!(woken.to_string().contains("SIGKILL"), "{woken:#}");

    // Each unit's files become its last known good once it stayed healthy
    // (Debian's merged /usr: systemd finds the package's file in /lib first).
    for (service, path) in [
        ("roll", "/etc/systemd/system/roll.service"),
        ("pkg", "/lib/systemd/system/pkg.service"),
    ] {
        eventually(&format!("{service}'s last known good"), || {
            status(&machine, service).filter(|s| {
                s["last_known_good"]["fragment_path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(path))
            })
        });
    }

    // A bad edit of each: three failed restarts, then the rollback.
    machine.write("/etc/systemd/system/roll.service", BAD_UNIT);
    machine.write("/usr/lib/systemd/system/pkg.service", BAD_UNIT);
    machine.must("systemctl daemon-reload && systemctl restart roll pkg || true");
    for service in ["roll", "pkg"] {
        // `rolled_back`: the rollback verified by fresh observations.
        let done = eventually(&format!("{service} rolled back and verified"), || {
            let events = events(&machine, service);
            events
                .iter()
                .any(|e| e["event"] == "rolled_back")
                .then_some(())?;
            events.into_iter().find(|e| e["event"] == "rollback_done")
        });
        let failed_restarts = events(&machine, service)
            .iter()
            .filter(|e| e["event"] == "restart_failed")
            .count();
        assert_eq!(failed_restarts, 3, "{service}: {done:#}");
        assert_eq!(machine.show(service, "ActiveState"), "active", "{done:#}");
    }
    // The administrator's file is back in place, the bad one kept beside it.
    assert_eq!(
        machine.must("cat /etc/systemd/system/roll.service"),
        GOOD_UNIT.trim_end()
    );
    let kept = machine.must("cat /etc/systemd/system/roll.service.medic-failed-*");
    assert!(kept.contains("exit 3"), "{kept}");
    // The package's file is untouched: the last known good overrides it from /etc.
    assert!(
        machine
            .must("cat /usr/lib/systemd/system/pkg.service")
            .contains("exit 3")
    );
    assert_eq!(
        machine.show("pkg", "FragmentPath"),
        "/etc/systemd/system/pkg.service"
    );
    assert_eq!(
        machine.must("cat /etc/systemd/system/pkg.service"),
        GOOD_UNIT.trim_end()
    );
}
