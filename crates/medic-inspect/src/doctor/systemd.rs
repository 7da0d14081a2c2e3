//! Whether a systemd_unit target can work: systemd reachable over D-Bus, the
//! unit (or the pattern's units) there, and a polkit rule that lets medic's
//! user restart it (without one, every restart fails "Interactive
//! authentication required").

use std::path::Path;
use std::time::Duration;

use medic_core::config::{Service, SystemdUnitTarget, UnitSelector};
use medic_systemd::{
    Classification, Expect, POLKIT_RULE_PATH, POLKIT_RULE_SOURCE, SystemdBus, classify,
};

use super::findings::Findings;
use super::unit::{InstalledUnit, polkit_rules};

/// The longest doctor waits for one D-Bus call.
const DEADLINE: Duration = Duration::from_secs(5);

/// Reports on one systemd_unit target.
pub(super) async fn check_systemd_unit(
    service: &Service,
    target: &SystemdUnitTarget,
    installed: Option<&InstalledUnit>,
    root: &Path,
    out: &mut Findings,
) {
    let name = Some(service.name.as_str());
    let manager = if target.user {
        "the user's systemd"
    } else {
        "systemd"
    };
    let bus = match SystemdBus::connect(target.user, DEADLINE).await {
        Ok(bus) => bus,
        Err(error) => {
            out.error(
                "target",
                name,
                format!("cannot reach {manager} over D-Bus: {error}"),
                "systemd_unit targets need systemd and its D-Bus bus (dbus or dbus-broker running); without them medic reads the unit as unknown",
            );
            return;
        }
    };
    let units = match &target.selector {
        UnitSelector::Name(unit) => vec![unit.clone()],
        UnitSelector::Pattern(pattern) => match bus.list(pattern).await {
            Ok(units) if units.is_empty() => {
                out.warn("target", name, format!("no unit matches {pattern}"), "check the pattern (`systemctl list-units --all 'PATTERN'`); medic watches what appears");
                return;
            }
            Ok(units) => {
                out.ok(
                    "target",
                    name,
                    format!("{pattern} matches {}: {}", units.len(), units.join(", ")),
                );
                units
            }
            Err(error) => {
                out.error(
                    "target",
                    name,
                    format!("cannot list the units of {pattern}: {error}"),
                    "see systemd's journal (`journalctl -u dbus`)",
                );
                return;
            }
        },
    };
    if let UnitSelector::Name(unit) = &target.selector {
        match bus.facts(unit).await {
            Ok(facts) => {
                let verdict = classify(&facts, Expect::ExitedOk);
                match verdict.class {
                    Classification::Missing => out.error("target", name, format!("{unit}: {}", verdict.message), format!("install {unit} (a file under /etc/systemd/system or /lib/systemd/system, then `systemctl daemon-reload`), or fix the name")),
                    Classification::Healthy | Classification::Idle | Classification::Starting => out.ok("target", name, format!("{unit} is {}", verdict.message)),
                    _ => out.warn("target", name, format!("{unit} {}", verdict.message), format!("medic will restart it; `systemctl status {unit}` and `journalctl -u {unit}` say why it is down")),
                }
            }
            Err(error) => out.error(
                "target",
                name,
                format!("cannot read {unit}: {error}"),
                "see systemd's journal",
            ),
        }
    }
    check_polkit(service, target, &units, installed, root, out);
    check_rollback(service, target, installed, root, out);
}

/// Predicts a rollback that escalates: medic's unit keeps /etc/systemd/system
/// read-only (no opt-in drop-in), or no polkit rule lets medic's user reload
/// systemd.
fn check_rollback(
    service: &Service,
    target: &SystemdUnitTarget,
    installed: Option<&InstalledUnit>,
    root: &Path,
    out: &mut Findings,
) {
    let Some(unit) = installed.filter(|u| u.user.as_deref().is_some_and(|u| u != "root")) else {
        return;
    };
    if target.user {
        return;
    }
    let name = Some(service.name.as_str());
    let user = unit.user.as_deref().unwrap_or("medic");
    let writable = !unit.protect_system_strict
        || unit
            .read_write_paths
            .iter()
            .any(|p| p.trim_end_matches('/') == "/etc/systemd/system");
    let reload = polkit_rules(root)
        .into_iter()
        .any(|r| r.contains(user) && r.contains("org.freedesktop.systemd1.reload-daemon"));
    if !writable {
        out.warn(
            "rollback",
            name,
            "medic.service keeps /etc/systemd/system read-only: a rollback to the unit's last known good files will fail and escalate",
            "mkdir -p /etc/systemd/system/medic.service.d && cp /usr/share/doc/medic/examples/unit-rollback.conf /etc/systemd/system/medic.service.d/ && systemctl daemon-reload && systemctl restart medic",
        );
    } else if !reload {
        out.warn(
            "rollback",
            name,
            format!("user {user} may not reload systemd (no polkit rule grants org.freedesktop.systemd1.reload-daemon): a rollback will fail and escalate"),
            "install the shipped medic-systemd-units.rules, which grants it",
        );
    } else {
        out.ok(
            "rollback",
            name,
            "medic may write /etc/systemd/system and reload systemd: a rollback can restore the unit's last known good files",
        );
    }
}

/// Predicts a denied restart: medic's unit runs as a user other than root,
/// and no polkit rule for medic names the unit.
fn check_polkit(
    service: &Service,
    target: &SystemdUnitTarget,
    units: &[String],
    installed: Option<&InstalledUnit>,
    root: &Path,
    out: &mut Findings,
) {
    let Some(user) = installed
        .and_then(|u| u.user.as_deref())
        .filter(|u| *u != "root")
    else {
        return;
    };
    if target.user {
        return;
    }
    let rules: Vec<String> = polkit_rules(root)
        .into_iter()
        .filter(|r| r.contains(user) && r.contains("org.freedesktop.systemd1.manage-units"))
        .collect();
    let pattern = match &target.selector {
        // A rule may test the pattern's fixed start (`unit.indexOf("app-") == 0`).
        UnitSelector::Pattern(pattern) => pattern.split(['*', '?', '[']).next(),
        UnitSelector::Name(_) => None,
    };
    let missing: Vec<&str> = units
        .iter()
        .map(String::as_str)
        .filter(|unit| {
            !rules.iter().any(|r| {
                r.contains(&format!("\"{unit}\""))
                    || pattern.is_some_and(|p| !p.is_empty() && r.contains(&format!("\"{p}")))
            })
        })
        .collect();
    let name = Some(service.name.as_str());
    if missing.is_empty() {
        out.ok(
            "polkit",
            name,
            format!("a polkit rule lets {user} restart {}", units.join(", ")),
        );
    } else {
        out.error(
            "polkit",
            name,
            format!("user {user} may not restart {} (no polkit rule names it): medic's restarts will fail with \"Interactive authentication required\"", missing.join(", ")),
            format!("cp {POLKIT_RULE_SOURCE} {POLKIT_RULE_PATH} and list {} in `units`", missing.join(", ")),
        );
    }
}
