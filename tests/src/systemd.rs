//! medic's .deb under a real systemd: systemd runs as PID 1 in a container on
//! the test engine (image from scripts/test, `MEDIC_TEST_SYSTEMD_IMAGE`), with
//! the engine's socket bind-mounted in. One container serves every check, in
//! the order a user meets them: the packaged config as shipped (doctor, the
//! socket for group medic, a bad config's 78), the unit starts without a docker group, then
//! with it; READY, reload, command targets through the opt-in drop-in and
//! polkit rule, journal lines and priorities, the watchdog, and stop.

use std::time::{Duration, Instant};

use crate::support::docker::{Cleanup, Engine, unique};
use crate::support::env;
use crate::support::medic::{eventually, free_port};
use crate::support::systemd_machine::Machine;

/// The systemd machine of a test, with the package installed; holds the
/// one-machine lock until the container is removed (fields drop in order).
pub(crate) struct Packaged {
    machine: Machine,
    /// One machine at a time: each runs the packaged config on the host's
    /// network, whose listeners have fixed ports.
    _alone: std::sync::MutexGuard<'static, ()>,
}

/// Held by the one [`Packaged`] machine booted.
static ONE_MACHINE: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Packaged {
    /// The test's machine with the package at /medic.deb installed, when the
    /// environment names the systemd image and the package (else the test is
    /// skipped).
    pub(crate) fn boot(engine: &Engine) -> Option<Self> {
        let (Some(image), Some(deb)) = (env::systemd_image(), env::deb()) else {
            return None;
        };
        let socket = engine
            .host()
            .strip_prefix("unix://")
            .expect("the test engine listens on a unix socket")
            .to_owned();
        let alone = ONE_MACHINE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Two tests boot one each, in one process: `unique` alone is per process.
        static BOOTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = BOOTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let runner = engine.clone();
        let machine = Machine::boot(
            Box::new(move |args| runner.try_run(args)),
            &unique(&format!("systemd{n}")),
            &image,
            &socket,
            &[format!("{deb}:/medic.deb:ro")],
        );
        machine.must("dpkg -i /medic.deb");
        Some(Self {
            machine,
            _alone: alone,
        })
    }
}

impl std::ops::Deref for Packaged {
    type Target = Machine;
    fn deref(&self) -> &Machine {
        &self.machine
    }
}

/// medic's journal since the container started, as `journalctl` prints it with `args`.
fn medic_journal(machine: &Machine, args: &str) -> String {
    machine
        .sh(&format!("journalctl -u medic --no-pager {args}"))
        .1
}

/// The medic config used in the container: a container target on the test
/// engine and a command target whose probe never answers, so medic restarts
/// it through systemctl and then runs its rollback script.
fn config(web: &str, web_port: u16, api_port: u16, extra: &str) -> String {
    format!(
        r#"
[[service]]
name = "web"
container = {{ name = "{web}" }}
  [[service.probe]]
  kind = "http"
  url = "http://127.0.0.1:{web_port}/health"

[[service]]
name = "api"
command = {{ restart = ["systemctl", "restart", "api"], rollback = ["/opt/api/rollback.sh"], timeout = "10s" }}
interval = "1s"
timeout = "500ms"
backoff = "200ms"
recover_timeout = "3s"
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:{api_port}"
{extra}"#
    )
}

