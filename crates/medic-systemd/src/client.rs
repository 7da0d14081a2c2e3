//! systemd's manager over D-Bus (org.freedesktop.systemd1): a unit's
//! properties, the units of a pattern, RestartUnit and ResetFailedUnit with
//! the job's result (`JobRemoved`), Reload (daemon-reload), and the stream of units whose properties
//! changed. One call per method, each under a deadline; no retries.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use zbus::zvariant::{OwnedObjectPath, OwnedValue};
use zbus::{Connection, MatchRule, MessageStream};

use crate::error::SystemdError;
use crate::facts::UnitFacts;

const DESTINATION: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT: &str = "org.freedesktop.systemd1.Unit";
const SERVICE: &str = "org.freedesktop.systemd1.Service";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
/// Where every unit's object lives.
pub const UNIT_PATHS: &str = "/org/freedesktop/systemd1/unit";
/// Signals kept for a reader that is behind (zbus drops the oldest past this).
const QUEUED_SIGNALS: usize = 1024;

/// A connection to one systemd manager (the system's or the user's).
#[derive(Debug, Clone)]
pub struct SystemdBus {
    conn: Connection,
    /// The deadline of each call.
    deadline: Duration,
}

/// How systemd's job for a restart ended (`JobRemoved`'s result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutcome {
    /// `done`, `failed`, `timeout`, `dependency`, `canceled`, `skipped`, …
    pub result: String,
    /// Whether the failed state and start limit were reset first.
    pub reset_failed: bool,
}

