//! A rollback on the engine: the failing container kept as a forensic copy
//! (stopped, without its restart policy, renamed), the last known good spec
//! created under the name, and old forensic copies pruned.

use std::time::Duration;

use bollard::models::{
    ContainerInspectResponse, ContainerUpdateBody, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, RenameContainerOptionsBuilder,
};

use super::DockerClient;
use crate::select::{ContainerSummary, forensic_filter, forensic_name};
use crate::spec::ContainerSpec;
use crate::{DockerError, FORENSIC_KEEP};

impl DockerClient {
    /// Rolls back: the failing container `current` is stopped, stripped of its
    /// restart policy, and kept as `<name>.medic-failed-<stamp>` (only the newest
    /// [`FORENSIC_KEEP`] such copies are kept); then the last known good spec is
    /// created and started under the name. When `current` is already gone this
    /// is just a recreate. Returns the new container's id.
    ///
    /// Nothing is touched when the rollback cannot work: the last known good
    /// image is gone (pruned: `NotFound`) or the forensic name is taken (`Conflict`).
    /// A call refused (5xx) while someone else removed the failing container
    /// is `NotFound` once that removal is over: a removal, not a broken rollback.
    /// Each engine call gets `within` (beyond the stop timeout for the stop).
    pub async fn rollback(
        &self,
        current: &str,
        lkg: &ContainerSpec,
        stamp: &str,
        within: Duration,
    ) -> Result<String, DockerError> {
        if lkg.name.is_empty() {
            return Err(DockerError::Invalid("a container spec without a name"));
        }
        let docker = self.docker().await?;
        self.call("inspect image", within, docker.inspect_image(&lkg.image_id))
            .await?;
        // A `podman rm -f` racing the rollback: Podman refuses a stop or
        // rename meanwhile with a 500; once it is done, there is nothing to keep.
        let inspect = match self.settle(current, within).await?.facts {
            Some(_) => self.inspect_raw(current).await?,
            None => None,
        };
        let mut retired = None;
        if let Some(inspect) = inspect {
            let forensic = forensic_name(&lkg.name, stamp);
            if self.inspect_raw(&forensic).await?.is_some() {
                return Err(DockerError::from(
                    bollard::errors::Error::DockerResponseServerError {
                        status_code: 409,
                        message: format!("the forensic name `{forensic}` is already in use"),
                    },
                ));
            }
            let id = inspect.id.clone().unwrap_or_else(|| current.to_owned());
            if let Err(error) = self.retire(&id, &inspect, &forensic, within).await {
                return Err(self.removed_meanwhile(&id, error).await);
            }
            retired = Some(id);
        }
        let id = match (self.recreate(lkg, within).await, retired) {
            (Ok(id), _) => id,
            (Err(error), Some(old)) => {
                return Err(self.removed_meanwhile(&old, error).await);
            }
            (Err(error), None) => return Err(error),
        };
        if let Err(error) = self.prune_forensics(&lkg.name, within).await {
            tracing::warn!(container = %lkg.name, %error, "Cannot remove old forensic copies");
        }
        Ok(id)
    }

    /// Turns a failed container into a forensic copy: stopped, without a
    /// restart policy (so a dockerd restart does not bring it back), renamed.
    /// One that vanishes meanwhile (`--rm`) simply leaves nothing to keep.
    async fn retire(
        &self,
        id: &str,
        inspect: &ContainerInspectResponse,
        forensic: &str,
        within: Duration,
    ) -> Result<(), DockerError> {
        let own_timeout = inspect
            .config
            .as_ref()
            .and_then(|c| c.stop_timeout)
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs);
        // Stopped first: Docker refuses to update a container its restart
        // policy is restarting, and a stop ends that loop.
        let stopped = self.stop(id, own_timeout, within).await;
        match self.gone_if_unlisted(id, stopped).await {
            Ok(()) => {}
            Err(error) if error.is_not_found() => return Ok(()),
            Err(error) => return Err(error),
        }
        let docker = self.docker().await?;
        let auto_remove = inspect
            .host_config
            .as_ref()
            .and_then(|h| h.auto_remove)
            .unwrap_or(false);
        if !auto_remove {
            let update = ContainerUpdateBody {
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::NO),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            };
            let updated = docker.update_container(id, update);
            if let Err(error) = self.call("update", within, updated).await {
                match error {
                    // Podman 4 has no update endpoint (404 as well): only a
                    // container that is really gone leaves nothing to keep.
                    error if error.is_not_found() && self.inspect_raw(id).await?.is_none() => {
                        return Ok(());
                    }
                    // Worth keeping the copy anyway: only a dockerd restart would start it.
                    error => {
                        tracing::warn!(%id, %error, "Cannot clear the restart policy of a failed container")
                    }
                }
            }
        }
        let rename = RenameContainerOptionsBuilder::default()
            .name(forensic)
            .build();
        let renamed = self
            .call("rename", within, docker.rename_container(id, rename))
            .await;
        match self.gone_if_unlisted(id, renamed).await {
            Ok(()) => {
                tracing::debug!(%id, %forensic, "Kept the failed container");
                Ok(())
            }
            Err(error) if error.is_not_found() => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Removes all but the newest [`FORENSIC_KEEP`] forensic copies of a
    /// container; each engine call gets `within`.
    async fn prune_forensics(&self, name: &str, within: Duration) -> Result<(), DockerError> {
        let prefix = forensic_name(name, "");
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&forensic_filter(name))
            .build();
        let docker = self.docker().await?;
        let mut copies: Vec<ContainerSummary> = self
            .call("list", within, docker.list_containers(Some(options)))
            .await?
            .into_iter()
            .filter_map(ContainerSummary::from_list)
            .filter(|c| c.name.starts_with(&prefix))
            .collect();
        copies.sort_by(|a, b| (b.created, &b.name).cmp(&(a.created, &a.name)));
        for old in copies.into_iter().skip(FORENSIC_KEEP) {
            let options = RemoveContainerOptionsBuilder::default().force(true).build();
            let remove = docker.remove_container(&old.id, Some(options));
            match self.call("remove", within, remove).await {
                Ok(()) => tracing::debug!(container = %old.name, "Removed an old forensic copy"),
                Err(error) if error.is_not_found() => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}
