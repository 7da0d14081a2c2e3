//! `[medic]`: the daemon's own settings, validated, with their defaults.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::error::Errors;
use super::model::*;
use super::raw::{Dur, RawSettings};
use crate::storm::StormRule;

pub(super) fn build_settings(raw: RawSettings, errors: &mut Errors) -> Settings {
    let max_concurrent_actions = at_least_one(
        raw.max_concurrent_actions,
        "max_concurrent_actions",
        4,
        errors,
    );
    let max_concurrent_probes = at_least_one(
        raw.max_concurrent_probes,
        "max_concurrent_probes",
        256,
        errors,
    );
    let state_dir = PathBuf::from(raw.state_dir.unwrap_or_else(|| "/var/lib/medic".into()));
    let mode = match raw.control_socket_mode {
        Some(mode) => match u32::from_str_radix(mode.get_ref(), 8) {
            Ok(bits) if bits <= 0o777 => bits,
            _ => {
                errors.at(
                    mode.span(),
                    "`control_socket_mode` must be octal permission bits",
                    Some("for example \"0600\" or \"0660\"".into()),
                );
                0o600
            }
        },
        None => 0o600,
    };
    let control_tcp = match (raw.control_listen, raw.control_token_file) {
        (Some(listen), Some(token_file)) => Some(TcpControl {
            listen: listen.into_inner(),
            token_file: PathBuf::from(token_file),
        }),
        (Some(listen), None) => {
            errors.at(
                listen.span(),
                "`control_listen` needs `control_token_file`",
                Some("TCP control always requires a bearer token: put one in a file only medic can read".into()),
            );
            None
        }
        (None, _) => None,
    };
    Settings {
        control_access: SocketAccess {
            mode,
            owner: raw.control_socket_owner,
            group: raw.control_socket_group,
        },
        control_tcp,
        recovery_log: raw
            .recovery_log
            .map_or_else(|| state_dir.join("recovery.jsonl"), PathBuf::from),
        alerts_file: raw
            .alerts_file
            .map_or_else(|| state_dir.join("alerts/critical.jsonl"), PathBuf::from),
        control_socket: PathBuf::from(
            raw.control_socket
                .unwrap_or_else(|| "/run/medic/control.sock".into()),
        ),
        metrics_listen: match raw.metrics_listen {
            Some(listen) if listen.is_empty() => None,
            Some(listen) => Some(listen),
            None => Some("127.0.0.1:9464".into()),
        },
        web_config: raw.web_config.map(PathBuf::from),
        status_listen: match raw.status_listen {
            None => StatusListen::WithMetrics,
            Some(listen) if listen.is_empty() => StatusListen::Off,
            Some(listen) => StatusListen::Own(listen),
        },
        external_url: raw.external_url.and_then(|url| {
            let text = url.get_ref();
            if text.starts_with("http://") || text.starts_with("https://") {
                Some(text.trim_end_matches('/').to_owned())
            } else {
                errors.at(
                    url.span(),
                    "`external_url` must start with http:// or https://",
                    Some("the address people open the status page at, e.g. \"https://host1.example:9464\"".into()),
                );
                None
            }
        }),
        docker_host: raw.docker_host,
        reconcile_interval: Dur::or(raw.reconcile_interval, Duration::from_secs(10)),
        shutdown_grace: Dur::or(raw.shutdown_grace, Duration::from_secs(4)),
        blind_alert_after: Dur::or(raw.blind_alert_after, Duration::from_secs(300)),
        max_concurrent_actions,
        max_concurrent_probes,
        journal_max_size: match raw.journal_max_size {
            Some(size) => parse_size(size.get_ref()).unwrap_or_else(|| {
                errors.at(
                    size.span(),
                    "`journal_max_size` must be a size of at least 1KiB",
                    Some("for example \"64MiB\", \"500KB\" or \"1GiB\"".into()),
                );
                DEFAULT_JOURNAL_MAX_SIZE
            }),
            None => DEFAULT_JOURNAL_MAX_SIZE,
        },
        journal_keep: at_least_one(raw.journal_keep, "journal_keep", 5, errors),
        storm: StormRule {
            share: match raw.storm_share {
                Some(share) if !(*share.get_ref() > 0.0 && *share.get_ref() <= 1.0) => {
                    errors.at(
                        share.span(),
                        "`storm_share` must be a share of the services above 0 and at most 1",
                        Some("for example 0.2: a fifth of the services".into()),
                    );
                    StormRule::DEFAULT.share
                }
                Some(share) => *share.get_ref(),
                None => StormRule::DEFAULT.share,
            },
            window: Dur::or(raw.storm_window, StormRule::DEFAULT.window),
        },
        state_dir,
    }
}

/// Journals rotate past 64 MiB by default: with 5 kept, at most 384 MiB each.
pub(super) const DEFAULT_JOURNAL_MAX_SIZE: u64 = 64 * 1024 * 1024;

/// "64MiB", "500KB", "1GiB", "4096" (bytes) → bytes; at least 1 KiB.
pub(super) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "KiB" => 1024,
        "MB" => 1000 * 1000,
        "MiB" => 1024 * 1024,
        "GB" => 1000 * 1000 * 1000,
        "GiB" => 1024 * 1024 * 1024,
        _ => return None,
    };
    let bytes = digits.parse::<u64>().ok()?.checked_mul(factor)?;
    (bytes >= 1024).then_some(bytes)
}

/// A count that must be at least 1, or `default` when unset.
pub(super) fn at_least_one(
    raw: Option<Spanned<usize>>,
    key: &str,
    default: usize,
    errors: &mut Errors,
) -> usize {
    match raw {
        Some(n) if *n.get_ref() == 0 => {
            errors.at(
                n.span(),
                format!("`{key}` must be at least 1"),
                Some(format!("the default is {default}")),
            );
            default
        }
        Some(n) => *n.get_ref(),
        None => default,
    }
}
