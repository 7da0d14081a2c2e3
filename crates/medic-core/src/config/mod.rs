//! Configuration: TOML text in, a validated [`Config`] or every error out.
//! Pure: the shell reads the file and passes its text and name.

mod alerts;
mod decode;
mod error;
mod labels;
mod model;
mod probe;
mod raw;
mod report;
mod service;
mod settings;
mod target;

use std::collections::BTreeSet;

use toml::de::{DeTable, DeValue};

pub use alerts::Env;
use decode::{decode_services, lenient, warn_deprecated};
use error::Errors;
pub use error::{ConfigError, ConfigErrors};
pub use labels::{Labelled, apply_labels};
pub use model::*;
use raw::{RawPolicy, RawSettings};
use service::build_services;
use settings::build_settings;

/// The embedded default job: every container labelled `medic.enable=true`.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// The embedded default job, validated.
pub fn default_config() -> Config {
    // Invariant: DEFAULT_CONFIG is tested to parse (tests::default_config_parses).
    parse(DEFAULT_CONFIG, "<default>")
        .unwrap_or_else(|e| panic!("embedded default config is invalid:\n{e}"))
}

/// Parses and validates a config; `origin` names the file in error messages.
/// No environment: a `${NAME}` in an `[[alert]]` table is an error (see [`parse_with_env`]).
pub fn parse(source: &str, origin: &str) -> Result<Config, ConfigErrors> {
    parse_with_env(source, origin, &|_| None)
}

/// Like [`parse`], with `env` resolving the `${NAME}`s of `[[alert]]` tables
/// (the shell passes the process environment).
pub fn parse_with_env(source: &str, origin: &str, env: Env<'_>) -> Result<Config, ConfigErrors> {
    let (config, errors) = build(source, origin, env);
    match config {
        Some(config) => errors.into_result(origin, config),
        None => Err(errors.finish(origin)),
    }
}

/// Like [`parse_with_env`], and with errors also what could be built: the
/// settings and services as far as they are valid (a broken probe left out, a
/// dependency cycle kept), for a pre-flight check that reports everything it
/// can (`medic doctor`). None when the TOML itself does not parse. Never run
/// such a config: it is not validated.
pub fn parse_partial(
    source: &str,
    origin: &str,
    env: Env<'_>,
) -> Result<Config, (ConfigErrors, Option<Box<Config>>)> {
    let (config, errors) = build(source, origin, env);
    match config {
        Some(config) if errors.list.is_empty() => Ok(config),
        config => Err((errors.finish(origin), config.map(Box::new))),
    }
}

/// The config as far as it builds, and every error; no config when the TOML
/// has syntax errors.
fn build<'s>(source: &'s str, origin: &str, env: Env<'_>) -> (Option<Config>, Errors<'s>) {
    let mut errors = Errors::new(source);
    let (document, syntax) = DeTable::parse_recoverable(source);
    for error in &syntax {
        errors.toml(error);
    }
    if !syntax.is_empty() {
        return (None, errors);
    }
    let document = document.into_inner();
    let mut settings = RawSettings::default();
    let mut defaults = RawPolicy::default();
    let mut services = (Vec::new(), BTreeSet::new());
    let mut raw_alerts = Vec::new();
    let mut raw_report = None;
    for (key, value) in document {
        let span = key.span();
        match key.get_ref().as_ref() {
            "medic" => settings = lenient(value, &mut errors),
            "defaults" => {
                if let DeValue::Table(table) = value.get_ref() {
                    warn_deprecated(table, &mut errors);
                }
                defaults = lenient(value, &mut errors);
            }
            "service" => services = decode_services(value, &mut errors),
            "alert" => raw_alerts = alerts::decode(value, &mut errors),
            "report" => raw_report = report::decode(value, &mut errors),
            other => {
                let what = if matches!(value.get_ref(), DeValue::Table(_) | DeValue::Array(_)) {
                    "table"
                } else {
                    "key"
                };
                let hint =
                    error::suggest(other, &["medic", "defaults", "service", "alert", "report"])
                        .map_or_else(String::new, |h| format!("{h} "));
                errors.at(
                    span,
                    format!("unknown top-level {what} `{other}`"),
                    Some(format!(
                        "{hint}the top level has [medic], [defaults], [[service]], [[alert]] and [report]"
                    )),
                );
            }
        }
    }
    let medic = build_settings(settings, &mut errors);
    let (services, names) = services;
    let services = build_services(&services, &names, &defaults, &mut errors);
    let service_names: Vec<&str> = names.iter().map(String::as_str).collect();
    let alerts = alerts::build(raw_alerts, &service_names, env, &mut errors);
    let report = report::build(raw_report, &alerts, &mut errors);
    let warnings = errors.warnings(origin);
    let config = Config {
        medic,
        services,
        alerts,
        report,
        warnings,
    };
    (Some(config), errors)
}

#[cfg(test)]
mod tests;
