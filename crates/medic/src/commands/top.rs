//! `medic top`: a live terminal dashboard of the running daemon — one row per
//! service with a coloured state, time in state, last observation age and
//! latency, 24 h availability and attempts, a pane of the latest recovery-log
//! events, and keys to pause / resume / recover the selected service (after a
//! confirmation) or to show failed services only. Data older than a few
//! refreshes is shown as stale (grey, with a banner), never as healthy.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Args;
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use hyper::Method;
use medic_daemon::page::{light, recent_events, span};
use medic_daemon::status::{ServiceStatus, StatusReport};
use medic_records::journal::RecoveryLine;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, TableState};

use crate::client::{call, service_path};
use crate::config_file::ConfigArgs;

/// Arguments of `medic top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// How often to ask the daemon for its status.
    #[arg(long, default_value = "1s", value_parser = medic_core::duration::parse)]
    interval: Duration,
    /// Start with only the services that are not healthy.
    #[arg(long)]
    failed_only: bool,
}

/// How much of the recovery log's end is read for the events pane.
const LOG_TAIL: u64 = 64 * 1024;
/// How long one status request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// A command on the selected service, waiting for the person to confirm it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    command: &'static str,
    service: String,
}

/// Everything the screen shows; drawn by [`draw`], changed by keys and refreshes.
#[derive(Debug)]
struct App {
    report: Option<StatusReport>,
    /// When the last status answer arrived.
    fetched: Option<Instant>,
    /// Why the last request failed, if it did.
    error: Option<String>,
    events: Vec<RecoveryLine>,
    failed_only: bool,
    selected: Option<String>,
    pending: Option<Pending>,
    /// The outcome of the last command, shown in the footer.
    notice: Option<String>,
    stale_after: Duration,
}

impl App {
    fn new(failed_only: bool, interval: Duration) -> Self {
        Self {
            report: None,
            fetched: None,
            error: None,
            events: Vec::new(),
            failed_only,
            selected: None,
            pending: None,
            notice: None,
            stale_after: (interval * 3).max(Duration::from_secs(5)),
        }
    }

    /// Whether the shown data is too old (or missing) to be believed.
    fn stale(&self, now: Instant) -> bool {
        self.error.is_some()
            || self
                .fetched
                .is_none_or(|at| now.duration_since(at) > self.stale_after)
    }

    /// The services shown, after the filter.
    fn rows(&self) -> Vec<&ServiceStatus> {
        self.report.as_ref().map_or(Vec::new(), |r| {
            r.services
                .iter()
                .filter(|s| !self.failed_only || s.health != "healthy")
                .collect()
        })
    }

    fn selected_index(&self) -> Option<usize> {
        let rows = self.rows();
        if rows.is_empty() {
            return None;
        }
        let at = self
            .selected
            .as_ref()
            .and_then(|name| rows.iter().position(|s| &s.name == name));
        Some(at.unwrap_or(0))
    }

    fn move_selection(&mut self, by: isize) {
        let rows = self.rows();
        if rows.is_empty() {
            return;
        }
        let current = self.selected_index().unwrap_or(0) as isize;
        let next = (current + by).clamp(0, rows.len() as isize - 1) as usize;
        self.selected = Some(rows[next].name.clone());
    }

    fn ask(&mut self, command: &'static str) {
        let rows = self.rows();
        if let Some(s) = self.selected_index().and_then(|i| rows.get(i)) {
            self.pending = Some(Pending {
                command,
                service: s.name.clone(),
            });
        }
    }
}

/// What a key asks for.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Continue,
    Quit,
    Send(Pending),
}

/// Applies one key press.
fn key(app: &mut App, key: KeyEvent) -> Step {
    if key.kind != KeyEventKind::Press {
        return Step::Continue;
    }
    if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
        return Step::Quit;
    }
    if let Some(pending) = app.pending.take() {
        return match key.code {
            KeyCode::Char('y' | 'Y') => Step::Send(pending),
            _ => {
                app.notice = Some(format!(
                    "{} {}: cancelled",
                    pending.command, pending.service
                ));
                Step::Continue
            }
        };
    }
    match key.code {
        KeyCode::Char('q') | KeyCode::Esc => return Step::Quit,
        KeyCode::Up | KeyCode::Char('k') => app.move_selection(-1),
        KeyCode::Down | KeyCode::Char('j') => app.move_selection(1),
        KeyCode::Char('f') => app.failed_only = !app.failed_only,
        KeyCode::Char('p') => app.ask("pause"),
        KeyCode::Char('r') => app.ask("resume"),
        KeyCode::Char('c') => app.ask("recover"),
        _ => {}
    }
    Step::Continue
}

