//! `[[service.probe]]`: http, tcp, exec, container and launch_agent probes,
//! their timing, and the HTTP rules (methods, headers, expected status).

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::error::Errors;
use super::model::*;
use super::raw::{Dur, RawProbe};

pub(super) const PROBE_KINDS: &str = "http, tcp, exec, container, launch_agent, systemd_unit";

pub(super) fn build_probe(
    spanned: &Spanned<RawProbe>,
    target: &Option<Target>,
    interval: Duration,
    timeout: Option<Duration>,
    errors: &mut Errors,
) -> Option<Probe> {
    let raw = spanned.get_ref();
    let span = spanned.span();
    let interval = Dur::or(raw.interval, interval);
    let timeout = raw
        .timeout
        .map(|t| t.0)
        .or(timeout)
        .unwrap_or_else(|| default_timeout(interval));
    let kind = raw.kind.get_ref().as_str();
    check_timing(
        interval,
        timeout,
        span.clone(),
        &format!("{kind} probe"),
        errors,
    );
    let fields: &[(&str, bool)] = &[
        ("url", raw.url.is_some()),
        ("method", raw.method.is_some()),
        ("headers", raw.headers.is_some()),
        ("expect_status", raw.expect_status.is_some()),
        ("body_contains", raw.body_contains.is_some()),
        ("body_regex", raw.body_regex.is_some()),
        ("json_pointer", raw.json_pointer.is_some()),
        ("json_equals", raw.json_equals.is_some()),
        ("max_latency", raw.max_latency.is_some()),
        ("tls_verify", raw.tls_verify.is_some()),
        ("ca_file", raw.ca_file.is_some()),
        ("follow_redirects", raw.follow_redirects.is_some()),
        ("max_body", raw.max_body.is_some()),
        ("address", raw.address.is_some()),
        ("command", raw.command.is_some()),
        ("expect_exit", raw.expect_exit.is_some()),
        ("max_output", raw.max_output.is_some()),
    ];
    let applies: &[&str] = match kind {
        "http" => &[
            "url",
            "method",
            "headers",
            "expect_status",
            "body_contains",
            "body_regex",
            "json_pointer",
            "json_equals",
            "max_latency",
            "tls_verify",
            "ca_file",
            "follow_redirects",
            "max_body",
        ],
        "tcp" => &["address"],
        "exec" => &["command", "expect_exit", "max_output"],
        "container" | "launch_agent" | "systemd_unit" => &[],
        other => {
            errors.at(
                raw.kind.span(),
                format!("unknown probe kind `{other}`"),
                Some(format!("kinds: {PROBE_KINDS}")),
            );
            return None;
        }
    };
    for (field, set) in fields {
        if *set && !applies.contains(field) {
            errors.at(
                span.clone(),
                format!("`{field}` does not apply to {kind} probes"),
                None,
            );
        }
    }
    let kind = match kind {
        "http" => ProbeKind::Http(Arc::new(build_http(raw, span, errors)?)),
        "tcp" => match &raw.address {
            Some(address)
                if address
                    .get_ref()
                    .rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok()) =>
            {
                ProbeKind::Tcp(TcpProbe {
                    address: address.get_ref().clone(),
                })
            }
            Some(address) => {
                errors.at(
                    address.span(),
                    "`address` must be host:port",
                    Some("e.g. \"127.0.0.1:5432\"".into()),
                );
                return None;
            }
            None => {
                errors.at(
                    span,
                    "a tcp probe needs `address`",
                    Some("e.g. address = \"127.0.0.1:5432\"".into()),
                );
                return None;
            }
        },
        "exec" => match &raw.command {
            Some(argv) if !argv.get_ref().is_empty() => ProbeKind::Exec(ExecProbe {
                argv: argv.get_ref().clone(),
                expect_exit: raw.expect_exit.unwrap_or(0),
                max_output: usize::try_from(raw.max_output.map_or(64 * 1024, |b| b.0))
                    .unwrap_or(usize::MAX),
            }),
            Some(argv) => {
                errors.at(
                    argv.span(),
                    "an exec probe's `command` is empty",
                    Some("write an argv array, e.g. [\"pg_isready\", \"-q\"]".into()),
                );
                return None;
            }
            None => {
                errors.at(
                    span,
                    "an exec probe needs `command`",
                    Some("e.g. command = [\"pg_isready\", \"-q\"]".into()),
                );
                return None;
            }
        },
        "container" => {
            if !matches!(target, Some(Target::Container(_))) {
                errors.at(
                    raw.kind.span(),
                    "a container probe needs a container target",
                    Some("add container = { name = \"…\" }".into()),
                );
            }
            ProbeKind::Container
        }
        "systemd_unit" => {
            if !matches!(target, Some(Target::SystemdUnit(_))) {
                errors.at(
                    raw.kind.span(),
                    "a systemd_unit probe needs a systemd_unit target",
                    Some("add systemd_unit = { name = \"….service\" }".into()),
                );
            }
            ProbeKind::SystemdUnit
        }
        _ => {
            if !matches!(target, Some(Target::LaunchAgent(_))) {
                errors.at(
                    raw.kind.span(),
                    "a launch_agent probe needs a launch_agent target",
                    None,
                );
            }
            ProbeKind::LaunchAgent
        }
    };
    Some(Probe {
        interval,
        timeout,
        kind,
    })
}

