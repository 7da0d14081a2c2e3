//! `medic doctor`: checks the host and the config for what would break before
//! it bites. Each finding has a severity and, unless all is well, a concrete
//! fix. Nothing here acts: no restart, no alert, no traffic beyond asking the
//! engine and launchctl what exists, DNS look-ups and binding the metrics
//! address for a moment.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use medic_core::config::{
    Config, ContainerSelector, LabelSelector, LaunchAgentTarget, OnStop, ProbeKind, Secret,
    Service, SinkKind, Target,
};
use medic_daemon::docker::Docker;

mod findings;
mod records;
mod unit;

use findings::Findings;
pub use findings::{Finding, Severity};
use records::check_records;
use unit::{InstalledUnit, check_hardening, commands, resolve};

/// Where doctor looks for what is installed on the host.
#[derive(Debug, Clone)]
pub struct Host {
    /// Prefix for the host's files (unit, drop-ins, polkit rules); `/` normally.
    pub root: PathBuf,
}

/// The minimum Docker API version medic speaks (Docker 20.10 and Podman 4 offer 1.41).
const MIN_API: (u32, u32) = (1, 41);
/// Below this much free space in `state_dir` doctor warns; below a tenth of it, an error.
const LOW_SPACE: u64 = 100 * 1024 * 1024;

/// Every check, in the order a person reads them: host, then each service, then alert sinks.
pub async fn diagnose(config: &Config, host: &Host) -> Vec<Finding> {
    let mut out = Findings::default();
    let unit = InstalledUnit::read(&host.root);
    check_engine(config, &mut out).await;
    check_launchctl(config, &mut out);
    check_state_dir(config, unit.as_ref(), &mut out);
    check_records(config, &mut out);
    check_control_dir(config, unit.as_ref(), &mut out);
    check_metrics(config, &mut out);
    check_exposure(config, &mut out);
    check_installed(host, unit.as_ref(), &mut out);
    let docker = Docker::for_config(config).ok().flatten();
    for service in &config.services {
        check_target(service, docker.as_ref(), &mut out).await;
        check_probes(service, &mut out).await;
        if let (Some(unit), Some(Target::Command(command))) = (&unit, &service.target) {
            check_hardening(&service.name, command, unit, &host.root, &mut out);
        }
    }
    check_sinks(config, &mut out).await;
    out.0
}

async fn check_engine(config: &Config, out: &mut Findings) {
    let docker = match Docker::for_config(config) {
        Ok(Some(docker)) => docker,
        Ok(None) => return,
        Err(error) => {
            out.error(
                "engine",
                None,
                format!("{error:#}"),
                "set [medic] docker_host (or DOCKER_HOST) to unix:///path or tcp://host:port",
            );
            return;
        }
    };
    match docker.engine().await {
        Ok(engine) if api_at_least(&engine.api_version, MIN_API) => {
            out.ok("engine", None, engine.to_string());
        }
        Ok(engine) => out.error(
            "engine",
            None,
            format!(
                "{engine}: API {} is older than {}.{}",
                engine.api_version, MIN_API.0, MIN_API.1
            ),
            "upgrade the engine (Docker 20.10 or Podman 4 and later)",
        ),
        Err(error) => {
            // The socket itself says why: refused to this user, or not there.
            let socket = docker.endpoint();
            let refused = socket.strip_prefix("unix://").is_some_and(|path| {
                std::os::unix::net::UnixStream::connect(path)
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
            });
            if refused {
                out.error(
                    "engine",
                    None,
                    format!("{socket}: permission denied to this user"),
                    "give medic's user the socket's group: `usermod -aG docker medic && systemctl restart medic` (Podman: `SocketGroup=medic` in a podman.socket drop-in; docs/running.md, \"The engine's socket\")",
                );
            } else {
                out.error(
                    "engine",
                    None,
                    error,
                    "start the engine (`systemctl start docker` or `systemctl start podman.socket`), or point [medic] docker_host at its socket",
                );
            }
        }
    }
}

/// `1.41` ≥ `(1, 41)`.
fn api_at_least(version: &str, (major, minor): (u32, u32)) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
}

