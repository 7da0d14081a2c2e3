//! `[[alert]]` sinks: decoding, `${NAME}` expansion through the caller's
//! environment lookup, and validation into [`AlertSink`]s.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::DeValue;

use super::decode::AS_IS;
use super::error::{self, Errors};
use super::model::{AlertSink, Secret, SinkKind};
use super::probe::is_token;
use super::raw::{Dur, RawAlert};
use crate::Severity;

/// Looks up an environment variable; the core never reads the environment itself.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

const KINDS: &[&str] = &["webhook", "slack", "alertmanager", "exec"];

/// Decodes every `[[alert]]` table, each on its own so one bad table does not hide the others.
pub(super) fn decode(value: Spanned<DeValue<'_>>, errors: &mut Errors) -> Vec<RawAlert> {
    let span = value.span();
    let DeValue::Array(items) = value.into_inner() else {
        errors.at(
            span,
            "`alert` must be an array of tables",
            Some("write [[alert]]".into()),
        );
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| super::decode::decode::<RawAlert>(item, errors, AS_IS))
        .collect()
}

/// Validates the sinks; `services` are the service names, for the `services` filter.
pub(super) fn build(
    raw: Vec<RawAlert>,
    services: &[&str],
    env: Env<'_>,
    errors: &mut Errors,
) -> Vec<AlertSink> {
    let mut seen: BTreeMap<String, Range<usize>> = BTreeMap::new();
    let mut sinks = Vec::new();
    for alert in raw {
        let name = alert.name.get_ref().clone();
        if !is_token(&name) || name.contains('/') {
            errors.at(
                alert.name.span(),
                format!("invalid sink name `{name}`"),
                Some("use letters, digits, `-` and `_`".into()),
            );
        } else if let Some(first) = seen.get(&name) {
            let (line, _) = error::position(errors.source(), first.start);
            errors.at(
                alert.name.span(),
                format!("duplicate sink name `{name}`"),
                Some(format!("the first one is on line {line}")),
            );
        }
        seen.entry(name.clone()).or_insert(alert.name.span());
        if let Some(sink) = build_one(alert, name, services, env, errors) {
            sinks.push(sink);
        }
    }
    sinks
}

fn build_one(
    alert: RawAlert,
    name: String,
    services: &[&str],
    env: Env<'_>,
    errors: &mut Errors,
) -> Option<AlertSink> {
    let min_severity = match &alert.min_severity {
        None => Severity::Warning,
        Some(s) => match s.get_ref().as_str() {
            "info" => Severity::Info,
            "warning" => Severity::Warning,
            "critical" => Severity::Critical,
            other => {
                errors.at(
                    s.span(),
                    format!("unknown severity `{other}`"),
                    Some("write info, warning or critical".into()),
                );
                Severity::Warning
            }
        },
    };
    let filter = alert.services.as_ref().map(|list| {
        for s in list {
            let known = services.contains(&s.get_ref().as_str()) || s.get_ref() == "medic";
            if !known {
                let hint = error::suggest(s.get_ref(), services)
                    .unwrap_or_else(|| "name a [[service]] of this file, or `medic`".into());
                errors.at(
                    s.span(),
                    format!("no service named `{}`", s.get_ref()),
                    Some(hint),
                );
            }
        }
        list.iter().map(|s| s.get_ref().clone()).collect::<Vec<_>>()
    });
    let queue = match &alert.queue {
        Some(q) if *q.get_ref() == 0 => {
            errors.at(
                q.span(),
                "`queue` must be at least 1",
                Some("the default is 1000".into()),
            );
            1000
        }
        Some(q) => *q.get_ref(),
        None => 1000,
    };
    let kind = build_kind(&alert, env, errors)?;
    Some(AlertSink {
        name,
        kind,
        min_severity,
        services: filter,
        timeout: Dur::or(alert.timeout, Duration::from_secs(10)),
        queue,
        retry_backoff: Dur::or(alert.retry_backoff, Duration::from_secs(1)),
        retry_backoff_max: Dur::or(alert.retry_backoff_max, Duration::from_secs(300)),
    })
}

