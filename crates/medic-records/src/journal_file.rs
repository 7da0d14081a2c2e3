//! A journal writer's open file: appending a batch with one `write`, the
//! fsync that may come later (see `journal::SYNC_GAP`), rotation or
//! compaction by size, and reopening a file something renamed away.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::files;

/// What keeps a journal bounded in size.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// Renamed to `path.1` (newest) … `path.keep` past `max_size` bytes; the oldest goes.
    Rotate {
        /// Bytes a file may reach.
        max_size: u64,
        /// Rotated files kept.
        keep: usize,
    },
    /// Rewritten by `compact` (which must keep the same meaning) past `max_size` bytes.
    Compact {
        /// Bytes the file may reach before it is compacted.
        max_size: u64,
        /// Rewrites the file at the path atomically; false when it found
        /// nothing to drop yet and left the file as it was (asked again at the
        /// next batch: checking must be cheap).
        compact: fn(&Path) -> anyhow::Result<bool>,
    },
}

/// The writer's open file.
pub(crate) struct Output {
    path: PathBuf,
    limit: Limit,
    file: Option<File>,
    size: u64,
    /// The last write ended inside a line: finish it before rotating or reopening.
    mid_line: bool,
    /// Written since the last fsync: fsynced before the file is let go.
    unsynced: bool,
    compact_above: u64,
}

impl Output {
    /// The writer's file at `path`, open (`file`) or to be opened with the first write.
    pub(crate) fn new(path: PathBuf, limit: Limit, file: Option<File>) -> Self {
        Self {
            size: file
                .as_ref()
                .and_then(|f| f.metadata().ok())
                .map_or(0, |m| m.len()),
            file,
            path,
            limit,
            mid_line: false,
            unsynced: false,
            compact_above: match limit {
                Limit::Compact { max_size, .. } => max_size,
                Limit::Rotate { .. } => u64::MAX,
            },
        }
    }

    /// Whether the file is open (else the next write tries to open it).
    pub(crate) fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// Writes `pending` (no fsync: see `sync`); on failure what was not
    /// written stays in `pending`.
    pub(crate) fn append(&mut self, pending: &mut Vec<u8>) -> anyhow::Result<()> {
        let path = &self.path.clone();
        if !self.mid_line {
            if self.file.is_some() && !path.exists() {
                // Renamed away (by logrotate): a new file at the same path.
                self.let_go();
            }
            if let Limit::Rotate { max_size, keep } = self.limit
                && self.size > 0
                && self.size + pending.len() as u64 > max_size
            {
                self.let_go();
                crate::rotation::rotate(path, keep)
                    .with_context(|| format!("cannot rotate {}", path.display()))?;
            }
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => {
                let file = files::open_append(path)?;
                self.size = file.metadata().map_or(0, |m| m.len());
                self.file.insert(file)
            }
        };
        let mut written = 0;
        let result = loop {
            if written == pending.len() {
                break Ok(());
            }
            match file.write(&pending[written..]) {
                Ok(0) => break Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if written > 0 {
            self.mid_line = pending[written - 1] != b'\n';
            self.size += written as u64;
            self.unsynced = true;
            pending.drain(..written);
        }
        result.with_context(|| format!("cannot append to {}", path.display()))
    }

    /// Fsyncs what was written, then compacts a file past its size.
    pub(crate) fn sync(&mut self) -> anyhow::Result<()> {
        let path = &self.path;
        if let Some(file) = &self.file {
            file.sync_data()
                .with_context(|| format!("cannot fsync {}", path.display()))?;
        }
        self.unsynced = false;
        if let Limit::Compact { max_size, compact } = self.limit
            && self.size > self.compact_above
        {
            let compacted = compact(path);
            if !matches!(compacted, Ok(false)) {
                // Rewritten (or maybe, on an error): the next write reopens the path.
                self.file = None;
            }
            if compacted.with_context(|| format!("cannot compact {}", path.display()))? {
                let size = std::fs::metadata(path).map_or(0, |m| m.len());
                // A file that cannot shrink much is not compacted again at every line.
                self.compact_above = max_size.max(size.saturating_mul(2));
            }
        }
        Ok(())
    }

    /// Closes the file (rotated or renamed away), fsyncing what it holds first.
    fn let_go(&mut self) {
        if let Some(file) = self.file.take()
            && std::mem::take(&mut self.unsynced)
        {
            file.sync_data().ok();
        }
    }
}
