//! The state store's tests: round trips, change lines replayed and compacted,
//! files of the previous format.

use std::io::Write;

use super::*;

#[test]
fn round_trips_a_unit_mid_incident() {
    let dir = tempfile::tempdir().unwrap();
    let clock = WallClock::now();
    let now = std::time::Instant::now();
    let snapshot = UnitSnapshot {
        name: "web".into(),
        phase: SavedPhase::Acting(Step::Restart(2)),
        incident: Some(SavedIncident {
            id: "x-1".into(),
            opened: now,
            alerted: false,
            rollback_tried: false,
            attempts: 2,
            reason: None,
            gone: true,
            removed_at: Some(now),
            flap_delay: Some(Duration::from_secs(20)),
        }),
        incidents: vec![now, now],
        flap: Some(SavedFlap {
            next: Duration::from_secs(40),
            alerted: Some("x-0".into()),
            calm_since: None,
        }),
        paused: Some(None),
        blind_since: Some(now),
    };
    let mut store = Store::open(dir.path(), Timestamp::now()).unwrap();
    store.set_last_known_good("web", serde_json::json!({"image": "sha256:1"}));
    store.update(vec![snapshot.clone()], 7, &clock);
    medic_records::files::replace(store.path(), |out| {
        Ok(serde_json::to_writer(out, &store.shared())?)
    })
    .unwrap();

    let again = Store::open(dir.path(), Timestamp::now()).unwrap();
    assert_eq!(again.file.next_incident, 7);
    let restored = again.snapshot("web", &clock).unwrap();
    assert_eq!(restored.phase, snapshot.phase);
    assert!(restored.incident.as_ref().unwrap().gone);
    assert_eq!(restored.incidents.len(), 2);
    assert_eq!(restored.incident.as_ref().unwrap().attempts, 2);
    assert_eq!(restored.flap, snapshot.flap);
    assert!(
        restored.blind_since.is_some(),
        "the blindness's start is kept"
    );
    let flap_delay = restored.incident.as_ref().unwrap().flap_delay;
    assert_eq!(flap_delay, Some(Duration::from_secs(20)));
    assert_eq!(restored.incident.unwrap().id, "x-1");
    assert_eq!(again.last_known_good("web").unwrap()["image"], "sha256:1");
    assert_eq!(again.storm(&clock), None);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("state.json")]);
}

fn unit(name: &str, attempts: u32) -> UnitSnapshot {
    let now = std::time::Instant::now();
    UnitSnapshot {
        name: name.into(),
        phase: SavedPhase::Acting(Step::Restart(attempts)),
        incident: Some(SavedIncident {
            id: format!("x-{name}"),
            opened: now,
            alerted: false,
            rollback_tried: false,
            attempts,
            reason: None,
            gone: false,
            removed_at: None,
            flap_delay: None,
        }),
        incidents: vec![now],
        flap: None,
        paused: None,
        blind_since: None,
    }
}

fn append(path: &Path, change: &StoreChange) {
    let mut file = medic_records::files::open_append(path).unwrap();
    writeln!(file, "{}", serde_json::to_string(change).unwrap()).unwrap();
}

fn attempts(store: &Store, name: &str) -> Option<u32> {
    let clock = WallClock::now();
    Some(store.snapshot(name, &clock)?.incident?.attempts)
}

/// A kill -9 between whole saves: what the change lines hold comes back,
/// lines the file already includes are not applied again, and a torn last
/// line is skipped.
#[test]
fn change_lines_newer_than_the_file_are_replayed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let clock = WallClock::now();
    let changes = changes_path(dir.path());
    let mut store = Store::open(dir.path(), Timestamp::now()).unwrap();
    store.set_last_known_good("api", serde_json::json!({"image": "sha256:1"}));
    let first = store.change([("api".into(), Some(unit("api", 1)))], 3, None, &clock);
    append(&changes, &first);
    // The whole store is saved here (it includes line 1) …
    medic_records::files::replace(store.path(), |out| {
        Ok(serde_json::to_writer(out, &store.shared())?)
    })
    .unwrap();
    // … then more changes, only as lines: api's next attempt, web new, db gone.
    let second = store.change(
        [
            ("api".into(), Some(unit("api", 2))),
            ("web".into(), Some(unit("web", 1))),
        ],
        5,
        None,
        &clock,
    );
    append(&changes, &second);
    let third = store.change([("web".into(), None)], 6, None, &clock);
    append(&changes, &third);
    // Line 1 again (as after a compaction raced a save): older than the file, skipped.
    append(&changes, &first);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&changes)
        .unwrap()
        .write_all(b"{\"seq\":9,\"next_incident\":99,\"units\":{\"api\":nu")
        .unwrap();

    let again = Store::open(dir.path(), Timestamp::now()).unwrap();
    assert_eq!(attempts(&again, "api"), Some(2));
    assert_eq!(attempts(&again, "web"), None, "web was forgotten");
    assert_eq!(again.file.next_incident, 6);
    assert_eq!(again.file.seq, 3);
    assert_eq!(again.last_known_good("api").unwrap()["image"], "sha256:1");
    // Numbering continues after a restart.
    let mut again = again;
    assert_eq!(again.change([], 6, None, &clock).seq, 4);
}

