//! Diagnostic logging to stderr, shaped for where stderr goes: colour only on a
//! terminal (and never with `NO_COLOR`); under journald no timestamp of our own
//! and each line prefixed `<N>` with its syslog priority (sd-daemon(3)), so
//! `journalctl -p warning` finds warnings and errors.

use std::fmt;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber; `RUST_LOG` overrides the level (default info).
pub fn init() {
    let filter = filter(std::env::var("RUST_LOG").ok().as_deref());
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    if stderr_is_journal() {
        registry
            .with(layer.event_format(Journal(Format::default().without_time().with_ansi(false))))
            .init();
    } else {
        let no_color = std::env::var_os("NO_COLOR");
        registry
            .with(layer.with_ansi(colour(std::io::stderr().is_terminal(), no_color.as_deref())))
            .init();
    }
}

/// `RUST_LOG` as a list of `level` and `target=level` (`medic=debug,info`);
/// info when it is unset, empty or unreadable. A static filter: no span or
/// field matching, so nothing is compiled or kept per thread for it.
fn filter(rust_log: Option<&str>) -> Targets {
    rust_log
        .filter(|value| !value.trim().is_empty())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(Level::INFO))
}

/// Colour on a terminal unless `NO_COLOR` is set to anything non-empty (no-color.org).
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

/// True when systemd connected stderr to journald: `JOURNAL_STREAM` names the
/// device and inode of stderr (systemd.exec(5)). A child whose stderr was
/// redirected inherits the variable, hence the comparison.
fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(metadata) = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|file| file.metadata())
    else {
        return false;
    };
    stream.to_str() == Some(&format!("{}:{}", metadata.dev(), metadata.ino()))
}

/// The default format without time or colour, after a `<N>` priority prefix.
struct Journal<F>(F);

/// The syslog priority journald reads from a `<N>` line prefix.
fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

impl<S, N, F> FormatEvent<S, N> for Journal<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_syslog() {
        let got: Vec<u8> = [
            Level::ERROR,
            Level::WARN,
            Level::INFO,
            Level::DEBUG,
            Level::TRACE,
        ]
        .iter()
        .map(priority)
        .collect();
        assert_eq!(got, [3, 4, 6, 7, 7]);
    }

    #[test]
    fn rust_log_sets_levels_by_target() {
        let at = |filter: &Targets, target: &str, level: Level| filter.would_enable(target, &level);
        let default = filter(None);
        assert!(at(&default, "medic_daemon::daemon", Level::INFO));
        assert!(!at(&default, "medic_daemon::daemon", Level::DEBUG));
        let mixed = filter(Some("medic=debug,info"));
        assert!(at(&mixed, "medic_daemon::daemon", Level::DEBUG));
        assert!(at(&mixed, "hyper::proto", Level::INFO));
        assert!(!at(&mixed, "hyper::proto", Level::DEBUG));
        for unset in [Some(""), Some("  "), Some("medic=loud")] {
            let filter = filter(unset);
            assert!(at(&filter, "medic", Level::INFO), "{unset:?}");
            assert!(!at(&filter, "medic", Level::DEBUG), "{unset:?}");
        }
        assert!(!at(&filter(Some("warn")), "medic", Level::INFO));
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let set = Some(std::ffi::OsStr::new("1"));
        let empty = Some(std::ffi::OsStr::new(""));
        assert!(colour(true, None));
        assert!(colour(true, empty));
        assert!(!colour(true, set));
        assert!(!colour(false, None));
    }
}
