//! A container's create spec, recorded while it is healthy (its last known
//! good), and the rules for creating it again as it was — watchtower's: keep
//! only the Config values the image does not already set, reuse the
//! HostConfig, create on one network and connect the others afterwards.

use std::collections::HashMap;

use bollard::models::{
    ContainerConfig, ContainerCreateBody, ContainerInspectResponse, EndpointSettings, HealthConfig,
    HostConfig, ImageConfig, NetworkingConfig,
};
use serde::{Deserialize, Serialize};

/// Everything needed to create a container again as it was. Serializable so the
/// daemon can keep it in its state store; the inner types are Docker's API
/// types, so the stored form is Docker's own JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Name without the leading `/`.
    pub name: String,
    /// The exact image id (`sha256:…`) it ran.
    pub image_id: String,
    /// The image reference it was created from (`repo:tag`), for people.
    pub image: String,
    /// Config as inspected (merged with the image's), minus what Docker made up
    /// for that one container (a hostname that is its short id).
    pub config: ContainerConfig,
    /// HostConfig as inspected; `container:<id>` network modes name the container instead.
    pub host_config: HostConfig,
    /// Networks and their endpoint settings (aliases, static addresses).
    pub networks: HashMap<String, EndpointSettings>,
    /// The image's own config, so values it sets are left to it on recreate.
    pub image_config: Option<ImageConfig>,
}

impl ContainerSpec {
    /// The spec of an inspected container. `parent_name` is the name of the
    /// container whose network namespace it joins (`container:<id>` becomes
    /// `container:<name>`, so the spec survives the parent being recreated).
    pub fn from_inspect(
        inspect: ContainerInspectResponse,
        image_config: Option<ImageConfig>,
        parent_name: Option<&str>,
    ) -> Self {
        let id = inspect.id.unwrap_or_default();
        // Docker's ids are hex; an engine's odd one must not split a character.
        let short_id = id.get(..12).unwrap_or(&id);
        let mut config = inspect.config.unwrap_or_default();
        if config.hostname.as_deref() == Some(short_id) {
            config.hostname = None; // Docker's default; the new container gets its own
        }
        let mut host_config = inspect.host_config.unwrap_or_default();
        if let Some(parent) = parent_name.filter(|_| network_parent(&host_config).is_some()) {
            host_config.network_mode = Some(format!("container:{parent}"));
        }
        let mut networks = inspect
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default();
        for endpoint in networks.values_mut() {
            if let Some(aliases) = &mut endpoint.aliases {
                aliases.retain(|a| a != short_id); // Docker adds it on every user network
            }
        }
        Self {
            name: inspect
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
            image: config.image.clone().unwrap_or_default(),
            image_id: inspect.image.unwrap_or_default(),
            config,
            host_config,
            networks,
            image_config,
        }
    }

    /// The image id.
    pub fn image_id(&self) -> &str {
        &self.image_id
    }

    /// The container whose network namespace this one joins (`network_mode:
    /// container:X`): its name when the spec was captured by [`crate::DockerClient::capture_spec`].
    pub fn network_parent(&self) -> Option<&str> {
        network_parent(&self.host_config)
    }

