//! A found container's `medic.*` labels: per-container overrides of its
//! service's policy (`medic.max_attempts=5`, `medic.on_stop=leave`). They are
//! decoded and validated by the code that reads the same keys in the config
//! file, with the same messages: each label becomes one line of a small TOML
//! table, read as a `[defaults]` table is. A container with any bad label is
//! watched with its service's policy, and every problem is said.

use std::collections::BTreeMap;

use toml::Spanned;
use toml::de::DeTable;

use super::decode::lenient;
use super::error::{Errors, suggest};
use super::model::{ContainerTarget, Probe, Target};
use super::raw::{Dur, POLICY_KEYS, RawPolicy};
use super::service::build_policy;
use super::target::on_stop;
use crate::policy::Policy;

/// The policy keys a label may not set: they are the service's, not one
/// container's (a probe's `interval` and `timeout`, `slo`), or deprecated.
const SERVICE_ONLY: &[&str] = &["interval", "timeout", "attempt_window", "slo"];

/// The policy and target a container runs with once its labels apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    /// The service's policy with the labels' keys over it.
    pub policy: Policy,
    /// The service's container target with `stop_timeout` and `on_stop` from the labels.
    pub target: ContainerTarget,
}

/// Applies `labels` (`KEY → VALUE`, without the `medic.` prefix) over a
/// service's `policy` and container `target`. Labels that are no policy key
/// and not a near miss of one are left alone (`medic.enable`, a selector's own
/// `medic.group`). Any bad label: every problem, one line each
/// (`medic.max_attempts=0: `max_attempts` must be at least 1 (the default is 3)`),
/// and the caller keeps the service's own policy.
pub fn apply_labels(
    policy: &Policy,
    target: &ContainerTarget,
    probes: &[Probe],
    labels: &BTreeMap<String, String>,
) -> Result<Labelled, Vec<String>> {
    let label_keys: Vec<&str> = POLICY_KEYS
        .iter()
        .copied()
        .filter(|key| !SERVICE_ONLY.contains(key))
        .collect();
    let mut problems = Vec::new();
    // One line per label, in this order: an error's line names its label.
    let mut lines: Vec<(&str, &str)> = Vec::new();
    for (key, value) in labels {
        if label_keys.contains(&key.as_str()) {
            lines.push((key, value));
        } else if let Some(hint) = suggest(key, &label_keys) {
            let value = value.escape_debug();
            problems.push(format!("medic.{key}={value}: unknown key `{key}`; {hint}"));
        }
    }
    let source: String = lines
        .iter()
        .map(|(key, value)| format!("{key} = {}\n", literal(value)))
        .collect();
    let mut errors = Errors::new(&source);
    let (document, syntax) = DeTable::parse_recoverable(&source);
    for error in &syntax {
        errors.toml(error);
    }
    let raw: RawPolicy = if syntax.is_empty() {
        let table = toml::de::DeValue::Table(document.into_inner());
        lenient(Spanned::new(0..source.len(), table), &mut errors)
    } else {
        RawPolicy::default()
    };
    let container = Target::Container(target.clone());
    let labelled = build_policy(&raw, &Some(container), probes, &mut errors);
    let on_stop = on_stop(raw.on_stop.as_ref(), target.on_stop, &mut errors);
    for error in errors.finish("labels").errors {
        let (key, value) = lines.get(error.line - 1).copied().unwrap_or(("?", "?"));
        let value = value.escape_debug();
        let hint = error.hint.map(|h| format!(" ({h})")).unwrap_or_default();
        problems.push(format!("medic.{key}={value}: {}{hint}", error.message));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let set = |key: &str| labels.contains_key(key);
    let mut policy = policy.clone();
    macro_rules! take {
        ($($key:literal => $field:ident),* $(,)?) => {
            $(if set($key) { policy.$field = labelled.$field; })*
        };
    }
    take!(
        "failure_threshold" => failure_threshold,
        "success_threshold" => success_threshold,
        "start_period" => start_period,
        "max_attempts" => max_attempts,
        "flap_limit" => flap_limit,
        "flap_window" => flap_window,
        "flap_backoff" => flap_backoff,
        "backoff" => backoff_base,
        "backoff_max" => backoff_max,
        "recover_timeout" => recover_timeout,
        "verify_interval" => verify_interval,
        "replace_grace" => replace_grace,
    );
    let target = ContainerTarget {
        stop_timeout: Dur::or(raw.stop_timeout, target.stop_timeout),
        on_stop,
        ..target.clone()
    };
    Ok(Labelled { policy, target })
}

/// A label's text as the TOML value a person would have written in the
/// config: a number or a boolean as it is, anything else a string.
fn literal(value: &str) -> String {
    let plain = value.parse::<i64>().is_ok()
        || value.parse::<f64>().is_ok_and(f64::is_finite)
        || value == "true"
        || value == "false";
    if plain {
        return value.to_owned();
    }
    // A basic string on one line, whatever the label holds: an error's line names its label.
    let mut quoted = String::from('"');
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{ContainerSelector, OnStop};

    fn target() -> ContainerTarget {
        ContainerTarget {
            selector: ContainerSelector::Name("x".into()),
            stop_timeout: Duration::from_secs(10),
            on_stop: OnStop::Restore,
        }
    }

    /// The labels' outcome in one line: the overridden values, or the problems.
    #[track_caller]
    fn check(labels: &[(&str, &str)], expect: &str) {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let got = match apply_labels(&Policy::default(), &target(), &[], &labels) {
            Ok(l) => format!(
                "max_attempts={} failure_threshold={} start_period={:?} replace_grace={:?} stop_timeout={:?} on_stop={:?}",
                l.policy.max_attempts,
                l.policy.failure_threshold,
                l.policy.start_period,
                l.policy.replace_grace,
                l.target.stop_timeout,
                l.target.on_stop,
            ),
            Err(problems) => problems.join(" | "),
        };
        assert_eq!(got, expect);
    }

    #[test]
    fn labels_are_read_like_the_same_keys_in_the_config() {
        let defaults = "max_attempts=3 failure_threshold=3 start_period=0ns replace_grace=30s stop_timeout=10s on_stop=Restore";
        check(&[], defaults);
        check(&[("enable", "true"), ("group", "web")], defaults);
        check(
            &[
                ("max_attempts", "5"),
                ("on_stop", "leave"),
                ("start_period", "1m"),
                ("stop_timeout", "30s"),
            ],
            "max_attempts=5 failure_threshold=3 start_period=60s replace_grace=30s stop_timeout=30s on_stop=Leave",
        );
        check(
            &[("max_attempts", "0")],
            "medic.max_attempts=0: `max_attempts` must be at least 1 (the default is 3)",
        );
        check(
            &[("max_attempts", "many")],
            "medic.max_attempts=many: invalid type: string \"many\", expected a non-negative integer",
        );
        check(
            &[("on_stop", "stay"), ("replace_grace", "soon")],
            "medic.on_stop=stay: unknown on_stop `stay` (use \"restore\" or \"leave\") | medic.replace_grace=soon: invalid duration \"soon\": expected number at 0 (write e.g. \"10s\", \"5m\", \"250ms\")",
        );
        check(
            &[("max_attemps", "5")],
            "medic.max_attemps=5: unknown key `max_attemps`; did you mean `max_attempts`?",
        );
        check(
            &[("start_period", "100y"), ("failure_threshold", "\"x\n")],
            "medic.failure_threshold=\\\"x\\n: invalid type: string \"\\\"x\\n\", expected a non-negative integer | medic.start_period=100y: duration \"100y\" is too long: medic accepts at most 10y",
        );
    }
}
