//! A systemd unit's last known good is its unit files (fragment and
//! drop-ins, as contents): recorded once it stayed healthy, and written back
//! by a rollback as overrides in the manager's own directory for them
//! (`/etc/systemd/system`, never the package's `/usr/lib`), then `Reload`,
//! a check that systemd now loads them, and a restart. Every write is atomic
//! and the rollback compares contents before it writes, so one cut short by
//! a kill -9 runs again at the next start of medic and finishes.

use std::path::PathBuf;

use medic_core::{ActionResult, Evidence};
use medic_systemd::unit_files::OVERRIDE_DIR;
use medic_systemd::{UnitFiles, UnitFilesError};

use super::{Systemd, SystemdUnit};
use crate::shell::{Event, Shell};

/// Why a rollback did not bring the unit back.
enum NotDone {
    /// It was tried and failed.
    Failed(String),
    /// Nothing to roll back to.
    Impossible(String),
}

impl Systemd {
    /// Reads the unit's files as systemd loaded them and reports them as its
    /// last known good.
    pub fn record_last_known_good(&self, shell: &Shell, name: &str, unit: &SystemdUnit) {
        let (systemd, unit) = (self.clone(), unit.clone());
        let (name, events) = (name.to_owned(), shell.events.clone());
        shell.tracker.spawn(async move {
            let files = match systemd.facts(&unit).await {
                Ok(facts) => UnitFiles::read(&facts).map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            };
            // `fragment_path` beside the files: the version `medic status` shows.
            let spec = files.and_then(|f| {
                let path = f.fragment.path.clone();
                let mut spec = serde_json::to_value(f).map_err(|e| e.to_string())?;
                spec["fragment_path"] = path.into();
                Ok(spec)
            });
            match spec {
                Ok(spec) => {
                    let event = Event::LastKnownGood {
                        unit: name,
                        spec,
                        namespace_parent: None,
                    };
                    events.send(event).await.ok();
                }
                Err(error) => {
                    tracing::warn!(unit = %name, %error, "Cannot record the last known good unit files");
                }
            }
        });
    }

    /// Returns the unit to its last known good files, reloads systemd,
    /// checks that it loads them, and restarts the unit. `resumed`: a
    /// rollback cut short by a stop of medic, whose writes may be done
    /// already (it still reloads and restarts).
    pub(super) async fn rollback(
        &self,
        unit: &SystemdUnit,
        last_known_good: Option<serde_json::Value>,
        resumed: bool,
    ) -> ActionResult {
        let mut evidence = Evidence::new();
        evidence.insert("unit".into(), unit.name.clone().into());
        let good = last_known_good.and_then(|v| serde_json::from_value::<UnitFiles>(v).ok());
        match self.roll_back(unit, good, resumed, &mut evidence).await {
            Ok(message) => ActionResult::Done { message, evidence },
            Err(NotDone::Failed(message)) => ActionResult::Failed { message, evidence },
            Err(NotDone::Impossible(message)) => ActionResult::Impossible { message, evidence },
        }
    }

    async fn roll_back(
        &self,
        unit: &SystemdUnit,
        good: Option<UnitFiles>,
        resumed: bool,
        evidence: &mut Evidence,
    ) -> Result<String, NotDone> {
        let name = &unit.name;
        let Some(good) = good else {
            return Err(NotDone::Impossible(format!(
                "no last known good unit files were recorded for `{name}` (it never stayed healthy under medic, or systemd loaded it from no file)"
            )));
        };
        evidence.insert("last_known_good".into(), good.fragment.path.clone().into());
        let facts = self
            .facts(unit)
            .await
            .map_err(|e| NotDone::Failed(format!("cannot read `{name}` from systemd: {e}")))?;
        let now = UnitFiles::read(&facts)
            .map_err(|e| NotDone::Failed(format!("cannot read the unit files of `{name}`: {e}")))?;
        if good.same_as(&now) && !facts.need_daemon_reload && !resumed {
            return Err(NotDone::Impossible(format!(
                "`{name}` already runs its last known good unit files: nothing different to roll back to"
            )));
        }
        let dir = override_dir(unit.user).map_err(NotDone::Impossible)?;
        let stamp = crate::clock::wall_now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let (mut written, mut kept) = (Vec::new(), Vec::new());
        for write in good.plan(&now, &dir) {
            let copy = write
                .apply(&stamp)
                .map_err(|e| NotDone::Failed(cannot_write(&e)))?;
            written.push(write.path.display().to_string());
            kept.extend(copy.map(|p| p.display().to_string()));
        }
        evidence.insert("written".into(), written.clone().into());
        if !kept.is_empty() {
            evidence.insert("kept_as".into(), kept.into());
        }
        let reloaded = async { self.bus(unit.user).await?.reload(name).await }.await;
        if let Err(error) = reloaded {
            self.broke(unit.user, &error).await;
            return Err(NotDone::Failed(format!(
                "wrote the last known good unit files of `{name}`, but systemd did not reload: {error}"
            )));
        }
        let loaded = self
            .facts(unit)
            .await
            .map_err(|e| NotDone::Failed(format!("cannot read `{name}` after the reload: {e}")))?;
        let applied = UnitFiles::read(&loaded).map_err(|e| {
            NotDone::Failed(format!(
                "cannot read the unit files of `{name}` after the reload: {e}"
            ))
        })?;
        if !good.same_as(&applied) {
            evidence.insert("loaded_from".into(), loaded.evidence().into());
            return Err(NotDone::Failed(format!(
                "systemd still loads other unit files for `{name}` ({}): a file that outranks {} (a transient unit, `systemctl set-property`, /run/systemd/system.control) wins",
                loaded.fragment_path,
                dir.display()
            )));
        }
        let restarted = self.restart(unit).await;
        let what = match written.len() {
            0 => "its unit files were already back".to_owned(),
            _ => format!("wrote {}", written.join(", ")),
        };
        let back = format!("rolled `{name}` back to its last known good unit files ({what})");
        match restarted {
            ActionResult::Done { evidence: more, .. } => {
                evidence.extend(more);
                Ok(format!("{back}, reloaded systemd and restarted it"))
            }
            ActionResult::Failed {
                message,
                evidence: more,
            }
            | ActionResult::Impossible {
                message,
                evidence: more,
            }
            | ActionResult::Gone {
                message,
                evidence: more,
            } => {
                evidence.extend(more);
                Err(NotDone::Failed(format!("{back}, but: {message}")))
            }
            ActionResult::TimedOut { .. } | ActionResult::Interrupted => Err(NotDone::Failed(
                format!("{back}, but its restart did not end"),
            )),
        }
    }
}

/// Where a rollback writes: `/etc/systemd/system` for the system manager,
/// `~/.config/systemd/user` for the user's.
fn override_dir(user: bool) -> Result<PathBuf, String> {
    if !user {
        return Ok(PathBuf::from(OVERRIDE_DIR));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or("neither XDG_CONFIG_HOME nor HOME is set: no user unit directory to write")?;
    Ok(config.join("systemd/user"))
}

/// A write that failed, with what lets medic write there when it is the
/// hardening of medic's own unit.
fn cannot_write(error: &UnitFilesError) -> String {
    let denied = matches!(error, UnitFilesError::Io { source, .. }
        if matches!(source.kind(), std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied));
    if denied {
        format!(
            "cannot write the last known good unit file {error}: medic.service may write there only with the opt-in drop-in unit-rollback.conf (docs/systemd-units.md, \"Rolling back\")"
        )
    } else {
        format!("cannot write the last known good unit file {error}")
    }
}