fn check_launchctl(config: &Config, out: &mut Findings) {
    let wanted = config
        .services
        .iter()
        .any(|s| matches!(s.target, Some(Target::LaunchAgent(_))));
    if !wanted {
        return;
    }
    match resolve(medic_launchd::DEFAULT_PROGRAM) {
        Ok(path) => out.ok("launchctl", None, format!("{} is present", path.display())),
        Err(why) => out.error(
            "launchctl",
            None,
            format!("launch_agent targets are configured but launchctl {why}"),
            "launch_agent targets work on macOS only: run medic there, or remove them from this host's config",
        ),
    }
}

fn check_state_dir(config: &Config, unit: Option<&InstalledUnit>, out: &mut Findings) {
    let dir = &config.medic.state_dir;
    let runs_as = unit.and_then(|u| u.user.clone());
    let Ok(meta) = std::fs::metadata(dir) else {
        if unit.is_some_and(|u| u.state_directory && dir == Path::new("/var/lib/medic")) {
            out.ok(
                "state_dir",
                None,
                format!(
                    "{} is created by systemd at start (StateDirectory=medic)",
                    dir.display()
                ),
            );
        } else {
            missing_dir("state_dir", dir, "state_dir", out);
        }
        return;
    };
    if let Some(user) = &runs_as
        && owner_name(meta.uid()).as_deref() != Some(user.as_str())
    {
        out.warn(
            "state_dir",
            None,
            format!(
                "{} is owned by {}, but the unit runs medic as {user}",
                dir.display(),
                owner_label(meta.uid())
            ),
            format!("chown -R {user}:{user} {}", dir.display()),
        );
    } else if let Err(error) = tempfile_in(dir) {
        out.error(
            "state_dir",
            None,
            format!("{} is not writable: {error}", dir.display()),
            format!(
                "give the user medic runs as write access to {}",
                dir.display()
            ),
        );
        return;
    }
    match nix::sys::statvfs::statvfs(dir) {
        Ok(stat) => {
            // u64 on Linux, u32 on macOS.
            #[allow(clippy::unnecessary_cast)]
            let free = (stat.blocks_available() as u64).saturating_mul(stat.fragment_size() as u64);
            let text = format!("{} is writable, {} free", dir.display(), mib(free));
            if free < LOW_SPACE / 10 {
                out.error("state_dir", None, text, "free space on that file system: medic degrades, but stops recording, when it is full");
            } else if free < LOW_SPACE {
                out.warn(
                    "state_dir",
                    None,
                    text,
                    "free space on that file system (or move state_dir)",
                );
            } else {
                out.ok("state_dir", None, text);
            }
        }
        Err(error) => out.warn(
            "state_dir",
            None,
            format!("cannot read free space of {}: {error}", dir.display()),
            "check the file system",
        ),
    }
}

/// A directory medic creates at start: fine when its nearest existing
/// ancestor is writable (by whoever runs doctor), else an error.
fn missing_dir(check: &'static str, dir: &Path, key: &str, out: &mut Findings) {
    let ancestor = dir.ancestors().skip(1).find(|a| a.is_dir());
    let writable =
        ancestor.is_some_and(|a| nix::unistd::access(a, nix::unistd::AccessFlags::W_OK).is_ok());
    match ancestor {
        Some(_) if writable => out.ok(
            check,
            None,
            format!(
                "{} does not exist yet; medic creates it at start",
                dir.display()
            ),
        ),
        _ => out.error(
            check,
            None,
            format!(
                "{} does not exist and {} is not writable: medic cannot create it",
                dir.display(),
                ancestor.map_or_else(|| "no parent".to_owned(), |a| a.display().to_string())
            ),
            format!(
                "mkdir -p {} owned by the user medic runs as, or set [medic] {key}",
                dir.display()
            ),
        ),
    }
}

/// Creates and removes a file in `dir`.
fn tempfile_in(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(format!(".medic-doctor-{}", std::process::id()));
    std::fs::write(&path, b"")?;
    std::fs::remove_file(&path)
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes / (1024 * 1024))
}

fn owner_name(uid: u32) -> Option<String> {
    medic_daemon::accounts::user_by_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
}

fn owner_label(uid: u32) -> String {
    owner_name(uid).unwrap_or_else(|| format!("uid {uid}"))
}

