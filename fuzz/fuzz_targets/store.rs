//! Any state store through medic's own loader (`Store::open`: `state.json`
//! and the change lines it replays), then every unit and the storm it holds
//! restored into a real core and its timers run, as a restarted daemon does:
//! no saved state, damaged or hostile, can panic medic at start. The input's
//! first line is `state.json` (medic writes it compact, on one line), the rest
//! is `state.changes.jsonl`.
#![no_main]

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use medic_core::{Policy, Supervisor};
use medic_daemon::clock::WallClock;
use medic_daemon::store::{Store, changes_path};

/// One state directory for the whole run: each input overwrites both files.
static DIR: LazyLock<tempfile::TempDir> =
    LazyLock::new(|| tempfile::tempdir().expect("a temporary state directory"));

fuzz_target!(|data: &[u8]| {
    let (state, changes) = match data.iter().position(|&b| b == b'\n') {
        Some(end) => (&data[..end], &data[end + 1..]),
        None => (data, &[][..]),
    };
    let dir = DIR.path();
    std::fs::write(dir.join("state.json"), state).expect("write state.json");
    std::fs::write(changes_path(dir), changes).expect("write state.changes.jsonl");
    let clock = WallClock::now();
    let Ok(store) = Store::open(dir, jiff::Timestamp::now()) else {
        return;
    };
    let now = Instant::now();
    let mut sup = Supervisor::new(store.file.incident_prefix.clone(), store.file.next_incident);
    for name in store.file.units.keys() {
        match store.snapshot(name, &clock) {
            Some(saved) => sup.restore_unit(now, saved, Policy::default()),
            None => sup.add_unit(now, name, Policy::default()),
        }
        let _ = store.last_known_good(name);
    }
    if let Some(saved) = store.storm(&clock) {
        sup.restore_storm(now, saved);
    }
    // Run what the restored units scheduled, a few deadlines deep.
    for _ in 0..8 {
        while sup.poll_action().is_some() {}
        let Some(deadline) = sup.poll_timeout() else {
            break;
        };
        sup.handle_timeout(deadline.max(now) + Duration::from_millis(1));
    }
});
