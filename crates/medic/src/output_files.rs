//! medic's own stdout and stderr when they are files: a LaunchAgent's
//! `StandardOutPath` and `StandardErrorPath`, which launchd opens and never
//! rotates (macOS's newsyslog would need root and a signal medic has no use
//! for). `medic run` rotates them by size like its journals (`journal_max_size`,
//! `journal_keep`): the file becomes `.1` (…`.N`), a new one is opened in its
//! place and put behind the same descriptor.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::Duration;

/// How often the sizes are looked at (and once at start).
const EVERY: Duration = Duration::from_secs(30);

/// Keeps the files bounded; never returns (`medic run` drops it with the daemon).
pub async fn rotate(max_size: u64, keep: usize) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        // Renames and opens are disk work: off the runtime's only thread.
        let rotated = tokio::task::spawn_blocking(move || rotate_once(max_size, keep)).await;
        if let Ok(Err(error)) = rotated {
            tracing::warn!("cannot rotate medic's output file: {error}");
        }
    }
}

/// Rotates stderr, then stdout, when it is a regular file past `max_size`; a
/// stream on the same file as stderr follows it to the new file.
fn rotate_once(max_size: u64, keep: usize) -> std::io::Result<()> {
    let stderr = regular_file(std::io::stderr().as_fd());
    if let Some(file) = stderr.as_ref().filter(|f| f.size > max_size) {
        let new = reopen(file, keep)?;
        nix::unistd::dup2_stderr(&new)?;
        if regular_file(std::io::stdout().as_fd()).is_some_and(|out| out.same(file)) {
            nix::unistd::dup2_stdout(&new)?;
        }
    }
    if let Some(file) = regular_file(std::io::stdout().as_fd())
        .filter(|f| f.size > max_size && !stderr.as_ref().is_some_and(|e| e.same(f)))
    {
        nix::unistd::dup2_stdout(&reopen(&file, keep)?)?;
    }
    Ok(())
}

/// A standard stream's regular file.
struct Output {
    path: PathBuf,
    size: u64,
    id: (u64, u64),
}

impl Output {
    fn same(&self, other: &Output) -> bool {
        self.id == other.id
    }
}

/// The stream's file, if it is a regular file whose path can be told.
fn regular_file(fd: BorrowedFd<'_>) -> Option<Output> {
    let meta = File::from(fd.try_clone_to_owned().ok()?).metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    Some(Output {
        path: path_of(fd)?,
        size: meta.len(),
        id: (meta.dev(), meta.ino()),
    })
}

/// Rotates the file's path and opens a new, empty file there (0600, appending).
fn reopen(file: &Output, keep: usize) -> std::io::Result<File> {
    medic_records::rotation::rotate(&file.path, keep)?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&file.path)
}

#[cfg(target_os = "macos")]
fn path_of(fd: BorrowedFd<'_>) -> Option<PathBuf> {
    let mut path = PathBuf::new();
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETPATH(&mut path)).ok()?;
    Some(path)
}

#[cfg(not(target_os = "macos"))]
fn path_of(fd: BorrowedFd<'_>) -> Option<PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()
}
