//! `medic report`: what happened over a period, per service and overall, from
//! the recovery log (every rotated file) and the availability history —
//! availability, downtime, incidents, restarts, rollbacks, escalations,
//! deploys, time to detect and to recover, the worst incident with its
//! evidence, and the same figures for the period before. The JSON types here
//! are the documented contract of `medic report --json`; `markdown` renders the
//! short weekly note people forward (and the scheduled digest sends).

use std::collections::BTreeMap;
use std::path::Path;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::history::HistoryFile;
use crate::journal::RecoveryLine;

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Start of the period (inclusive).
    pub from: Timestamp,
    /// End of the period (exclusive): when the report was made.
    pub to: Timestamp,
    /// Every service together.
    pub overall: Summary,
    /// Every service together, over the period of the same length before `from`.
    pub previous: Summary,
    /// Per service (units of a selector are services of their own, `service/instance`).
    pub services: Vec<ServiceReport>,
    /// The incident that cost the most time, with its evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_incident: Option<Incident>,
}

/// One service's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceReport {
    /// The unit.
    pub service: String,
    /// This period.
    #[serde(flatten)]
    pub summary: Summary,
    /// The period before.
    pub previous: Summary,
    /// Its incident that cost the most time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_incident: Option<Incident>,
}

/// The figures of one period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Share of the observed time that was healthy (0..1); absent without history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<f64>,
    /// Observed time that was not healthy, in minutes (unknown time is neither up nor down).
    pub downtime_minutes: f64,
    /// Time with a verdict, in minutes.
    pub observed_minutes: f64,
    /// Incidents that began in the period.
    pub incidents: u32,
    /// Of those, still open at the end of the period.
    pub open_incidents: u32,
    /// Restart attempts.
    pub restarts: u32,
    /// Incidents (and failed deploys) that ended in a rollback to the last known good version.
    pub rollbacks: u32,
    /// Escalations to a person.
    pub escalations: u32,
    /// Deploys verified healthy and promoted.
    pub deploys_promoted: u32,
    /// Deploys that failed (and were rolled back).
    pub deploys_failed: u32,
    /// Mean time from the failure to medic seeing it, where the evidence says
    /// when the failure happened (a container's `finished_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detect_mean_secs: Option<f64>,
    /// The longest of those.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detect_worst_secs: Option<f64>,
    /// Mean time from medic seeing the failure to the incident's end (recovered or rolled back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover_mean_secs: Option<f64>,
    /// The longest of those.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover_worst_secs: Option<f64>,
}

/// One incident as the report tells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Its id.
    pub id: String,
    /// The unit.
    pub service: String,
    /// When medic saw the failure.
    pub started: Timestamp,
    /// When it ended, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<Timestamp>,
    /// recovered, rolled_back, reset, escalated (still waiting for a person) or open.
    pub outcome: String,
    /// How long it lasted (until the end of the period when still open).
    pub duration_secs: f64,
    /// Seconds from the failure to medic seeing it, when the evidence dates the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detect_secs: Option<f64>,
    /// Restart attempts it took.
    pub restarts: u32,
    /// The failure as medic described it.
    pub message: String,
    /// The evidence of the failure.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub evidence: serde_json::Map<String, serde_json::Value>,
}

/// Every line of the recovery log at `path` and its rotated files, oldest first.
pub fn read_recovery_log(path: &Path) -> Vec<RecoveryLine> {
    crate::rotation::files(path, None)
        .iter()
        .filter_map(|file| {
            Some(
                crate::lines::read::<RecoveryLine>(file)
                    .ok()?
                    .reported(file),
            )
        })
        .flatten()
        .collect()
}

