//! The installed medic.service as systemd would load it (the unit and its
//! drop-ins), and whether each command target can work under its hardening
//! (`NoNewPrivileges`, `ProtectSystem=strict`, polkit rules).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use medic_core::config::CommandTarget;

use super::findings::Findings;

/// What doctor needs to know of the installed medic.service and its drop-ins.
#[derive(Debug)]
pub(super) struct InstalledUnit {
    pub(super) path: PathBuf,
    pub(super) user: Option<String>,
    pub(super) protect_system_strict: bool,
    pub(super) no_new_privileges: bool,
    pub(super) state_directory: bool,
    pub(super) runtime_directory: bool,
    pub(super) read_write_paths: Vec<String>,
}

impl InstalledUnit {
    /// The unit as systemd would load it: /etc overrides /usr/lib and /lib;
    /// drop-ins in /etc and /run add to it.
    pub(super) fn read(root: &Path) -> Option<Self> {
        let path = [
            "etc/systemd/system",
            "usr/lib/systemd/system",
            "lib/systemd/system",
        ]
        .iter()
        .map(|dir| root.join(dir).join("medic.service"))
        .find(|p| p.is_file())?;
        let mut text = std::fs::read_to_string(&path).ok()?;
        for dir in [
            "etc/systemd/system/medic.service.d",
            "run/systemd/system/medic.service.d",
        ] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            let mut dropins: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                .collect();
            dropins.sort();
            for dropin in dropins {
                text.push('\n');
                text.push_str(&std::fs::read_to_string(dropin).unwrap_or_default());
            }
        }
        let mut unit = Self {
            path,
            user: None,
            protect_system_strict: false,
            no_new_privileges: false,
            state_directory: false,
            runtime_directory: false,
            read_write_paths: Vec::new(),
        };
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with(['#', ';']))
        {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "User" => unit.user = Some(value.to_owned()).filter(|v| !v.is_empty()),
                "ProtectSystem" => unit.protect_system_strict = value == "strict",
                "NoNewPrivileges" => {
                    unit.no_new_privileges = matches!(value, "yes" | "true" | "1" | "on")
                }
                "StateDirectory" => unit.state_directory = !value.is_empty(),
                "RuntimeDirectory" => unit.runtime_directory = !value.is_empty(),
                "ReadWritePaths" if value.is_empty() => unit.read_write_paths.clear(),
                "ReadWritePaths" => unit.read_write_paths.extend(
                    value
                        .split_whitespace()
                        .map(|p| p.trim_start_matches(['-', '+']).to_owned()),
                ),
                _ => {}
            }
        }
        Some(unit)
    }
}

/// Programs that gain privileges through setuid, which `NoNewPrivileges=yes` stops.
const SETUID: &[&str] = &["sudo", "su", "doas", "pkexec", "run0"];
/// systemctl verbs the polkit rule can grant.
const UNIT_VERBS: &[&str] = &[
    "start",
    "stop",
    "restart",
    "try-restart",
    "reload-or-restart",
];