/// A storm that began is kept by its change line; one that ended (an empty
/// storm) is forgotten by the next.
#[test]
fn a_storm_that_began_or_ended_comes_with_its_change_line() {
    let dir = tempfile::tempdir().unwrap();
    let clock = WallClock::now();
    let changes = changes_path(dir.path());
    let mut store = Store::open(dir.path(), Timestamp::now()).unwrap();
    let began = StoredStorm {
        since: Some(Timestamp::now()),
        first: vec![("ep1".into(), "HTTP 404".into())],
        failed: 9482,
        members: vec!["ep1".into()],
    };
    append(&changes, &store.change([], 1, Some(began.clone()), &clock));
    let again = Store::open(dir.path(), Timestamp::now()).unwrap();
    assert_eq!(again.file.storm, Some(began));
    append(
        &changes,
        &store.change([], 1, Some(StoredStorm::default()), &clock),
    );
    let again = Store::open(dir.path(), Timestamp::now()).unwrap();
    assert_eq!(again.file.storm, None);
}

/// Past its size the file keeps only what `state.json` does not include.
#[test]
fn compaction_keeps_only_lines_newer_than_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let clock = WallClock::now();
    let changes = changes_path(dir.path());
    let mut store = Store::open(dir.path(), Timestamp::now()).unwrap();
    for k in 1..=3 {
        let line = store.change([("api".into(), Some(unit("api", k)))], 1, None, &clock);
        append(&changes, &line);
    }
    medic_records::files::replace(store.path(), |out| {
        Ok(serde_json::to_writer(out, &store.shared())?)
    })
    .unwrap();
    let fourth = store.change([("api".into(), Some(unit("api", 4)))], 1, None, &clock);
    append(&changes, &fourth);
    compact_changes(&changes).unwrap();
    let kept: Vec<StoreChange> = medic_records::lines::read(&changes).unwrap().values;
    assert_eq!(kept, vec![fourth]);
    assert_eq!(
        attempts(&Store::open(dir.path(), Timestamp::now()).unwrap(), "api"),
        Some(4)
    );
}

/// A change line carries a unit's spec only when it changed; replay keeps
/// the spec the unit has for the lines without one.
#[test]
fn change_lines_carry_the_spec_only_when_it_changed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = WallClock::now();
    let changes = changes_path(dir.path());
    let mut store = Store::open(dir.path(), Timestamp::now()).unwrap();
    let spec = serde_json::json!({"image": "sha256:1", "env": ["A=1"]});
    store.set_last_known_good("api", spec.clone());
    for k in 1..=3 {
        let line = store.change([("api".into(), Some(unit("api", k)))], 1, None, &clock);
        append(&changes, &line);
    }
    let text = std::fs::read_to_string(&changes).unwrap();
    let with_spec: Vec<bool> = text.lines().map(|l| l.contains("sha256:1")).collect();
    assert_eq!(with_spec, [true, false, false], "{text}");
    assert!(text.starts_with("{\"seq\":1,"), "{text}");
    let again = Store::open(dir.path(), Timestamp::now()).unwrap();
    assert_eq!(attempts(&again, "api"), Some(3));
    assert_eq!(again.last_known_good("api"), Some(&spec));
}

/// A state directory as the medic before spec-less change lines left it:
/// `seq` last in `state.json`, every change line with the unit's spec.
#[test]
fn a_state_dir_written_by_the_previous_format_loads_and_compacts() {
    let dir = tempfile::tempdir().unwrap();
    let unit = |attempts: u32, image: &str| {
        format!(
            r#"{{"phase":"recovering","attempt":{attempts},"stage":"acting","incident":{{"id":"t-1","opened":"2026-12-01T10:00:00Z","alerted":false,"rollback_tried":false,"attempts":{attempts}}},"recent_incidents":["2026-12-01T10:00:00Z"],"last_known_good":{{"image":"{image}"}}}}"#
        )
    };
    let state = format!(
        r#"{{"version":1,"incident_prefix":"t-","next_incident":2,"units":{{"api":{}}},"seq":1}}"#,
        unit(1, "sha256:old")
    );
    std::fs::write(dir.path().join("state.json"), state).unwrap();
    let lines: Vec<String> = (1..=3)
        .map(|k| {
            format!(
                r#"{{"seq":{k},"next_incident":2,"units":{{"api":{}}}}}"#,
                unit(k, "sha256:new")
            )
        })
        .collect();
    let changes = changes_path(dir.path());
    std::fs::write(&changes, lines.join("\n") + "\n").unwrap();
    let store = Store::open(dir.path(), Timestamp::now()).unwrap();
    assert_eq!(attempts(&store, "api"), Some(3));
    assert_eq!(store.last_known_good("api").unwrap()["image"], "sha256:new");
    assert_eq!(included_seq(dir.path()), 1);
    compact_changes(&changes).unwrap();
    let kept = std::fs::read_to_string(&changes).unwrap();
    assert_eq!(kept, lines[1..].join("\n") + "\n");
}

