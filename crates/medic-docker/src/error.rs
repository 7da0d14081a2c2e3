//! Docker failures sorted by what medic does about them: an unreachable engine
//! makes medic blind, a missing container is a fact, a call past its deadline
//! is hung, anything else is an error.

use std::time::Duration;

use bollard::errors::Error as Bollard;

/// A Docker call failed.
///
/// The variant is decided once, from bollard's error variant and Docker's HTTP
/// status, never from message text. Each Display includes Docker's own words.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine cannot be reached: socket missing, connection refused or
    /// reset, no answer in time. The container may be fine; medic is blind.
    #[error("Docker engine unreachable: {0}")]
    Unreachable(Bollard),
    /// No such container, image or network (Docker answered 404).
    #[error("not found: {0}")]
    NotFound(Bollard),
    /// The name is taken or the container is in a state that forbids the call (Docker answered 409).
    #[error("conflict: {0}")]
    Conflict(Bollard),
    /// Docker refused or failed the call, or answered something bollard could not read.
    #[error("Docker API error: {0}")]
    Api(Bollard),
    /// The engine address is not one medic can use.
    #[error("unsupported Docker host `{host}`: {reason}")]
    UnsupportedHost {
        /// The address as given.
        host: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// The engine did not finish a call within its deadline, answer and body
    /// included: a hung call (a `wait` on a container stuck in removal).
    #[error("engine call `{call}` timed out after {}s without a complete answer", .after.as_secs_f64())]
    TimedOut {
        /// The call, in Docker's words (`wait`, `restart`, `inspect`).
        call: &'static str,
        /// The deadline it was given.
        after: Duration,
    },
    /// The request itself is unusable: an empty label selector, a spec without a name.
    #[error("invalid request: {0}")]
    Invalid(&'static str),
}

impl DockerError {
    /// The engine cannot be reached (socket missing, refused, reset, timed out):
    /// medic is blind and must not act on the container.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable(_))
    }

    /// The call passed its deadline without a complete answer.
    pub fn is_timed_out(&self) -> bool {
        matches!(self, Self::TimedOut { .. })
    }

    /// Docker answered 404: no such container (or image, or network).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }

    /// Docker answered 409: e.g. the name is already in use.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }

    /// The engine answered something bollard could not read (Podman's
    /// `stopped` state, which Docker's API does not have).
    pub(crate) fn is_unreadable(&self) -> bool {
        matches!(
            self,
            Self::Api(Bollard::JsonDataError { .. } | Bollard::JsonSerdeError { .. })
        )
    }

    /// The engine answered with a 5xx status (Podman answers 500 for a
    /// container it is in the middle of removing).
    pub(crate) fn is_server_error(&self) -> bool {
        matches!(
            self,
            Self::Api(Bollard::DockerResponseServerError {
                status_code: 500..=599,
                ..
            })
        )
    }

    /// The bollard error underneath, when there is one.
    pub fn bollard(&self) -> Option<&Bollard> {
        match self {
            Self::Unreachable(e) | Self::NotFound(e) | Self::Conflict(e) | Self::Api(e) => Some(e),
            Self::UnsupportedHost { .. } | Self::Invalid(_) | Self::TimedOut { .. } => None,
        }
    }

    /// `call` did not finish within `after`.
    pub(crate) fn timed_out(call: &'static str, after: Duration) -> Self {
        Self::TimedOut { call, after }
    }
}

impl From<Bollard> for DockerError {
    /// Transport failures (no HTTP answer from Docker) are `Unreachable`; HTTP
    /// answers are sorted by status; the rest (bad JSON, bad options) is `Api`.
    fn from(error: Bollard) -> Self {
        match &error {
            Bollard::DockerResponseServerError {
                status_code: 404, ..
            } => Self::NotFound(error),
            Bollard::DockerResponseServerError {
                status_code: 409, ..
            } => Self::Conflict(error),
            Bollard::SocketNotFoundError(_)
            | Bollard::RequestTimeoutError
            | Bollard::HyperLegacyError { .. }
            | Bollard::HyperResponseError { .. }
            | Bollard::IOError { .. } => Self::Unreachable(error),
            _ => Self::Api(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(error: Bollard, unreachable: bool, not_found: bool) {
        let error = DockerError::from(error);
        assert_eq!(
            (error.is_unreachable(), error.is_not_found()),
            (unreachable, not_found),
            "{error}"
        );
    }

    fn status(status_code: u16) -> Bollard {
        Bollard::DockerResponseServerError {
            status_code,
            message: "x".into(),
        }
    }

    #[test]
    fn sorts_by_variant_and_status() {
        check(Bollard::SocketNotFoundError("/x".into()), true, false);
        check(Bollard::RequestTimeoutError, true, false);
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        check(Bollard::IOError { err: refused }, true, false);
        check(status(404), false, true);
        check(status(500), false, false);
        assert!(DockerError::from(status(409)).is_conflict());
        check(
            Bollard::DockerStreamError { error: "x".into() },
            false,
            false,
        );
    }
}