    /// The body to create the container with, and the networks to connect
    /// afterwards (before API 1.44 Docker attaches only one network at create).
    /// The image is the exact image id.
    pub fn create_body(&self) -> (ContainerCreateBody, Vec<(String, EndpointSettings)>) {
        let config = minimal_config(&self.config, self.image_config.as_ref());
        let mode = self
            .host_config
            .network_mode
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "default".to_owned());
        let shares_namespace = mode.starts_with("container:");
        let own_stack = !(shares_namespace || mode == "host" || mode == "none");
        // The network NetworkMode names is attached at create; its endpoint
        // settings go along only when the user set some (so a missing default
        // `bridge` is never named). The others are connected afterwards.
        let primary = if mode == "default" {
            "bridge"
        } else {
            mode.as_str()
        };
        let mut first = None;
        let mut rest = Vec::new();
        if own_stack {
            let mut networks: Vec<_> = self.networks.iter().collect();
            networks.sort_by(|a, b| a.0.cmp(b.0));
            for (name, endpoint) in networks {
                let endpoint = clean_endpoint(endpoint);
                if name == primary {
                    first =
                        (endpoint != EndpointSettings::default()).then(|| (name.clone(), endpoint));
                } else {
                    rest.push((name.clone(), endpoint));
                }
            }
        }
        let mut exposed_ports = config.exposed_ports.unwrap_or_default();
        for port in self.host_config.port_bindings.iter().flat_map(|b| b.keys()) {
            if !exposed_ports.contains(port) {
                exposed_ports.push(port.clone());
            }
        }
        let mut host_config = self.host_config.clone();
        for ulimit in host_config.ulimits.iter_mut().flatten() {
            if let Some(name) = &mut ulimit.name {
                *name = ulimit_name(name);
            }
        }
        if let Some(links) = &mut host_config.links {
            *links = links.iter().map(|l| canonical_link(l)).collect();
        }
        let body = ContainerCreateBody {
            hostname: config.hostname.filter(|_| !shares_namespace),
            domainname: config.domainname.filter(|_| !shares_namespace),
            user: config.user,
            attach_stdin: config.attach_stdin,
            attach_stdout: config.attach_stdout,
            attach_stderr: config.attach_stderr,
            exposed_ports: non_empty(exposed_ports).filter(|_| !shares_namespace),
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
            host_config: Some(host_config),
            networking_config: first.map(|(name, endpoint)| NetworkingConfig {
                endpoints_config: Some(HashMap::from([(name, endpoint)])),
            }),
        };
        (body, rest)
    }
}

/// The container a HostConfig's `network_mode: container:X` joins.
fn network_parent(host_config: &HostConfig) -> Option<&str> {
    host_config
        .network_mode
        .as_deref()
        .and_then(|mode| mode.strip_prefix("container:"))
        .filter(|parent| !parent.is_empty())
}

/// Keeps what the user chose (aliases, static addresses, links, driver options)
/// and drops what Docker assigns per run (endpoint, addresses, MAC, DNS names).
fn clean_endpoint(endpoint: &EndpointSettings) -> EndpointSettings {
    EndpointSettings {
        ipam_config: endpoint.ipam_config.clone(),
        links: endpoint.links.clone().filter(|l| !l.is_empty()),
        aliases: endpoint.aliases.clone().filter(|a| !a.is_empty()),
        driver_opts: endpoint.driver_opts.clone().filter(|o| !o.is_empty()),
        gw_priority: endpoint.gw_priority.filter(|p| *p != 0),
        ..Default::default()
    }
}

/// Podman's inspect names ulimits as the kernel does (`RLIMIT_NOFILE`), its
/// create (like Docker's) takes `nofile`.
fn ulimit_name(name: &str) -> String {
    let bare = match name.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("RLIMIT_") => &name[7..],
        _ => name,
    };
    bare.to_ascii_lowercase()
}

/// Inspect shows links as `/db:/web/db`; create takes `db:db`.
fn canonical_link(link: &str) -> String {
    match link.split_once(':') {
        Some((name, alias)) => {
            let alias = alias.rsplit('/').next().unwrap_or(alias);
            format!("{}:{alias}", name.trim_start_matches('/'))
        }
        None => link.trim_start_matches('/').to_owned(),
    }
}

/// The container's Config without the values its image already sets, so the
/// recreated container gets exactly the user's settings plus the image's
/// defaults (watchtower's `GetCreateConfig`): Env, Labels, Volumes and
/// ExposedPorts lose the image's entries; WorkingDir, User, Entrypoint (and
/// then Cmd) and Healthcheck fields are dropped where they equal the image's.
pub fn minimal_config(container: &ContainerConfig, image: Option<&ImageConfig>) -> ContainerConfig {
    let mut config = container.clone();
    let Some(image) = image else {
        return config;
    };
    config.env = subtract(&config.env, &image.env);
    config.volumes = subtract(&config.volumes, &image.volumes);
    config.exposed_ports = subtract(&config.exposed_ports, &image.exposed_ports);
    if let Some(labels) = &mut config.labels {
        if let Some(image_labels) = &image.labels {
            labels.retain(|k, v| image_labels.get(k) != Some(v));
        }
        if labels.is_empty() {
            config.labels = None;
        }
    }
    if same_str(&config.working_dir, &image.working_dir) {
        config.working_dir = None;
    }
    if same_str(&config.user, &image.user) {
        config.user = None;
    }
    // Setting an entrypoint resets the image's command, so Cmd goes only with it.
    if same_list(&config.entrypoint, &image.entrypoint) {
        config.entrypoint = None;
        if same_list(&config.cmd, &image.cmd) {
            config.cmd = None;
        }
    }
    if let (Some(mine), Some(theirs)) = (&config.healthcheck, &image.healthcheck) {
        config.healthcheck = minimal_healthcheck(mine, theirs);
    }
    config
}

