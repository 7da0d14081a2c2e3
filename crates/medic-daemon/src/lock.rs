//! One daemon per state directory: an exclusive `flock` on `state_dir/medic.lock`,
//! held for the daemon's life, and a control socket that is replaced only when
//! nothing answers on it. Two medics acting on the same containers and the same
//! `state.json` would fight; the second one stops at once instead.

use std::io::{Read, Seek, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use anyhow::Context;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The held lock; released when dropped (and by the kernel if medic dies).
#[derive(Debug)]
pub struct StateLock {
    _file: Flock<std::fs::File>,
}

impl StateLock {
    /// Takes the lock on `state_dir` (creating it), or says which medic holds it.
    pub fn acquire(state_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("cannot create state_dir {}", state_dir.display()))?;
        let path = state_dir.join("medic.lock");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let mut holder = String::new();
                file.read_to_string(&mut holder).ok();
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
                return Err(errno).with_context(|| format!("cannot lock {}", path.display()));
            }
        };
        // Who holds it, for the next one's message.
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self { _file: file })
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
