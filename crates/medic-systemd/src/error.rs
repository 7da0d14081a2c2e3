//! What can go wrong talking to systemd over D-Bus.

/// A D-Bus call to systemd that did not give an answer medic can use.
#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    /// The bus cannot be reached (no dbus-daemon, no socket, no session bus).
    #[error("cannot reach {bus} bus: {source}")]
    Connect {
        /// `the system` or `the user's session`.
        bus: &'static str,
        /// Why.
        #[source]
        source: Box<zbus::Error>,
    },
    /// polkit (or the bus policy) refused the call.
    #[error(
        "systemd refused {method} of {unit}: {message} (polkit grants medic's user nothing for this unit: install the polkit rule, docs/systemd-units.md)"
    )]
    Denied {
        /// The manager's method (`RestartUnit`).
        method: &'static str,
        /// The unit.
        unit: String,
        /// systemd's words.
        message: String,
    },
    /// The call failed.
    #[error("{method} of {unit} failed: {source}")]
    Call {
        /// The method.
        method: &'static str,
        /// The unit (or pattern).
        unit: String,
        /// Why.
        #[source]
        source: Box<zbus::Error>,
    },
    /// systemd did not answer within the call's deadline.
    #[error("{method} of {unit}: systemd did not answer within {after:?}")]
    TimedOut {
        /// The method.
        method: &'static str,
        /// The unit.
        unit: String,
        /// The deadline.
        after: std::time::Duration,
    },
    /// A property had a type medic does not expect.
    #[error("property {property} of {unit} has an unexpected type: {source}")]
    Property {
        /// The property.
        property: &'static str,
        /// The unit.
        unit: String,
        /// Why.
        #[source]
        source: zbus::zvariant::Error,
    },
}

impl SystemdError {
    /// Whether the connection itself broke (dbus-daemon restarted): a new one may work.
    pub fn is_disconnected(&self) -> bool {
        let source = match self {
            SystemdError::Call { source, .. } | SystemdError::Connect { source, .. } => source,
            _ => return false,
        };
        matches!(**source, zbus::Error::InputOutput(_))
    }
}
