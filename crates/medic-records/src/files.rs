//! How medic writes its files: private (0600 whatever the umask, since
//! `state.json` holds container environments), whole files replaced atomically
//! (temp file, fsync, rename, fsync the directory, so a kill -9 leaves the old
//! or the new file, never a torn one), and the health of each file that a
//! background writer keeps, so a full disk is reported instead of fatal.

use std::fs::{File, OpenOptions, Permissions};
use std::io::BufWriter;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;

/// Owner read and write, nobody else.
const PRIVATE: u32 = 0o600;

/// Opens `path` for appending, creating it (and its parents) private; an
/// existing file written by an older medic is made private too. A file that
/// ends inside a line (a crash cut it) is ended with a newline first, so the
/// first line appended now stands alone and reads back.
pub fn open_append(path: &Path) -> anyhow::Result<File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .mode(PRIVATE)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    make_private(&file, path)?;
    #[cfg(feature = "planted")]
    if medic_core::planted::is(medic_core::planted::Defect::TornLineGlued) {
        return Ok(file);
    }
    end_torn_line(&mut file, path)?;
    Ok(file)
}

/// Appends a newline when the file's last byte is not one.
fn end_torn_line(file: &mut File, path: &Path) -> anyhow::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))
        .and_then(|_| file.read_exact(&mut last))
        .with_context(|| format!("cannot read {}", path.display()))?;
    if last[0] != b'\n' {
        tracing::warn!(
            path = %path.display(),
            "The file ends inside a line (a crash cut it): that line is closed with a newline and stays unreadable; what follows reads back"
        );
        file.write_all(b"\n")
            .and_then(|()| file.sync_data())
            .with_context(|| format!("cannot append to {}", path.display()))?;
    }
    Ok(())
}

fn make_private(file: &File, path: &Path) -> anyhow::Result<()> {
    let mode = file.metadata()?.permissions().mode() & 0o777;
    if mode != PRIVATE {
        file.set_permissions(Permissions::from_mode(PRIVATE))
            .with_context(|| format!("cannot make {} private", path.display()))?;
    }
    Ok(())
}

/// Replaces `path` with what `write` produces, atomically and privately. A
/// failure (full disk, an encoding error) leaves the old file and no temp file.
pub fn replace(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    // A state_dir that could not be created at start may be creatable now.
    let result = std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
        .and_then(|()| write_temp(&temp, write))
        .and_then(|()| {
            std::fs::rename(&temp, path)
                .with_context(|| format!("cannot replace {}", path.display()))
        });
    if result.is_err() {
        std::fs::remove_file(&temp).ok();
    }
    result?;
    if let Ok(dir) = File::open(dir) {
        dir.sync_all().ok();
    }
    Ok(())
}

fn write_temp(
    temp: &PathBuf,
    write: impl FnOnce(&mut BufWriter<File>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(PRIVATE)
        .open(temp)
        .with_context(|| format!("cannot create {}", temp.display()))?;
    make_private(&file, temp)?;
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    write(&mut out)?;
    let file = out
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("cannot write {}", temp.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot fsync {}", temp.display()))
}

/// Whether a file written in the background is writable, for `medic status`,
/// `/metrics` and the status page.
#[derive(Debug)]
pub struct FileHealth {
    /// What people call the file: "recovery log", "state store", …
    pub what: &'static str,
    errors: AtomicU64,
    dropped: AtomicU64,
    error: Mutex<Option<String>>,
}

impl FileHealth {
    /// A healthy file.
    pub fn new(what: &'static str) -> Self {
        Self {
            what,
            errors: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            error: Mutex::new(None),
        }
    }

    /// A write failed; logged when the reason changes, not on every retry.
    pub fn failed(&self, error: &anyhow::Error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let reason = reason(error);
        let mut current = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if current.as_deref() != Some(reason.as_str()) {
            tracing::error!(
                error = format!("{error:#}"),
                "{} not writable; medic keeps supervising and retries",
                self.what
            );
            *current = Some(reason);
        }
    }

    /// A write succeeded.
    pub fn ok(&self) {
        let mut current = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if current.take().is_some() {
            tracing::info!("{} writable again", self.what);
        }
    }

    /// Lines given up because the buffer was full while the file could not be written.
    pub fn dropped(&self, lines: u64) {
        self.dropped.fetch_add(lines, Ordering::Relaxed);
    }

    /// "recovery log not writable: No space left on device", while it is not.
    pub fn problem(&self) -> Option<String> {
        let current = self.error.lock().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .map(|reason| format!("{} not writable: {reason}", self.what))
    }

    /// Failed writes since start.
    pub fn errors_total(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Lines lost since start.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The innermost cause, without Rust's " (os error 28)" suffix: what a person
/// recognises ("No space left on device").
pub fn reason(error: &anyhow::Error) -> String {
    let root = error.root_cause().to_string();
    match root.rfind(" (os error ") {
        Some(at) => root[..at].to_owned(),
        None => root,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn files_are_private_whatever_the_umask_and_replace_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/log.jsonl");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"old\n").unwrap();
        std::fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        open_append(&path).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);

        let state = dir.path().join("state.json");
        replace(&state, |out| Ok(out.write_all(b"one")?)).unwrap();
        assert_eq!(mode(&state), 0o600);
        let failed = replace(&state, |out| {
            out.write_all(b"half of two")?;
            anyhow::bail!("killed mid-write")
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&state).unwrap(), b"one");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temp file left: {names:?}");
    }

    #[test]
    fn a_file_cut_inside_a_line_is_ended_before_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery.jsonl");
        std::fs::write(&path, b"{\"a\":1}\n{\"a\":").unwrap();
        writeln!(open_append(&path).unwrap(), "{{\"a\":3}}").unwrap();
        // Already on a line boundary: nothing added.
        writeln!(open_append(&path).unwrap(), "{{\"a\":4}}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"a\":\n{\"a\":3}\n{\"a\":4}\n"
        );
    }

    #[test]
    fn health_names_the_file_and_the_reason() {
        let health = FileHealth::new("recovery log");
        let error = anyhow::Error::from(std::io::Error::from_raw_os_error(28))
            .context("cannot append to /x");
        health.failed(&error);
        assert_eq!(
            health.problem().unwrap(),
            "recovery log not writable: No space left on device"
        );
        health.ok();
        assert_eq!(health.problem(), None);
        assert_eq!(health.errors_total(), 1);
    }
}