fn check_control_dir(config: &Config, unit: Option<&InstalledUnit>, out: &mut Findings) {
    let Some(dir) = config.medic.control_socket.parent() else {
        return;
    };
    let runs_as = unit
        .and_then(|u| u.user.clone())
        .or_else(|| owner_name(nix::unistd::geteuid().as_raw()));
    match std::fs::metadata(dir) {
        Ok(meta) => {
            let owner = owner_label(meta.uid());
            match &runs_as {
                Some(user) if *user != owner => out.warn(
                    "control_socket",
                    None,
                    format!(
                        "{} is owned by {owner}, but medic runs as {user}",
                        dir.display()
                    ),
                    format!("chown {user} {}", dir.display()),
                ),
                _ => out.ok(
                    "control_socket",
                    None,
                    format!("{} exists, owned by {owner}", dir.display()),
                ),
            }
        }
        Err(_) if unit.is_some_and(|u| u.runtime_directory) && dir == Path::new("/run/medic") => {
            out.ok(
                "control_socket",
                None,
                format!(
                    "{} is created by systemd at start (RuntimeDirectory=medic)",
                    dir.display()
                ),
            );
        }
        Err(_) => missing_dir("control_socket", dir, "control_socket", out),
    }
}

fn check_metrics(config: &Config, out: &mut Findings) {
    let Some(address) = &config.medic.metrics_listen else {
        return;
    };
    match std::net::TcpListener::bind(address) {
        Ok(_) => out.ok("metrics", None, format!("{address} is free")),
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            if std::os::unix::net::UnixStream::connect(&config.medic.control_socket).is_ok() {
                out.ok(
                    "metrics",
                    None,
                    format!("{address} is in use by the running medic"),
                );
            } else {
                out.error("metrics", None, format!("{address} is in use by another process"), "stop it, or set [medic] metrics_listen to a free address (`ss -ltnp` shows who listens)");
            }
        }
        Err(error) => out.error(
            "metrics",
            None,
            format!("cannot bind {address}: {error}"),
            "set [medic] metrics_listen to an address of this host",
        ),
    }
}

/// Listeners open to other hosts without a password, or control without TLS.
fn check_exposure(config: &Config, out: &mut Findings) {
    match medic_daemon::web::exposure_warnings(&config.medic) {
        Ok(warnings) => {
            for warning in warnings {
                out.warn("exposure", None, warning.problem, warning.fix);
            }
        }
        Err(error) => out.error(
            "exposure",
            None,
            format!("{error:#}"),
            "fix [medic] web_config (`medic config check` names the problem)",
        ),
    }
}