/// Runs the dashboard until q, Esc or Ctrl-C; the terminal is restored on every exit, panics included.
pub fn run(args: TopArgs) -> anyhow::Result<u8> {
    let config = args.config.load()?;
    let socket = config.medic.control_socket;
    let log = config.medic.recovery_log;
    let runtime = super::runtime()?;
    let mut app = App::new(args.failed_only, args.interval);
    // ratatui::init enters the alternate screen and raw mode and installs a
    // panic hook that restores the terminal; the guard restores it on return.
    let mut terminal = ratatui::init();
    let _restore = Restore;
    let mut next_refresh = Instant::now();
    loop {
        if Instant::now() >= next_refresh {
            refresh(&runtime, &socket, &log, &mut app);
            next_refresh = Instant::now() + args.interval;
        }
        terminal.draw(|frame| draw(frame, &app, Instant::now()))?;
        let wait = next_refresh.saturating_duration_since(Instant::now());
        if !event::poll(wait)? {
            continue;
        }
        let Event::Key(pressed) = event::read()? else {
            continue;
        };
        match key(&mut app, pressed) {
            Step::Continue => {}
            Step::Quit => break,
            Step::Send(pending) => {
                app.notice = Some(send(&runtime, &socket, &pending));
                next_refresh = Instant::now();
            }
        }
    }
    Ok(0)
}

/// Restores the terminal when `run` returns, however it returns.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

fn refresh(runtime: &tokio::runtime::Runtime, socket: &Path, log: &Path, app: &mut App) {
    let answer = runtime.block_on(async {
        tokio::time::timeout(
            REQUEST_TIMEOUT,
            call(socket, Method::GET, "/v1/status", None),
        )
        .await
    });
    match answer {
        Ok(Ok((status, json))) if status.is_success() => {
            match serde_json::from_value::<StatusReport>(json) {
                Ok(report) => {
                    app.report = Some(report);
                    app.fetched = Some(Instant::now());
                    app.error = None;
                }
                Err(error) => app.error = Some(format!("unexpected status answer: {error}")),
            }
        }
        Ok(Ok((status, _))) => app.error = Some(format!("the daemon answered {status}")),
        Ok(Err(error)) => app.error = Some(format!("{error:#}")),
        Err(_) => app.error = Some("the daemon did not answer in time".to_owned()),
    }
    app.events = recent_events(log, LOG_TAIL);
}

fn send(runtime: &tokio::runtime::Runtime, socket: &Path, pending: &Pending) -> String {
    let path = service_path(&pending.service, pending.command);
    let body = (pending.command == "pause").then(|| serde_json::json!({ "for_secs": null }));
    let what = format!("{} {}", pending.command, pending.service);
    match runtime.block_on(async {
        tokio::time::timeout(REQUEST_TIMEOUT, call(socket, Method::POST, &path, body)).await
    }) {
        Ok(Ok((status, _))) if status.is_success() => format!("{what}: done"),
        Ok(Ok((_, json))) => format!(
            "{what}: {}",
            json.get("error")
                .and_then(|e| e.as_str())
                .unwrap_or("refused")
        ),
        Ok(Err(error)) => format!("{what}: {error:#}"),
        Err(_) => format!("{what}: the daemon did not answer in time"),
    }
}

fn colour(light: &str) -> Color {
    match light {
        "green" => Color::Green,
        "amber" => Color::Yellow,
        "red" => Color::Red,
        _ => Color::DarkGray,
    }
}

