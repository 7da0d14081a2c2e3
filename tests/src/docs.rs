//! The user documentation kept true: every config key the parser accepts is in
//! the configuration reference (`docs/configuration.md`) and in
//! `config/medic.toml`, and nothing documented there is unknown to the parser
//! (the keys come from the parser's own "expected one of" lists, never from a
//! list kept by hand); every metric a real medic exports is in the metrics
//! reference (`docs/metrics.md`) and nothing documented is missing from a
//! scrape; every relative link between the Markdown pages resolves; README
//! stays a short front door. Needs no component besides the medic binary.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::service::{FAST, scraped, tcp_service};
use crate::support::medic::free_port;

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A key no table accepts; feeding it to a table makes the parser list the table's keys.
const BOGUS: &str = "zz_not_a_key";

/// The keys the parser accepts where `source` puts [`BOGUS`]: the list in its
/// "unknown field `zz_not_a_key`, expected one of …" error.
#[track_caller]
fn accepted(source: &str) -> BTreeSet<String> {
    let errors = medic_core::config::parse(source, "probe.toml")
        .expect_err("a config with an unknown key is rejected");
    let prefix = format!("unknown field `{BOGUS}`");
    let error = errors
        .errors
        .iter()
        .find(|e| e.message.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no unknown-field error for:\n{source}\ngot:\n{errors}"));
    let (_, expected) = error
        .message
        .split_once("expected")
        .unwrap_or_else(|| panic!("no key list in `{}`", error.message));
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The tables of the config as the parser knows them, each with its keys, in
/// the words the reference uses for its section headings.
fn parser_tables() -> BTreeMap<String, BTreeSet<String>> {
    let service = "[[service]]\nname = \"a\"\n";
    let defaults = accepted(&format!("[defaults]\n{BOGUS} = 1\n"));
    let widened = accepted(&format!("{service}{BOGUS} = 1\n"));
    assert!(
        defaults.is_subset(&widened),
        "a service takes every [defaults] key; it rejects {:?}",
        defaults.difference(&widened).collect::<Vec<_>>()
    );
    assert!(
        widened.contains("probe"),
        "a service takes [[service.probe]]"
    );
    let own: BTreeSet<String> = widened
        .iter()
        .filter(|k| *k != "probe" && !defaults.contains(*k))
        .cloned()
        .collect();
    let mut tables = BTreeMap::from([
        (
            "[medic]".to_owned(),
            accepted(&format!("[medic]\n{BOGUS} = 1\n")),
        ),
        ("[defaults]".to_owned(), defaults),
        ("[[service]]".to_owned(), own),
        (
            "[[service.probe]]".to_owned(),
            accepted(&format!(
                "{service}[[service.probe]]\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n{BOGUS} = 1\n"
            )),
        ),
        (
            "[[alert]]".to_owned(),
            accepted(&format!(
                "[[alert]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1\"\n{BOGUS} = 1\n"
            )),
        ),
        (
            "[report]".to_owned(),
            accepted(&format!("[report]\n{BOGUS} = 1\n")),
        ),
    ]);
    for target in ["container", "launch_agent", "systemd_unit", "command"] {
        let keys = accepted(&format!("{service}{target} = {{ {BOGUS} = 1 }}\n"));
        tables.insert(target.to_owned(), keys);
    }
    tables
}

/// The top-level tables, from the parser's hint for an unknown top-level key
/// ("the top level has [medic], [defaults], [[service]], [[alert]] and [report]").
fn top_level_tables() -> BTreeSet<String> {
    let errors = medic_core::config::parse(&format!("{BOGUS} = 1\n"), "probe.toml")
        .expect_err("an unknown top-level key is rejected");
    let hint = errors.errors[0].hint.clone().unwrap_or_default();
    hint.split([',', ' '])
        .filter(|w| w.starts_with('['))
        .map(str::to_owned)
        .collect()
}

/// The reference's sections (`## \`[medic]\``, `### \`container\``) with the
/// keys their tables list (`| \`state_dir\` | …`).
fn reference_tables(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut tables: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut section = None;
    for line in text.lines() {
        if line.starts_with('#') {
            let title = line.trim_start_matches('#').trim();
            section = title
                .strip_prefix('`')
                .and_then(|t| t.strip_suffix('`'))
                .map(str::to_owned);
            if let Some(name) = &section {
                tables.entry(name.clone()).or_default();
            }
        } else if let (Some(name), Some(row)) = (&section, line.strip_prefix("| `")) {
            let key = row.split('`').next().unwrap_or_default();
            tables
                .entry(name.clone())
                .or_default()
                .insert(key.to_owned());
        }
    }
    tables
}

#[test]
fn the_configuration_reference_documents_every_key_the_parser_takes_and_no_other() {
    let parser = parser_tables();
    let reference = reference_tables(&read("docs/configuration.md"));
    for table in top_level_tables() {
        assert!(
            reference.contains_key(&table),
            "docs/configuration.md has no section for the top-level table {table}"
        );
    }
    let mut problems = Vec::new();
    for (table, keys) in &parser {
        let documented = reference.get(table).cloned().unwrap_or_default();
        for key in keys.difference(&documented) {
            problems.push(format!(
                "{table} `{key}`: accepted by the parser, missing from docs/configuration.md"
            ));
        }
        for key in documented.difference(keys) {
            problems.push(format!(
                "{table} `{key}`: documented in docs/configuration.md, unknown to the parser"
            ));
        }
    }
    for table in reference.keys().filter(|t| !parser.contains_key(*t)) {
        problems.push(format!(
            "docs/configuration.md documents a table `{table}` the parser does not have"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_annotated_example_config_shows_every_key() {
    let example = read("config/medic.toml");
    let shows = |key: &str| {
        example.match_indices(key).any(|(at, _)| {
            let before = example[..at].chars().next_back();
            let after = example[at + key.len()..].trim_start_matches(' ');
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_') && after.starts_with('=')
        })
    };
    let missing: Vec<String> = parser_tables()
        .into_iter()
        .flat_map(|(table, keys)| keys.into_iter().map(move |k| (table.clone(), k)))
        .filter(|(_, key)| !shows(key))
        .map(|(table, key)| format!("{table} `{key}`"))
        .collect();
    assert!(
        missing.is_empty(),
        "config/medic.toml shows no `key = …` line for: {}",
        missing.join(", ")
    );
}

/// The metric names the reference's tables list (first column, each name in backticks).
fn documented_metrics(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .flat_map(|row| {
            let first = row.split(" |").next().unwrap_or_default();
            first
                .split('`')
                .step_by(2)
                .map(|name| name.trim_matches([',', ' ']).to_owned())
                .filter(|name| name.starts_with("medic_") || name.starts_with("process_"))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_metrics_reference_lists_every_metric_a_real_medic_exports() {
    let (up, down) = (free_port(), free_port());
    let _listener = std::net::TcpListener::bind(("127.0.0.1", up)).unwrap();
    // A sink, so that the delivery families have a series; its alerts go nowhere.
    let sink = "[[alert]]\nname = \"void\"\nkind = \"exec\"\ncommand = [\"true\"]\n";
    let config = FAST.to_owned() + &tcp_service("up", up) + &tcp_service("down", down) + sink;
    let (_medic, body) = scraped(&config, "down", "medic_probe_latency_seconds_bucket");
    let exported: BTreeSet<String> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect();
    assert!(exported.contains("medic_service_up"), "{body}");
    let documented = documented_metrics(&read("docs/metrics.md"));
    let undocumented: Vec<_> = exported.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&exported).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "exported but missing from docs/metrics.md: {undocumented:?}\ndocumented but not exported: {stale:?}"
    );
}

#[test]
fn the_readme_is_a_short_front_door_with_install_on_its_first_screen() {
    let readme = read("README.md");
    let lines: Vec<&str> = readme.lines().collect();
    assert!(
        lines.len() <= 450,
        "README.md has {} lines: move the detail into docs/",
        lines.len()
    );
    let install = lines.iter().position(|l| *l == "## Install");
    assert!(
        install.is_some_and(|at| at < 40),
        "README.md's `## Install` is not on its first screen (line {install:?})"
    );
    for command in ["cargo run --release -p medic -- run", "scripts/test"] {
        assert!(
            lines.contains(&command),
            "README.md's quick start lost `{command}`"
        );
    }
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The lines of a Markdown text outside fenced code blocks.
fn prose(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// The anchors of a Markdown file's headings.
fn anchors(text: &str) -> BTreeSet<String> {
    prose(text)
        .filter(|line| line.starts_with('#'))
        .map(|line| anchor(line.trim_start_matches('#')))
        .collect()
}

/// The Markdown pages whose links are checked: the front door, the maintainer
/// pages and docs/ (not docs/incoming/, notes waiting to be folded in).
fn pages() -> Vec<PathBuf> {
    let root = root();
    let mut pages: Vec<PathBuf> = ["README.md", "HACKING.md", "ARCHITECTURE.md"]
        .iter()
        .map(|p| root.join(p))
        .filter(|p| p.exists())
        .collect();
    let docs = std::fs::read_dir(root.join("docs")).expect("docs/ exists");
    pages.extend(
        docs.filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "md")),
    );
    pages
}

/// The `](target)` links of a Markdown text, outside code blocks and inline code.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in prose(text) {
        let outside_code: String = line.split('`').step_by(2).collect();
        let mut rest = outside_code.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            if let Some(end) = rest.find(')') {
                found.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    found
}

#[test]
fn every_relative_link_between_the_pages_resolves() {
    let mut broken = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (path, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(path)
            };
            let name = page
                .strip_prefix(root())
                .unwrap_or(&page)
                .display()
                .to_string();
            if !target.exists() {
                broken.push(format!("{name}: {link} (no such file)"));
            } else if !fragment.is_empty()
                && target.extension().is_some_and(|x| x == "md")
                && !anchors(&std::fs::read_to_string(&target).unwrap()).contains(fragment)
            {
                broken.push(format!("{name}: {link} (no such heading)"));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// Where the shipped rules' `runbook_url`s point: this repository's docs.
const RUNBOOKS: &str = "https://github.com/medic-rs/medic/blob/main/";

#[test]
fn every_shipped_alert_links_a_runbook_section_that_exists() {
    let rules = read("packaging/prometheus/medic-rules.yml");
    let alerts = rules
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count();
    let urls: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("runbook_url: "))
        .collect();
    assert_eq!(urls.len(), alerts, "one runbook_url per alert");
    for url in urls {
        let (page, fragment) = url
            .strip_prefix(RUNBOOKS)
            .and_then(|rest| rest.split_once('#'))
            .unwrap_or_else(|| panic!("{url}: not {RUNBOOKS}<page>#<section>"));
        assert!(
            anchors(&read(page)).contains(fragment),
            "{url}: {page} has no heading #{fragment}"
        );
    }
}
