//! The sd_notify protocol: READY after the first full round of observations,
//! STATUS with a one-line summary, WATCHDOG from the supervisor loop itself,
//! RELOADING/READY around a reload and STOPPING at shutdown. Without
//! NOTIFY_SOCKET (not under systemd) every call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;

/// The daemon's link to its service manager.
#[derive(Debug)]
pub struct Notifier {
    watchdog: Option<Duration>,
    last_status: String,
}

impl Notifier {
    /// Reads NOTIFY_SOCKET and WATCHDOG_USEC from the environment.
    pub fn from_env() -> Self {
        let mut usec = 0;
        let watchdog =
            sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec));
        Self {
            watchdog,
            last_status: String::new(),
        }
    }

    /// How often to ping the watchdog: half its timeout, as systemd recommends.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    /// Ready, with a status line.
    pub fn ready(&mut self, status: &str) {
        self.last_status = status.to_owned();
        send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// Reloading the config.
    pub fn reloading(&self) {
        match sd_notify::NotifyState::monotonic_usec_now() {
            Ok(now) => send(&[NotifyState::Reloading, now]),
            Err(_) => send(&[NotifyState::Reloading]),
        }
    }

    /// Stopping.
    pub fn stopping(&self) {
        send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }

    /// The loop is alive; also refreshes the status line when it changed.
    pub fn alive(&mut self, status: &str) {
        if self.watchdog.is_some() {
            send(&[NotifyState::Watchdog]);
        }
        if status != self.last_status {
            self.last_status = status.to_owned();
            send(&[NotifyState::Status(status)]);
        }
    }
}

fn send(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(false, states) {
        tracing::warn!(%error, "Cannot notify the service manager");
    }
}
