//! Decoding the TOML document into the raw tables: every bad key reported,
//! not only the first, each `[[service]]` split into its own keys, its policy
//! keys and its probes, and warnings at deprecated keys.

use std::collections::BTreeSet;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::error::{self, Errors};
use super::raw::{POLICY_KEYS, RawPolicy, RawProbe, RawService};

/// The keys of `RawService`; `probe` and the policy keys are decoded apart.
pub(super) const SERVICE_KEYS: &[&str] = &[
    "name",
    "container",
    "launch_agent",
    "command",
    "systemd_unit",
    "depends_on",
    "labels",
];

/// A warning at each deprecated key of a policy table (`[defaults]` or a service).
pub(super) fn warn_deprecated(table: &DeTable<'_>, errors: &mut Errors) {
    for key in table.keys().filter(|k| k.get_ref() == "attempt_window") {
        errors.warn_at(
            key.span(),
            "`attempt_window` is deprecated: each incident gets `max_attempts` restarts; it is read as `flap_window` (incidents counted for flapping) unless that is set",
        );
    }
}

/// Decodes a table and reports every bad key in it; `None` when anything was
/// wrong, so that a half-read table causes no follow-on errors.
/// `widen`: see [`Errors::toml_in`].
pub(super) fn decode<T: for<'de> Deserialize<'de>>(
    value: Spanned<DeValue<'_>>,
    errors: &mut Errors,
    widen: (&[&str], &[&str]),
) -> Option<T> {
    decode_lenient(value, errors, widen)
        .filter(|(_, complete)| *complete)
        .map(|(value, _)| value)
}

/// Decodes a table and reports every bad key in it, not only the first: serde
/// stops at the first error in a struct, so the key it points at is set aside
/// and the rest decoded again. Returns what decoded and whether that is all of
/// it. For tables of independent optional keys (`[medic]`, policy keys), where
/// the rest is still worth using: the bad keys fall back to their defaults.
pub(super) fn decode_lenient<T: for<'de> Deserialize<'de>>(
    value: Spanned<DeValue<'_>>,
    errors: &mut Errors,
    widen: (&[&str], &[&str]),
) -> Option<(T, bool)> {
    let span = value.span();
    let mut table = match value.into_inner() {
        DeValue::Table(table) => table,
        other => {
            return T::deserialize(ValueDeserializer::from(Spanned::new(span, other)))
                .map_err(|e| errors.toml_in(&e, widen.0, widen.1))
                .ok()
                .map(|value| (value, true));
        }
    };
    let mut set_aside: Vec<String> = Vec::new();
    loop {
        let attempt = Spanned::new(span.clone(), DeValue::Table(table.clone()));
        let error = match T::deserialize(ValueDeserializer::from(attempt)) {
            Ok(value) => return Some((value, set_aside.is_empty())),
            Err(error) => error,
        };
        if error::missing_key(error.message()).is_some_and(|k| set_aside.iter().any(|s| s == k)) {
            return None; // reported already, as whatever was wrong with it
        }
        errors.toml_in(&error, widen.0, widen.1);
        let within = |outer: Range<usize>, inner: &Range<usize>| {
            outer.start <= inner.start && inner.end <= outer.end
        };
        let culprit = error.span().and_then(|at| {
            table
                .iter()
                .find(|(k, v)| within(k.span(), &at) || within(v.span(), &at))
                .map(|(k, _)| k.get_ref().to_string())
        });
        let key = culprit?; // no key to set aside: nothing more to learn from this table
        table.remove(key.as_str());
        set_aside.push(key);
    }
}

/// What decoded of a table of optional keys, defaults where it did not.
pub(super) fn lenient<T: for<'de> Deserialize<'de> + Default>(
    value: Spanned<DeValue<'_>>,
    errors: &mut Errors,
) -> T {
    decode_lenient(value, errors, AS_IS).map_or_else(T::default, |(value, _)| value)
}

/// No extra keys: serde's list of a table's keys is complete.
pub(super) const AS_IS: (&[&str], &[&str]) = (&[], &[]);

/// One decoded `[[service]]`: its policy keys apart from the rest.
pub(super) struct ServiceEntry {
    pub(super) service: RawService,
    pub(super) policy: RawPolicy,
    /// `[[service.probe]]` tables written, including ones that failed to decode.
    pub(super) written_probes: usize,
}

/// The services that decoded, and the names of all written, so that a service
/// with a typo in it does not also make every `depends_on` naming it an error.
pub(super) fn decode_services(
    value: Spanned<DeValue<'_>>,
    errors: &mut Errors,
) -> (Vec<ServiceEntry>, BTreeSet<String>) {
    let span = value.span();
    let mut names = BTreeSet::new();
    let DeValue::Array(items) = value.into_inner() else {
        errors.at(
            span,
            "`service` must be an array of tables",
            Some("write [[service]]".into()),
        );
        return (Vec::new(), names);
    };
    let mut entries = Vec::new();
    for item in items {
        let span = item.span();
        let DeValue::Table(table) = item.into_inner() else {
            errors.at(
                span,
                "each `service` must be a table",
                Some("write [[service]]".into()),
            );
            continue;
        };
        if let Some(DeValue::String(name)) = table.get("name").map(Spanned::get_ref) {
            names.insert(name.to_string());
        }
        let (mut policy, mut rest, mut probes) = (DeTable::new(), DeTable::new(), None);
        for (key, value) in table {
            if POLICY_KEYS.contains(&key.get_ref().as_ref()) {
                policy.insert(key, value);
            } else if key.get_ref() == "probe" {
                probes = Some(value);
            } else {
                rest.insert(key, value);
            }
        }
        warn_deprecated(&policy, errors);
        let table = |t| Spanned::new(span.clone(), DeValue::Table(t));
        let more: Vec<&str> = std::iter::once("probe")
            .chain(POLICY_KEYS.iter().copied())
            .collect();
        let service = decode::<RawService>(table(rest), errors, (SERVICE_KEYS, &more));
        let policy = lenient::<RawPolicy>(table(policy), errors);
        let (probes, written_probes) =
            probes.map_or((Some(Vec::new()), 0), |p| decode_probes(p, errors));
        if let (Some(mut service), Some(probes)) = (service, probes) {
            service.probe = probes;
            entries.push(ServiceEntry {
                service,
                policy,
                written_probes,
            });
        }
    }
    (entries, names)
}

/// A service's `[[service.probe]]` tables, each decoded on its own; `None` when one failed.
pub(super) fn decode_probes(
    value: Spanned<DeValue<'_>>,
    errors: &mut Errors,
) -> (Option<Vec<Spanned<RawProbe>>>, usize) {
    let span = value.span();
    let DeValue::Array(items) = value.into_inner() else {
        errors.at(
            span,
            "`probe` must be an array of tables",
            Some("write [[service.probe]]".into()),
        );
        return (None, 1);
    };
    let written = items.len();
    let mut probes = Some(Vec::new());
    for item in items {
        let span = item.span();
        match decode::<RawProbe>(item, errors, AS_IS) {
            Some(probe) => {
                if let Some(probes) = &mut probes {
                    probes.push(Spanned::new(span, probe));
                }
            }
            None => probes = None,
        }
    }
    (probes, written)
}
