//! The end a run reached, and the invariant that restarts of medic do not
//! change it: once the world has been quiet, a run with kill -9s and
//! SIGTERMs leaves every unit in the same phase, with the same incident open
//! or none, the same escalations, and every warning and critical alert the
//! run without them raised raised at least once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use jiff::Timestamp;
use medic_core::supervisor::MEDIC_UNIT;
use medic_daemon::clock::WallClock;
use medic_daemon::store::Store;
use medic_records::journal::{AlertLine, RecoveryLine};

use crate::checks::{lines, phase_name};

/// Where one run ended.
#[derive(Debug)]
pub struct End {
    /// Per unit (by name): its phase in words and whether an incident is open.
    units: BTreeMap<String, (String, bool)>,
    /// Per unit: how many of its incidents escalated.
    escalations: BTreeMap<String, usize>,
    /// Every warning and critical alert raised: unit, kind, severity.
    alerts: BTreeSet<(String, String, String)>,
}

/// Reads the end of the run in `dir` (None when the state store does not
/// load: `checks::files` reports that).
pub fn read(dir: &Path, units: &[String]) -> Option<End> {
    let store = Store::open(dir, Timestamp::UNIX_EPOCH).ok()?;
    let clock = WallClock::now();
    let units = units
        .iter()
        .filter_map(|name| {
            let unit = store.snapshot(name, &clock)?;
            Some((
                name.clone(),
                (phase_name(unit.phase), unit.incident.is_some()),
            ))
        })
        .collect();
    // Bad lines are `checks::files`'s to report.
    let mut ignored = Vec::new();
    let recovery: Vec<(u64, RecoveryLine)> = lines(&dir.join("recovery.jsonl"), &mut ignored);
    let mut escalated: BTreeMap<String, BTreeSet<Option<String>>> = BTreeMap::new();
    for (_, line) in recovery.into_iter().filter(|(_, l)| l.event == "escalated") {
        escalated
            .entry(line.service)
            .or_default()
            .insert(line.incident);
    }
    let alerts: Vec<(u64, AlertLine)> = lines(&dir.join("alerts/critical.jsonl"), &mut ignored);
    Some(End {
        units,
        escalations: escalated.into_iter().map(|(u, i)| (u, i.len())).collect(),
        // Info alerts end incidents; whether a service that came back within
        // a few probes had an incident at all is the timing a restart of
        // medic shifts. Warnings and critical alerts must all be there.
        alerts: alerts
            .into_iter()
            .filter(|(_, a)| a.severity != "info")
            .map(|(_, a)| (a.service, a.kind, a.severity))
            .collect(),
    })
}

/// The differences between the two runs that are medic's policy, not a
/// defect (docs/simulation.md, "What is checked").
#[derive(Debug, Default)]
pub struct Allowed {
    /// Units whose step's end medic could not see: a rollback a stop of
    /// medic cut short (the next medic only verifies it: a command target's
    /// rollback is not safe to repeat) or a crash-loop's relapse while the
    /// probes were blind (medic sees it as the step verified then failing).
    /// Where the run without restarts rolled back, these may escalate.
    pub unseen_ends: BTreeSet<String>,
    /// Whether medic's `blind` alert is compared: only when the world stayed
    /// blind longer than `blind_alert_after` by more than the probes'
    /// freshness (a restart shifts when the probes see), and the wall clock
    /// was not set back (a restarted medic then counts from its own start).
    pub blind_alert: bool,
}

/// Whether a unit ended escalated where the run without restarts ended
/// fine: the one difference `Allowed::unseen_ends` admits.
fn escalated_where_fine(with: &End, without: &End, name: &str) -> bool {
    let escalations = |end: &End| end.escalations.get(name).copied().unwrap_or(0);
    with.units
        .get(name)
        .is_some_and(|(phase, open)| phase == "escalated" && *open)
        && without
            .units
            .get(name)
            .is_some_and(|(phase, _)| phase == "fine")
        && escalations(with) == escalations(without) + 1
}

/// What differs between the end of a run with restarts (`with`) and the
/// same run without them (`without`), but what `allowed` admits.
pub fn compare(with: &End, without: &End, allowed: &Allowed) -> Vec<String> {
    let mut found = Vec::new();
    let cut = |name: &str| {
        allowed.unseen_ends.contains(name) && escalated_where_fine(with, without, name)
    };
    for (name, calm) in &without.units {
        if cut(name) {
            continue;
        }
        match with.units.get(name) {
            Some(end) if end == calm => {}
            Some((phase, open)) => found.push(format!(
                "{name}: ends {phase} (incident open: {open}) with medic's restarts, {} (incident open: {}) without",
                calm.0, calm.1
            )),
            None => found.push(format!("{name}: not in the state store with medic's restarts")),
        }
        let count = |end: &End| end.escalations.get(name).copied().unwrap_or(0);
        if count(with) != count(without) {
            found.push(format!(
                "{name}: {} escalations with medic's restarts, {} without",
                count(with),
                count(without)
            ));
        }
    }
    for (unit, kind, severity) in without.alerts.difference(&with.alerts) {
        let admitted = match (unit.as_str(), kind.as_str()) {
            (MEDIC_UNIT, "blind") => !allowed.blind_alert,
            (unit, "rolled_back") => cut(unit),
            _ => false,
        };
        if admitted {
            continue;
        }
        found.push(format!(
            "{unit}: the {severity} alert `{kind}` of the run without medic's restarts is never raised with them"
        ));
    }
    found
}
