//! Where a Docker engine listens: `DOCKER_HOST`'s forms, and the first local
//! socket that exists when none is given.

use std::path::{Path, PathBuf};

use crate::DockerError;

/// Where the engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// A unix socket path.
    Unix(String),
    /// `host:port` over plain HTTP.
    Http(String),
}

/// Parses an engine address.
pub(crate) fn parse_host(host: &str) -> Result<Endpoint, DockerError> {
    let unsupported = |reason| DockerError::UnsupportedHost {
        host: host.to_owned(),
        reason,
    };
    if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(unsupported("no socket path"));
        }
        return Ok(Endpoint::Unix(path.to_owned()));
    }
    if host.starts_with('/') {
        return Ok(Endpoint::Unix(host.to_owned()));
    }
    for scheme in ["tcp://", "http://"] {
        if let Some(addr) = host.strip_prefix(scheme) {
            let addr = addr.trim_end_matches('/');
            if addr.is_empty() {
                return Err(unsupported("no host:port"));
            }
            return Ok(Endpoint::Http(addr.to_owned()));
        }
    }
    Err(unsupported(
        "expected unix:///path, tcp://host:port or http://host:port",
    ))
}

/// The first socket that exists, else the first candidate.
pub(crate) fn default_socket(
    candidates: impl IntoIterator<Item = PathBuf>,
    exists: impl Fn(&Path) -> bool,
) -> PathBuf {
    let candidates: Vec<PathBuf> = candidates.into_iter().collect();
    candidates
        .iter()
        .find(|p| exists(p))
        .or(candidates.first())
        .cloned()
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(host: &str, expect: Option<Endpoint>) {
        assert_eq!(parse_host(host).ok(), expect, "{host}");
    }

    #[test]
    fn engine_addresses() {
        check(
            "unix:///var/run/docker.sock",
            Some(Endpoint::Unix("/var/run/docker.sock".into())),
        );
        check("/tmp/d.sock", Some(Endpoint::Unix("/tmp/d.sock".into())));
        check(
            "tcp://127.0.0.1:2375",
            Some(Endpoint::Http("127.0.0.1:2375".into())),
        );
        check(
            "http://localhost:2375/",
            Some(Endpoint::Http("localhost:2375".into())),
        );
        check("ssh://me@host", None);
        check("https://host:2376", None);
        check("unix://", None);
    }

    #[test]
    fn the_first_socket_that_exists() {
        let candidates = || ["/a", "/b"].map(PathBuf::from);
        assert_eq!(
            default_socket(candidates(), |p| p == Path::new("/b")),
            PathBuf::from("/b")
        );
        assert_eq!(default_socket(candidates(), |_| false), PathBuf::from("/a"));
    }
}
