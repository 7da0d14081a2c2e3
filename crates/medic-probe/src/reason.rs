//! Short human reasons for IO and HTTP errors ("connection refused"), found by
//! walking `source()` and inspecting error kinds, never by matching strings.

use std::error::Error;
use std::io;

use nix::errno::Errno;

/// "connection refused", "No such file or directory": the OS reason without "(os error 2)".
pub fn io(error: &io::Error) -> String {
    use io::ErrorKind as K;
    let phrase = match error.kind() {
        K::ConnectionRefused => "connection refused",
        K::ConnectionReset => "connection reset",
        K::ConnectionAborted => "connection aborted",
        K::TimedOut => "timed out",
        K::HostUnreachable => "host unreachable",
        K::NetworkUnreachable => "network unreachable",
        K::AddrNotAvailable => "address not available",
        _ => {
            return match error.raw_os_error() {
                Some(code) => Errno::from_raw(code).desc().to_owned(),
                None => error.to_string(),
            };
        }
    };
    phrase.to_owned()
}

/// The innermost error of a chain, described: an IO error by [`io`], anything
/// else by its message.
pub fn innermost(error: &(dyn Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    match current.downcast_ref::<io::Error>() {
        Some(io_error) => io(io_error),
        None => current.to_string(),
    }
}

/// The first IO error in a chain, if any.
pub fn find_io<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a io::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io_error) = e.downcast_ref::<io::Error>() {
            return Some(io_error);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_lose_their_number() {
        let missing = io::Error::from_raw_os_error(Errno::ENOENT as i32);
        assert_eq!(io(&missing), "No such file or directory");
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(io(&refused), "connection refused");
        let custom = io::Error::other("boom");
        assert_eq!(io(&custom), "boom");
    }
}
