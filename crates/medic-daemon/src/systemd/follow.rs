//! Following systemd's `PropertiesChanged` signals: which probe triggers
//! wait on which unit, and the task that wakes them, so a unit that fails is
//! checked within milliseconds of systemd's own state change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;

use super::Systemd;
use crate::shell::Shell;

/// The probe triggers of each unit, by the unit's D-Bus object path. Weak:
/// a unit no longer watched drops its trigger, and its entry goes at the next
/// signal for it.
#[derive(Debug, Default)]
pub struct Follows {
    triggers: Mutex<HashMap<String, Vec<Weak<Notify>>>>,
}

impl Follows {
    /// Wakes `trigger` whenever unit `name` changes.
    pub fn add(&self, name: &str, trigger: &Arc<Notify>) {
        let path = medic_systemd::unit_path(name);
        // A poisoned lock only means a panic elsewhere mid-insert: the map is still usable.
        let mut triggers = self.triggers.lock().unwrap_or_else(|e| e.into_inner());
        let list = triggers.entry(path).or_default();
        list.retain(|t| t.strong_count() > 0);
        list.push(Arc::downgrade(trigger));
    }

    /// Wakes the triggers of the unit at `path`.
    fn changed(&self, path: &str) {
        let mut triggers = self.triggers.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = triggers.get_mut(path) else {
            return;
        };
        list.retain(|t| match t.upgrade() {
            Some(trigger) => {
                trigger.notify_one();
                true
            }
            None => false,
        });
        if list.is_empty() {
            triggers.remove(path);
        }
    }

    /// Wakes every trigger (the signals were not followed for a while).
    fn all_changed(&self) {
        let triggers = self.triggers.lock().unwrap_or_else(|e| e.into_inner());
        for trigger in triggers.values().flatten().filter_map(Weak::upgrade) {
            trigger.notify_one();
        }
    }
}

/// Follows one manager's signals until medic stops; after a break (no bus,
/// dbus restarted) it connects again every `retry` and checks every unit.
pub(super) async fn follow(systemd: Systemd, user: bool, shell: Shell, retry: Duration) {
    let follows = &systemd.manager(user).follows;
    loop {
        let changes = async { systemd.bus(user).await?.changes().await }.await;
        match changes {
            Ok(mut changes) => {
                follows.all_changed();
                loop {
                    tokio::select! {
                        () = shell.cancel.cancelled() => return,
                        path = changes.next() => match path {
                            Some(path) => follows.changed(&path),
                            None => break,
                        },
                    }
                }
                tracing::warn!(user, "systemd's signals stopped: following them again");
                systemd.manager(user).bus.lock().await.take();
            }
            Err(error) => {
                tracing::warn!(user, %error, "Cannot follow systemd's unit changes");
                systemd.broke(user, &error).await;
            }
        }
        tokio::select! {
            () = shell.cancel.cancelled() => return,
            () = tokio::time::sleep(retry) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_change_wakes_the_unit_s_triggers_and_forgets_dropped_ones() {
        let follows = Follows::default();
        let (api, other) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        follows.add("api.service", &api);
        follows.add("db.service", &other);
        follows.changed(&medic_systemd::unit_path("api.service"));
        tokio::time::timeout(Duration::from_secs(5), api.notified())
            .await
            .expect("the api trigger was woken");
        drop(other);
        follows.changed(&medic_systemd::unit_path("db.service"));
        assert!(
            !follows
                .triggers
                .lock()
                .unwrap()
                .contains_key(&medic_systemd::unit_path("db.service"))
        );
    }
}
