//! `[report]`: the scheduled digest — the Markdown report of the last period
//! sent to some `[[alert]]` sinks once per period.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::decode::AS_IS;
use super::error::Errors;
use super::model::{AlertSink, ReportDigest};
use super::raw::PosDur;

/// The shortest digest period: more often is a stream, not a digest.
const MIN_EVERY: Duration = Duration::from_secs(60 * 60);
/// The longest one.
const MAX_EVERY: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// `[report]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReport {
    /// How often the digest goes out, and the period it covers ("7d").
    every: Spanned<PosDur>,
    /// The `[[alert]]` sinks it goes to, by name.
    sinks: Spanned<Vec<Spanned<String>>>,
}

pub(super) fn decode(value: Spanned<DeValue<'_>>, errors: &mut Errors) -> Option<RawReport> {
    super::decode::decode::<RawReport>(value, errors, AS_IS)
}

pub(super) fn build(
    raw: Option<RawReport>,
    sinks: &[AlertSink],
    errors: &mut Errors,
) -> Option<ReportDigest> {
    let raw = raw?;
    let every = raw.every.get_ref().0;
    if !(MIN_EVERY..=MAX_EVERY).contains(&every) {
        errors.at(
            raw.every.span(),
            "`every` must be between 1h and 366d".to_owned(),
            Some("a digest covers a period such as \"1d\" or \"7d\"".into()),
        );
    }
    if raw.sinks.get_ref().is_empty() {
        errors.at(
            raw.sinks.span(),
            "`sinks` names no [[alert]] sink".to_owned(),
            Some("list the sinks the digest goes to, e.g. sinks = [\"ops\"]".into()),
        );
    }
    for name in raw.sinks.get_ref() {
        if !sinks.iter().any(|s| s.name == *name.get_ref()) {
            errors.at(
                name.span(),
                format!("no [[alert]] sink named `{}`", name.get_ref()),
                Some("`sinks` takes the `name` of [[alert]] tables".into()),
            );
        }
    }
    Some(ReportDigest {
        every,
        sinks: raw
            .sinks
            .into_inner()
            .into_iter()
            .map(Spanned::into_inner)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    const SINK: &str = "[[alert]]\nname = \"ops\"\nkind = \"exec\"\ncommand = [\"true\"]\n";

    #[test]
    fn a_digest_names_existing_sinks_and_a_sane_period() {
        let config = parse(
            &format!("{SINK}[report]\nevery = \"7d\"\nsinks = [\"ops\"]\n"),
            "m.toml",
        )
        .unwrap();
        let digest = config.report.unwrap();
        assert_eq!(digest.every.as_secs(), 7 * 86_400);
        assert_eq!(digest.sinks, ["ops"]);

        let errors = parse(
            &format!("{SINK}[report]\nevery = \"5m\"\nsinks = [\"ops\", \"pager\"]\n"),
            "m.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            errors.contains("m.toml:6:9") && errors.contains("between 1h and 366d"),
            "{errors}"
        );
        assert!(
            errors.contains("m.toml:7:17") && errors.contains("no [[alert]] sink named `pager`"),
            "{errors}"
        );
        assert!(
            parse("[report]\nevery = \"7d\"\n", "m.toml").is_err(),
            "sinks is required"
        );
    }
}