fn minimal_healthcheck(mine: &HealthConfig, theirs: &HealthConfig) -> Option<HealthConfig> {
    fn keep<T: PartialEq + Clone>(mine: &Option<T>, theirs: &Option<T>) -> Option<T> {
        if mine == theirs { None } else { mine.clone() }
    }
    let minimal = HealthConfig {
        test: keep(&mine.test, &theirs.test),
        interval: keep(&mine.interval, &theirs.interval),
        timeout: keep(&mine.timeout, &theirs.timeout),
        retries: keep(&mine.retries, &theirs.retries),
        start_period: keep(&mine.start_period, &theirs.start_period),
        start_interval: keep(&mine.start_interval, &theirs.start_interval),
    };
    (minimal != HealthConfig::default()).then_some(minimal)
}

fn subtract(mine: &Option<Vec<String>>, theirs: &Option<Vec<String>>) -> Option<Vec<String>> {
    let theirs = theirs.as_deref().unwrap_or_default();
    let left: Vec<String> = mine
        .iter()
        .flatten()
        .filter(|v| !theirs.contains(v))
        .cloned()
        .collect();
    non_empty(left)
}

fn non_empty(values: Vec<String>) -> Option<Vec<String>> {
    (!values.is_empty()).then_some(values)
}

fn same_str(a: &Option<String>, b: &Option<String>) -> bool {
    a.as_deref().unwrap_or_default() == b.as_deref().unwrap_or_default()
}

fn same_list(a: &Option<Vec<String>>, b: &Option<Vec<String>>) -> bool {
    a.as_deref().unwrap_or_default() == b.as_deref().unwrap_or_default()
}

/// Whether `lkg` is a different container from `current`: another image id,
/// or another create config (Config, HostConfig, networks). What Docker makes
/// up per container is ignored: the image reference (`app:1` and its id are
/// the same image), a generated hostname, the short-id network alias.
pub fn spec_differs(current: &ContainerSpec, lkg: &ContainerSpec) -> bool {
    fn comparable(
        spec: &ContainerSpec,
    ) -> (ContainerConfig, &HostConfig, Vec<(&str, EndpointSettings)>) {
        let mut config = spec.config.clone();
        config.image = None;
        if config.hostname.as_deref().is_some_and(is_generated_id) {
            config.hostname = None; // a spec recorded before hostnames were cleaned
        }
        let mut networks: Vec<_> = spec
            .networks
            .iter()
            .map(|(name, endpoint)| {
                let mut endpoint = clean_endpoint(endpoint);
                if let Some(aliases) = &mut endpoint.aliases {
                    aliases.retain(|a| !is_generated_id(a));
                }
                endpoint.aliases = endpoint.aliases.filter(|a| !a.is_empty());
                (name.as_str(), endpoint)
            })
            .collect();
        networks.sort_by(|a, b| a.0.cmp(b.0));
        (config, &spec.host_config, networks)
    }
    current.image_id != lkg.image_id || comparable(current) != comparable(lkg)
}