fn build_kind(alert: &RawAlert, env: Env<'_>, errors: &mut Errors) -> Option<SinkKind> {
    let kind = alert.kind.get_ref().as_str();
    // Keys written that this kind does not use: an error each, at the key's value
    // where its span is kept, else at `kind`.
    let inapplicable: &[&str] = match kind {
        "webhook" => &["command", "repeat_interval", "urls"],
        "slack" => &["command", "hmac_secret", "repeat_interval", "urls"],
        "alertmanager" => &["command", "hmac_secret"],
        "exec" => &["url", "urls", "headers", "hmac_secret", "repeat_interval"],
        _ => &[],
    };
    for key in inapplicable {
        let written = match *key {
            "command" => alert.command.as_ref().map(Spanned::span),
            "url" => alert.url.as_ref().map(Spanned::span),
            "urls" => alert.urls.as_ref().map(Spanned::span),
            "hmac_secret" => alert.hmac_secret.as_ref().map(Spanned::span),
            "headers" => (!alert.headers.is_empty()).then(|| alert.kind.span()),
            _ => alert.repeat_interval.map(|_| alert.kind.span()),
        };
        if let Some(span) = written {
            errors.at(
                span,
                format!("`{key}` does not apply to `{kind}` sinks"),
                None,
            );
        }
    }
    let headers = |errors: &mut Errors| -> Vec<(String, Secret)> {
        alert
            .headers
            .iter()
            .filter_map(|(k, v)| {
                if !is_token(k) {
                    errors.at(v.span(), format!("invalid header name `{k}`"), None);
                }
                expand(v, env, errors).map(|v| (k.clone(), v))
            })
            .collect()
    };
    let http = |url: &Spanned<String>, key: &str, errors: &mut Errors| -> Option<Secret> {
        let value = expand(url, env, errors)?;
        let ok = value.expose().starts_with("http://") || value.expose().starts_with("https://");
        if !ok {
            // The value may be a secret: name the key, never the value.
            errors.at(
                url.span(),
                format!("`{key}` must start with http:// or https://"),
                None,
            );
            return None;
        }
        Some(value)
    };
    // `url`, or for Alertmanager `urls` (every member of a cluster); one of them.
    let urls = |errors: &mut Errors| -> Option<Vec<Secret>> {
        match (&alert.url, &alert.urls) {
            (Some(url), None) => Some(vec![http(url, "url", errors)?]),
            (None, Some(urls)) if !urls.get_ref().is_empty() => urls
                .get_ref()
                .iter()
                .map(|url| http(url, "urls", errors))
                .collect::<Vec<_>>()
                .into_iter()
                .collect(),
            (Some(url), Some(_)) => {
                errors.at(url.span(), "write `url` or `urls`, not both", None);
                None
            }
            (None, urls) => {
                let hint = if kind == "alertmanager" {
                    "add `url = \"http://…:9093\"`, or `urls = [\"http://am1:9093\", \"http://am2:9093\"]` for a cluster"
                } else {
                    "add `url = \"https://…\"` (it may read `${ENV_VAR}`)"
                };
                errors.at(
                    urls.as_ref().map_or(alert.kind.span(), Spanned::span),
                    format!("a `{kind}` sink needs `url`"),
                    Some(hint.into()),
                );
                None
            }
        }
    };
    match kind {
        "webhook" | "slack" | "alertmanager" => {
            let urls = urls(errors);
            let headers = headers(errors);
            let hmac_secret = alert
                .hmac_secret
                .as_ref()
                .and_then(|s| expand(s, env, errors));
            let mut urls = urls?;
            if kind == "alertmanager" {
                return Some(SinkKind::Alertmanager {
                    urls,
                    headers,
                    repeat_interval: Dur::or(alert.repeat_interval, Duration::from_secs(60)),
                });
            }
            // Invariant: only Alertmanager sinks take `urls`, so there is exactly one.
            let url = urls.swap_remove(0);
            Some(match kind {
                "webhook" => SinkKind::Webhook {
                    url,
                    headers,
                    hmac_secret,
                },
                _ => SinkKind::Slack { url, headers },
            })
        }
        "exec" => {
            let Some(command) = &alert.command else {
                errors.at(
                    alert.kind.span(),
                    "an `exec` sink needs `command`",
                    Some("add `command = [\"/usr/local/bin/page\", \"--stdin\"]`".into()),
                );
                return None;
            };
            if command.get_ref().is_empty() {
                errors.at(command.span(), "`command` must not be empty", None);
                return None;
            }
            let argv: Vec<Option<Secret>> = command
                .get_ref()
                .iter()
                .map(|a| expand(a, env, errors))
                .collect();
            argv.into_iter()
                .collect::<Option<Vec<_>>>()
                .map(|command| SinkKind::Exec { command })
        }
        other => {
            let hint = error::suggest(other, KINDS)
                .unwrap_or_else(|| format!("write one of {}", KINDS.join(", ")));
            errors.at(
                alert.kind.span(),
                format!("unknown alert sink kind `{other}`"),
                Some(hint),
            );
            None
        }
    }
}

/// Replaces every `${NAME}` with the variable's value; `$$` is a literal `$`.
/// Errors name the variable, never a value.
fn expand(text: &Spanned<String>, env: Env<'_>, errors: &mut Errors) -> Option<Secret> {
    match expand_str(text.get_ref(), env) {
        Ok(value) => Some(Secret::new(value)),
        Err(Expand::Unset(name)) => {
            errors.at(
                text.span(),
                format!("environment variable `{name}` is not set"),
                Some(format!("export {name}=… in medic's environment (for systemd: Environment= or EnvironmentFile= in a drop-in)")),
            );
            None
        }
        Err(Expand::Syntax) => {
            errors.at(
                text.span(),
                "unterminated or empty `${…}`",
                Some("write ${NAME} for an environment variable, $$ for a literal $".into()),
            );
            None
        }
    }
}

#[derive(Debug, PartialEq)]
enum Expand {
    Unset(String),
    Syntax,
}

fn expand_str(text: &str, env: Env<'_>) -> Result<String, Expand> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let end = tail.find('}').ok_or(Expand::Syntax)?;
            let name = &tail[..end];
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(Expand::Syntax);
            }
            out.push_str(&env(name).ok_or_else(|| Expand::Unset(name.to_owned()))?);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, expect: Result<&str, Expand>) {
        let env = |name: &str| (name == "TOKEN").then(|| "s3cr3t".to_owned());
        assert_eq!(expand_str(text, &env), expect.map(str::to_owned));
    }

    #[test]
    fn expands_variables() {
        check("https://x/${TOKEN}/y", Ok("https://x/s3cr3t/y"));
        check("${TOKEN}${TOKEN}", Ok("s3cr3ts3cr3t"));
        check("a$$b $c", Ok("a$b $c"));
        check("${MISSING}", Err(Expand::Unset("MISSING".into())));
        check("${TOKEN", Err(Expand::Syntax));
        check("${}", Err(Expand::Syntax));
        check("${A-B}", Err(Expand::Syntax));
    }
}
