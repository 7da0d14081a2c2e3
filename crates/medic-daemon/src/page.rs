//! The status page: `/` is HTML rendered here, the only rendering; it reads
//! fine without JavaScript, and the embedded script (`page/app.js`, no build
//! step, no CDN) fetches it again every few seconds and swaps the parts that
//! changed. `/api/status` is the same data as JSON for tools (`page/server.rs`
//! holds the routes). Per service a light — green only on fresh healthy
//! evidence, amber while medic acts, red when failing or escalated, grey when
//! nothing is known — availability bars over 24 h / 7 d / 30 d from the
//! recorded history, and the open and recent incidents from the recovery log
//! with their evidence.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use medic_records::journal::RecoveryLine;
use serde::{Deserialize, Serialize};

mod server;
use crate::page_snapshot::{PageSnapshot, Window};
use crate::status::Flapping;
pub use server::routes;

/// The page's stylesheet.
pub const CSS: &str = include_str!("page/style.css");
/// The page's script: fetches the page again and swaps what changed; marks stale data.
pub const JS: &str = include_str!("page/app.js");

/// The page calls its data stale when it is older than this.
pub const STALE_AFTER: Duration = Duration::from_secs(10);
/// How often the script polls.
pub const REFRESH: Duration = Duration::from_secs(2);
/// How much of the recovery log's end is read for incidents.
const LOG_TAIL: u64 = 512 * 1024;
/// How many incidents the page lists.
const INCIDENTS: usize = 15;
/// How many events of one incident the page lists (the first and the latest ones).
const INCIDENT_EVENTS: usize = 12;

/// The JSON of `/api/status` (and what the HTML shows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageData {
    /// When the daemon made this answer.
    pub generated: Timestamp,
    /// The page shows its data as stale (grey, with a banner) when it is older than this.
    pub stale_after_secs: u64,
    /// How often the page polls.
    pub refresh_secs: u64,
    /// `healthy` only when every service is.
    pub overall: String,
    /// One per unit.
    pub services: Vec<PageService>,
    /// Open incidents first, then the most recent closed ones.
    pub incidents: Vec<PageIncident>,
    /// What medic itself cannot do right now (a file it cannot write).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// One unit on the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageService {
    /// The unit name.
    pub name: String,
    /// green, amber, red or grey.
    pub light: String,
    /// The recovery state.
    pub state: String,
    /// healthy, unhealthy or unknown.
    pub health: String,
    /// Paused by a person.
    pub paused: bool,
    /// When the state last changed.
    pub since: Timestamp,
    /// Age of the freshest observation, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_observation_ms: Option<u64>,
    /// Restart attempts used inside the attempt window.
    pub attempts: u32,
    /// Flapping with nothing different to roll back to: restarts wait a growing delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flapping: Option<Flapping>,
    /// The open incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// The probes' last messages, joined.
    pub message: String,
    /// 24h, 7d, 30d.
    pub availability: Vec<Window>,
}

/// An incident as the recovery log tells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageIncident {
    /// Its id.
    pub id: String,
    /// The unit.
    pub service: String,
    /// Still open (the unit's current incident).
    pub open: bool,
    /// Its first recorded event's time.
    pub opened: Timestamp,
    /// The latest event's kind: `recovered`, `rolled_back`, `escalated`, …
    pub last_event: String,
    /// Its events, oldest first (the first and the latest ones when there are many).
    pub events: Vec<RecoveryLine>,
}

/// The light of a state and health: red when failing or escalated, amber while
/// medic acts (or a unit starts up), green only on fresh healthy evidence, and
/// grey when nothing is known (stale, blind, never observed).
pub fn light(state: &str, health: &str) -> &'static str {
    match (state, health) {
        ("escalated" | "failing" | "flapping", _) => "red",
        ("recovering" | "rolling_back" | "deploying" | "restarting" | "replacing", _) => "amber",
        (_, "healthy") => "green",
        (_, "unknown") => "grey",
        ("starting", _) => "amber",
        _ => "red",
    }
}