/// Looks like a short container id (12 lowercase hex digits).
fn is_generated_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_with_a_wide_character_at_the_short_ids_end_is_read() {
        // Found by the docker_inspect fuzz target: the short id cut a character in two.
        let inspect: ContainerInspectResponse = serde_json::from_str(
            r#"{"Id":"2782380943aם510292b28b4c8d4cb9acd8031d22d314010e391f19be30493b0","Config":{"Hostname":"2782380943a"}}"#,
        )
        .unwrap();
        let spec = ContainerSpec::from_inspect(inspect, None, None);
        assert_eq!(spec.config.hostname.as_deref(), Some("2782380943a"));
    }

    fn strings(values: &[&str]) -> Option<Vec<String>> {
        Some(values.iter().map(|s| (*s).to_owned()).collect())
    }

    fn endpoint(aliases: &[&str]) -> EndpointSettings {
        EndpointSettings {
            aliases: strings(aliases),
            ip_address: Some("172.18.0.5".into()),
            mac_address: Some("02:42:ac:12:00:05".into()),
            endpoint_id: Some("e1".into()),
            ..Default::default()
        }
    }

    fn spec(image_id: &str, env: &[&str], mode: &str) -> ContainerSpec {
        ContainerSpec {
            name: "web".into(),
            image_id: image_id.into(),
            image: "app:1".into(),
            config: ContainerConfig {
                env: strings(env),
                cmd: strings(&["httpd"]),
                hostname: Some("web-host".into()),
                image: Some("app:1".into()),
                ..Default::default()
            },
            host_config: HostConfig {
                network_mode: Some(mode.into()),
                ..Default::default()
            },
            networks: HashMap::from([
                ("front".into(), endpoint(&["web"])),
                ("back".into(), endpoint(&[])),
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
        let container = ContainerConfig {
            env: strings(&["PATH=/bin", "PORT=8080"]),
            cmd: strings(&["httpd"]),
            entrypoint: strings(&[]),
            working_dir: Some(String::new()),
            user: Some("app".into()),
            labels: Some(HashMap::from([
                ("from-image".to_owned(), "1".to_owned()),
                ("mine".to_owned(), "2".to_owned()),
            ])),
            exposed_ports: strings(&["80/tcp", "9000/tcp"]),
            volumes: strings(&["/data"]),
            healthcheck: Some(HealthConfig {
                test: strings(&["CMD", "true"]),
                interval: Some(5_000_000_000),
                ..Default::default()
            }),
            ..Default::default()
        };
        let image = ImageConfig {
            env: strings(&["PATH=/bin"]),
            cmd: strings(&["httpd"]),
            labels: Some(HashMap::from([("from-image".to_owned(), "1".to_owned())])),
            exposed_ports: strings(&["80/tcp"]),
            volumes: strings(&["/data"]),
            healthcheck: Some(HealthConfig {
                test: strings(&["CMD", "true"]),
                interval: Some(30_000_000_000),
                ..Default::default()
            }),
            ..Default::default()
        };
        let config = minimal_config(&container, Some(&image));
        assert_eq!(config.env, strings(&["PORT=8080"]));
        assert_eq!(
            (config.cmd, config.entrypoint),
            (None, None),
            "the image's own command is left to it"
        );
        assert_eq!(config.working_dir, None, "empty and unset are the same");
        assert_eq!(config.user.as_deref(), Some("app"));
        assert_eq!(
            config.labels,
            Some(HashMap::from([("mine".to_owned(), "2".to_owned())]))
        );
        assert_eq!(config.exposed_ports, strings(&["9000/tcp"]));
        assert_eq!(config.volumes, None);
        let health = config.healthcheck.unwrap();
        assert_eq!((health.test, health.interval), (None, Some(5_000_000_000)));

        assert_eq!(
            minimal_config(&container, None),
            container,
            "no image config: all of it"
        );
    }

    #[test]
    fn a_new_entrypoint_keeps_the_command() {
        let container = ContainerConfig {
            entrypoint: strings(&["/bin/sh", "-c"]),
            cmd: strings(&["httpd"]),
            ..Default::default()
        };
        let image = ImageConfig {
            cmd: strings(&["httpd"]),
            ..Default::default()
        };
        let config = minimal_config(&container, Some(&image));
        assert_eq!(config.entrypoint, strings(&["/bin/sh", "-c"]));
        assert_eq!(config.cmd, strings(&["httpd"]));
    }

    #[test]
    fn creates_on_its_network_and_connects_the_rest() {
        let (body, rest) = spec("sha256:1", &[], "front").create_body();
        let first = body.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(first.keys().collect::<Vec<_>>(), ["front"]);
        assert_eq!(
            first["front"],
            EndpointSettings {
                aliases: strings(&["web"]),
                ..Default::default()
            },
            "what Docker assigned per run is dropped"
        );
        assert_eq!(
            rest.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["back"]
        );
        assert_eq!(body.image.as_deref(), Some("sha256:1"));
        assert_eq!(body.hostname.as_deref(), Some("web-host"));
    }

    #[test]
    fn the_default_bridge_is_not_named() {
        let mut spec = spec("sha256:1", &[], "default");
        spec.networks = HashMap::from([("bridge".into(), EndpointSettings::default())]);
        let (body, rest) = spec.create_body();
        assert!(body.networking_config.is_none() && rest.is_empty());
    }

    #[test]
    fn a_shared_namespace_gets_no_hostname_ports_or_networks() {
        let mut spec = spec("sha256:1", &[], "container:db");
        spec.config.exposed_ports = strings(&["80/tcp"]);
        assert_eq!(spec.network_parent(), Some("db"));
        let (body, rest) = spec.create_body();
        assert_eq!((body.hostname, body.exposed_ports), (None, None));
        assert!(body.networking_config.is_none() && rest.is_empty());
        let (host, rest) = self::spec("sha256:1", &[], "host").create_body();
        assert!(host.networking_config.is_none() && rest.is_empty());
        assert_eq!(self::spec("sha256:1", &[], "host").network_parent(), None);
    }

    #[test]
    fn published_ports_are_exposed_and_links_rewritten() {
        let mut spec = spec("sha256:1", &[], "host");
        spec.host_config.port_bindings = Some(HashMap::from([("8080/tcp".to_owned(), None)]));
        spec.host_config.links = strings(&["/db:/web/db", "/cache:/web/kv"]);
        let (body, _) = spec.create_body();
        assert_eq!(body.exposed_ports, strings(&["8080/tcp"]));
        assert_eq!(
            body.host_config.unwrap().links,
            strings(&["db:db", "cache:kv"])
        );
        assert_eq!(canonical_link("db"), "db");
    }

    #[test]
    fn podman_ulimit_names_are_created_in_dockers_words() {
        let mut spec = spec("sha256:1", &[], "host");
        let ulimit = |name: &str| bollard::models::ResourcesUlimits {
            name: Some(name.into()),
            soft: Some(1024),
            hard: Some(1024),
        };
        spec.host_config.ulimits = Some(vec![
            ulimit("RLIMIT_NOFILE"),
            ulimit("nproc"),
            ulimit("rlimit_as"),
        ]);
        let (body, _) = spec.create_body();
        let names: Vec<_> = body
            .host_config
            .unwrap()
            .ulimits
            .unwrap()
            .into_iter()
            .map(|u| u.name.unwrap())
            .collect();
        assert_eq!(names, ["nofile", "nproc", "as"]);
    }

    #[test]
    fn captures_without_what_docker_made_up() {
        let id = "0123456789ab0000000000000000000000000000000000000000000000000000";
        let inspect: ContainerInspectResponse = serde_json::from_value(serde_json::json!({
            "Id": id, "Name": "/web", "Image": "sha256:1",
            "Config": {"Hostname": "0123456789ab", "Image": "app:1", "Env": ["A=1"]},
            "HostConfig": {"NetworkMode": "container:fedcba9876543210"},
            "NetworkSettings": {"Networks": {"front": {"Aliases": ["web", "0123456789ab"]}}}
        }))
        .unwrap();
        let spec = ContainerSpec::from_inspect(inspect, None, Some("db"));
        assert_eq!(
            (spec.name.as_str(), spec.image.as_str(), spec.image_id()),
            ("web", "app:1", "sha256:1")
        );
        assert_eq!(spec.config.hostname, None);
        assert_eq!(spec.network_parent(), Some("db"));
        assert_eq!(spec.networks["front"].aliases, strings(&["web"]));
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(serde_json::from_value::<ContainerSpec>(json).unwrap(), spec);
    }

    #[test]
    fn differs_on_image_or_config_only() {
        let a = spec("sha256:1", &["A=1"], "host");
        assert!(!spec_differs(&a, &a.clone()));
        assert!(spec_differs(&a, &spec("sha256:2", &["A=1"], "host")));
        assert!(spec_differs(&a, &spec("sha256:1", &["A=2"], "host")));
        assert!(spec_differs(&a, &spec("sha256:1", &["A=1"], "none")));
        let mut binds = a.clone();
        binds.host_config.binds = strings(&["/srv:/data"]);
        assert!(spec_differs(&a, &binds));

        let mut same = a.clone();
        same.config.image = Some("sha256:1".into());
        same.networks.get_mut("front").unwrap().ip_address = Some("172.18.0.9".into());
        same.networks.get_mut("front").unwrap().aliases = strings(&["web", "abcdef012345"]);
        assert!(
            !spec_differs(&a, &same),
            "what Docker assigns per run does not count"
        );
    }
}