#[test]
fn seq_is_read_from_the_first_bytes_or_parsed() {
    let check = |text: &str, seq: Option<u64>| assert_eq!(seq_of(text.as_bytes()), seq, "{text}");
    check(r#"{"seq":42,"next_incident":1,"units":{}}"#, Some(42));
    check(r#"{"version":1,"seq":7,"incident_prefix":"t-"}"#, Some(7));
    check(
        r#"{"version":1,"units":{"seq":{"phase":"fine"}},"seq":9}"#,
        Some(9),
    );
    check(r#"{"version":1,"units":{}}"#, Some(0));
    check(r#"{"seq":4"#, None);
}

#[test]
fn round_trips_a_storm() {
    let dir = tempfile::tempdir().unwrap();
    let clock = WallClock::now();
    let since = std::time::Instant::now();
    let saved = SavedStorm {
        active: Some(SavedActive {
            since,
            first: vec![("ep1".into(), "HTTP 404".into())],
            failed: 9482,
        }),
        members: vec!["ep1".into(), "ep2".into()],
    };
    let mut store = Store::open(dir.path(), Timestamp::now()).unwrap();
    store.set_storm(Some(saved.clone()), &clock);
    medic_records::files::replace(store.path(), |out| {
        Ok(serde_json::to_writer(out, &store.shared())?)
    })
    .unwrap();
    let again = Store::open(dir.path(), Timestamp::now()).unwrap();
    let restored = again.storm(&clock).unwrap();
    assert_eq!(restored.members, saved.members);
    let active = restored.active.unwrap();
    assert_eq!(
        (active.first, active.failed),
        (saved.active.clone().unwrap().first, 9482)
    );
    // Wall-clock time in the file: the instant comes back within a millisecond.
    assert!(
        active.since.max(since) - active.since.min(since) < std::time::Duration::from_millis(1)
    );
}

/// A state directory as main left it before `state.json` became a checkpoint
/// (`seq` second, spec-less change lines after the file's `seq`): it loads,
/// and compaction drops the line the file includes, then (nothing left to
/// drop) leaves the file untouched until a newer checkpoint includes more.
#[test]
fn a_state_dir_written_by_main_before_checkpoints_loads() {
    let dir = tempfile::tempdir().unwrap();
    let state = r#"{"version":1,"seq":2,"incident_prefix":"t5m1-","next_incident":3,"units":{"api":{"phase":"fine","recent_incidents":["2026-12-07T10:00:00Z"],"last_known_good":{"image":"sha256:main"}},"web":{"phase":"fine"}}}"#;
    std::fs::write(dir.path().join("state.json"), format!("{state}\n")).unwrap();
    let recovering = |k: u32| {
        format!(
            r#"{{"phase":"recovering","attempt":{k},"stage":"acting","incident":{{"id":"t5m1-3","opened":"2026-12-07T11:00:00Z","alerted":false,"rollback_tried":false,"attempts":{k},"gone":false}},"recent_incidents":["2026-12-07T10:00:00Z","2026-12-07T11:00:00Z"]}}"#
        )
    };
    let lines = [
        r#"{"seq":2,"next_incident":3,"units":{"api":{"phase":"fine","recent_incidents":["2026-12-07T10:00:00Z"]}}}"#.to_owned(),
        format!(r#"{{"seq":3,"next_incident":4,"units":{{"api":{}}}}}"#, recovering(1)),
        format!(r#"{{"seq":4,"next_incident":4,"units":{{"api":{},"web":null}}}}"#, recovering(2)),
    ];
    let changes = changes_path(dir.path());
    std::fs::write(&changes, lines.join("\n") + "\n").unwrap();

    let store = Store::open(dir.path(), Timestamp::now()).unwrap();
    assert_eq!(store.file.incident_prefix, "t5m1-");
    assert_eq!((store.file.seq, store.file.next_incident), (4, 4));
    assert_eq!(attempts(&store, "api"), Some(2));
    assert_eq!(
        store.last_known_good("api").unwrap()["image"],
        "sha256:main"
    );
    assert!(!store.file.units.contains_key("web"), "web was forgotten");

    assert!(
        compact_changes(&changes).unwrap(),
        "line 2 is in state.json"
    );
    assert_eq!(
        std::fs::read_to_string(&changes).unwrap(),
        lines[1..].join("\n") + "\n"
    );
    assert!(!compact_changes(&changes).unwrap(), "nothing left to drop");
    assert_eq!(
        std::fs::read_to_string(&changes).unwrap(),
        lines[1..].join("\n") + "\n"
    );
}

/// The spec a unit has already is not recorded again (no line carries it).
#[test]
fn the_same_last_known_good_spec_is_no_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), Timestamp::now()).unwrap();
    let spec = serde_json::json!({"image": "sha256:1"});
    assert!(store.set_last_known_good("api", spec.clone()));
    assert!(!store.set_last_known_good("api", spec));
    assert!(store.set_last_known_good("api", serde_json::json!({"image": "sha256:2"})));
}
