//! The invariants judged from medic's own files at the end of a run, against
//! what the world recorded: the files load and every line parses; nothing
//! acts on an escalated unit or for an incident that closed; no action is
//! counted failed that did not run; every escalation reached the alerts;
//! nothing is healthy without a fresh success; and once the world has been
//! quiet longer than any policy's bound, every incident has ended and no
//! service medic could heal is left down.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use jiff::{SignedDuration, Timestamp};
use medic_core::snapshot::SavedPhase;
use medic_daemon::clock::WallClock;
use medic_daemon::store::Store;
use medic_records::journal::{AlertLine, RecoveryLine};

use crate::world::Record;
use crate::world::SINK;

/// Freshness under the default policy: 2 × interval + timeout.
pub(crate) const FRESH: SignedDuration = SignedDuration::from_secs(22);

/// What a run played that changes what can be judged.
#[derive(Debug, Clone, Copy)]
pub struct Played {
    /// The wall clock stepped: freshness is not judged by wall times.
    pub clock_stepped: bool,
    /// medic was killed: an alert may reach a sink more than once.
    pub killed: bool,
    /// A storm held the units' alerts back from the sinks.
    pub storm: bool,
}

/// Checks the state directory `dir` after the last medic stopped.
/// `settled[i]`: whether unit i is down for good, and whether it is down.
pub fn files(
    dir: &Path,
    units: &[String],
    settled: &[(bool, bool)],
    record: &Record,
    played: Played,
) -> Vec<String> {
    let mut found = Vec::new();
    let recovery: Vec<(u64, RecoveryLine)> = lines(&dir.join("recovery.jsonl"), &mut found);
    let alerts: Vec<(u64, AlertLine)> = lines(&dir.join("alerts/critical.jsonl"), &mut found);
    let _: Vec<(u64, serde_json::Value)> = lines(&dir.join("state.changes.jsonl"), &mut found);
    let mut by_unit: BTreeMap<&str, Vec<(u64, &RecoveryLine)>> = BTreeMap::new();
    for (offset, line) in &recovery {
        by_unit
            .entry(line.service.as_str())
            .or_default()
            .push((*offset, line));
    }
    for (i, name) in units.iter().enumerate() {
        let lines = by_unit.get(name.as_str()).map_or(&[][..], Vec::as_slice);
        let jobs: Vec<_> = record.jobs.iter().filter(|j| j.unit == i).collect();
        let escalated = lines.iter().find(|(_, l)| l.event == "escalated");
        if let Some(&(at, escalated)) = escalated {
            if let Some(job) = jobs.iter().find(|j| j.log_offset > at) {
                found.push(format!(
                    "{name}: {:?} started after it escalated at {}",
                    job.step, escalated.ts
                ));
            }
            let alerted = alerts
                .iter()
                .any(|(_, a)| a.incident == escalated.incident && a.severity == "critical");
            if !alerted {
                found.push(format!(
                    "{name}: escalated ({}) with no critical alert",
                    escalated.incident.as_deref().unwrap_or("no incident")
                ));
            }
        }
        if !played.storm {
            delivered(name, lines, &alerts, record, played.killed, &mut found);
        }
        for &(at, close) in lines
            .iter()
            .filter(|(_, l)| matches!(l.event.as_str(), "recovered" | "rolled_back"))
        {
            let stale = jobs
                .iter()
                .find(|j| Some(&j.incident) == close.incident.as_ref() && j.log_offset > at);
            if let Some(job) = stale {
                found.push(format!(
                    "{name}: {:?} for {} started after the incident closed ({}) at {}",
                    job.step, job.incident, close.event, close.ts
                ));
            }
        }
        let failed = lines
            .iter()
            .filter(|(_, l)| matches!(l.event.as_str(), "restart_failed" | "rollback_failed"))
            .count();
        if failed > jobs.len() {
            found.push(format!(
                "{name}: {failed} actions counted failed, {} ran",
                jobs.len()
            ));
        }
        if !played.clock_stepped {
            for (_, healthy) in lines.iter().filter(|(_, l)| {
                matches!(l.event.as_str(), "healthy" | "recovered" | "rolled_back")
            }) {
                let fresh = record.oks[i]
                    .iter()
                    .any(|ok| *ok <= healthy.ts && healthy.ts.duration_since(*ok) <= FRESH);
                if !fresh {
                    found.push(format!(
                        "{name}: `{}` at {} with no success within {FRESH:#} before",
                        healthy.event, healthy.ts
                    ));
                }
            }
        }
    }
    end_state(dir, units, settled, &mut found);
    found
}

