//! Rotated journals, named the way logrotate names them: `recovery.jsonl` is
//! the live file, `recovery.jsonl.1` the newest rotated one, … `.keep` the
//! oldest. The writer rotates (`rotate`); every reader that wants the whole
//! history (`medic logs`, `medic report`) walks the files with `files`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// `path.n`.
pub fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Shifts `path.1` … `path.(keep-1)` up by one (the oldest is replaced) and
/// renames `path` to `path.1`. The caller then opens a new `path`.
pub fn rotate(path: &Path, keep: usize) -> std::io::Result<()> {
    let keep = keep.max(1);
    for n in (1..keep).rev() {
        match std::fs::rename(rotated(path, n), rotated(path, n + 1)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(path, rotated(path, 1))?;
    // Files from a larger `journal_keep` before a restart go, so the total stays bounded.
    let mut n = keep + 1;
    while std::fs::remove_file(rotated(path, n)).is_ok() {
        n += 1;
    }
    Ok(())
}

/// The journal's files oldest first: `path.N` … `path.1`, then `path`
/// (those that exist). With `since`, files last written before it are left
/// out: all their lines are older.
pub fn files(path: &Path, since: Option<SystemTime>) -> Vec<PathBuf> {
    // Listed, not counted up from 1: a gap (a file removed by hand) hides nothing.
    let mut rotated: Vec<(usize, PathBuf)> = Vec::new();
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
        let prefix = format!("{}.", name.to_string_lossy());
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some(n) = file.strip_prefix(&prefix).and_then(|n| n.parse().ok()) {
                rotated.push((n, entry.path()));
            }
        }
    }
    rotated.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    if path.exists() {
        out.push(path.to_owned());
    }
    if let Some(since) = since {
        out.retain(|p| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified >= since)
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_newest_and_lists_them_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery.jsonl");
        for n in 1..=4 {
            std::fs::write(&path, format!("{n}\n")).unwrap();
            rotate(&path, 2).unwrap();
        }
        std::fs::write(&path, "5\n").unwrap();
        let contents: Vec<String> = files(&path, None)
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        assert_eq!(contents, ["3\n", "4\n", "5\n"]);
        assert!(!rotated(&path, 3).exists());
    }
}
