//! A job's plist: where it is, its last known good copy, comparing and
//! restoring it (the failing one kept beside it as `.medic-failed-<stamp>`),
//! and the tails of the log files it names.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::LaunchdError;

/// The last known good copy of a job's plist, as kept in medic's state store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlistCopy {
    /// The job's label.
    pub label: String,
    /// Where the plist lives.
    pub path: PathBuf,
    /// Its contents as XML (binary plists are converted).
    pub xml: String,
}

impl PlistCopy {
    /// Reads the plist at `path` now.
    pub fn capture(label: &str, path: &Path) -> Result<Self, LaunchdError> {
        let value = read(path)?;
        let mut xml = Vec::new();
        value
            .to_writer_xml(&mut xml)
            .map_err(|source| plist_error(path, source))?;
        Ok(Self {
            label: label.to_owned(),
            path: path.to_owned(),
            xml: String::from_utf8_lossy(&xml).into_owned(),
        })
    }

    /// The plist on disk says something else than this copy (compared as
    /// property lists, so formatting and key order do not count). A missing or
    /// unreadable file differs.
    pub fn differs_from_disk(&self) -> bool {
        let Ok(current) = read(&self.path) else {
            return true;
        };
        match plist::Value::from_reader_xml(self.xml.as_bytes()) {
            Ok(good) => good != current,
            Err(_) => true,
        }
    }

    /// Puts this copy back in place. The plist there now, if any, is renamed to
    /// `<path>.medic-failed-<stamp>` and that name is returned.
    pub fn restore(&self, stamp: &str) -> Result<Option<PathBuf>, LaunchdError> {
        let kept = forensic_path(&self.path, stamp);
        let moved = match std::fs::rename(&self.path, &kept) {
            Ok(()) => Some(kept),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(LaunchdError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let temp = self.path.with_extension("plist.medic-restore");
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| LaunchdError::Io { path, source }
        };
        std::fs::write(&temp, &self.xml).map_err(io(&temp))?;
        // launchd refuses group- or world-writable plists: keep the mode the file had.
        if let Some(kept) = &moved
            && let Ok(meta) = std::fs::metadata(kept)
        {
            std::fs::set_permissions(&temp, meta.permissions()).map_err(io(&temp))?;
        }
        std::fs::rename(&temp, &self.path).map_err(io(&self.path))?;
        prune_forensic(&self.path, KEEP_FORENSIC);
        Ok(moved)
    }
}

/// How many `.medic-failed-<stamp>` copies of a plist are kept, like containers.
pub const KEEP_FORENSIC: usize = 3;

/// Removes all but the newest `keep` forensic copies of `path` (the stamps sort
/// by time). Best effort: a copy that cannot be listed or removed stays.
pub fn prune_forensic(path: &Path, keep: usize) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = format!("{}.medic-failed-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut copies: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        })
        .collect();
    copies.sort();
    let excess = copies.len().saturating_sub(keep);
    for old in &copies[..excess] {
        std::fs::remove_file(old).ok();
    }
}

/// `<path>.medic-failed-<stamp>`: where a rolled-back plist is kept.
pub fn forensic_path(path: &Path, stamp: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".medic-failed-{stamp}"));
    PathBuf::from(name)
}

/// Reads a plist file (XML or binary).
pub fn read(path: &Path) -> Result<plist::Value, LaunchdError> {
    plist::Value::from_file(path).map_err(|source| plist_error(path, source))
}

fn plist_error(path: &Path, source: plist::Error) -> LaunchdError {
    LaunchdError::Plist {
        path: path.to_owned(),
        source,
    }
}

/// The standard folders a job's plist is looked for in, in order.
pub fn standard_folders(home: Option<&Path>) -> Vec<PathBuf> {
    let mut folders = Vec::new();
    if let Some(home) = home {
        folders.push(home.join("Library/LaunchAgents"));
    }
    folders.extend(
        [
            "/Library/LaunchAgents",
            "/Library/LaunchDaemons",
            "/System/Library/LaunchAgents",
        ]
        .map(PathBuf::from),
    );
    folders
}

/// A job's plist: the configured path, else the one launchctl reported, else
/// `<label>.plist` in the standard folders.
pub fn find(
    label: &str,
    configured: Option<&Path>,
    reported: Option<&Path>,
    home: Option<&Path>,
) -> Option<PathBuf> {
    if let Some(path) = configured.or(reported) {
        return Some(path.to_owned());
    }
    standard_folders(home)
        .into_iter()
        .map(|folder| folder.join(format!("{label}.plist")))
        .find(|path| path.is_file())
}

/// What a plist says starts a job again and whether it must stay up.
/// `launchctl list <label>` shows neither StartInterval and friends nor
/// KeepAlive, so `list` facts are completed from here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Triggers {
    /// On a schedule or trigger: StartInterval, StartCalendarInterval,
    /// WatchPaths, QueueDirectories, StartOnMount, LaunchEvents.
    pub scheduled: bool,
    /// On demand through Mach services or sockets.
    pub on_demand: bool,
    /// `KeepAlive = true`: launchd starts it again whenever it exits. A
    /// KeepAlive dictionary is conditional (often "only after a failure"), so
    /// a clean exit under it is no failure.
    pub keep_alive: bool,
}

/// Reads [`Triggers`] from the plist at `path`; an unreadable plist has none.
pub fn triggers(path: &Path) -> Triggers {
    let Ok(value) = read(path) else {
        return Triggers::default();
    };
    let Some(dict) = value.as_dictionary() else {
        return Triggers::default();
    };
    let has = |keys: &[&str]| keys.iter().any(|k| dict.contains_key(k));
    Triggers {
        scheduled: has(&[
            "StartInterval",
            "StartCalendarInterval",
            "WatchPaths",
            "QueueDirectories",
            "StartOnMount",
            "LaunchEvents",
        ]),
        on_demand: has(&["MachServices", "Sockets"]),
        keep_alive: dict
            .get("KeepAlive")
            .and_then(plist::Value::as_boolean)
            .unwrap_or(false),
    }
}

/// StandardOutPath and StandardErrorPath from a plist, when it sets them.
pub fn log_paths(path: &Path) -> (Option<PathBuf>, Option<PathBuf>) {
    let Ok(value) = read(path) else {
        return (None, None);
    };
    let get = |key: &str| {
        value
            .as_dictionary()
            .and_then(|d| d.get(key))
            .and_then(plist::Value::as_string)
            .map(PathBuf::from)
    };
    (get("StandardOutPath"), get("StandardErrorPath"))
}

/// The last `lines` lines of a log file (reading at most its last 64 KiB).
pub fn tail(path: &Path, lines: usize) -> Option<Vec<String>> {
    const MAX: u64 = 64 * 1024;
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let start = len.saturating_sub(MAX);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let mut all: Vec<&str> = text.lines().collect();
    if start > 0 && !all.is_empty() {
        all.remove(0); // a partial first line
    }
    let from = all.len().saturating_sub(lines);
    Some(all[from..].iter().map(|l| (*l).to_owned()).collect())
}
