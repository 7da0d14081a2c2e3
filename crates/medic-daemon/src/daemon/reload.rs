//! Config reload (SIGHUP, `medic reload`): the new file goes through the same
//! parser as at startup; a rejected config leaves the running one untouched.
//! Unchanged services keep everything, changed ones keep their state and
//! attempt counts under the new policy, removed ones stop, new ones start.

use std::collections::BTreeMap;
use std::path::Path;

use medic_core::config::Config;

use super::Daemon;
use crate::clock::now;
use crate::units;

impl Daemon {
    /// Reloads the config file; Err says why it was rejected.
    pub(super) fn reload(&mut self) -> Result<(), String> {
        let Some(path) = self.config_path.clone() else {
            return Err(
                "medic runs the embedded default config: there is no file to reload".into(),
            );
        };
        self.notifier.reloading();
        let result = self.apply(&path);
        match &result {
            Ok(()) => tracing::info!(path = %path.display(), "Config reloaded: {}", self.summary()),
            Err(error) => self.announcer.config_rejected(error),
        }
        let summary = self.summary();
        self.notifier.ready(&summary);
        result
    }

    fn apply(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let new = medic_core::config::parse_with_env(&text, &path.display().to_string(), &|name| {
            std::env::var(name).ok()
        })
        .map_err(|e| e.to_string())?;
        if new.medic != self.config.medic {
            tracing::warn!("[medic] settings changed; they take effect when medic restarts");
        }
        if new.alerts != self.config.alerts {
            tracing::warn!("[[alert]] sinks changed; they take effect when medic restarts");
        }
        let describe = |config: &Config| -> BTreeMap<String, String> {
            config
                .services
                .iter()
                .map(|s| (s.name.clone(), format!("{s:?}")))
                .collect()
        };
        let (old, fresh) = (describe(&self.config), describe(&new));
        let now = now();
        let stale: Vec<(String, bool)> = self
            .units
            .iter()
            .filter_map(|(name, unit)| match fresh.get(&unit.spec.service) {
                None => Some((name.clone(), true)),
                Some(description) if old.get(&unit.spec.service) != Some(description) => {
                    Some((name.clone(), false))
                }
                Some(_) => None,
            })
            .collect();
        // Build the new units before touching the running ones, so an error leaves them alone.
        let old_config = std::mem::replace(&mut self.config, new);
        let planned =
            match units::plan(&self.config, &self.executor, &self.durability.known_units()) {
                Ok(planned) => planned,
                Err(error) => {
                    self.config = old_config;
                    return Err(format!("{error:#}"));
                }
            };
        for (name, removed) in stale {
            self.units.remove(&name);
            if removed {
                self.sup.remove_unit(now, &name);
                self.metrics.forget(&name);
            }
        }
        for spec in planned {
            self.add_unit(spec);
        }
        // The first systemd_unit target of a manager: follow its changes now.
        self.executor.follow_systemd(&self.shell, &self.config);
        // Discovery follows the new config: a new or changed service gets a
        // fresh task (the old one stops), a removed one loses its task, and the
        // instances a changed selector no longer matches are retired.
        for (name, description) in &fresh {
            if old.get(name) != Some(description) {
                self.start_discovery(name);
            }
            let before = old_config.services.iter().find(|s| &s.name == name);
            let after = self.config.services.iter().find(|s| &s.name == name);
            if after.is_some_and(|after| super::instances::selector_changed(before, after)) {
                self.list_instances(name, crate::shell::Listing::Reload);
            }
        }
        self.units
            .retain_discoveries(|name| fresh.contains_key(name));
        self.sup.set_storm_rule(self.config.medic.storm);
        self.durability.all_changed();
        Ok(())
    }
}
