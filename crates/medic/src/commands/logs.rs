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
use hyper::Method;
use jiff::Timestamp;
use medic_daemon::control::UnitsBody;
use medic_records::journal::RecoveryLine;

use crate::client::{call, encode};
use crate::config_file::ConfigArgs;

/// How often a followed log is checked for new lines and rotation.
const FOLLOW_POLL: Duration = Duration::from_millis(200);
/// The longest `logs` waits for the daemon to resolve a name; the log is
/// read without it after that.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Arguments of `medic logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Keep following new events, across the log being rotated.
    #[arg(long, short = 'f')]
    follow: bool,
    /// Only this service: its instances (`service/…`) and, while the daemon
    /// runs, every unit it resolves the name to (a Compose service name).
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
    service: Option<Named>,
    since: Option<Timestamp>,
    json: bool,
}

/// A service as `--service` names it: the name, its instances (`name/…`), and
/// the units the running daemon says it means (a Compose service name means
/// the containers of that service), as every other command resolves it.
struct Named {
    name: String,
    units: Vec<String>,
}

impl Named {
    fn matches(&self, service: &str) -> bool {
        let instance = service
            .strip_prefix(self.name.as_str())
            .is_some_and(|r| r.starts_with('/'));
        service == self.name || instance || self.units.iter().any(|u| u == service)
    }
}

/// The units the daemon resolves `name` to; none when no daemon answers or it
/// knows no such name (the log may still hold a service that has gone since).
fn resolve(socket: &Path, name: &str) -> Vec<String> {
    let path = format!("/v1/services/{}", encode(name));
    let Ok(runtime) = super::runtime() else {
        return Vec::new();
    };
    let asked = runtime.block_on(async {
        tokio::time::timeout(RESOLVE_TIMEOUT, call(socket, Method::GET, &path, None)).await
    });
    match asked {
        Ok(Ok((status, body))) if status.is_success() => {
            serde_json::from_value::<UnitsBody>(body).map_or_else(|_| Vec::new(), |b| b.units)
        }
        _ => Vec::new(),
    }
}

impl Filter {
    /// Prints a complete line if it passes; false when it does not parse.
    fn print(&self, raw: &str, out: &mut impl Write) -> std::io::Result<bool> {
        let Ok(line) = serde_json::from_str::<RecoveryLine>(raw) else {
            return Ok(false);
        };
        if self
            .service
            .as_ref()
            .is_some_and(|s| !s.matches(&line.service))
        {
            return Ok(true);
        }
        if self.since.is_some_and(|since| line.ts < since) {
            return Ok(true);
        }
        if self.json {
            writeln!(out, "{}", raw.trim_end())?;
        } else {
            writeln!(out, "{}", readable(&line))?;
        }
        Ok(true)
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
    let service = args.service.or(args.unit).map(|name| Named {
        units: resolve(&config.medic.control_socket, &name),
        name,
    });
    let filter = Filter {
        service,
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
            Ok(file) => {
                let mut file = Lines::new(BufReader::new(file), &old);
                file.print_complete(&filter, &mut out)?;
            }
            // Rotated away between listing and opening: its lines are in the next file.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => anyhow::bail!("cannot read {}: {error}", old.display()),
        }
    }
    let mut reader = match File::open(&path) {
        Ok(file) => Some(Lines::new(BufReader::new(file), &path)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && args.follow => None,
        Err(error) => anyhow::bail!("cannot read {}: {error}", path.display()),
    };
    if let Some(reader) = reader.as_mut() {
        reader.print_complete(&filter, &mut out)?;
    }
    if !args.follow {
        return Ok(0);
    }
    loop {
        std::thread::sleep(FOLLOW_POLL);
        if rotated(&path, reader.as_ref().map(|r| &r.reader)) {
            // Finish the old file, then start on the new one from its beginning.
            if let Some(old) = reader.as_mut() {
                old.print_complete(&filter, &mut out)?;
            }
            reader = File::open(&path)
                .ok()
                .map(|file| Lines::new(BufReader::new(file), &path));
        }
        if let Some(reader) = reader.as_mut() {
            reader.print_complete(&filter, &mut out)?;
        }
        out.flush()?;
    }
}

/// One file of the recovery log being read, and how many lines were read.
struct Lines {
    reader: BufReader<File>,
    path: std::path::PathBuf,
    number: usize,
}

impl Lines {
    fn new(reader: BufReader<File>, path: &Path) -> Self {
        Self {
            reader,
            path: path.to_owned(),
            number: 0,
        }
    }

    /// Prints every complete line from the reader's position, leaving a
    /// partial last line for later (it is being written, or a crash tore it);
    /// a complete line that does not parse is named on stderr.
    fn print_complete(&mut self, filter: &Filter, out: &mut impl Write) -> anyhow::Result<()> {
        let mut line = String::new();
        loop {
            let start = self.reader.stream_position()?;
            line.clear();
            let read = self.reader.read_line(&mut line)?;
            if read == 0 {
                return Ok(());
            }
            if !line.ends_with('\n') {
                self.reader.seek(SeekFrom::Start(start))?;
                return Ok(());
            }
            self.number += 1;
            if !filter.print(&line, out)? && !line.trim().is_empty() {
                eprintln!(
                    "medic logs: {}:{}: line skipped, it does not parse",
                    self.path.display(),
                    self.number
                );
            }
        }
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
