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
    /// polkit (or the bus policy) refused the call: the message names the
    /// shipped rule and what to put in it, for the person reading the alert.
    #[error("systemd refused {method} of {unit}: {message} ({})", denied_fix(.method, .unit))]
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

/// Where the shipped polkit rule is installed from (the .deb's examples).
pub const POLKIT_RULE_SOURCE: &str = "/usr/share/doc/medic/examples/medic-systemd-units.rules";
/// Where polkitd reads it once installed.
pub const POLKIT_RULE_PATH: &str = "/etc/polkit-1/rules.d/50-medic-systemd-units.rules";

/// What lets medic's user make the refused call: the shipped rule, with the
/// unit in its list unless the call is the manager's `Reload`.
fn denied_fix(method: &str, unit: &str) -> String {
    let (what, list) = match method {
        "Reload" => ("reload systemd".to_owned(), String::new()),
        _ => (
            format!("restart {unit}"),
            format!(" and list {unit} in its `units`"),
        ),
    };
    format!(
        "no polkit rule lets medic's user {what}: install the shipped rule, cp {POLKIT_RULE_SOURCE} {POLKIT_RULE_PATH}{list}; docs/systemd-units.md"
    )
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

#[cfg(test)]
mod tests {
    use super::SystemdError;

    /// A refusal names polkit, the rule file to install and what to list in it.
    #[test]
    fn a_refused_call_says_which_rule_to_install() {
        let denied = |method| SystemdError::Denied {
            method,
            unit: "api.service".into(),
            message: "Interactive authentication required.".into(),
        };
        insta::assert_snapshot!(denied("RestartUnit").to_string(), @"systemd refused RestartUnit of api.service: Interactive authentication required. (no polkit rule lets medic's user restart api.service: install the shipped rule, cp /usr/share/doc/medic/examples/medic-systemd-units.rules /etc/polkit-1/rules.d/50-medic-systemd-units.rules and list api.service in its `units`; docs/systemd-units.md)");
        insta::assert_snapshot!(denied("Reload").to_string(), @"systemd refused Reload of api.service: Interactive authentication required. (no polkit rule lets medic's user reload systemd: install the shipped rule, cp /usr/share/doc/medic/examples/medic-systemd-units.rules /etc/polkit-1/rules.d/50-medic-systemd-units.rules; docs/systemd-units.md)");
    }
}
