//! `medic logs`: print and follow the recovery log, one readable line per
//! event (or the JSON lines themselves), across rotation: the rotated files
//! (`recovery.jsonl.N` … `.1`, listed by `medic_records::rotation::files`)
//! first, then the live file, which `-f` follows through the next rotation.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use clap::Args;
use jiff::Timestamp;
use medic_records::journal::RecoveryLine;

use crate::config_file::ConfigArgs;

/// How often a followed log is checked for new lines and rotation.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Arguments of `medic logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Keep following new events, across the log being rotated.
    #[arg(long, short = 'f')]
    follow: bool,
    /// Only this service (and its instances, `service/…`).
    #[arg(long, short = 's')]
    service: Option<String>,
    /// Only events newer than this (e.g. 10m, 2h).
    #[arg(long, value_parser = medic_core::duration::parse)]
    since: Option<Duration>,
    /// Print the JSON lines as stored.
    #[arg(long)]
    json: bool,
    /// Show the service's own output instead: its container's log, or its
    /// LaunchAgent's StandardErrorPath and StandardOutPath.
    #[arg(long, requires = "unit")]
    output: bool,
    /// The service (like --service).
    #[arg(value_name = "SERVICE", conflicts_with = "service")]
    unit: Option<String>,
}

struct Filter {
    service: Option<String>,
    since: Option<Timestamp>,
    json: bool,
}

impl Filter {
    fn print(&self, raw: &str, out: &mut impl Write) -> std::io::Result<()> {
        let Ok(line) = serde_json::from_str::<RecoveryLine>(raw) else {
            return Ok(()); // a torn line being written; it is read again when complete
        };
        if let Some(service) = &self.service {
            let instance = line
                .service
                .strip_prefix(service.as_str())
                .is_some_and(|r| r.starts_with('/'));
            if line.service != *service && !instance {
                return Ok(());
            }
        }
        if self.since.is_some_and(|since| line.ts < since) {
            return Ok(());
        }
        if self.json {
            writeln!(out, "{}", raw.trim_end())
        } else {
            writeln!(out, "{}", readable(&line))
        }
    }
}

/// `2026-11-22T16:00:00Z  web  restart #1  [incident]  message`
fn readable(line: &RecoveryLine) -> String {
    let event = match line.attempt {
        Some(k) => format!("{} #{k}", line.event),
        None => line.event.clone(),
    };
    let incident = line
        .incident
        .as_deref()
        .map(|i| format!(" [{i}]"))
        .unwrap_or_default();
    let ts = line.ts.strftime("%Y-%m-%d %H:%M:%S");
    format!(
        "{ts}  {}  {event}{incident}  {}",
        line.service, line.message
    )
}

/// Prints matching events; with -f keeps following until interrupted.
pub fn run(args: LogsArgs) -> anyhow::Result<u8> {
    let config = args.config.load_without_secrets()?;
    if args.output
        && let Some(unit) = &args.unit
    {
        return super::output::run(&config, unit, args.follow);
    }
    let path = config.medic.recovery_log;
    let filter = Filter {
        service: args.service.or(args.unit),
        since: args.since.and_then(|d| {
            Timestamp::now()
                .checked_sub(jiff::SignedDuration::try_from(d).ok()?)
                .ok()
        }),
        json: args.json,
    };
    let mut out = std::io::stdout().lock();
    // Rotated files first, oldest to newest (`recovery.jsonl.N` … `.1`), then the live one.
    let since = args
        .since
        .and_then(|d| std::time::SystemTime::now().checked_sub(d));
    for old in medic_records::rotation::files(&path, since) {
        if old == path {
            continue;
        }
        match File::open(&old) {
            Ok(file) => print_complete_lines(&mut BufReader::new(file), &filter, &mut out)?,
            // Rotated away between listing and opening: its lines are in the next file.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => anyhow::bail!("cannot read {}: {error}", old.display()),
        }
    }
    let mut reader = match File::open(&path) {
        Ok(file) => Some(BufReader::new(file)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && args.follow => None,
        Err(error) => anyhow::bail!("cannot read {}: {error}", path.display()),
    };
    if let Some(reader) = reader.as_mut() {
        print_complete_lines(reader, &filter, &mut out)?;
    }
    if !args.follow {
        return Ok(0);
    }
    loop {
        std::thread::sleep(FOLLOW_POLL);
        if rotated(&path, reader.as_ref()) {
            // Finish the old file, then start on the new one from its beginning.
            if let Some(old) = reader.as_mut() {
                print_complete_lines(old, &filter, &mut out)?;
            }
            reader = File::open(&path).ok().map(BufReader::new);
        }
        if let Some(reader) = reader.as_mut() {
            print_complete_lines(reader, &filter, &mut out)?;
        }
        out.flush()?;
    }
}

/// Prints every complete line from the reader's position, leaving a partial last line for later.
fn print_complete_lines(
    reader: &mut BufReader<File>,
    filter: &Filter,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut line = String::new();
    loop {
        let start = reader.stream_position()?;
        line.clear();
        let read = reader.read_line(&mut line)?;
        if read == 0 {
            return Ok(());
        }
        if !line.ends_with('\n') {
            reader.seek(SeekFrom::Start(start))?;
            return Ok(());
        }
        filter.print(&line, out)?;
    }
}

/// True when the path now names another file (renamed and recreated) or the file shrank (truncated).
fn rotated(path: &Path, reader: Option<&BufReader<File>>) -> bool {
    let Ok(now) = std::fs::metadata(path) else {
        return false;
    };
    let Some(reader) = reader else {
        return true;
    };
    let Ok(open) = reader.get_ref().metadata() else {
        return true;
    };
    now.ino() != open.ino() || now.dev() != open.dev() || now.len() < open.len()
}