/// Draws the whole screen.
fn draw(frame: &mut Frame, app: &App, now: Instant) {
    let [header, table, events, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(4),
        Constraint::Length(9),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let stale = app.stale(now);
    draw_header(frame, header, app, now, stale);
    draw_table(frame, table, app, stale);
    draw_events(frame, events, app);
    draw_footer(frame, footer, app);
    if let Some(pending) = &app.pending {
        let text = format!(
            "{} {}? y to confirm, any other key cancels",
            pending.command, pending.service
        );
        let width = (text.len() as u16 + 4).min(frame.area().width);
        let area = Rect {
            x: frame.area().width.saturating_sub(width) / 2,
            y: frame.area().height / 2,
            width,
            height: 3,
        }
        .intersection(frame.area());
        frame.render_widget(Clear, area);
        frame.render_widget(
            Paragraph::new(text).block(Block::bordered().title(" confirm ")),
            area,
        );
    }
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App, now: Instant, stale: bool) {
    let mut spans = vec![Span::styled(
        "medic top",
        Style::new().add_modifier(Modifier::BOLD),
    )];
    if let Some(report) = &app.report {
        let count = |h: &str| report.services.iter().filter(|s| s.health == h).count();
        spans.push(Span::raw(format!(
            "  {} services: {} healthy, {} unhealthy, {} unknown",
            report.services.len(),
            count("healthy"),
            count("unhealthy"),
            count("unknown")
        )));
    }
    if app.failed_only {
        spans.push(Span::styled(
            "  [failed only]",
            Style::new().fg(Color::Cyan),
        ));
    }
    if stale {
        let age = app.fetched.map_or("no data yet".to_owned(), |at| {
            format!("last update {}s ago", now.duration_since(at).as_secs())
        });
        let why = app.error.as_deref().unwrap_or("no fresh answer");
        spans.push(Span::styled(
            format!("  STALE: {age}: {why}"),
            Style::new().fg(Color::White).bg(Color::Red),
        ));
    }
    frame.render_widget(Line::from(spans), area);
}

fn draw_table(frame: &mut Frame, area: Rect, app: &App, stale: bool) {
    let generated = app.report.as_ref().map(|r| r.generated);
    let rows: Vec<Row> = app
        .rows()
        .into_iter()
        .map(|s| {
            // Stale data is never shown as healthy: every light turns grey.
            let shown = if stale {
                "grey"
            } else {
                light(&s.state, &s.health)
            };
            let style = Style::new().fg(colour(shown));
            let state = if s.paused {
                format!("{} (paused)", s.state)
            } else {
                s.state.clone()
            };
            let health = if stale {
                "stale".to_owned()
            } else {
                s.health.clone()
            };
            let in_state = generated.map_or("-".to_owned(), |g| {
                span(u64::try_from(g.duration_since(s.since).as_secs()).unwrap_or(0))
            });
            let seen = s
                .last_observation_ms
                .map_or("never".to_owned(), |ms| format!("{} ago", span(ms / 1000)));
            let latency = s
                .probes
                .iter()
                .filter(|p| p.outcome != "none")
                .map(|p| p.latency_ms)
                .max()
                .map_or("-".to_owned(), |ms| format!("{ms}ms"));
            let availability = s
                .availability_24h
                .map_or("-".to_owned(), |a| format!("{:.2}%", a * 100.0));
            let incident = match (&s.incident, &s.last_incident) {
                (Some(open), _) => format!("{open} (open)"),
                (None, Some(last)) => format!("{} ({})", last.id, last.outcome),
                (None, None) => "-".to_owned(),
            };
            Row::new(vec![
                Cell::from(Span::styled("●", style)),
                Cell::from(s.name.clone()),
                Cell::from(Span::styled(state, style)),
                Cell::from(Span::styled(health, style)),
                Cell::from(in_state),
                Cell::from(seen),
                Cell::from(latency),
                Cell::from(availability),
                Cell::from(s.attempts.to_string()),
                Cell::from(incident),
            ])
        })
        .collect();
    let header = Row::new([
        "",
        "SERVICE",
        "STATE",
        "HEALTH",
        "IN STATE",
        "LAST OBS",
        "LATENCY",
        "AVAIL 24H",
        "ATT",
        "INCIDENT",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Length(1),
        Constraint::Min(10),
        Constraint::Length(22),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(3),
        Constraint::Min(10),
    ];
    let empty = rows.is_empty();
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::bordered().title(" services "))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default().with_selected(app.selected_index());
    frame.render_stateful_widget(table, area, &mut state);
    if empty {
        let text = match (&app.report, app.failed_only) {
            (None, _) => "waiting for the daemon…",
            (Some(_), true) => "no failed services",
            (Some(_), false) => "no services are watched",
        };
        let inner = Rect {
            x: area.x + 2,
            y: area.y + 2,
            width: area.width.saturating_sub(4),
            height: 1,
        }
        .intersection(area);
        frame.render_widget(Paragraph::new(text), inner);
    }
}

fn draw_events(frame: &mut Frame, area: Rect, app: &App) {
    let room = usize::from(area.height.saturating_sub(2));
    let lines: Vec<Line> = app
        .events
        .iter()
        .rev()
        .take(room)
        .rev()
        .map(|e| {
            let style = match e.event.as_str() {
                "failing" | "escalated" | "restart_failed" | "rollback_failed"
                | "deploy_failed" => Style::new().fg(Color::Red),
                "healthy" | "recovered" | "rolled_back" | "deployed" | "sight_restored" => {
                    Style::new().fg(Color::Green)
                }
                _ => Style::new(),
            };
            Line::from(vec![
                Span::raw(format!("{} ", e.ts.strftime("%H:%M:%S"))),
                Span::styled(format!("{:<14} ", e.event), style),
                Span::raw(format!("{}: {}", e.service, e.message)),
            ])
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" recovery log ")),
        area,
    );
}

