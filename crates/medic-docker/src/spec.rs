//! A container's create spec, recorded while it is healthy (its last known
//! good), and the rules for recreating it identically — watchtower's: keep only
//! the Config values the image does not already set, reuse the HostConfig,
//! create on one network and connect the others afterwards.

use std::collections::HashMap;

use bollard::models::{
    ContainerConfig, ContainerCreateBody, EndpointSettings, HostConfig, ImageConfig,
    NetworkingConfig,
};
use serde::{Deserialize, Serialize};

/// Everything needed to create a container again as it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Name without the leading `/`.
    pub name: String,
    /// The exact image id (`sha256:…`) it ran.
    pub image_id: String,
    /// The image reference it was created from (`repo:tag`), for people.
    pub image: String,
    /// Config as inspected.
    pub config: ContainerConfig,
    /// HostConfig as inspected.
    pub host_config: HostConfig,
    /// Networks and their endpoint settings.
    pub networks: HashMap<String, EndpointSettings>,
    /// The image's own config, so values it sets are left to it on recreate.
    pub image_config: Option<ImageConfig>,
}

impl ContainerSpec {
    /// The image id.
    pub fn image_id(&self) -> &str {
        &self.image_id
    }

    /// The container whose network namespace this one joins (`network_mode: container:X`).
    pub fn network_parent(&self) -> Option<&str> {
        self.host_config
            .network_mode
            .as_deref()
            .and_then(|mode| mode.strip_prefix("container:"))
    }

    /// The body to create the container with on one network, and the other
    /// networks to connect afterwards (Docker attaches only one at create).
    pub fn create_body(&self) -> (ContainerCreateBody, Vec<(String, EndpointSettings)>) {
        let config = minimal_config(&self.config, self.image_config.as_ref());
        let mut networks: Vec<(String, EndpointSettings)> =
            self.networks.clone().into_iter().collect();
        networks.sort_by(|a, b| a.0.cmp(&b.0));
        let mode = self.host_config.network_mode.clone().unwrap_or_default();
        let shares_namespace = mode.starts_with("container:");
        let own_stack = !(shares_namespace || mode == "host" || mode == "none");
        // Create on the network named by NetworkMode (or the first), connect the rest after.
        let first = if own_stack {
            let index = networks.iter().position(|(n, _)| *n == mode).unwrap_or(0);
            (!networks.is_empty()).then(|| networks.remove(index))
        } else {
            networks.clear();
            None
        };
        let body = ContainerCreateBody {
            hostname: if shares_namespace {
                None
            } else {
                config.hostname
            },
            domainname: if shares_namespace {
                None
            } else {
                config.domainname
            },
            user: config.user,
            attach_stdin: config.attach_stdin,
            attach_stdout: config.attach_stdout,
            attach_stderr: config.attach_stderr,
            exposed_ports: if shares_namespace {
                None
            } else {
                config.exposed_ports
            },
            tty: config.tty,
            open_stdin: config.open_stdin,
            stdin_once: config.stdin_once,
            env: config.env,
            cmd: config.cmd,
            healthcheck: config.healthcheck,
            args_escaped: config.args_escaped,
            image: Some(self.image_id.clone()),
            volumes: config.volumes,
            working_dir: config.working_dir,
            entrypoint: config.entrypoint,
            network_disabled: config.network_disabled,
            on_build: config.on_build,
            labels: config.labels,
            stop_signal: config.stop_signal,
            stop_timeout: config.stop_timeout,
            shell: config.shell,
            host_config: Some(self.host_config.clone()),
            networking_config: first.map(|(name, endpoint)| NetworkingConfig {
                endpoints_config: Some(HashMap::from([(name, clean_endpoint(endpoint))])),
            }),
        };
        let rest = networks
            .into_iter()
            .map(|(n, e)| (n, clean_endpoint(e)))
            .collect();
        (body, rest)
    }
}

/// Keeps what the user chose (aliases, static addresses) and drops what Docker assigns per run.
fn clean_endpoint(endpoint: EndpointSettings) -> EndpointSettings {
    EndpointSettings {
        ipam_config: endpoint.ipam_config,
        links: endpoint.links,
        aliases: endpoint.aliases,
        driver_opts: endpoint.driver_opts,
        mac_address: endpoint.mac_address,
        ..Default::default()
    }
}