/// Warns about a command target that cannot work under the installed unit's hardening.
pub(super) fn check_hardening(
    service: &str,
    command: &CommandTarget,
    unit: &InstalledUnit,
    root: &Path,
    out: &mut Findings,
) {
    let name = Some(service);
    for (what, argv) in commands(command) {
        let program = argv
            .first()
            .map(|p| p.rsplit('/').next().unwrap_or(p))
            .unwrap_or("");
        if SETUID.contains(&program) && unit.no_new_privileges {
            out.error("hardening", name, format!("{what} runs {program}, which NoNewPrivileges=yes in {} stops", unit.path.display()), "let polkit grant the one action instead (systemctl restart of a named unit: docs/running.md, \"Command targets that act\"), and drop the sudo");
            continue;
        }
        if program == "systemctl" && unit.user.as_deref().is_some_and(|u| u != "root") {
            let verb = argv
                .iter()
                .skip(1)
                .find(|a| !a.starts_with('-'))
                .map(String::as_str)
                .unwrap_or("");
            let units: Vec<String> = argv
                .iter()
                .skip(2)
                .filter(|a| !a.starts_with('-'))
                .map(|u| {
                    if u.contains('.') {
                        u.clone()
                    } else {
                        format!("{u}.service")
                    }
                })
                .collect();
            if !UNIT_VERBS.contains(&verb) {
                continue;
            }
            let rules = polkit_rules(root);
            let missing: Vec<&String> = units
                .iter()
                .filter(|u| {
                    !rules
                        .iter()
                        .any(|r| r.contains("medic") && r.contains(u.as_str()))
                })
                .collect();
            if missing.is_empty() {
                out.ok(
                    "hardening",
                    name,
                    format!(
                        "{what}: a polkit rule lets medic {verb} {}",
                        units.join(" ")
                    ),
                );
            } else {
                let list: Vec<&str> = missing.iter().map(|u| u.as_str()).collect();
                out.warn("hardening", name, format!("{what}: user {} may not {verb} {} (no polkit rule names it): the command will fail with \"Interactive authentication required\"", unit.user.as_deref().unwrap_or("medic"), list.join(" ")), format!("cp /usr/share/doc/medic/examples/medic-command-targets.rules /etc/polkit-1/rules.d/50-medic.rules and list {} in `units`", list.join(", ")));
            }
            continue;
        }
        if unit.protect_system_strict {
            let mut writable: Vec<&str> = Vec::new();
            for path in unit.read_write_paths.iter().map(String::as_str) {
                if !writable.contains(&path) {
                    writable.push(path);
                }
            }
            let extra = writable
                .iter()
                .any(|p| !["/var/lib/medic", "/run/medic"].contains(p));
            writable.push("its private /tmp");
            let message = format!(
                "{what} `{}` runs under ProtectSystem=strict: it can write only {}",
                argv.first().map_or("", String::as_str),
                writable.join(", ")
            );
            if extra {
                out.ok("hardening", name, message);
            } else {
                out.warn("hardening", name, message, "if it writes elsewhere, add those paths with the opt-in drop-in: cp /usr/share/doc/medic/examples/command-targets.conf /etc/systemd/system/medic.service.d/ and edit ReadWritePaths=");
            }
        }
    }
}

/// A command target's argvs: restart, and rollback when it has one.
pub(super) fn commands(command: &CommandTarget) -> Vec<(&'static str, &Vec<String>)> {
    let mut argvs = vec![("restart", &command.restart)];
    argvs.extend(command.rollback.as_ref().map(|r| ("rollback", r)));
    argvs
}

/// The text of every polkit rules file under `root`.
pub(super) fn polkit_rules(root: &Path) -> Vec<String> {
    ["etc/polkit-1/rules.d", "usr/share/polkit-1/rules.d"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(root.join(dir)).ok())
        .flat_map(|entries| entries.flatten())
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .collect()
}

/// Where `program` is: a path with a slash as given, else the first match on PATH;
/// Err says why not ("is not executable", "is not on PATH").
pub(super) fn resolve(program: &str) -> Result<PathBuf, String> {
    if program.is_empty() {
        return Err("is empty".into());
    }
    let candidates: Vec<PathBuf> = if program.contains('/') {
        vec![PathBuf::from(program)]
    } else {
        std::env::var_os("PATH")
            .map(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(program))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut not_executable = None;
    for candidate in candidates {
        match std::fs::metadata(&candidate) {
            Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => {
                return Ok(candidate);
            }
            Ok(_) => not_executable = Some(candidate),
            Err(_) => {}
        }
    }
    match not_executable {
        Some(path) => Err(format!("({}) is not an executable file", path.display())),
        None if program.contains('/') => Err("does not exist".into()),
        None => Err("is not on PATH".into()),
    }
}