/// The availability history in `state_dir`, if there is one.
pub fn read_history(state_dir: &Path) -> Option<HistoryFile> {
    let bytes = std::fs::read(state_dir.join("availability.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Builds the report for `[to - period, to)`, for `service` (and its
/// instances) or every service: those in the log or the history, and the
/// configured ones (`configured`) even when nothing happened to them.
pub fn build(
    lines: &[RecoveryLine],
    history: Option<&HistoryFile>,
    configured: &[String],
    to: Timestamp,
    period: SignedDuration,
    service: Option<&str>,
) -> Report {
    let from = to.checked_sub(period).unwrap_or(Timestamp::UNIX_EPOCH);
    let before = from.checked_sub(period).unwrap_or(Timestamp::UNIX_EPOCH);
    let wanted = |unit: &str| {
        service.is_none_or(|s| {
            unit == s
                || unit
                    .strip_prefix(s)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    };
    let mut units: Vec<String> = lines
        .iter()
        .filter(|l| l.ts >= before && l.ts < to && wanted(&l.service))
        .map(|l| l.service.clone())
        .chain(
            history
                .into_iter()
                .flat_map(|h| h.units.keys().cloned())
                .filter(|u| wanted(u)),
        )
        .collect();
    for name in configured.iter().filter(|n| wanted(n)) {
        let has_instances = units.iter().any(|u| {
            u.strip_prefix(name.as_str())
                .is_some_and(|r| r.starts_with('/'))
        });
        if !has_instances {
            units.push(name.clone());
        }
    }
    units.sort();
    units.dedup();
    let mut services = Vec::new();
    let mut all_now = Vec::new();
    let mut all_before = Vec::new();
    for unit in units {
        let mine: Vec<&RecoveryLine> = lines.iter().filter(|l| l.service == unit).collect();
        let now = summarize(&mine, history, &unit, from, to);
        let before_period = summarize(&mine, history, &unit, before, from);
        services.push(ServiceReport {
            service: unit,
            summary: now.0.clone(),
            previous: before_period.0.clone(),
            worst_incident: worst(now.1.clone()),
        });
        all_now.push(now);
        all_before.push(before_period);
    }
    let overall = combine(all_now.iter());
    let previous = combine(all_before.iter());
    let worst_incident = worst(all_now.into_iter().flat_map(|(_, i)| i).collect());
    Report {
        from,
        to,
        overall,
        previous,
        services,
        worst_incident,
    }
}

/// The incident that cost the most time: escalated or open ones first.
fn worst(mut incidents: Vec<Incident>) -> Option<Incident> {
    incidents.sort_by(|a, b| {
        let unresolved = |i: &Incident| matches!(i.outcome.as_str(), "escalated" | "open");
        (unresolved(a), a.duration_secs)
            .partial_cmp(&(unresolved(b), b.duration_secs))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    incidents.pop()
}

/// One unit's figures over `[from, to)`, and its incidents that began there.
fn summarize(
    lines: &[&RecoveryLine],
    history: Option<&HistoryFile>,
    unit: &str,
    from: Timestamp,
    to: Timestamp,
) -> (Summary, Vec<Incident>) {
    let mut summary = Summary::default();
    let mut incidents: BTreeMap<String, Incident> = BTreeMap::new();
    for line in lines.iter().filter(|l| l.ts >= from && l.ts < to) {
        match line.event.as_str() {
            "restart" => summary.restarts += 1,
            "rolled_back" => summary.rollbacks += 1,
            "escalated" => summary.escalations += 1,
            "deployed" => summary.deploys_promoted += 1,
            "deploy_failed" => summary.deploys_failed += 1,
            _ => {}
        }
        let Some(id) = &line.incident else {
            continue;
        };
        if line.event == "failing" && !incidents.contains_key(id) {
            incidents.insert(
                id.clone(),
                Incident {
                    id: id.clone(),
                    service: unit.to_owned(),
                    started: line.ts,
                    ended: None,
                    outcome: "open".into(),
                    duration_secs: 0.0,
                    detect_secs: detection_secs(line),
                    restarts: 0,
                    message: line.message.clone(),
                    evidence: line.evidence.clone(),
                },
            );
            continue;
        }
        let Some(incident) = incidents.get_mut(id) else {
            continue; // began before the period
        };
        match line.event.as_str() {
            "restart" => incident.restarts += 1,
            "escalated" => incident.outcome = "escalated".into(),
            "recovered" | "rolled_back" | "reset" if incident.ended.is_none() => {
                incident.ended = Some(line.ts);
                incident.outcome = line.event.clone();
            }
            _ => {}
        }
    }
    let incidents: Vec<Incident> = incidents
        .into_values()
        .map(|mut incident| {
            let end = incident.ended.unwrap_or(to);
            incident.duration_secs = secs_between(incident.started, end);
            incident
        })
        .collect();
    set_incident_figures(&mut summary, &incidents);
    if let Some((up, known)) = history.and_then(|h| availability(h, unit, from, to)) {
        summary.observed_minutes = known / 60_000.0;
        summary.downtime_minutes = (known - up) / 60_000.0;
        summary.availability = (known > 0.0).then(|| up / known);
    }
    (summary, incidents)
}

/// Seconds from the failure the evidence dates (`finished_at`) to the failing event.
fn detection_secs(line: &RecoveryLine) -> Option<f64> {
    let failed: Timestamp = line.evidence.get("finished_at")?.as_str()?.parse().ok()?;
    let secs = secs_between(failed, line.ts);
    (0.0..=86_400.0).contains(&secs).then_some(secs)
}

/// Up and known milliseconds of `unit` in the hour buckets that start in `[from, to)`.
fn availability(
    history: &HistoryFile,
    unit: &str,
    from: Timestamp,
    to: Timestamp,
) -> Option<(f64, f64)> {
    let stored = history.units.get(unit)?;
    let hour = |t: Timestamp| t.as_second().div_euclid(3600);
    let (first, last) = (hour(from), hour(to));
    let (mut up, mut known) = (0.0, 0.0);
    for run in &stored.hours {
        let buckets = run.overlap(first, last) as f64;
        up += buckets * f64::from(run.up_ms);
        known += buckets * f64::from(run.known_ms);
    }
    (known > 0.0).then_some((up, known))
}

/// Incident counts and the times to detect and to recover, from the incidents themselves.
fn set_incident_figures(summary: &mut Summary, incidents: &[Incident]) {
    summary.incidents = u32::try_from(incidents.len()).unwrap_or(u32::MAX);
    summary.open_incidents =
        u32::try_from(incidents.iter().filter(|i| i.ended.is_none()).count()).unwrap_or(u32::MAX);
    let detect: Vec<f64> = incidents.iter().filter_map(|i| i.detect_secs).collect();
    // Incidents a person reset are not recoveries.
    let recover: Vec<f64> = incidents
        .iter()
        .filter(|i| i.ended.is_some() && i.outcome != "reset")
        .map(|i| i.duration_secs)
        .collect();
    (summary.detect_mean_secs, summary.detect_worst_secs) = mean_and_worst(&detect);
    (summary.recover_mean_secs, summary.recover_worst_secs) = mean_and_worst(&recover);
}

/// Every service together: sums, availability over all observed time, and the
/// times over all incidents (not a mean of means).
fn combine<'a>(parts: impl Iterator<Item = &'a (Summary, Vec<Incident>)>) -> Summary {
    let mut total = Summary::default();
    let (mut up, mut known) = (0.0, 0.0);
    let mut incidents = Vec::new();
    for (s, mine) in parts {
        total.restarts += s.restarts;
        total.rollbacks += s.rollbacks;
        total.escalations += s.escalations;
        total.deploys_promoted += s.deploys_promoted;
        total.deploys_failed += s.deploys_failed;
        total.downtime_minutes += s.downtime_minutes;
        total.observed_minutes += s.observed_minutes;
        if s.availability.is_some() {
            known += s.observed_minutes;
            up += s.observed_minutes - s.downtime_minutes;
        }
        incidents.extend(mine.iter().cloned());
    }
    total.availability = (known > 0.0).then(|| up / known);
    set_incident_figures(&mut total, &incidents);
    total
}

fn mean_and_worst(values: &[f64]) -> (Option<f64>, Option<f64>) {
    if values.is_empty() {
        return (None, None);
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    (Some(mean), values.iter().copied().reduce(f64::max))
}

fn secs_between(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64()
}

/// The report as a short note a person forwards.
pub fn markdown(report: &Report, host: &str) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let days = secs_between(report.from, report.to) / 86_400.0;
    let span = if (days - days.round()).abs() < 0.01 {
        format!("{} days", days.round())
    } else {
        duration(secs_between(report.from, report.to))
    };
    let o = &report.overall;
    let p = &report.previous;
    let _ = writeln!(
        out,
        "## medic report for {host}: {} to {} ({span})\n",
        report.from.strftime("%a %d %b %H:%M"),
        report.to.strftime("%a %d %b %H:%M UTC")
    );
    let _ = writeln!(
        out,
        "**{} services, {} available, {} down, {}.** {}\n",
        report.services.len(),
        percent(o.availability),
        minutes(o.downtime_minutes),
        count(o.incidents, "incident"),
        change(o, p)
    );
    if o.incidents > 0 {
        let _ = writeln!(
            out,
            "medic restarted services {}, rolled back {}, and {} needed a person. Time to recover: mean {}, worst {}{}.\n",
            count(o.restarts, "time"),
            count(o.rollbacks, "time"),
            count(o.escalations, "escalation"),
            o.recover_mean_secs.map_or("-".into(), duration),
            o.recover_worst_secs.map_or("-".into(), duration),
            o.detect_mean_secs
                .map(|d| format!(
                    "; time to detect: mean {}, worst {}",
                    duration(d),
                    duration(o.detect_worst_secs.unwrap_or(d))
                ))
                .unwrap_or_default(),
        );
    }
    if o.deploys_promoted + o.deploys_failed > 0 {
        let _ = writeln!(
            out,
            "Deploys: {} promoted, {} failed and rolled back.\n",
            o.deploys_promoted, o.deploys_failed
        );
    }
    if let Some(worst) = &report.worst_incident {
        let _ = writeln!(
            out,
            "Worst incident: **{}** on {}, {} ({}), {}: {}",
            worst.service,
            worst.started.strftime("%a %d %b %H:%M"),
            duration(worst.duration_secs),
            worst.outcome.replace('_', " "),
            count(worst.restarts, "restart"),
            worst.message
        );
        let facts: Vec<String> = worst
            .evidence
            .iter()
            .filter(|(_, v)| !v.is_array() && !v.is_object())
            .take(8)
            .map(|(k, v)| format!("{k}={}", v.as_str().map_or(v.to_string(), str::to_owned)))
            .collect();
        if !facts.is_empty() {
            let _ = writeln!(out, "Evidence: {}", facts.join(", "));
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "| service | available | down | incidents | restarts | rollbacks | escalations | deploys | recover (mean / worst) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for s in &report.services {
        let m = &s.summary;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} ({:+}) | {} | {} | {} | {} ok / {} failed | {} / {} |",
            s.service,
            percent(m.availability),
            minutes(m.downtime_minutes),
            m.incidents,
            i64::from(m.incidents) - i64::from(s.previous.incidents),
            m.restarts,
            m.rollbacks,
            m.escalations,
            m.deploys_promoted,
            m.deploys_failed,
            m.recover_mean_secs.map_or("-".into(), duration),
            m.recover_worst_secs.map_or("-".into(), duration),
        );
    }
    out
}

/// "The period before: 99.50 % available, 6 incidents (2 fewer now)."
fn change(now: &Summary, before: &Summary) -> String {
    let delta = i64::from(now.incidents) - i64::from(before.incidents);
    let trend = match delta {
        0 => "as many now".to_owned(),
        d if d < 0 => format!("{} fewer now", -d),
        d => format!("{d} more now"),
    };
    format!(
        "The period before: {} available, {} ({trend}).",
        percent(before.availability),
        count(before.incidents, "incident")
    )
}

fn count(n: u32, what: &str) -> String {
    match (n, what) {
        (1, "time") => "once".into(),
        (n, "time") => format!("{n} times"),
        (1, what) => format!("1 {what}"),
        (n, what) => format!("{n} {what}s"),
    }
}

fn percent(value: Option<f64>) -> String {
    value.map_or("unknown".into(), |v| format!("{:.2} %", v * 100.0))
}

/// Downtime: "0", "12 s", "14 min", "3 h 5 min".
pub fn minutes(value: f64) -> String {
    if value <= 0.0 {
        "0".into()
    } else {
        duration(value * 60.0)
    }
}

/// "0.4 s", "45 s", "3 min 20 s", "2 h 5 min", "1 d 3 h".
pub fn duration(secs: f64) -> String {
    if secs < 10.0 {
        return format!("{:.1} s", secs.max(0.0));
    }
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Run, StoredHistory};

    fn line(ts: &str, service: &str, event: &str, incident: Option<&str>) -> RecoveryLine {
        RecoveryLine {
            ts: ts.parse().unwrap(),
            service: service.into(),
            event: event.into(),
            state: "x".into(),
            incident: incident.map(str::to_owned),
            attempt: None,
            message: format!("{service} {event}"),
            evidence: serde_json::Map::new(),
        }
    }

    #[test]
    fn figures_per_service_and_overall_with_the_period_before() {
        let mut died = line("2026-11-28T10:00:05Z", "web", "failing", Some("a"));
        died.evidence
            .insert("finished_at".into(), "2026-11-28T10:00:03Z".into());
        let lines = vec![
            // The week before: one incident of web.
            line("2026-11-20T10:00:00Z", "web", "failing", Some("old")),
            line("2026-11-20T10:00:30Z", "web", "recovered", Some("old")),
            // This week: web dies (detected 2 s later), two restarts, recovered after 60 s.
            died,
            line("2026-11-28T10:00:06Z", "web", "restart", Some("a")),
            line("2026-11-28T10:00:20Z", "web", "restart", Some("a")),
            line("2026-11-28T10:01:05Z", "web", "recovered", Some("a")),
            // db: rolled back after 5 min; a deploy promoted and one failed.
            line("2026-11-27T00:00:00Z", "db", "failing", Some("b")),
            line("2026-11-27T00:05:00Z", "db", "rolled_back", Some("b")),
            line("2026-11-26T00:00:00Z", "db", "deployed", None),
            line("2026-11-26T01:00:00Z", "db", "deploy_failed", None),
            // q: escalated, still waiting; and one a person reset (not a recovery).
            line("2026-11-29T09:00:00Z", "q/1", "failing", Some("c")),
            line("2026-11-29T09:00:10Z", "q/1", "escalated", Some("c")),
            line("2026-11-25T09:00:00Z", "q/1", "failing", Some("d")),
            line("2026-11-25T09:10:00Z", "q/1", "reset", Some("d")),
        ];
        let hour = |t: &str| t.parse::<Timestamp>().unwrap().as_second() / 3600;
        let mut history = HistoryFile::default();
        history.units.insert(
            "web".into(),
            StoredHistory {
                minutes: vec![],
                hours: vec![Run {
                    start: hour("2026-11-28T10:00:00Z"),
                    count: 1,
                    up_ms: 3_540_000,
                    known_ms: 3_600_000,
                }],
            },
        );
        let to: Timestamp = "2026-11-29T12:00:00Z".parse().unwrap();
        let week = SignedDuration::from_hours(24 * 7);
        let report = build(&lines, Some(&history), &[], to, week, None);

        let web = &report.services.iter().find(|s| s.service == "web").unwrap();
        assert_eq!((web.summary.incidents, web.summary.restarts), (1, 2));
        assert_eq!(web.previous.incidents, 1);
        assert_eq!(web.summary.detect_mean_secs, Some(2.0));
        assert_eq!(web.summary.recover_worst_secs, Some(60.0));
        assert_eq!(web.summary.downtime_minutes, 1.0);
        assert_eq!(web.summary.availability, Some(3_540_000.0 / 3_600_000.0));

        let o = &report.overall;
        assert_eq!((o.incidents, o.open_incidents), (4, 1));
        assert_eq!((o.rollbacks, o.escalations), (1, 1));
        assert_eq!((o.deploys_promoted, o.deploys_failed), (1, 1));
        // Recovered in 60 s and rolled back in 300 s; the reset one is no recovery.
        assert_eq!(o.recover_mean_secs, Some(180.0));
        assert_eq!(report.previous.incidents, 1);
        let worst = report.worst_incident.as_ref().unwrap();
        assert_eq!(
            (worst.service.as_str(), worst.outcome.as_str()),
            ("q/1", "escalated")
        );

        // --service q covers its instances only.
        let q = build(&lines, Some(&history), &["q".into()], to, week, Some("q"));
        assert_eq!(q.services.len(), 1);
        assert_eq!(q.overall.incidents, 2);

        let note = markdown(&report, "host");
        assert!(note.contains("4 incidents"), "{note}");
        assert!(
            note.contains("The period before: unknown available, 1 incident (3 more now)."),
            "{note}"
        );
        assert!(note.contains("Deploys: 1 promoted, 1 failed"), "{note}");
    }

    #[test]
    fn rotated_journals_are_read_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery.jsonl");
        let write = |p: &Path, ts: &str| {
            let text = serde_json::to_string(&line(ts, "web", "restart", None)).unwrap();
            std::fs::write(p, text + "\n").unwrap();
        };
        write(&path, "2026-11-29T00:00:00Z");
        write(&dir.path().join("recovery.jsonl.1"), "2026-11-28T00:00:00Z");
        write(&dir.path().join("recovery.jsonl.2"), "2026-11-27T00:00:00Z");
        let days: Vec<i8> = read_recovery_log(&path)
            .iter()
            .map(|l| l.ts.to_zoned(jiff::tz::TimeZone::UTC).day())
            .collect();
        assert_eq!(days, [27, 28, 29]);
    }
}
