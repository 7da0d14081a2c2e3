//! A crate's module tree and the references between its modules, lifted to
//! siblings: a reference from `a::x` to `b::y` is an edge `a → b` between the
//! two children of their common parent. A module and its own descendants
//! are not an import cycle (a parent holds its children); siblings that
//! reach each other, directly or around a loop, are.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::source::{self, Use};

/// A module's path inside its crate (`[]` is the crate root).
pub type ModPath = Vec<String>;

/// One module file.
struct Module {
    file: PathBuf,
    text: String,
    /// Code with comments, literals, test items and `use` declarations blanked.
    code: String,
    uses: Vec<Use>,
    children: BTreeSet<String>,
}

/// A crate's modules, from one root file (`lib.rs`, `main.rs`, a bin's).
pub struct Crate {
    modules: BTreeMap<ModPath, Module>,
}

/// Why `from` depends on `to`: the first reference found.
#[derive(Debug, Clone)]
pub struct Edge {
    /// Where: `file:line`.
    pub at: String,
    /// The path as written.
    pub path: String,
}

impl Crate {
    /// Reads the module tree below `root`, following `mod x;` declarations
    /// that are not under `#[cfg(test)]`.
    pub fn read(root: &Path) -> Self {
        let mut modules = BTreeMap::new();
        let mut pending: Vec<(ModPath, PathBuf)> = vec![(Vec::new(), root.to_owned())];
        while let Some((path, file)) = pending.pop() {
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            let stripped = source::code_of(&text);
            let (uses, code) = source::uses(&stripped);
            let mut children = BTreeSet::new();
            for name in declared_modules(&code) {
                if let Some(child) = module_file(&file, path.is_empty(), &name) {
                    let mut child_path: ModPath = path.clone();
                    child_path.push(name.clone());
                    pending.push((child_path, child));
                    children.insert(name);
                }
            }
            modules.insert(
                path,
                Module {
                    file,
                    text,
                    code,
                    uses,
                    children,
                },
            );
        }
        Self { modules }
    }

    /// Every lifted edge between siblings, with the first reference that makes it.
    pub fn sibling_edges(&self) -> BTreeMap<(ModPath, ModPath), Edge> {
        let mut edges = BTreeMap::new();
        for (from, module) in &self.modules {
            let mut references: Vec<(usize, Vec<String>)> = module
                .uses
                .iter()
                .filter(|u| !u.public)
                .flat_map(|u| u.paths.iter().map(move |(p, _)| (u.at, p.clone())))
                .collect();
            references.extend(source::paths(&module.code));
            for (at, written) in references {
                let Some(absolute) = self.absolute(from, &written) else {
                    continue;
                };
                let to = self.resolve(absolute, 0);
                let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
                if from.len() == common || to.len() == common {
                    continue; // the module itself, an ancestor or a descendant
                }
                let key = (from[..=common].to_vec(), to[..=common].to_vec());
                edges.entry(key).or_insert_with(|| Edge {
                    at: format!(
                        "{}:{}",
                        module.file.display(),
                        source::line_of(&module.text, at)
                    ),
                    path: written.join("::"),
                });
            }
        }
        edges
    }

    /// `written` (relative to `from`) as a path from the crate root; None when it leaves the crate.
    fn absolute(&self, from: &ModPath, written: &[String]) -> Option<Vec<String>> {
        let first = written.first()?;
        let mut path: Vec<String> = match first.as_str() {
            "crate" => Vec::new(),
            "self" => from.clone(),
            "super" => {
                let mut base = from.clone();
                let ups = written.iter().take_while(|s| *s == "super").count();
                for _ in 0..ups {
                    base.pop()?;
                }
                base.extend(written[ups..].iter().cloned());
                return Some(base);
            }
            name if self.modules[from].children.contains(name) => {
                let mut base = from.clone();
                base.push(name.to_owned());
                base.extend(written[1..].iter().cloned());
                return Some(base);
            }
            _ => return None,
        };
        path.extend(written[1..].iter().cloned());
        Some(path)
    }

    /// The module that defines what `path` names: the deepest module on it,
    /// then through that module's re-exports (`pub use`).
    fn resolve(&self, path: Vec<String>, depth: usize) -> ModPath {
        let deepest = (0..=path.len())
            .rev()
            .find(|&n| self.modules.contains_key(&path[..n]))
            .unwrap_or(0);
        let module: ModPath = path[..deepest].to_vec();
        let Some(name) = path.get(deepest) else {
            return module;
        };
        if depth > 8 {
            return module;
        }
        let here = &self.modules[&module];
        for used in here.uses.iter().filter(|u| u.public) {
            for (target, glob) in &used.paths {
                let named = !glob && target.last() == Some(name);
                let through_glob = *glob
                    && self
                        .absolute(&module, target)
                        .map(|t| self.resolve(t, depth + 1))
                        .and_then(|m| self.modules.get(&m))
                        .is_some_and(|m| source::defines(&m.code, name));
                if (named || through_glob)
                    && let Some(mut target) = self.absolute(&module, target)
                {
                    if *glob {
                        target.push(name.clone());
                    }
                    target.extend(path[deepest + 1..].iter().cloned());
                    return self.resolve(target, depth + 1);
                }
            }
        }
        module
    }
}

/// The names in `mod x;` declarations (inline `mod x { … }` belong to their file).
fn declared_modules(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in code.match_indices("mod ") {
        if at > 0 && code.as_bytes()[at - 1].is_ascii_alphanumeric() {
            continue;
        }
        let rest = &code[at + 4..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && rest[name.len()..].trim_start().starts_with(';') {
            names.push(name);
        }
    }
    names
}

/// The file of child module `name` declared in `parent` (a crate root, like
/// a `mod.rs`, holds its children beside it).
fn module_file(parent: &Path, root: bool, name: &str) -> Option<PathBuf> {
    let dir = parent.parent()?;
    let stem = parent.file_stem()?.to_str()?;
    let base = if root || stem == "mod" {
        dir.to_owned()
    } else {
        dir.join(stem)
    };
    [
        base.join(format!("{name}.rs")),
        base.join(name).join("mod.rs"),
    ]
    .into_iter()
    .find(|f| f.is_file())
}

/// The cycles among sibling modules: each strongly connected set of two or more.
pub fn cycles(edges: &BTreeMap<(ModPath, ModPath), Edge>) -> Vec<Vec<ModPath>> {
    let mut graph: BTreeMap<&ModPath, Vec<&ModPath>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        graph.entry(from).or_default().push(to);
        graph.entry(to).or_default();
    }
    // Tarjan's strongly connected components, iterative enough for module counts.
    struct State<'a> {
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on_stack: BTreeSet<&'a ModPath>,
        found: Vec<Vec<ModPath>>,
    }
    fn visit<'a>(
        v: &'a ModPath,
        graph: &BTreeMap<&'a ModPath, Vec<&'a ModPath>>,
        s: &mut State<'a>,
    ) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for &w in &graph[v] {
            if !s.index.contains_key(w) {
                visit(w, graph, s);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for &v in graph.keys() {
        if !state.index.contains_key(v) {
            visit(v, &graph, &mut state);
        }
    }
    state.found
}

/// `a::b`, or `crate` for the root.
pub fn name(path: &ModPath) -> String {
    if path.is_empty() {
        "crate".to_owned()
    } else {
        path.join("::")
    }
}
