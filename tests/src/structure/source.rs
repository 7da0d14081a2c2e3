//! Reading a Rust source file for its module references: comments, strings
//! and `#[cfg(test)]` items blanked (newlines kept, so offsets still give
//! lines), `use` trees expanded into paths, and the paths written in code.

/// A file's text with comments, string and char literals, and every item
/// under `#[cfg(test)]` replaced by spaces; newlines are kept.
pub fn code_of(source: &str) -> String {
    without_test_items(&without_literals(source))
}

/// Blanks comments and literals.
fn without_literals(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let space = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let after_ident = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                space(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    space(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if c == 'r'
            && !after_ident
            && matches!(next, Some('#' | '"'))
            && raw_start(&chars, i + 1).is_some()
        {
            // Invariant: checked just above.
            let hashes = raw_start(&chars, i + 1).unwrap_or(0);
            let mut j = i + 2 + hashes;
            while j < chars.len()
                && !(chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')))
            {
                j += 1;
            }
            let end = (j + 1 + hashes).min(chars.len());
            for &c in &chars[i..end] {
                space(&mut out, c);
            }
            i = end;
        } else if c == '"' {
            space(&mut out, c);
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                let step = if chars[i] == '\\' { 2 } else { 1 };
                for &c in chars.iter().skip(i).take(step) {
                    space(&mut out, c);
                }
                i += step;
            }
            if i < chars.len() {
                space(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '\'' && char_literal_end(&chars, i).is_some() {
            let end = char_literal_end(&chars, i).unwrap_or(i);
            for &c in &chars[i..=end] {
                space(&mut out, c);
            }
            i = end + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// At `i` (just after an `r`): the number of `#` before a `"`, if a raw string starts.
fn raw_start(chars: &[char], i: usize) -> Option<usize> {
    let hashes = chars[i..].iter().take_while(|&&c| c == '#').count();
    (chars.get(i + hashes) == Some(&'"')).then_some(hashes)
}

/// Where the char literal opening at `i` closes; None for a lifetime.
fn char_literal_end(chars: &[char], i: usize) -> Option<usize> {
    match chars.get(i + 1)? {
        '\\' => (i + 3..chars.len().min(i + 12)).find(|&j| chars[j] == '\''),
        _ => (chars.get(i + 2) == Some(&'\'')).then_some(i + 2),
    }
}

/// Blanks each item that follows `#[cfg(test)]` (through its `;` or its braces).
fn without_test_items(code: &str) -> String {
    let mut bytes = code.as_bytes().to_vec();
    let mut from = 0;
    while let Some(found) = code[from..].find("#[cfg(test)]") {
        let start = from + found;
        let mut i = start;
        let mut depth = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                b';' if depth == 0 => break,
                _ => {}
            }
            i += 1;
        }
        let end = (i + 1).min(bytes.len());
        blank(&mut bytes, start..end);
        from = end;
    }
    // Invariant: only ASCII bytes were replaced, by ASCII spaces.
    String::from_utf8(bytes).unwrap_or_default()
}

/// One `use` declaration, expanded.
#[derive(Debug)]
pub struct Use {
    /// Byte offset of the declaration.
    pub at: usize,
    /// `pub`, `pub(crate)`, …: a re-export.
    pub public: bool,
    /// Each path of the tree, split at `::`, without a trailing `self` or `*` (`glob` says which).
    pub paths: Vec<(Vec<String>, bool)>,
}

/// Every `use` declaration of `code`, and `code` with them blanked.
pub fn uses(code: &str) -> (Vec<Use>, String) {
    let mut found = Vec::new();
    let mut rest = code.as_bytes().to_vec();
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(offset) = code[from..].find("use ") {
        let at = from + offset;
        from = at + 4;
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue;
        }
        let Some(end) = code[at..].find(';').map(|e| at + e) else {
            break;
        };
        let before = code[..at].trim_end();
        let public = before.ends_with("pub")
            || (before.ends_with(')')
                && before
                    .rsplit_once("pub(")
                    .is_some_and(|(_, v)| !v.contains(['\n', ';', '{', '}'])));
        let tree: String = code[at + 4..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let mut paths = Vec::new();
        expand("", &tree, &mut paths);
        found.push(Use { at, public, paths });
        blank(&mut rest, at..end);
        from = end;
    }
    (found, String::from_utf8_lossy(&rest).into_owned())
}

/// Spaces over `range`, newlines kept.
fn blank(bytes: &mut [u8], range: std::ops::Range<usize>) {
    for b in &mut bytes[range] {
        if *b != b'\n' {
            *b = b' ';
        }
    }
}

/// Expands a use tree (`a::{b, c::{d as e, self}}`) into paths.
fn expand(prefix: &str, tree: &str, out: &mut Vec<(Vec<String>, bool)>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{').filter(|_| tree.ends_with('}')) {
        let head = format!("{prefix}{}", &tree[..open]);
        let mut depth = 0;
        let mut part = String::new();
        for c in tree[open + 1..tree.len() - 1].chars() {
            match c {
                ',' if depth == 0 => {
                    expand(&head, &part, out);
                    part.clear();
                    continue;
                }
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            part.push(c);
        }
        if !part.trim().is_empty() {
            expand(&head, &part, out);
        }
        return;
    }
    let path = format!(
        "{prefix}{}",
        tree.split(" as ").next().unwrap_or(tree).trim()
    );
    let mut segments: Vec<String> = path
        .split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let glob = segments.last().is_some_and(|s| s == "*");
    if glob || segments.last().is_some_and(|s| s == "self") {
        segments.pop();
    }
    if !segments.is_empty() {
        out.push((segments, glob));
    }
}

/// Every path of two or more segments written in `code` (`crate::a::b`,
/// `super::x`, `child::f`), with its byte offset.
pub fn paths(code: &str) -> Vec<(usize, Vec<String>)> {
    let bytes = code.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts = ident(bytes[i])
            && !bytes[i].is_ascii_digit()
            && (i == 0 || (!ident(bytes[i - 1]) && bytes[i - 1] != b':'));
        if !starts {
            i += 1;
            continue;
        }
        let start = i;
        let mut segments = Vec::new();
        loop {
            let s = i;
            while i < bytes.len() && ident(bytes[i]) {
                i += 1;
            }
            segments.push(code[s..i].to_owned());
            if code[i..].starts_with("::") && bytes.get(i + 2).is_some_and(|&b| ident(b)) {
                i += 2;
            } else {
                break;
            }
        }
        if segments.len() > 1 {
            out.push((start, segments));
        }
    }
    out
}

/// The 1-based line of byte offset `at`.
pub fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

/// Whether `code` defines a public item `name` (`pub struct X`, `pub(crate) fn x`, …).
pub fn defines(code: &str, name: &str) -> bool {
    [
        "struct", "enum", "fn", "const", "static", "type", "trait", "mod", "async fn",
    ]
    .iter()
    .any(|kind| {
        code.match_indices(&format!("{kind} {name}"))
            .any(|(at, m)| {
                let after = code.as_bytes().get(at + m.len()).copied().unwrap_or(b' ');
                !(after.is_ascii_alphanumeric() || after == b'_')
                    && (code[..at].trim_end().ends_with("pub")
                        || code[..at].trim_end().ends_with(')'))
            })
    })
}
