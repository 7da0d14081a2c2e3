//! One daemon per state directory: an exclusive `flock` on `state_dir/medic.lock`
//! and on the directory itself, held for the daemon's life, and a control
//! socket that is replaced only when nothing answers on it. Two medics acting
//! on the same containers and the same `state.json` would fight; the second
//! one stops at once instead. `flock` needs no write access, so the lock holds
//! on a read-only state_dir too (medic then keeps its state in memory); only a
//! state_dir that does not exist and cannot be created leaves medic unlocked,
//! and it says so.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use anyhow::Context;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The held locks; released when dropped (and by the kernel if medic dies).
#[derive(Debug)]
pub struct StateLock {
    _file: Option<Flock<File>>,
    _dir: Option<Flock<File>>,
    problem: Option<String>,
}

impl StateLock {
    /// Takes the lock on `state_dir` (creating it), or says which medic holds
    /// it. A state_dir medic cannot write is locked all the same (the lock
    /// file opened read-only, and the directory); one it cannot even create
    /// is not locked, and [`StateLock::problem`] says so.
    pub fn acquire(state_dir: &Path) -> anyhow::Result<Self> {
        let created = std::fs::create_dir_all(state_dir)
            .with_context(|| format!("cannot create state_dir {}", state_dir.display()));
        let path = state_dir.join("medic.lock");
        let writable = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()));
        let (file, unwritable) = match writable {
            Ok(file) => (Some(file), None),
            // flock needs no write access: an existing lock file still serves.
            Err(error) => (File::open(&path).ok(), Some(error)),
        };
        let mut file = match file {
            Some(file) => lock(file, state_dir)?,
            None => None,
        };
        // The directory too: a lock file that cannot be created (read-only
        // state_dir) must not let two medics in.
        let dir = match File::open(state_dir) {
            Ok(dir) => lock(dir, state_dir)?,
            Err(_) => None,
        };
        if unwritable.is_none()
            && let Some(file) = &mut file
        {
            // Who holds it, for the next one's message.
            let pid = file
                .set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| writeln!(file, "{}", std::process::id()));
            if let Err(error) = pid {
                tracing::warn!(%error, path = %path.display(), "Cannot write medic's pid into the lock file");
            }
        }
        let problem = match (&file, &dir, unwritable) {
            (None, None, error) => {
                let error = created
                    .err()
                    .or(error)
                    .unwrap_or_else(|| anyhow::anyhow!("the file system refuses locks"));
                let problem = format!(
                    "no one-daemon lock on state_dir {} ({}): a second medic on it would not be stopped",
                    state_dir.display(),
                    medic_records::files::reason(&error)
                );
                tracing::error!(error = format!("{error:#}"), "{problem}");
                Some(problem)
            }
            (_, _, Some(error)) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "state_dir {} is not writable: medic keeps its state in memory, reports it and retries; \
                     the one-daemon lock holds (taken read-only)",
                    state_dir.display()
                );
                None
            }
            _ => None,
        };
        Ok(Self {
            _file: file,
            _dir: dir,
            problem,
        })
    }

    /// Why no lock is held, for `medic status`, the page and the storage alert.
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }
}

/// Locks `file` (the lock file or state_dir itself), or names the medic
/// holding it; None where the file system refuses locks.
fn lock(file: File, state_dir: &Path) -> anyhow::Result<Option<Flock<File>>> {
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => Ok(Some(locked)),
        Err((_, Errno::EWOULDBLOCK)) => {
            let mut holder = String::new();
            if let Ok(mut file) = File::open(state_dir.join("medic.lock")) {
                file.read_to_string(&mut holder).ok();
            }
            let holder = match holder.trim() {
                "" => String::new(),
                pid => format!(" (pid {pid})"),
            };
            anyhow::bail!(
                "another medic{holder} is running with state_dir {}: stop it first, \
                 or give this one a state_dir of its own",
                state_dir.display()
            );
        }
        Err((_, errno)) => {
            tracing::warn!(%errno, "Cannot lock in state_dir {}", state_dir.display());
            Ok(None)
        }
    }
}

/// Clears the way for binding `socket`: a socket nothing answers on (left by
/// a medic that died) is removed; a live one, or anything that is not a
/// socket, is an error and stays.
pub fn clear_stale_socket(socket: &Path) -> anyhow::Result<()> {
    let metadata = match std::fs::symlink_metadata(socket) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => {
            return Err(error).with_context(|| format!("cannot inspect {}", socket.display()));
        }
    };
    anyhow::ensure!(
        metadata.file_type().is_socket(),
        "control_socket {} exists and is not a socket: medic leaves it alone",
        socket.display()
    );
    match std::os::unix::net::UnixStream::connect(socket) {
        Ok(_) => anyhow::bail!(
            "control_socket {} is in use by a running medic: stop it first, \
             or give this one a control_socket of its own",
            socket.display()
        ),
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
            tracing::info!(socket = %socket.display(), "Removing a stale control socket");
            std::fs::remove_file(socket)
                .with_context(|| format!("cannot remove stale {}", socket.display()))
        }
        Err(error) => Err(error).with_context(|| format!("cannot connect to {}", socket.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_names_the_first_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        let error = StateLock::acquire(dir.path()).unwrap_err().to_string();
        let pid = std::process::id();
        assert!(
            error.starts_with(&format!(
                "another medic (pid {pid}) is running with state_dir {}",
                dir.path().display()
            )),
            "{error}"
        );
        drop(first);
        StateLock::acquire(dir.path()).expect("free again once released");
    }

    #[test]
    fn the_directory_is_locked_too_and_an_uncreatable_state_dir_says_it_is_unlocked() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        assert_eq!(first.problem(), None);
        // A new lock file (as a read-only state_dir would lack one) does not let a second medic in.
        std::fs::remove_file(dir.path().join("medic.lock")).unwrap();
        let error = StateLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(error.starts_with("another medic"), "{error}");
        drop(first);

        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let unlocked = StateLock::acquire(&file.join("state")).expect("medic still runs");
        let problem = unlocked.problem().expect("the missing lock is reported");
        assert!(
            problem.starts_with(&format!(
                "no one-daemon lock on state_dir {}/state (Not a directory)",
                file.display()
            )),
            "{problem}"
        );
    }

    #[test]
    fn live_socket_stays_stale_socket_goes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        clear_stale_socket(&path).expect("nothing there");
        let live = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let error = clear_stale_socket(&path).unwrap_err().to_string();
        assert!(error.contains("is in use by a running medic"), "{error}");
        assert!(path.exists());
        drop(live);
        clear_stale_socket(&path).expect("a stale socket is removed");
        assert!(!path.exists());
        std::fs::write(&path, "not a socket").unwrap();
        let error = clear_stale_socket(&path).unwrap_err().to_string();
        assert!(error.contains("is not a socket"), "{error}");
        assert!(path.exists());
    }
}