fn check_installed(host: &Host, unit: Option<&InstalledUnit>, out: &mut Findings) {
    if cfg!(target_os = "macos") {
        let plist = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join("Library/LaunchAgents/com.medic.agent.plist"));
        match plist {
            Some(path) if path.is_file() => {
                out.ok("installed", None, format!("LaunchAgent {}", path.display()))
            }
            _ => out.warn(
                "installed",
                None,
                "medic is not installed as a LaunchAgent",
                "medic install launchd (prints how to load it)",
            ),
        }
        return;
    }
    let Some(unit) = unit else {
        out.warn(
            "installed",
            None,
            "medic.service is not installed",
            "install the .deb, or `medic install systemd` (prints how to enable it)",
        );
        return;
    };
    let running = host.root == Path::new("/") && Path::new("/run/systemd/system").is_dir();
    if !running {
        out.ok(
            "installed",
            None,
            format!(
                "{} (systemd is not running here: enabled or not cannot be told)",
                unit.path.display()
            ),
        );
        return;
    }
    let state = std::process::Command::new("systemctl")
        .args(["is-enabled", "medic"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    if state == "enabled" {
        out.ok(
            "installed",
            None,
            format!("{} is enabled", unit.path.display()),
        );
    } else {
        out.warn(
            "installed",
            None,
            format!(
                "{} is installed but {}",
                unit.path.display(),
                if state.is_empty() {
                    "its state is unknown"
                } else {
                    &state
                }
            ),
            "systemctl enable --now medic",
        );
    }
}

async fn check_target(service: &Service, docker: Option<&Docker>, out: &mut Findings) {
    let name = Some(service.name.as_str());
    match &service.target {
        None => {}
        Some(Target::Container(target)) => {
            let Some(docker) = docker else { return };
            let found = match docker.states(&target.selector).await {
                Ok(found) => found,
                Err(error) => {
                    out.warn(
                        "target",
                        name,
                        format!("cannot ask the engine: {error:#}"),
                        "see the engine finding above",
                    );
                    return;
                }
            };
            match &target.selector {
                ContainerSelector::Name(wanted) => match found.iter().find(|(n, _)| n == wanted) {
                    None => out.error("target", name, format!("container {wanted} does not exist"), format!("create it (`docker run --name {wanted} …` or `docker compose up -d`), or fix the name; medic recreates only containers whose spec it recorded")),
                    Some((_, state)) if state == "running" => out.ok("target", name, format!("container {wanted} is running")),
                    Some((_, state)) => {
                        let then = match target.on_stop {
                            OnStop::Restore => "medic will start it",
                            OnStop::Leave => "medic leaves it (on_stop = \"leave\")",
                        };
                        out.warn("target", name, format!("container {wanted} exists but is {state}: {then}"), format!("docker start {wanted}"));
                    }
                },
                _ => {
                    if found.is_empty() {
                        out.warn("target", name, "the selector matches no container", "check the labels (`docker ps -a --filter label=…`); medic watches what appears");
                    } else {
                        let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
                        out.ok("target", name, format!("the selector matches {}: {}", found.len(), names.join(", ")));
                    }
                }
            }
        }
        Some(Target::LaunchAgent(target)) => check_launch_agent(&service.name, target, out),
        Some(Target::Command(command)) => {
            for (what, argv) in commands(command) {
                let program = argv.first().map_or("", String::as_str);
                match resolve(program) {
                    Ok(path) => out.ok(
                        "target",
                        name,
                        format!("{what} command {} is executable", path.display()),
                    ),
                    Err(why) => out.error(
                        "target",
                        name,
                        format!("{what} command `{program}` {why}"),
                        "install it, or give its absolute path in the config",
                    ),
                }
            }
        }
    }
}

fn check_launch_agent(service: &str, target: &LaunchAgentTarget, out: &mut Findings) {
    let name = Some(service);
    let LabelSelector::Label(label) = &target.selector else {
        return;
    };
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let Some(plist) =
        medic_launchd::plist::find(label, target.plist.as_deref(), None, home.as_deref())
            .filter(|p| p.is_file())
    else {
        out.error("target", name, format!("no plist for {label} ({})", target.plist.as_ref().map_or_else(|| "not in the LaunchAgents folders".to_owned(), |p| format!("{} is missing", p.display()))), format!("write ~/Library/LaunchAgents/{label}.plist, or set launch_agent.plist to where it is"));
        return;
    };
    let program = medic_launchd::plist::read(&plist).ok().and_then(|value| {
        let dict = value.as_dictionary()?;
        dict.get("Program")
            .and_then(|p| p.as_string())
            .or_else(|| {
                dict.get("ProgramArguments")?
                    .as_array()?
                    .first()?
                    .as_string()
            })
            .map(str::to_owned)
    });
    match program {
        None => out.error(
            "target",
            name,
            format!(
                "{} has neither Program nor ProgramArguments",
                plist.display()
            ),
            "add ProgramArguments (the program and its arguments) to the plist",
        ),
        Some(program) => match resolve(&program) {
            Ok(path) => out.ok(
                "target",
                name,
                format!(
                    "{} runs {}, which is executable",
                    plist.display(),
                    path.display()
                ),
            ),
            Err(why) => out.error(
                "target",
                name,
                format!("{} runs `{program}`, which {why}", plist.display()),
                "fix Program / ProgramArguments[0] in the plist, or install the program",
            ),
        },
    }
}

async fn check_probes(service: &Service, out: &mut Findings) {
    let name = Some(service.name.as_str());
    let only_container = matches!(service.target, Some(Target::Container(_)))
        && service
            .probes
            .iter()
            .all(|p| matches!(p.kind, ProbeKind::Container));
    if only_container {
        out.warn(
            "probe",
            name,
            "only the implied container probe: a running but wedged app looks healthy",
            "add an http (or tcp) probe of what the container serves",
        );
    }
    for probe in &service.probes {
        match &probe.kind {
            ProbeKind::Http(http) => check_url("probe", name, &http.url, out).await,
            ProbeKind::Tcp(tcp) => match split_host_port(&tcp.address) {
                Some((host, port)) => {
                    check_host("probe", name, &tcp.address, host, port, out).await
                }
                None => out.error(
                    "probe",
                    name,
                    format!("tcp address {} is not host:port", tcp.address),
                    "write it as 127.0.0.1:8080 or [::1]:8080",
                ),
            },
            ProbeKind::Exec(exec) => {
                let program = exec.argv.first().map_or("", String::as_str);
                match resolve(program) {
                    Ok(path) => out.ok(
                        "probe",
                        name,
                        format!("exec {} is executable", path.display()),
                    ),
                    Err(why) => out.error(
                        "probe",
                        name,
                        format!("exec `{program}` {why}"),
                        "install it, or give its absolute path",
                    ),
                }
            }
            ProbeKind::Container | ProbeKind::LaunchAgent => {}
        }
    }
}

/// `host:port` or `[v6]:port`.
fn split_host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some((host, port.parse().ok()?)).filter(|(h, _)| !h.is_empty())
}