/// Each escalation of `name` reached the sink exactly once (at least once
/// when medic was killed: a delivery whose answer a kill -9 cut is sent again).
fn delivered(
    name: &str,
    lines: &[(u64, &RecoveryLine)],
    alerts: &[(u64, AlertLine)],
    record: &Record,
    killed: bool,
    found: &mut Vec<String>,
) {
    let incidents: BTreeSet<_> = lines
        .iter()
        .filter(|(_, l)| l.event == "escalated")
        .map(|(_, l)| l.incident.clone())
        .collect();
    for incident in incidents {
        let ids: BTreeSet<&str> = alerts
            .iter()
            .filter(|(_, a)| a.kind == "escalated" && a.service == name && a.incident == incident)
            .map(|(_, a)| a.id.as_str())
            .collect();
        let times = record
            .deliveries
            .iter()
            .filter(|(sink, id)| sink == SINK && ids.contains(id.as_str()))
            .count();
        if times == 0 || (times > 1 && !killed) {
            found.push(format!(
                "{name}: the escalation of {} reached `{SINK}` {times} times",
                incident.as_deref().unwrap_or("no incident")
            ));
        }
    }
}

/// Once the world has been quiet: every incident ended (closed or
/// escalated), and no service medic could heal is down unless escalated.
fn end_state(dir: &Path, units: &[String], settled: &[(bool, bool)], found: &mut Vec<String>) {
    let store = match Store::open(dir, Timestamp::UNIX_EPOCH) {
        Ok(store) => store,
        Err(error) => {
            found.push(format!("the state store does not load: {error:#}"));
            return;
        }
    };
    let clock = WallClock::now();
    for (i, name) in units.iter().enumerate() {
        let Some(unit) = store.snapshot(name, &clock) else {
            found.push(format!("{name}: not in the state store"));
            continue;
        };
        let escalated = unit.phase == SavedPhase::Escalated;
        if unit.incident.is_some() && !escalated {
            found.push(format!(
                "{name}: its incident is still open after the quiet period ({})",
                phase_name(unit.phase)
            ));
        }
        if let Some(&(for_good, down)) = settled.get(i)
            && down
            && !for_good
            && !escalated
        {
            found.push(format!("{name}: left down, not escalated"));
        }
    }
}

/// A saved phase in words, without its instants (a violation's text is the
/// same in every run of a seed).
pub(crate) fn phase_name(phase: SavedPhase) -> String {
    match phase {
        SavedPhase::Fine => "fine".into(),
        SavedPhase::Failing => "failing".into(),
        SavedPhase::Waiting { step, .. } => format!("waiting for {step:?}"),
        SavedPhase::Acting(step) => format!("acting: {step:?}"),
        SavedPhase::Verifying { step, .. } => format!("verifying {step:?}"),
        SavedPhase::Escalated => "escalated".into(),
        SavedPhase::Deploying => "deploying".into(),
    }
}

/// The lines of a journal, each with its offset in the file; every complete
/// line must parse but a torn one on its own (and the last, which may be
/// torn), so a torn line glued to the next one is seen.
pub(crate) fn lines<T: for<'de> serde::Deserialize<'de>>(
    path: &Path,
    found: &mut Vec<String>,
) -> Vec<(u64, T)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let complete = text.rsplit_once('\n').map_or("", |(whole, _)| whole);
    let mut parsed = Vec::new();
    let mut offset = 0;
    for (n, line) in complete.split('\n').enumerate() {
        let at = offset;
        offset += line.len() as u64 + 1;
        // A line a kill -9 tore, ended before the next medic wrote on: fine.
        if line.trim().is_empty() || line == crate::faults::TORN {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(value) => parsed.push((at, value)),
            Err(error) => found.push(format!(
                "{} line {}: does not parse ({error}): {}",
                path.file_name().unwrap_or_default().display(),
                n + 1,
                line.chars().take(120).collect::<String>()
            )),
        }
    }
    parsed
}