/// A probe's timeout when none is written: 2 s, or half the interval when
/// that is shorter, so `interval = "500ms"` alone is valid.
pub(super) fn default_timeout(interval: Duration) -> Duration {
    Duration::from_secs(2).min(interval / 2)
}

/// A probe's timeout must end before its next run starts (a written pair that
/// breaks this is an error).
pub(super) fn check_timing(
    interval: Duration,
    timeout: Duration,
    span: Range<usize>,
    probe: &str,
    errors: &mut Errors,
) {
    if timeout >= interval {
        errors.at(
            span,
            format!(
                "{probe}: timeout ({}) must be shorter than interval ({})",
                humantime::format_duration(timeout),
                humantime::format_duration(interval)
            ),
            Some("set `timeout` below `interval`, on the probe, the service or [defaults]".into()),
        );
    }
}

pub(super) fn build_http(
    raw: &RawProbe,
    span: Range<usize>,
    errors: &mut Errors,
) -> Option<HttpProbe> {
    let Some(url) = &raw.url else {
        errors.at(
            span,
            "an http probe needs `url`",
            Some("e.g. url = \"http://127.0.0.1:8080/health\"".into()),
        );
        return None;
    };
    if !(url.get_ref().starts_with("http://") || url.get_ref().starts_with("https://")) {
        errors.at(
            url.span(),
            "`url` must start with http:// or https://",
            None,
        );
    }
    let body_regex = raw
        .body_regex
        .as_ref()
        .and_then(|r| match regex::Regex::new(r.get_ref()) {
            Ok(regex) => Some(regex),
            Err(e) => {
                errors.at(
                    r.span(),
                    format!(
                        "invalid `body_regex`: {}",
                        e.to_string().lines().last().unwrap_or("")
                    ),
                    None,
                );
                None
            }
        });
    let json_pointer = match (&raw.json_pointer, &raw.json_equals) {
        (Some(pointer), Some(value)) => {
            let p = pointer.get_ref();
            if !(p.is_empty() || p.starts_with('/')) {
                errors.at(
                    pointer.span(),
                    "`json_pointer` must be empty or start with `/`",
                    Some("e.g. \"/status\" or \"/checks/0/ok\" (RFC 6901)".into()),
                );
            } else if p
                .split('~')
                .skip(1)
                .any(|s| !(s.starts_with('0') || s.starts_with('1')))
            {
                errors.at(
                    pointer.span(),
                    "`json_pointer` has a `~` that is not `~0` or `~1`",
                    Some("write `~0` for `~` and `~1` for `/` inside a key (RFC 6901)".into()),
                );
            }
            Some((p.clone(), value.0.clone()))
        }
        (Some(pointer), None) => {
            errors.at(pointer.span(), "`json_pointer` needs `json_equals`", None);
            None
        }
        (None, Some(_)) => {
            errors.at(span, "`json_equals` needs `json_pointer`", None);
            None
        }
        (None, None) => None,
    };
    if let Some(method) = &raw.method
        && !is_token(method.get_ref())
    {
        errors.at(
            method.span(),
            format!("invalid HTTP method `{}`", method.get_ref()),
            Some("e.g. \"GET\", \"HEAD\" or \"POST\"".into()),
        );
    }
    if let Some(headers) = &raw.headers {
        for (name, value) in headers.get_ref() {
            if !is_token(name) || value.chars().any(|c| c.is_control() && c != '\t') {
                errors.at(
                    headers.span(),
                    format!("invalid HTTP header `{name}`"),
                    Some(
                        "header names are letters, digits and `-`; values have no line breaks"
                            .into(),
                    ),
                );
            }
        }
    }
    if let Some(codes) = &raw.expect_status
        && (codes.get_ref().is_empty() || codes.get_ref().iter().any(|c| !(100..=599).contains(c)))
    {
        errors.at(
            codes.span(),
            "`expect_status` must list HTTP status codes (100 to 599)",
            Some("e.g. [200, 204]; without it any 2xx is healthy".into()),
        );
    }
    Some(HttpProbe {
        url: url.get_ref().clone(),
        method: raw
            .method
            .as_ref()
            .map_or_else(|| "GET".into(), |m| m.get_ref().to_uppercase()),
        headers: raw
            .headers
            .as_ref()
            .map(|h| h.get_ref().clone())
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| (name, Secret::new(value)))
            .collect(),
        expect_status: raw
            .expect_status
            .as_ref()
            .map_or_else(any_2xx, |c| c.get_ref()[..].into()),
        body_contains: raw.body_contains.clone(),
        body_regex,
        json_pointer,
        max_latency: raw.max_latency.map(|d| d.0),
        tls_verify: raw.tls_verify.unwrap_or(true),
        ca_file: raw.ca_file.as_ref().map(PathBuf::from),
        follow_redirects: raw.follow_redirects.unwrap_or(false),
        max_body: raw.max_body.map_or(1 << 20, |b| b.0),
    })
}

/// The default `expect_status`, one shared list.
pub(super) fn any_2xx() -> Arc<[u16]> {
    static ANY_2XX: std::sync::LazyLock<Arc<[u16]>> =
        std::sync::LazyLock::new(|| (200..300).collect());
    ANY_2XX.clone()
}

/// An HTTP token (RFC 9110): what a method or a header name may be made of.
pub(super) fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}