impl PageData {
    /// Combines the loop's snapshot with the incidents read from the recovery log.
    pub fn new(snapshot: PageSnapshot) -> Self {
        let PageSnapshot {
            report,
            mut availability,
            recovery_log,
        } = snapshot;
        let events = recent_events(&recovery_log, LOG_TAIL);
        let open: Vec<&str> = report
            .services
            .iter()
            .filter_map(|s| s.incident.as_deref())
            .collect();
        let incidents = incidents(&events, &open);
        let services = report
            .services
            .iter()
            .map(|s| PageService {
                name: s.name.clone(),
                light: light(&s.state, &s.health).to_owned(),
                state: s.state.clone(),
                health: s.health.clone(),
                paused: s.paused,
                since: s.since,
                last_observation_ms: s.last_observation_ms,
                attempts: s.attempts,
                flapping: s.flapping.clone(),
                incident: s.incident.clone(),
                message: s
                    .probes
                    .iter()
                    .map(|p| p.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
                availability: availability.remove(&s.name).unwrap_or_default(),
            })
            .collect();
        Self {
            generated: report.generated,
            stale_after_secs: STALE_AFTER.as_secs(),
            refresh_secs: REFRESH.as_secs(),
            overall: report.overall,
            services,
            incidents,
            problems: report.problems,
        }
    }
}

/// The recovery log's lines from its last `tail` bytes (a torn or partial first line is skipped).
pub fn recent_events(path: &Path, tail: u64) -> Vec<RecoveryLine> {
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(tail);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut text = String::new();
    if file.take(tail).read_to_string(&mut text).is_err() {
        return Vec::new();
    }
    let text = if start > 0 {
        text.split_once('\n').map_or("", |(_, rest)| rest)
    } else {
        &text
    };
    text.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// Groups events by incident: the open ones first, then the latest closed ones.
fn incidents(events: &[RecoveryLine], open: &[&str]) -> Vec<PageIncident> {
    let mut order: Vec<&str> = Vec::new();
    let mut by_id: BTreeMap<&str, Vec<&RecoveryLine>> = BTreeMap::new();
    for event in events {
        if let Some(id) = event.incident.as_deref() {
            by_id
                .entry(id)
                .or_insert_with(|| {
                    order.push(id);
                    Vec::new()
                })
                .push(event);
        }
    }
    let mut list: Vec<PageIncident> = order
        .iter()
        .rev()
        .filter_map(|id| {
            let events = by_id.get(id)?;
            let first = events.first()?;
            let last = events.last()?;
            let kept: Vec<RecoveryLine> = if events.len() > INCIDENT_EVENTS {
                let head = INCIDENT_EVENTS / 2;
                events[..head]
                    .iter()
                    .chain(&events[events.len() - (INCIDENT_EVENTS - head)..])
                    .map(|e| (*e).clone())
                    .collect()
            } else {
                events.iter().map(|e| (*e).clone()).collect()
            };
            Some(PageIncident {
                id: (*id).to_owned(),
                service: first.service.clone(),
                open: open.contains(id),
                opened: first.ts,
                last_event: last.event.clone(),
                events: kept,
            })
        })
        .collect();
    // Stable: open ones first, each group newest first.
    list.sort_by_key(|i| !i.open);
    list.truncate(INCIDENTS);
    list
}

/// Renders the whole page, with the data in it, for browsers with or without JavaScript.
pub fn render(data: &PageData) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let overall = match data.overall.as_str() {
        "healthy" => "green",
        "unhealthy" => "red",
        _ => "grey",
    };
    // Invariant: writing to a String cannot fail.
    let _ = write!(
        out,
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>medic status</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/page.css">
<noscript><meta http-equiv="refresh" content="{refresh}"></noscript>
<script src="/page.js" defer></script>
</head>
<body data-generated="{generated}" data-stale-after="{stale}" data-refresh="{refresh_js}">
<header>
<h1><span id="overall" class="light {overall}" title="{overall_text}"></span> medic status</h1>
<p id="generated">Data from <time datetime="{generated}">{generated_text}</time></p>
</header>
<div id="stale-banner" class="banner" role="alert">Stale data: no fresh answer from medic since <span id="stale-since">{generated_text}</span>. Lights are grey until fresh data arrives.</div>
<main>
<section id="services">
<h2>Services</h2>
"#,
        refresh = data.refresh_secs.max(1) * 5,
        generated = data.generated,
        generated_text = data.generated.strftime("%Y-%m-%d %H:%M:%S UTC"),
        stale = data.stale_after_secs,
        refresh_js = data.refresh_secs,
        overall_text = escape(&data.overall),
    );
    for problem in &data.problems {
        let _ = writeln!(
            out,
            "<div class=\"banner problem\" role=\"alert\">{}</div>",
            escape(problem)
        );
    }
    if data.services.is_empty() {
        out.push_str("<p class=\"empty\">No services are watched.</p>\n");
    }
    for s in &data.services {
        service_html(&mut out, s, data.generated);
    }
    out.push_str("</section>\n<section id=\"incidents\">\n<h2>Incidents</h2>\n");
    if data.incidents.is_empty() {
        out.push_str("<p class=\"empty\">No incidents in the recovery log.</p>\n");
    }
    for incident in &data.incidents {
        incident_html(&mut out, incident);
    }
    out.push_str("</section>\n</main>\n</body>\n</html>\n");
    out
}

fn service_html(out: &mut String, s: &PageService, generated: Timestamp) {
    let state = if s.paused {
        format!("{} (paused)", s.state)
    } else {
        s.state.clone()
    };
    let seen = s
        .last_observation_ms
        .map_or("never".to_owned(), |ms| ago(ms / 1000));
    let since = span(u64::try_from(generated.duration_since(s.since).as_secs()).unwrap_or(0));
    let _ = write!(
        out,
        r#"<article class="service" data-service="{name}" data-light="{light}">
<div class="head"><span class="light {light}" title="{light}: {health}"></span><span class="name">{name}</span><span class="state">{state}</span><span class="health">{health}</span></div>
<p class="facts">in state for {since} · last observation {seen} · attempts {attempts}{flapping}{incident}</p>
<p class="message">{message}</p>
<div class="windows">
"#,
        name = escape(&s.name),
        light = escape(&s.light),
        health = escape(&s.health),
        state = escape(&state),
        attempts = s.attempts,
        flapping = s
            .flapping
            .as_ref()
            .map(|f| format!(" · {}", escape(&f.describe(generated))))
            .unwrap_or_default(),
        incident = s
            .incident
            .as_deref()
            .map(|i| format!(" · incident {}", escape(i)))
            .unwrap_or_default(),
        message = escape(&s.message),
    );
    for w in &s.availability {
        let _ = write!(
            out,
            "<div class=\"window\" data-window=\"{window}\"><span class=\"label\">{window}</span><span class=\"bars\">",
            window = escape(&w.window)
        );
        for bar in &w.bars {
            let _ = write!(
                out,
                "<span class=\"bar {}\" title=\"{}\"></span>",
                bar_class(*bar),
                percent(*bar)
            );
        }
        let _ = writeln!(
            out,
            "</span><span class=\"ratio\">{}</span></div>",
            percent(w.ratio)
        );
    }
    out.push_str("</div>\n</article>\n");
}

fn incident_html(out: &mut String, i: &PageIncident) {
    let _ = write!(
        out,
        r#"<details class="incident{open_class}" data-incident="{id}"{open_attr}>
<summary><span class="id">{id}</span> <span class="name">{service}</span> <span class="outcome">{status}</span> <time>{opened}</time></summary>
<ol>
"#,
        open_class = if i.open { " open" } else { "" },
        open_attr = if i.open { " open" } else { "" },
        id = escape(&i.id),
        service = escape(&i.service),
        status = if i.open {
            format!("open ({})", escape(&i.last_event))
        } else {
            escape(&i.last_event)
        },
        opened = i.opened.strftime("%Y-%m-%d %H:%M:%S UTC"),
    );
    for e in &i.events {
        let _ = write!(
            out,
            "<li><time>{}</time> <b>{}</b> {}",
            e.ts.strftime("%H:%M:%S"),
            escape(&e.event),
            escape(&e.message)
        );
        if !e.evidence.is_empty() {
            let evidence = serde_json::to_string_pretty(&e.evidence).unwrap_or_default();
            let _ = write!(out, "<pre class=\"evidence\">{}</pre>", escape(&evidence));
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ol>\n</details>\n");
}

/// The CSS class of one availability bar.
fn bar_class(ratio: Option<f64>) -> &'static str {
    match ratio {
        None => "none",
        Some(r) if r >= 0.999 => "up",
        Some(r) if r >= 0.9 => "partial",
        Some(_) => "down",
    }
}

fn percent(ratio: Option<f64>) -> String {
    ratio.map_or("no data".to_owned(), |r| format!("{:.2} %", r * 100.0))
}

/// A duration in its largest whole unit ("45s", "3m", "2h", "5d"), for the
/// status page and `medic top`.
pub fn span(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

fn ago(secs: u64) -> String {
    format!("{} ago", span(secs))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_green_without_fresh_health() {
        assert_eq!(light("healthy", "healthy"), "green");
        assert_eq!(light("healthy", "unknown"), "grey");
        assert_eq!(light("starting", "unknown"), "grey");
        assert_eq!(light("starting", "unhealthy"), "amber");
        assert_eq!(light("deploying", "unknown"), "amber");
        assert_eq!(light("recovering", "unhealthy"), "amber");
        assert_eq!(light("failing", "unknown"), "red");
        assert_eq!(light("escalated", "unhealthy"), "red");
    }

    #[test]
    fn renders_escaped_and_groups_incidents() {
        let line = |id: &str, event: &str| RecoveryLine {
            ts: Timestamp::UNIX_EPOCH,
            service: "web<1>".into(),
            event: event.into(),
            state: "failing".into(),
            incident: Some(id.into()),
            attempt: None,
            message: "probe said <no>".into(),
            evidence: serde_json::json!({"exit_code": 3})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        };
        let events = vec![
            line("a-1", "failing"),
            line("a-1", "recovered"),
            line("a-2", "failing"),
        ];
        let list = incidents(&events, &["a-2"]);
        assert_eq!(list.len(), 2);
        assert_eq!((list[0].id.as_str(), list[0].open), ("a-2", true));
        assert_eq!(list[1].last_event, "recovered");
        let data = PageData {
            generated: Timestamp::UNIX_EPOCH,
            stale_after_secs: 10,
            refresh_secs: 2,
            overall: "unhealthy".into(),
            services: vec![],
            incidents: list,
            problems: vec![],
        };
        let html = render(&data);
        assert!(html.contains("web&lt;1&gt;"), "{html}");
        assert!(!html.contains("<no>"));
        assert!(html.contains("&quot;exit_code&quot;: 3"));
    }
}