impl SystemdBus {
    /// Connects to the system manager, or the user's (`user`), and asks it to
    /// send signals (`Subscribe`).
    pub async fn connect(user: bool, deadline: Duration) -> Result<Self, SystemdError> {
        let bus = if user {
            "the user's session"
        } else {
            "the system"
        };
        let connecting = async {
            if user {
                Connection::session().await
            } else {
                Connection::system().await
            }
        };
        let conn = match tokio::time::timeout(deadline, connecting).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(source)) => {
                return Err(SystemdError::Connect {
                    bus,
                    source: Box::new(source),
                });
            }
            Err(_) => {
                return Err(SystemdError::TimedOut {
                    method: "Hello",
                    unit: bus.into(),
                    after: deadline,
                });
            }
        };
        let bus = Self { conn, deadline };
        bus.call::<()>(MANAGER_PATH, MANAGER, "Subscribe", &(), "manager")
            .await?;
        Ok(bus)
    }

    async fn call<R>(
        &self,
        path: &str,
        interface: &str,
        method: &'static str,
        body: &(impl serde::Serialize + zbus::zvariant::DynamicType + Sync),
        unit: &str,
    ) -> Result<R, SystemdError>
    where
        R: for<'d> zbus::zvariant::DynamicDeserialize<'d>,
    {
        let call = self
            .conn
            .call_method(Some(DESTINATION), path, Some(interface), method, body);
        let reply = match tokio::time::timeout(self.deadline, call).await {
            Ok(reply) => reply,
            Err(_) => {
                return Err(SystemdError::TimedOut {
                    method,
                    unit: unit.into(),
                    after: self.deadline,
                });
            }
        };
        let error = |source: zbus::Error| match &source {
            zbus::Error::MethodError(name, message, _)
                if matches!(
                    name.as_str(),
                    "org.freedesktop.DBus.Error.AccessDenied"
                        | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"
                ) =>
            {
                SystemdError::Denied {
                    method,
                    unit: unit.into(),
                    message: message.clone().unwrap_or_else(|| name.to_string()),
                }
            }
            _ => SystemdError::Call {
                method,
                unit: unit.into(),
                source: Box::new(source),
            },
        };
        let reply = reply.map_err(error)?;
        reply.body().deserialize::<R>().map_err(error)
    }

    async fn properties(
        &self,
        path: &str,
        interface: &str,
        unit: &str,
    ) -> Result<HashMap<String, OwnedValue>, SystemdError> {
        self.call(path, PROPERTIES, "GetAll", &(interface,), unit)
            .await
    }

    /// systemd's view of `name` (loaded on demand: a unit without a file
    /// reads `not-found`).
    pub async fn facts(&self, name: &str) -> Result<UnitFacts, SystemdError> {
        let path = unit_path(name);
        let unit = self.properties(&path, UNIT, name).await?;
        let service = if name.ends_with(".service") {
            self.properties(&path, SERVICE, name).await?
        } else {
            HashMap::new()
        };
        let read = Reader { name };
        Ok(UnitFacts {
            name: name.to_owned(),
            load_state: read.string(&unit, "LoadState")?,
            active_state: read.string(&unit, "ActiveState")?,
            sub_state: read.string(&unit, "SubState")?,
            result: read.string(&service, "Result")?,
            exec_main_code: read.number(&service, "ExecMainCode")?,
            exec_main_status: read.number(&service, "ExecMainStatus")?,
            main_pid: read.number(&service, "MainPID")?,
            n_restarts: read.number(&service, "NRestarts")?,
            service_type: read.string(&service, "Type")?,
            restart: read.string(&service, "Restart")?,
            fragment_path: read.string(&unit, "FragmentPath")?,
            drop_in_paths: read.strings(&unit, "DropInPaths")?,
            need_daemon_reload: read.number(&unit, "NeedDaemonReload")?,
        })
    }

    /// Reloads the manager's unit files (`systemctl daemon-reload`); systemd
    /// answers once it has.
    pub async fn reload(&self, unit: &str) -> Result<(), SystemdError> {
        self.call::<()>(MANAGER_PATH, MANAGER, "Reload", &(), unit)
            .await
    }

    /// The units whose names match the shell-style `pattern`: loaded ones and
    /// installed unit files, without templates (`app@.service`).
    pub async fn list(&self, pattern: &str) -> Result<Vec<String>, SystemdError> {
        type Listed = (
            String,
            String,
            String,
            String,
            String,
            String,
            OwnedObjectPath,
            u32,
            String,
            OwnedObjectPath,
        );
        let no_states: Vec<String> = Vec::new();
        let loaded: Vec<Listed> = self
            .call(
                MANAGER_PATH,
                MANAGER,
                "ListUnitsByPatterns",
                &(&no_states, vec![pattern]),
                pattern,
            )
            .await?;
        let files: Vec<(String, String)> = self
            .call(
                MANAGER_PATH,
                MANAGER,
                "ListUnitFilesByPatterns",
                &(&no_states, vec![pattern]),
                pattern,
            )
            .await?;
        let mut names: Vec<String> = loaded
            .into_iter()
            .map(|unit| unit.0)
            .chain(
                files
                    .into_iter()
                    .filter_map(|(path, _state)| path.rsplit('/').next().map(str::to_owned)),
            )
            .filter(|name| !name.contains("@."))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Restarts `name` and waits for the job's result; resets its failed
    /// state (and start limit) first when `reset_failed`. Unbounded past the
    /// calls' deadlines: the caller bounds the wait with the action's timeout.
    pub async fn restart(
        &self,
        name: &str,
        reset_failed: bool,
    ) -> Result<JobOutcome, SystemdError> {
        if reset_failed {
            self.call::<()>(MANAGER_PATH, MANAGER, "ResetFailedUnit", &(name,), name)
                .await?;
        }
        // Listen before asking, so the job cannot end unseen.
        let rule = MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender(DESTINATION)
            .and_then(|r| r.interface(MANAGER))
            .and_then(|r| r.member("JobRemoved"))
            .and_then(|r| r.path(MANAGER_PATH))
            .map(|r| r.build())
            .map_err(|source| SystemdError::Call {
                method: "AddMatch",
                unit: name.into(),
                source: Box::new(source),
            })?;
        let mut removed = MessageStream::for_match_rule(rule, &self.conn, Some(QUEUED_SIGNALS))
            .await
            .map_err(|source| SystemdError::Call {
                method: "AddMatch",
                unit: name.into(),
                source: Box::new(source),
            })?;
        let job: OwnedObjectPath = self
            .call(
                MANAGER_PATH,
                MANAGER,
                "RestartUnit",
                &(name, "replace"),
                name,
            )
            .await?;
        while let Some(message) = removed.next().await {
            let Ok(message) = message else { continue };
            let Ok((_id, path, _unit, result)) =
                message
                    .body()
                    .deserialize::<(u32, OwnedObjectPath, String, String)>()
            else {
                continue;
            };
            if path == job {
                return Ok(JobOutcome {
                    result,
                    reset_failed,
                });
            }
        }
        Err(SystemdError::Call {
            method: "RestartUnit",
            unit: name.into(),
            source: Box::new(zbus::Error::Failure(
                "the bus connection closed before the job ended".into(),
            )),
        })
    }

    /// The object paths of units whose properties change, as systemd
    /// announces them (`PropertiesChanged`); ends when the connection does.
    pub async fn changes(
        &self,
    ) -> Result<impl Stream<Item = String> + Send + Unpin + use<>, SystemdError> {
        let rule = MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender(DESTINATION)
            .and_then(|r| r.interface(PROPERTIES))
            .and_then(|r| r.member("PropertiesChanged"))
            .and_then(|r| r.path_namespace(UNIT_PATHS))
            .map(|r| r.build())
            .map_err(|source| SystemdError::Call {
                method: "AddMatch",
                unit: "units".into(),
                source: Box::new(source),
            })?;
        let stream = MessageStream::for_match_rule(rule, &self.conn, Some(QUEUED_SIGNALS))
            .await
            .map_err(|source| SystemdError::Call {
                method: "AddMatch",
                unit: "units".into(),
                source: Box::new(source),
            })?;
        Ok(stream
            .filter_map(|message| async move {
                let message = message.ok()?;
                let path = message.header().path()?.to_string();
                Some(path)
            })
            .boxed())
    }
}