fn draw_footer(frame: &mut Frame, area: Rect, app: &App) {
    let keys = "↑/↓ select  p pause  r resume  c recover  f failed only  q quit";
    let line = match &app.notice {
        Some(notice) => Line::from(vec![
            Span::styled(notice.clone(), Style::new().fg(Color::Cyan)),
            Span::raw(format!("   {keys}")),
        ]),
        None => Line::from(keys),
    };
    frame.render_widget(line, area);
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;

    fn report() -> StatusReport {
        serde_json::from_value(serde_json::json!({
            "generated": "2026-11-23T05:00:00Z",
            "overall": "unhealthy",
            "services": [
                {"name": "web", "state": "healthy", "health": "healthy", "paused": false,
                 "since": "2026-11-23T04:58:00Z", "attempts": 0, "availability_24h": 0.999,
                 "last_observation_ms": 300,
                 "probes": [{"outcome": "ok", "message": "ok", "latency_ms": 4, "age_ms": 300}]},
                {"name": "db", "state": "failing", "health": "unhealthy", "paused": false,
                 "since": "2026-11-23T04:59:30Z", "attempts": 1, "incident": "x-1",
                 "probes": [{"outcome": "fail", "message": "refused", "latency_ms": 1, "age_ms": 100}]}
            ]
        }))
        .unwrap()
    }

    fn screen(app: &App, now: Instant) -> String {
        let mut terminal = Terminal::new(TestBackend::new(120, 24)).unwrap();
        terminal.draw(|f| draw(f, app, now)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        buffer
            .content()
            .chunks(120)
            .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn press(app: &mut App, code: KeyCode) -> Step {
        key(app, KeyEvent::new(code, KeyModifiers::NONE))
    }

    #[test]
    fn shows_rows_filters_and_confirms() {
        let now = Instant::now();
        let mut app = App::new(false, Duration::from_secs(1));
        app.report = Some(report());
        app.fetched = Some(now);
        let text = screen(&app, now);
        assert!(text.contains("web") && text.contains("db"), "{text}");
        assert!(
            text.contains("99.90%") && text.contains("x-1 (open)"),
            "{text}"
        );
        assert!(!text.contains("STALE"), "{text}");

        assert_eq!(press(&mut app, KeyCode::Char('f')), Step::Continue);
        let text = screen(&app, now);
        assert!(text.contains("db") && !text.contains(" web "), "{text}");

        press(&mut app, KeyCode::Char('c'));
        assert!(screen(&app, now).contains("recover db? y to confirm"));
        let sent = press(&mut app, KeyCode::Char('y'));
        assert_eq!(
            sent,
            Step::Send(Pending {
                command: "recover",
                service: "db".into()
            })
        );
        press(&mut app, KeyCode::Char('p'));
        assert_eq!(press(&mut app, KeyCode::Char('n')), Step::Continue);
        assert_eq!(press(&mut app, KeyCode::Char('q')), Step::Quit);
    }

    #[test]
    fn old_data_is_stale_never_healthy() {
        let now = Instant::now();
        let mut app = App::new(false, Duration::from_secs(1));
        app.report = Some(report());
        app.fetched = Some(now);
        let later = now + Duration::from_secs(30);
        let text = screen(&app, later);
        assert!(text.contains("STALE: last update 30s ago"), "{text}");
        // Both rows' health reads "stale", not their last verdict.
        assert_eq!(text.matches(" stale ").count(), 2, "{text}");
    }
}
