//! `medic logs S --output [-f]`: the service's own recent output — its
//! container's log, its LaunchAgent's StandardErrorPath and StandardOutPath,
//! or its systemd unit's journal — so a person does not have to find them.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

use medic_core::config::Config;
use medic_daemon::output::{OutputSource, find, journal_lines, new_lines, tail};

/// Lines shown before following.
const TAIL: usize = 100;
/// How often a followed output is read again.
const POLL: Duration = Duration::from_secs(1);
/// The window a followed container log is read in.
const WINDOW: usize = 1000;

/// Prints the last lines of `unit`'s output; with `follow`, keeps printing new ones.
pub fn run(config: &Config, unit: &str, follow: bool) -> anyhow::Result<u8> {
    let runtime = super::runtime()?;
    let source = runtime.block_on(find(config, unit))?;
    let mut out = std::io::stdout().lock();
    match source {
        OutputSource::Container { client, id } => follow_window(&mut out, follow, |lines| {
            Ok(runtime.block_on(client.tail_logs(&id, lines))?)
        }),
        OutputSource::Journal { unit, user } => follow_window(&mut out, follow, |lines| {
            runtime.block_on(journal_lines(&unit, user, lines))
        }),
        OutputSource::Files(files) => {
            let many = files.len() > 1;
            let mut offsets = Vec::new();
            for file in &files {
                if many {
                    writeln!(out, "==> {} <==", file.display())?;
                }
                for line in tail(file, TAIL).unwrap_or_default() {
                    writeln!(out, "{line}")?;
                }
                offsets.push(std::fs::metadata(file).map_or(0, |m| m.len()));
            }
            if !follow {
                return Ok(0);
            }
            loop {
                out.flush()?;
                std::thread::sleep(POLL);
                for (file, offset) in files.iter().zip(offsets.iter_mut()) {
                    let lines = appended(file, offset);
                    if !lines.is_empty() && many {
                        writeln!(out, "==> {} <==", file.display())?;
                    }
                    for line in lines {
                        writeln!(out, "{line}")?;
                    }
                }
            }
        }
    }
}

/// Prints the last lines `read(TAIL)` returns; with `follow`, reads a window
/// of `WINDOW` lines every `POLL` and prints what is new (a container's log, a
/// unit's journal).
fn follow_window(
    out: &mut impl Write,
    follow: bool,
    mut read: impl FnMut(usize) -> anyhow::Result<Vec<String>>,
) -> anyhow::Result<u8> {
    let mut seen = read(TAIL)?;
    for line in &seen {
        writeln!(out, "{line}")?;
    }
    if !follow {
        return Ok(0);
    }
    loop {
        out.flush()?;
        std::thread::sleep(POLL);
        let now = read(WINDOW)?;
        for line in new_lines(&seen, &now) {
            writeln!(out, "{line}")?;
        }
        seen = now;
    }
}

/// The complete lines written to `file` after `offset`, moving it on; a file
/// that shrank (truncated or replaced) is read again from its start.
fn appended(file: &PathBuf, offset: &mut u64) -> Vec<String> {
    let Ok(mut handle) = std::fs::File::open(file) else {
        return Vec::new();
    };
    let len = handle.metadata().map_or(0, |m| m.len());
    if len < *offset {
        *offset = 0;
    }
    if handle.seek(SeekFrom::Start(*offset)).is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if handle.take(len - *offset).read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let Some(end) = bytes.iter().rposition(|b| *b == b'\n') else {
        return Vec::new();
    };
    *offset += end as u64 + 1;
    String::from_utf8_lossy(&bytes[..end])
        .lines()
        .map(str::to_owned)
        .collect()
}
