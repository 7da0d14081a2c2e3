//! A unit's files as contents (its fragment and drop-ins, as systemd loaded
//! them): read as the last known good, compared with what is loaded now, and
//! written back as overrides under `/etc/systemd/system`, never over the
//! package's files in `/usr/lib` or `/lib`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::facts::UnitFacts;

/// Where a rollback writes: the administrator's unit directory, which
/// outranks the package's (`/usr/lib/systemd/system`) and the runtime one.
pub const OVERRIDE_DIR: &str = "/etc/systemd/system";
/// The largest unit file kept (unit files are a few hundred bytes).
const MAX_FILE_BYTES: u64 = 64 * 1024;
/// The most drop-ins kept for one unit.
const MAX_DROP_INS: usize = 32;
/// The content of a drop-in a rollback empties: it masks a drop-in of the
/// same name that was not part of the last known good.
const EMPTIED: &str =
    "# Emptied by medic's rollback: this drop-in was not part of the unit's last known good.\n";

/// One unit file: where systemd read it and what it said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitFile {
    /// Its path, as systemd reports it (`FragmentPath`, `DropInPaths`).
    pub path: String,
    /// Its contents.
    pub content: String,
    /// Its permission bits (a unit file with secrets in it stays private).
    pub mode: u32,
}

/// A unit's files, as systemd loaded them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitFiles {
    /// The unit (`api.service`).
    pub unit: String,
    /// Its unit file.
    pub fragment: UnitFile,
    /// Its drop-ins, in the order systemd applies them.
    pub drop_ins: Vec<UnitFile>,
}

/// Why a unit's files cannot be kept or written.
#[derive(Debug, thiserror::Error)]
pub enum UnitFilesError {
    /// systemd loaded the unit from no file (transient, or generated in memory).
    #[error("systemd loaded {unit} from no unit file (a transient unit has no file to keep)")]
    NoFile {
        /// The unit.
        unit: String,
    },
    /// A file is larger than medic keeps, or the unit has too many drop-ins.
    #[error("{what} is too large to keep as the last known good")]
    TooLarge {
        /// The file, or the unit's drop-ins.
        what: String,
    },
    /// A file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// One file a rollback writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Where (always under [`OVERRIDE_DIR`] or the directory given to [`UnitFiles::plan`]).
    pub path: PathBuf,
    /// What.
    pub content: String,
    /// With which permission bits.
    pub mode: u32,
}

impl UnitFiles {
    /// Reads the files systemd says it loaded the unit from.
    pub fn read(facts: &UnitFacts) -> Result<Self, UnitFilesError> {
        if facts.fragment_path.is_empty() {
            return Err(UnitFilesError::NoFile {
                unit: facts.name.clone(),
            });
        }
        if facts.drop_in_paths.len() > MAX_DROP_INS {
            return Err(UnitFilesError::TooLarge {
                what: format!("{} drop-ins of {}", facts.drop_in_paths.len(), facts.name),
            });
        }
        Ok(Self {
            unit: facts.name.clone(),
            fragment: read_file(Path::new(&facts.fragment_path))?,
            drop_ins: facts
                .drop_in_paths
                .iter()
                .map(|path| read_file(Path::new(path)))
                .collect::<Result<_, _>>()?,
        })
    }

    /// What the files say, as systemd applies them: the fragment's contents
    /// and each drop-in's by name (a drop-in of a name outranks every other of
    /// that name); a drop-in of comments only says nothing.
    fn meaning(&self) -> (&str, BTreeMap<&str, &str>) {
        let drop_ins = self
            .drop_ins
            .iter()
            .filter(|d| !is_empty(&d.content))
            .map(|d| (file_name(&d.path), d.content.as_str()))
            .collect();
        (&self.fragment.content, drop_ins)
    }

    /// Whether these files say the same as `other` (paths aside).
    pub fn same_as(&self, other: &UnitFiles) -> bool {
        self.meaning() == other.meaning()
    }

    /// The files to write under `dir` so that systemd, reloaded, applies
    /// these files (`self`, the last known good) instead of `now`: the
    /// fragment as `dir/<unit>` when its contents differ, each drop-in of the
    /// last known good that is missing or differs as `dir/<unit>.d/<name>`,
    /// and each drop-in not in it emptied there (which masks one of the same
    /// name elsewhere). Nothing is ever written outside `dir`.
    pub fn plan(&self, now: &UnitFiles, dir: &Path) -> Vec<Write> {
        let mut writes = Vec::new();
        if self.fragment.content != now.fragment.content {
            writes.push(Write {
                path: dir.join(&self.unit),
                content: self.fragment.content.clone(),
                mode: self.fragment.mode,
            });
        }
        let (_, good) = self.meaning();
        let (_, current) = now.meaning();
        let drop_in_dir = dir.join(format!("{}.d", self.unit));
        for good_file in self.drop_ins.iter().filter(|d| !is_empty(&d.content)) {
            let name = file_name(&good_file.path);
            if current.get(name) != Some(&good_file.content.as_str()) {
                writes.push(Write {
                    path: drop_in_dir.join(name),
                    content: good_file.content.clone(),
                    mode: good_file.mode,
                });
            }
        }
        for name in current.keys().filter(|name| !good.contains_key(*name)) {
            writes.push(Write {
                path: drop_in_dir.join(name),
                content: EMPTIED.to_owned(),
                mode: 0o644,
            });
        }
        writes
    }
}

impl Write {
    /// Writes the file atomically (a temporary file renamed over it), its
    /// directory created if missing. A file there now is kept first as
    /// `<path>.medic-failed-<stamp>` (a name systemd ignores), whose path is
    /// returned.
    pub fn apply(&self, stamp: &str) -> Result<Option<PathBuf>, UnitFilesError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| UnitFilesError::Io { path, source }
        };
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let kept = match std::fs::read(&self.path) {
            Ok(old) => {
                let kept = sibling(&self.path, &format!("failed-{stamp}"));
                let mode = std::fs::metadata(&self.path).map_or(0o600, |m| m.permissions().mode());
                write_new(&kept, &old, mode & 0o777).map_err(io(&kept))?;
                Some(kept)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(io(&self.path)(source)),
        };
        let temp = sibling(&self.path, "restore");
        std::fs::remove_file(&temp).ok();
        write_new(&temp, self.content.as_bytes(), self.mode & 0o777).map_err(io(&temp))?;
        std::fs::rename(&temp, &self.path).map_err(io(&self.path))?;
        Ok(kept)
    }
}

/// Creates `path` (it must not exist) with `content` and `mode`, flushed to disk.
fn write_new(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    std::fs::remove_file(path).ok();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(content)?;
    // The umask may have taken bits the original had (a unit file is 0644).
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.sync_all()
}

/// `<path>.medic-<suffix>`: a name systemd never loads (no unit type ends
/// so, and a drop-in must end in `.conf`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".medic-{suffix}"));
    PathBuf::from(name)
}

fn read_file(path: &Path) -> Result<UnitFile, UnitFilesError> {
    let io = |source| UnitFilesError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(UnitFilesError::TooLarge {
            what: path.display().to_string(),
        });
    }
    Ok(UnitFile {
        path: path.display().to_string(),
        content: std::fs::read_to_string(path).map_err(io)?,
        mode: meta.permissions().mode() & 0o777,
    })
}

/// The last part of a path (`override.conf`).
fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Whether a unit file says nothing (blank lines and comments only).
fn is_empty(content: &str) -> bool {
    content
        .lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#') || l.starts_with(';'))
}

#[cfg(test)]
mod tests;
