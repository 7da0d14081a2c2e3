//! Letting a stop or removal someone else began finish before medic acts on
//! the container: one wait shared by restarts and rollbacks.

use std::time::Duration;

use super::DockerClient;
use crate::DockerError;
use crate::facts::{ContainerFacts, ContainerState};

/// A container once the stop or removal under way has finished.
#[derive(Debug, Clone)]
pub struct Settled {
    /// What is left: None once it is gone.
    pub facts: Option<ContainerFacts>,
    /// Whether medic had to wait for the engine (so a container running now
    /// was started again by whoever stopped it, e.g. `podman restart`).
    pub waited: bool,
}

/// Why a container could not be seen settled: the two failures read differently.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    /// The engine's wait for the stop or removal failed or passed its deadline.
    #[error("cannot wait for it to stop ({}): {error}", .state.as_str())]
    Wait {
        /// The state it was waited out of.
        state: ContainerState,
        /// The wait's failure.
        error: DockerError,
    },
    /// The inspect before or after the wait failed.
    #[error("cannot inspect it: {0}")]
    Inspect(DockerError),
}

impl From<SettleError> for DockerError {
    /// The engine's failure underneath.
    fn from(error: SettleError) -> Self {
        match error {
            SettleError::Wait { error, .. } | SettleError::Inspect(error) => error,
        }
    }
}

impl DockerClient {
    /// The container once a `podman stop`, `podman rm -f` or `docker rm -f`
    /// under way has finished: its stop timeout, the removal, Podman's
    /// cleanup after `stopped`. Acting meanwhile races the removal: a start
    /// is refused ("marked for removal") or, on Podman, starts a process in a
    /// container it then deletes; a rollback judges a container about to
    /// vanish. Podman's `stopping` settles into `stopped`, hence a second
    /// wait. Each wait gets `within`.
    pub async fn settle(&self, id_or_name: &str, within: Duration) -> Result<Settled, SettleError> {
        let mut facts = self
            .inspect(id_or_name)
            .await
            .map_err(SettleError::Inspect)?;
        let mut waited = false;
        for _ in 0..2 {
            let Some(state) = facts.as_ref().filter(|f| f.is_stopping()).map(|f| f.state) else {
                break;
            };
            self.wait_stopped(id_or_name, state, within)
                .await
                .map_err(|error| SettleError::Wait { state, error })?;
            waited = true;
            facts = self
                .inspect(id_or_name)
                .await
                .map_err(SettleError::Inspect)?;
        }
        Ok(Settled { facts, waited })
    }

    /// A 5xx answer about a container someone else was removing meanwhile,
    /// as the removal it is: Podman 4.3 refuses a stop, rename, create or
    /// start with a 500 while a `podman rm -f` frees the container's storage
    /// ("layer not known", "container not known", "unable to determine if
    /// …/shm is mounted", "cannot chown run directory"), before it shows the
    /// container `removing`, and its wait for a removal does not end when the
    /// removal does. So the container is looked up until it is gone, for at
    /// most [`REMOVAL_SETTLE`]; gone by then, the answer is `NotFound`; any
    /// other is left as it is.
    pub(crate) async fn removed_meanwhile(&self, id: &str, error: DockerError) -> DockerError {
        if !error.is_server_error() {
            return error;
        }
        let deadline = tokio::time::Instant::now() + REMOVAL_SETTLE;
        loop {
            match self.inspect(id).await {
                Ok(None) => {
                    return DockerError::from(bollard::errors::Error::DockerResponseServerError {
                        status_code: 404,
                        message: format!(
                            "`{id}` was removed meanwhile; the engine answered: {error}"
                        ),
                    });
                }
                // Still there, or not readable mid-removal: looked up again.
                _ if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(REMOVAL_POLL).await;
                }
                _ => return error,
            }
        }
    }
}

/// How long a removal someone else began may take to end once the engine
/// refused a call with a 500 for it: Podman frees a container's storage in
/// well under a second; a container still there by then is not being removed.
const REMOVAL_SETTLE: Duration = Duration::from_secs(5);
/// How often the container is looked up meanwhile.
const REMOVAL_POLL: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_engine_is_an_inspect_failure_and_no_removal() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let client = DockerClient::connect_to(&format!("unix://{}", socket.display())).unwrap();
        let error = client
            .settle("web", Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, SettleError::Inspect(e) if e.is_unreachable()),
            "{error}"
        );
        // Only a 5xx may be a removal: anything else is left as it is, unlooked-up.
        let conflict = bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            message: "name in use".into(),
        };
        let error = client
            .removed_meanwhile("web", DockerError::from(conflict))
            .await;
        assert!(error.is_conflict(), "{error}");
    }
}