/// Reads typed properties out of GetAll's answers.
struct Reader<'a> {
    /// The unit, for errors.
    name: &'a str,
}

impl Reader<'_> {
    /// A string property; empty when the unit does not have it.
    fn string(
        &self,
        map: &HashMap<String, OwnedValue>,
        property: &'static str,
    ) -> Result<String, SystemdError> {
        map.get(property).map_or(Ok(String::new()), |value| {
            value
                .downcast_ref::<&str>()
                .map(str::to_owned)
                .map_err(|source| self.bad(property, source))
        })
    }

    /// A numeric property; 0 when the unit does not have it.
    fn number<T>(
        &self,
        map: &HashMap<String, OwnedValue>,
        property: &'static str,
    ) -> Result<T, SystemdError>
    where
        T: Default + for<'v> TryFrom<&'v zbus::zvariant::Value<'v>, Error = zbus::zvariant::Error>,
    {
        map.get(property).map_or(Ok(T::default()), |value| {
            value
                .downcast_ref::<T>()
                .map_err(|source| self.bad(property, source))
        })
    }

    /// A string-array property; empty when the unit does not have it.
    fn strings(
        &self,
        map: &HashMap<String, OwnedValue>,
        property: &'static str,
    ) -> Result<Vec<String>, SystemdError> {
        let Some(value) = map.get(property) else {
            return Ok(Vec::new());
        };
        let value = value
            .try_clone()
            .map_err(|source| self.bad(property, source))?;
        Vec::<String>::try_from(value).map_err(|source| self.bad(property, source))
    }

    fn bad(&self, property: &'static str, source: zbus::zvariant::Error) -> SystemdError {
        SystemdError::Property {
            property,
            unit: self.name.into(),
            source,
        }
    }
}

/// The object path of a unit: its name with every byte but ASCII letters
/// and digits (and a leading digit) written `_xx` (systemd's bus label escaping).
pub fn unit_path(name: &str) -> String {
    let mut path = String::with_capacity(UNIT_PATHS.len() + 1 + name.len() * 3);
    path.push_str(UNIT_PATHS);
    path.push('/');
    if name.is_empty() {
        path.push('_');
    }
    for (i, byte) in name.bytes().enumerate() {
        if byte.is_ascii_alphabetic() || (byte.is_ascii_digit() && i > 0) {
            path.push(char::from(byte));
        } else {
            path.push_str(&format!("_{byte:02x}"));
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::unit_path;

    #[test]
    fn unit_paths_are_escaped_as_systemd_does() {
        assert_eq!(
            unit_path("api.service"),
            "/org/freedesktop/systemd1/unit/api_2eservice"
        );
        assert_eq!(
            unit_path("app-1@x.service"),
            "/org/freedesktop/systemd1/unit/app_2d1_40x_2eservice"
        );
        assert_eq!(
            unit_path("0day.service"),
            "/org/freedesktop/systemd1/unit/_30day_2eservice"
        );
    }
}