async fn check_url(check: &'static str, service: Option<&str>, url: &str, out: &mut Findings) {
    match reqwest::Url::parse(url) {
        Ok(parsed) => match (parsed.host_str(), parsed.port_or_known_default()) {
            (Some(host), Some(port)) => {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                check_host(check, service, url, host, port, out).await;
            }
            _ => out.error(
                check,
                service,
                format!("{url} has no host"),
                "write a full URL such as http://127.0.0.1:8080/health",
            ),
        },
        Err(error) => out.error(
            check,
            service,
            format!("{url} does not parse: {error}"),
            "write a full URL such as http://127.0.0.1:8080/health",
        ),
    }
}

/// The host resolves (a DNS look-up; nothing is sent to it).
async fn check_host(
    check: &'static str,
    service: Option<&str>,
    what: &str,
    host: &str,
    port: u16,
    out: &mut Findings,
) {
    match tokio::net::lookup_host((host, port))
        .await
        .map(|a| a.count())
    {
        Ok(1..) => out.ok(check, service, format!("{what}: {host} resolves")),
        Ok(0) => out.error(
            check,
            service,
            format!("{what}: {host} resolves to no address"),
            "fix the host name, or add it to DNS or /etc/hosts",
        ),
        Err(error) => out.error(
            check,
            service,
            format!("{what}: {host} does not resolve: {error}"),
            "fix the host name, or add it to DNS or /etc/hosts",
        ),
    }
}

async fn check_sinks(config: &Config, out: &mut Findings) {
    for sink in &config.alerts {
        let check = "alert";
        let subject = format!("{} sink {}", sink.kind.as_str(), sink.name);
        match &sink.kind {
            SinkKind::Webhook { url, .. } | SinkKind::Slack { url, .. } => {
                check_sink_urls(&subject, std::slice::from_ref(url), out).await;
            }
            SinkKind::Alertmanager { urls, .. } => check_sink_urls(&subject, urls, out).await,
            SinkKind::Exec { command } => {
                let program = command.first().map_or("", |c| c.expose());
                match resolve(program) {
                    Ok(path) => out.ok(
                        check,
                        None,
                        format!("{subject}: {} is executable", path.display()),
                    ),
                    Err(why) => out.error(
                        check,
                        None,
                        format!("{subject}: `{program}` {why}"),
                        "install it, or give its absolute path",
                    ),
                }
            }
        }
    }
}

/// A sink's URLs parse and their hosts resolve. A URL may hold a secret (a
/// Slack token): findings name the sink, never the URL.
async fn check_sink_urls(subject: &str, urls: &[Secret], out: &mut Findings) {
    for url in urls {
        let mut found = Findings::default();
        check_url("alert", None, url.expose(), &mut found).await;
        for mut finding in found.0 {
            finding.message = match finding.severity {
                Severity::Ok => format!(
                    "{subject}: its host resolves (no alert sent; `medic alert test` sends one)"
                ),
                _ => format!(
                    "{subject}: its URL {}",
                    finding
                        .message
                        .split_once(": ")
                        .map_or("is invalid", |(_, why)| why)
                ),
            };
            out.0.push(finding);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_compare_as_numbers() {
        assert!(api_at_least("1.41", (1, 41)));
        assert!(api_at_least("1.43", (1, 41)));
        assert!(!api_at_least("1.40", (1, 41)));
        assert!(!api_at_least("garbage", (1, 41)));
    }

    #[test]
    fn addresses_split_into_host_and_port() {
        assert_eq!(split_host_port("127.0.0.1:80"), Some(("127.0.0.1", 80)));
        assert_eq!(split_host_port("[::1]:8080"), Some(("::1", 8080)));
        assert_eq!(split_host_port("localhost"), None);
        assert_eq!(split_host_port(":80"), None);
    }
}