#[test]
fn the_deb_runs_under_a_real_systemd() {
    let Some(engine) = Engine::get() else { return };
    let web = unique("sd-web");
    let _cleanup = Cleanup(&engine, vec![web.clone()]);
    let web_port = free_port();
    engine.run_on_host(
        &web,
        &["-e", &format!("PORT={web_port}"), "medic-test/good:1"],
    );

    let Some(machine) = Packaged::boot(&engine) else {
        return;
    };

    // 0. As shipped: doctor finds /etc/medic/medic.toml without --config and
    //    reports no error; a member of group medic reaches the control socket.
    let (_, doctor) = machine.sh("medic doctor --json || true");
    let report: serde_json::Value =
        serde_json::from_str(&doctor).unwrap_or_else(|e| panic!("doctor --json ({e}): {doctor}"));
    assert_eq!(report["errors"], 0, "doctor on a fresh install: {report:#}");
    assert_eq!(
        report["findings"][0]["message"],
        "using /etc/medic/medic.toml (from /etc/medic)"
    );
    machine.must("useradd -m alice && usermod -aG medic alice");
    machine.must("systemctl start medic");
    let (_, status) = machine.sh("runuser -u alice -- medic status --json || true");
    assert!(
        status.contains("\"overall\""),
        "medic status as a member of group medic: {status}"
    );
    machine.must("systemctl stop medic");
    // A config medic cannot use: exit 78, and the unit stays failed instead of restarting.
    machine.must(
        "cp /etc/medic/medic.toml /root/medic.toml && echo 'bogus = 1' >> /etc/medic/medic.toml",
    );
    assert!(
        !machine.sh("systemctl start medic").0,
        "a bad config fails the start"
    );
    assert_eq!(
        (
            machine.show("medic", "ActiveState"),
            machine.show("medic", "ExecMainStatus")
        ),
        ("failed".to_owned(), "78".to_owned())
    );
    machine.must("systemctl reset-failed medic && cp /root/medic.toml /etc/medic/medic.toml");

    // 1. No docker group: the unit starts anyway (it used to fail 216/GROUP), and
    //    the engine's refusal reaches the journal as a warning.
    machine.must("groupdel docker");
    // The unit a command target restarts, and its rollback script, writable by medic.
    machine.write(
        "/etc/systemd/system/api.service",
        "[Service]\nExecStart=/bin/sh -c 'date +%%s.%%N >> /var/log/api-starts; exec sleep infinity'\n",
    );
    machine.write(
        "/opt/api/rollback.sh",
        "#!/bin/sh\necho previous > /opt/api/current\n",
    );
    machine.must("chmod 755 /opt/api/rollback.sh && chown medic /opt/api");
    machine.must("systemctl daemon-reload && systemctl start api");
    let api_port = free_port();
    machine.write(
        "/etc/medic/medic.toml",
        &config(&web, web_port, api_port, ""),
    );
    // doctor, run where medic is installed, foresees both refusals below.
    let (_, doctor) = machine.sh("medic doctor --config /etc/medic/medic.toml --json || true");
    let doctor: serde_json::Value =
        serde_json::from_str(&doctor).unwrap_or_else(|e| panic!("doctor --json ({e}): {doctor}"));
    let hardening: Vec<&serde_json::Value> = doctor["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "hardening" && f["service"] == "api")
        .collect();
    assert!(
        hardening.len() == 2 && hardening.iter().all(|f| f["severity"] == "warning"),
        "doctor warns about the restart and the rollback: {doctor:#}"
    );
    // As user medic, with no group for the socket, doctor names the fix.
    let (_, as_medic) = machine
        .sh("runuser -u medic -- medic doctor --config /etc/medic/medic.toml --json || true");
    assert!(
        as_medic.contains("usermod -aG docker medic"),
        "doctor as medic, engine refused: {as_medic}"
    );
    machine.must("systemctl start medic");
    assert_eq!(machine.show("medic", "ActiveState"), "active");
    let blind = medic_journal(&machine, "-p warning -o cat");
    assert!(
        blind.contains("Docker engine unreachable"),
        "the blind container target is a warning in the journal:\n{}",
        medic_journal(&machine, "-o cat")
    );
    // Without the opt-in the command target's restart is refused (user medic
    // may not manage units) and its rollback cannot write (read-only /opt).
    let line = |event: &str| {
        let pattern = format!("service=api event=\"{event}\"");
        eventually(&format!("api's {event}"), || {
            let journal = medic_journal(&machine, "-o cat");
            Some(journal.lines().find(|l| l.contains(&pattern))?.to_owned())
        })
    };
    let refused = line("restart_failed");
    eprintln!("without the polkit rule: {refused}");
    assert!(
        refused.contains("Interactive authentication required")
            || refused.contains("Access denied"),
        "{refused}"
    );
    let read_only = line("rollback_failed");
    eprintln!("without the drop-in: {read_only}");
    assert!(read_only.contains("Read-only file system"), "{read_only}");
    // A fresh start for phase 2: forget that incident.
    machine.must("systemctl stop medic && rm -f /var/lib/medic/state.json /var/lib/medic/state.changes.jsonl");

    // 2. The group that owns the engine's socket, as on a Docker host, and the
    //    opt-in rights for command targets: the drop-in and the polkit rule.
    let gid = machine.must("stat -c %g /run/docker.sock");
    assert_ne!(
        gid, "0",
        "the test engine's socket belongs to a docker group"
    );
    machine.must(&format!(
        "groupadd -g {gid} docker && usermod -aG docker medic"
    ));
    machine.must(
        "mkdir -p /etc/systemd/system/medic.service.d /etc/polkit-1/rules.d && \
         cp /usr/share/doc/medic/examples/command-targets.conf /etc/systemd/system/medic.service.d/ && \
         cp /usr/share/doc/medic/examples/medic-command-targets.rules /etc/polkit-1/rules.d/50-medic.rules",
    );
    machine.must("systemctl daemon-reload");

    // READY: `systemctl start` of a Type=notify unit returns once medic sent it.
    let started = Instant::now();
    machine.must("systemctl start medic");
    eprintln!("systemctl start medic: {:?}", started.elapsed());
    assert_eq!(
        machine.show("medic", "ActiveState") + " " + &machine.show("medic", "SubState"),
        "active running"
    );
    let journal = medic_journal(&machine, "-o cat");
    let ready = journal.rfind("First round of observations done");
    let started = journal.rfind("Started medic.service");
    assert!(
        ready.is_some() && ready < started,
        "active only after the first round (READY):\n{journal}"
    );
    let status = machine.show("medic", "StatusText");
    assert!(!status.is_empty(), "medic sends a STATUS line");

    // The engine is reachable: the container target is healthy.
    eventually("web healthy through the engine's socket", || {
        let out = machine.sh("medic status --json || true").1;
        let status: serde_json::Value = serde_json::from_str(&out).ok()?;
        let web = status["services"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == "web")?;
        (web["health"] == "healthy").then_some(())
    });

    // Command targets act: `systemctl restart api` as user medic (polkit), then
    // the rollback script writes under /opt/api (the drop-in's ReadWritePaths).
    eventually("the rollback script wrote /opt/api/current", || {
        machine
            .sh("cat /opt/api/current")
            .1
            .contains("previous")
            .then_some(())
    });
    let starts = machine.must("wc -l < /var/log/api-starts");
    assert!(
        starts.parse::<u32>().unwrap_or(0) >= 2,
        "medic's `systemctl restart api` restarted the unit ({starts} starts)\n{}",
        machine.sh("cat /var/lib/medic/recovery.jsonl").1
    );

    // Reload re-reads the config: a new service appears.
    machine.write(
        "/etc/medic/medic.toml",
        &config(
            &web,
            web_port,
            api_port,
            &format!(
                "\n[[service]]\nname = \"added\"\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:{web_port}\"\n"
            ),
        ),
    );
    machine.must("systemctl reload medic");
    eventually("the reloaded config's new service", || {
        machine
            .sh("medic status --json || true")
            .1
            .contains("\"added\"")
            .then_some(())
    });

    // The journal: plain lines, no second timestamp, warnings at priority 4.
    let lines = medic_journal(&machine, "-o cat");
    assert!(!lines.contains('\u{1b}'), "no ANSI escapes:\n{lines}");
    let stamped = regex_like_timestamp(&lines);
    assert!(stamped.is_none(), "a second timestamp: {stamped:?}");
    let warnings = medic_journal(&machine, "-p warning -o cat");
    eprintln!("journalctl -u medic -p warning -o cat:\n{warnings}");
    assert!(
        warnings.lines().any(|l| l.contains("WARN")),
        "`journalctl -p warning -u medic` shows medic's warnings:\n{lines}"
    );
    assert!(
        !warnings.lines().any(|l| l.contains(" INFO ")),
        "info lines stay out of -p warning:\n{warnings}"
    );

    // The watchdog: a stopped loop is killed and medic restarted, with the
    // unit's own WatchdogSec.
    let main_pid = || {
        machine
            .show("medic", "MainPID")
            .parse::<u32>()
            .ok()
            .filter(|p| *p > 0)
    };
    let pid = main_pid().expect("medic runs");
    let stopped = Instant::now();
    machine.must(&format!("kill -STOP {pid}"));
    // A busy machine can make one `systemctl show` fail: only a real new pid counts.
    eventually("systemd's watchdog restarts a hung medic", || {
        let now = main_pid()?;
        (now != pid && machine.show("medic", "ActiveState") == "active").then_some(())
    });
    eprintln!(
        "watchdog (WatchdogSec={}): hung loop to a new medic in {:?}",
        machine.show("medic", "WatchdogUSec"),
        stopped.elapsed()
    );
    let journal = medic_journal(&machine, "-o cat");
    assert!(
        journal.contains("Watchdog timeout"),
        "restarted by the watchdog:\n{journal}"
    );

    // Stop: STOPPING=1 reaches systemd and medic exits well within TimeoutStopSec.
    machine.must("systemd-analyze log-level debug");
    let stopping = Instant::now();
    machine.must("systemctl stop medic");
    let took = stopping.elapsed();
    machine.must("systemd-analyze log-level info");
    eprintln!("systemctl stop medic: {took:?}");
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
    assert_eq!(machine.show("medic", "Result"), "success");
    assert!(
        medic_journal(&machine, "-o cat").contains("STOPPING=1"),
        "systemd received STOPPING=1"
    );
}

/// The first journal line that starts with a date (`2026-…`), which journald's
/// own timestamp makes redundant.
fn regex_like_timestamp(lines: &str) -> Option<&str> {
    lines.lines().find(|line| {
        let bytes = line.as_bytes();
        bytes.len() > 10
            && bytes[..4].iter().all(u8::is_ascii_digit)
            && bytes[4] == b'-'
            && bytes[7] == b'-'
    })
}