/// The container's Config without the values its image already sets, so the
/// recreated container gets exactly the user's settings plus the image defaults.
pub fn minimal_config(container: &ContainerConfig, image: Option<&ImageConfig>) -> ContainerConfig {
    let mut config = container.clone();
    let Some(image) = image else {
        return config;
    };
    let without =
        |mine: &Option<Vec<String>>, theirs: &Option<Vec<String>>| -> Option<Vec<String>> {
            let theirs = theirs.clone().unwrap_or_default();
            mine.as_ref()
                .map(|m| {
                    m.iter()
                        .filter(|v| !theirs.contains(v))
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .filter(|v| !v.is_empty())
        };
    config.env = without(&config.env, &image.env);
    config.exposed_ports = without(&config.exposed_ports, &image.exposed_ports);
    config.volumes = without(&config.volumes, &image.volumes);
    if let (Some(labels), Some(image_labels)) = (&mut config.labels, &image.labels) {
        labels.retain(|k, v| image_labels.get(k) != Some(v));
    }
    if config.cmd == image.cmd {
        config.cmd = None;
    }
    if config.entrypoint == image.entrypoint {
        config.entrypoint = None;
    }
    if config.working_dir == image.working_dir {
        config.working_dir = None;
    }
    if config.user == image.user {
        config.user = None;
    }
    if config.healthcheck == image.healthcheck {
        config.healthcheck = None;
    }
    config
}

/// Whether rolling back to `lkg` would change anything: another image, or another create config.
pub fn spec_differs(current: &ContainerSpec, lkg: &ContainerSpec) -> bool {
    current.image_id != lkg.image_id
        || minimal_config(&current.config, current.image_config.as_ref()).env
            != minimal_config(&lkg.config, lkg.image_config.as_ref()).env
        || current.config.cmd != lkg.config.cmd
        || current.config.entrypoint != lkg.config.entrypoint
        || current.host_config.binds != lkg.host_config.binds
        || current.host_config.network_mode != lkg.host_config.network_mode
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Option<Vec<String>> {
        Some(values.iter().map(|s| (*s).to_owned()).collect())
    }

    fn spec(image_id: &str, env: &[&str], mode: &str) -> ContainerSpec {
        ContainerSpec {
            name: "web".into(),
            image_id: image_id.into(),
            image: "app:1".into(),
            config: ContainerConfig {
                env: strings(env),
                cmd: strings(&["httpd"]),
                hostname: Some("abc".into()),
                ..Default::default()
            },
            host_config: HostConfig {
                network_mode: Some(mode.into()),
                ..Default::default()
            },
            networks: HashMap::from([
                ("front".into(), EndpointSettings::default()),
                ("back".into(), EndpointSettings::default()),
            ]),
            image_config: Some(ImageConfig {
                env: strings(&["PATH=/bin"]),
                cmd: strings(&["httpd"]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn keeps_only_what_the_image_does_not_set() {
        let spec = spec("sha256:1", &["PATH=/bin", "PORT=8080"], "front");
        let config = minimal_config(&spec.config, spec.image_config.as_ref());
        assert_eq!(config.env, strings(&["PORT=8080"]));
        assert_eq!(
            config.cmd, None,
            "the image's own command is left to the image"
        );
    }

    #[test]
    fn creates_on_one_network_and_connects_the_rest() {
        let (body, rest) = spec("sha256:1", &[], "front").create_body();
        let first: Vec<String> = body
            .networking_config
            .unwrap()
            .endpoints_config
            .unwrap()
            .into_keys()
            .collect();
        assert_eq!(first, ["front"]);
        assert_eq!(
            rest.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["back"]
        );
        assert_eq!(body.image.as_deref(), Some("sha256:1"));
    }

    #[test]
    fn a_shared_namespace_gets_no_hostname_and_no_networks() {
        let spec = spec("sha256:1", &[], "container:db");
        assert_eq!(spec.network_parent(), Some("db"));
        let (body, rest) = spec.create_body();
        assert_eq!(body.hostname, None);
        assert!(body.networking_config.is_none() && rest.is_empty());
    }

    #[test]
    fn differs_on_image_or_config() {
        let a = spec("sha256:1", &["A=1"], "host");
        assert!(!spec_differs(&a, &a.clone()));
        assert!(spec_differs(&a, &spec("sha256:2", &["A=1"], "host")));
        assert!(spec_differs(&a, &spec("sha256:1", &["A=2"], "host")));
    }
}
