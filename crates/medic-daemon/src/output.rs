//! `medic logs S --output`: where a service's own output is — its container's
//! log, a LaunchAgent's StandardOutPath / StandardErrorPath, or a systemd
//! unit's journal — and reading it.

use std::path::PathBuf;

use anyhow::{Context, bail};
use medic_core::config::{Config, ContainerSelector, LabelSelector, Target, UnitSelector};
use medic_docker::DockerClient;
/// The last lines of a log file (a LaunchAgent's output).
pub use medic_launchd::plist::tail;

/// The last lines of a systemd unit's journal.
pub use crate::systemd::journal_lines;

/// Where a unit writes its output.
pub enum OutputSource {
    /// A container (its id) on this engine.
    Container {
        /// The engine.
        client: DockerClient,
        /// The container.
        id: String,
    },
    /// A launchd job's log files (stderr first when both are set).
    Files(Vec<PathBuf>),
    /// A systemd unit's journal.
    Journal {
        /// The unit (`api.service`).
        unit: String,
        /// A unit of the user's manager.
        user: bool,
    },
}

/// Finds the output of `unit` (`service` or `service/instance`).
pub async fn find(config: &Config, unit: &str) -> anyhow::Result<OutputSource> {
    let (name, instance) = match unit.split_once('/') {
        Some((name, instance)) => (name, Some(instance)),
        None => (unit, None),
    };
    let service = config
        .services
        .iter()
        .find(|s| s.name == name)
        .with_context(|| format!("no service `{name}` in the config"))?;
    match &service.target {
        Some(Target::Container(target)) => {
            let client = match &config.medic.docker_host {
                Some(host) => DockerClient::connect_to(host)?,
                None => DockerClient::connect()?,
            };
            let id = match (&target.selector, instance) {
                (ContainerSelector::Name(container), _) => container.clone(),
                (_, Some(container)) => container.to_owned(),
                (selector, None) => {
                    let found = client.find(&crate::docker::to_selector(selector)).await?;
                    match found.as_slice() {
                        [one] => one.id.clone(),
                        [] => bail!("no container matches `{name}` now"),
                        many => bail!(
                            "`{name}` matches {} containers; name one: {}",
                            many.len(),
                            many.iter()
                                .map(|c| format!("{name}/{}", c.name))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }
                }
            };
            Ok(OutputSource::Container { client, id })
        }
        Some(Target::LaunchAgent(target)) => {
            let label = match (&target.selector, instance) {
                (LabelSelector::Label(label), _) => label.clone(),
                (LabelSelector::Prefix(_), Some(label)) => label.to_owned(),
                (LabelSelector::Prefix(prefix), None) => {
                    bail!("`{name}` watches every job labelled {prefix}…; name one: {name}/<label>")
                }
            };
            let home = std::env::var_os("HOME").map(PathBuf::from);
            let plist =
                medic_launchd::plist::find(&label, target.plist.as_deref(), None, home.as_deref())
                    .with_context(|| {
                        format!(
                            "no plist found for `{label}` (set `plist` in the launch_agent target)"
                        )
                    })?;
            let (stdout, stderr) = medic_launchd::plist::log_paths(&plist);
            let mut files: Vec<PathBuf> = [stderr, stdout].into_iter().flatten().collect();
            files.dedup();
            if files.is_empty() {
                bail!(
                    "`{label}` sets neither StandardOutPath nor StandardErrorPath in {}: launchd sends its output nowhere medic can read",
                    plist.display()
                );
            }
            Ok(OutputSource::Files(files))
        }
        Some(Target::SystemdUnit(target)) => {
            let unit = match (&target.selector, instance) {
                (UnitSelector::Name(unit), _) => unit.clone(),
                (UnitSelector::Pattern(_), Some(unit)) => unit.to_owned(),
                (UnitSelector::Pattern(pattern), None) => {
                    bail!("`{name}` watches every unit matching {pattern}; name one: {name}/<unit>")
                }
            };
            Ok(OutputSource::Journal {
                unit,
                user: target.user,
            })
        }
        Some(Target::Command(_)) | None => bail!(
            "`{name}` has no container, LaunchAgent or systemd unit target, so medic does not know where its output goes"
        ),
    }
}

/// The new lines of a log window read again: what follows the longest overlap
/// between the end of `seen` and the start of `now` (a container's log polled
/// with a bounded tail).
pub fn new_lines<'a>(seen: &[String], now: &'a [String]) -> &'a [String] {
    let longest = seen.len().min(now.len());
    for overlap in (1..=longest).rev() {
        if seen[seen.len() - overlap..] == now[..overlap] {
            return &now[overlap..];
        }
    }
    now
}

#[cfg(test)]
mod tests {
    use super::new_lines;

    fn lines(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn a_polled_window_yields_only_what_is_new() {
        assert_eq!(new_lines(&lines("a b c"), &lines("b c d e")), lines("d e"));
        assert_eq!(
            new_lines(&lines("a b c"), &lines("a b c")),
            Vec::<String>::new()
        );
        // Nothing in common (more was written than the window holds): all of it.
        assert_eq!(new_lines(&lines("a b"), &lines("x y")), lines("x y"));
    }
}
