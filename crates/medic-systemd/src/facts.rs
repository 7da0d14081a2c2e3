//! What systemd says about one unit: the properties medic reads over D-Bus
//! (`org.freedesktop.systemd1.Unit` and `.Service`), as plain data.

use crate::names;

/// systemd's view of one unit, as read from its properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitFacts {
    /// The unit's name (`api.service`).
    pub name: String,
    /// `loaded`, `not-found`, `masked`, `error`, …
    pub load_state: String,
    /// `active`, `reloading`, `inactive`, `failed`, `activating`, `deactivating`.
    pub active_state: String,
    /// The type-specific state: `running`, `exited`, `dead`, `auto-restart`, …
    pub sub_state: String,
    /// How the last run ended: `success`, `exit-code`, `signal`, `start-limit-hit`, …
    pub result: String,
    /// How the main process ended (`names::code`); 0 when it never ran.
    pub exec_main_code: i32,
    /// Its exit status or signal.
    pub exec_main_status: i32,
    /// The running main process; 0 when none.
    pub main_pid: u32,
    /// How often systemd restarted it by itself (`Restart=`) since it was loaded.
    pub n_restarts: u32,
    /// `Type=`: `simple`, `exec`, `forking`, `oneshot`, `notify`, …
    pub service_type: String,
    /// `Restart=`: `no`, `always`, `on-failure`, …
    pub restart: String,
    /// The unit file systemd loaded it from.
    pub fragment_path: String,
    /// Its drop-ins, in the order systemd applies them.
    pub drop_in_paths: Vec<String>,
    /// Its files changed on disk since systemd loaded them (`daemon-reload` pending).
    pub need_daemon_reload: bool,
}

impl UnitFacts {
    /// Whether systemd knows a unit file for it.
    pub fn is_loaded(&self) -> bool {
        !matches!(self.load_state.as_str(), "not-found" | "")
    }

    /// How the main process last ended, in words (`names::main_exit`).
    pub fn last_exit(&self) -> Option<String> {
        names::main_exit(self.exec_main_code, self.exec_main_status)
    }

    /// Whether the last run ended as a one-shot job should: exit 0, or never run.
    pub fn ended_cleanly(&self) -> bool {
        self.result == "success"
            && match self.exec_main_code {
                names::code::EXITED => self.exec_main_status == 0,
                names::code::KILLED | names::code::DUMPED => false,
                _ => true,
            }
    }

    /// The facts as evidence: state, result, exit status or signal (named),
    /// restarts, main pid, type, restart setting and unit files.
    pub fn evidence(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut map = serde_json::Map::new();
        let mut put = |key: &str, value: serde_json::Value| {
            map.insert(key.to_owned(), value);
        };
        put("unit", self.name.clone().into());
        put("load_state", self.load_state.clone().into());
        put("active_state", self.active_state.clone().into());
        put("sub_state", self.sub_state.clone().into());
        if !self.result.is_empty() {
            put("result", self.result.clone().into());
        }
        match self.exec_main_code {
            names::code::EXITED => {
                put("exit_code", self.exec_main_status.into());
                if let Some(name) = names::exit_code(self.exec_main_status) {
                    put("exit_name", name.into());
                }
            }
            names::code::KILLED | names::code::DUMPED => {
                put("signal", self.exec_main_status.into());
                if let Some(name) = names::signal(self.exec_main_status) {
                    put("signal_name", name.into());
                }
                put(
                    "core_dumped",
                    (self.exec_main_code == names::code::DUMPED).into(),
                );
            }
            _ => {}
        }
        put("n_restarts", self.n_restarts.into());
        if self.main_pid != 0 {
            put("pid", self.main_pid.into());
        }
        if !self.service_type.is_empty() {
            put("type", self.service_type.clone().into());
        }
        if !self.restart.is_empty() {
            put("restart", self.restart.clone().into());
        }
        if !self.fragment_path.is_empty() {
            put("fragment_path", self.fragment_path.clone().into());
        }
        if !self.drop_in_paths.is_empty() {
            put("drop_in_paths", self.drop_in_paths.clone().into());
        }
        map
    }
}
