//! `medic.*` labels: the per-container overrides a container carries.

use std::collections::BTreeMap;

/// The label prefix of per-container overrides (`medic.max_attempts=5`).
pub const OVERRIDE_PREFIX: &str = "medic.";

/// The per-container overrides among a container's labels: every `medic.KEY=VALUE`
/// as `KEY → VALUE`, raw (`medic.max_attempts=5` → `max_attempts → "5"`). The
/// daemon validates them.
pub fn overrides<'a>(
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> BTreeMap<String, String> {
    labels
        .into_iter()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix(OVERRIDE_PREFIX)?;
            (!key.is_empty()).then(|| (key.to_owned(), v.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn overrides_are_the_medic_labels_without_their_prefix() {
        let labels = HashMap::from([
            ("medic.enable".to_owned(), "true".to_owned()),
            ("medic.max_attempts".to_owned(), "5".to_owned()),
            (
                "medic.http".to_owned(),
                "http://127.0.0.1:8080/health".to_owned(),
            ),
            ("medic.".to_owned(), "x".to_owned()),
            ("com.docker.compose.service".to_owned(), "web".to_owned()),
        ]);
        let got = overrides(&labels);
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            [
                ("enable".to_owned(), "true".to_owned()),
                ("http".to_owned(), "http://127.0.0.1:8080/health".to_owned()),
                ("max_attempts".to_owned(), "5".to_owned()),
            ]
        );
    }
}
