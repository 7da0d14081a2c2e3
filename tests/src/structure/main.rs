//! The structure rules as tests, over the source tree itself (no engine, no
//! binary): no import cycle between modules of any crate, no source file over
//! 800 lines, the supervisor loop file at most 500 lines, and no crate over
//! 35 % of the Rust lines under `crates/*/src`.

mod graph;
mod source;

use std::path::{Path, PathBuf};

use graph::Crate;

/// The longest a source file may be.
const MAX_FILE_LINES: usize = 800;
/// The file that holds the supervisor loop (its wiring, `select!` and routing).
const LOOP_FILE: &str = "crates/medic-daemon/src/daemon.rs";
/// The longest the loop file may be.
const MAX_LOOP_LINES: usize = 500;
/// The largest share of the Rust lines under `crates/*/src` one crate may hold, in percent.
const MAX_CRATE_SHARE: usize = 35;

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace root")
        .to_owned()
}

/// Every `.rs` file under `dir`, sorted, skipping build output.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target" && !name.to_string_lossy().starts_with('.') {
                files.extend(rust_files(&path));
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn lines(file: &Path) -> usize {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()))
        .lines()
        .count()
}

/// The workspace's packages: `crates/*` and `tests`.
fn packages() -> Vec<PathBuf> {
    let mut packages: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .expect("crates/ exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    packages.push(root().join("tests"));
    packages.sort();
    packages
}

/// A package's crate roots: `src/lib.rs`, `src/main.rs`, `src/bin/*`, and
/// the `path`s of its `[[bin]]` and `[[test]]` targets.
fn crate_roots(package: &Path) -> Vec<PathBuf> {
    let src = package.join("src");
    let mut roots = vec![src.join("lib.rs"), src.join("main.rs")];
    if let Ok(bins) = std::fs::read_dir(src.join("bin")) {
        for bin in bins.flatten().map(|e| e.path()) {
            roots.push(if bin.is_dir() {
                bin.join("main.rs")
            } else {
                bin
            });
        }
    }
    let manifest = std::fs::read_to_string(package.join("Cargo.toml")).unwrap_or_default();
    for line in manifest.lines() {
        if let Some(path) = line
            .trim()
            .strip_prefix("path = \"")
            .and_then(|p| p.strip_suffix('"'))
        {
            roots.push(package.join(path));
        }
    }
    roots.retain(|r| r.is_file());
    roots.sort();
    roots.dedup();
    roots
}

/// The cycles of one crate, each as a readable paragraph with the references that close it.
fn cycles_of(root: &Path) -> Vec<String> {
    let krate = Crate::read(root);
    let edges = krate.sibling_edges();
    graph::cycles(&edges)
        .into_iter()
        .map(|members| {
            let mut text = format!(
                "{}: {}",
                root.display(),
                members
                    .iter()
                    .map(graph::name)
                    .collect::<Vec<_>>()
                    .join(" ⇄ ")
            );
            for ((from, to), edge) in &edges {
                if members.contains(from) && members.contains(to) {
                    text.push_str(&format!(
                        "\n    {} → {}  ({} `{}`)",
                        graph::name(from),
                        graph::name(to),
                        edge.at,
                        edge.path
                    ));
                }
            }
            text.replace(&format!("{}/", self::root().display()), "")
        })
        .collect()
}

#[test]
fn no_import_cycles() {
    let found: Vec<String> = packages()
        .iter()
        .flat_map(|p| crate_roots(p))
        .flat_map(|root| cycles_of(&root))
        .collect();
    assert!(
        found.is_empty(),
        "import cycles between modules (move what both sides need into a module of its own):\n{}",
        found.join("\n")
    );
}

#[test]
fn no_source_file_over_800_lines() {
    let root = root();
    let long: Vec<String> = ["crates", "tests", "fuzz"]
        .iter()
        .flat_map(|dir| rust_files(&root.join(dir)))
        .map(|file| (lines(&file), file))
        .filter(|(n, _)| *n > MAX_FILE_LINES)
        .map(|(n, file)| {
            format!(
                "{} ({n} lines)",
                file.strip_prefix(&root).unwrap_or(&file).display()
            )
        })
        .collect();
    assert!(
        long.is_empty(),
        "source files over {MAX_FILE_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_supervisor_loop_file_is_at_most_500_lines() {
    let n = lines(&root().join(LOOP_FILE));
    assert!(
        n <= MAX_LOOP_LINES,
        "{LOOP_FILE} has {n} lines, at most {MAX_LOOP_LINES}"
    );
}

#[test]
fn no_crate_holds_over_35_percent_of_the_code() {
    let root = root();
    let sizes: Vec<(String, usize)> = packages()
        .iter()
        .filter(|p| p.starts_with(root.join("crates")))
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (
                name,
                rust_files(&p.join("src")).iter().map(|f| lines(f)).sum(),
            )
        })
        .collect();
    let total: usize = sizes.iter().map(|(_, n)| n).sum();
    let over: Vec<String> = sizes
        .iter()
        .filter(|(_, n)| n * 100 > total * MAX_CRATE_SHARE)
        .map(|(name, n)| {
            format!(
                "{name}: {n} of {total} lines ({:.1} %)",
                *n as f64 * 100.0 / total as f64
            )
        })
        .collect();
    assert!(
        over.is_empty(),
        "crates over {MAX_CRATE_SHARE} % of the Rust lines under crates/*/src:\n{}",
        over.join("\n")
    );
}

/// The checker on a made-up crate: a loop between siblings (one edge through
/// a re-export) is found; a parent and its child, a path in a string or a
/// comment, and a `#[cfg(test)]` module are not cycles.
#[test]
fn the_cycle_check_finds_what_it_should_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |path: &str, text: &str| {
        let file = src.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    };
    write(
        "lib.rs",
        "mod a;\nmod b;\nmod p;\nmod q;\npub use a::A;\n#[cfg(test)]\nmod t;\n",
    );
    write(
        "a.rs",
        "pub struct A;\npub fn f() -> crate::b::B { crate::b::B }\n",
    );
    write("b.rs", "use crate::A;\npub struct B;\nfn g() -> A { A }\n");
    write(
        "p.rs",
        "mod c;\nuse c::C;\npub struct P;\n// crate::q::Q\nconst S: &str = \"crate::q::Q\";\n",
    );
    write("p/c.rs", "pub struct C(super::P);\n");
    write(
        "q.rs",
        "pub struct Q(crate::p::P);\n#[cfg(test)]\nmod tests { use crate::t::T; }\n",
    );
    write("t.rs", "pub struct T(crate::q::Q);\n");
    let found = cycles_of(&src.join("lib.rs"));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].contains("a ⇄ b"), "{}", found[0]);
    assert!(
        found[0].contains("b → a"),
        "through the re-export: {}",
        found[0]
    );
}
