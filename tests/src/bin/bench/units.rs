//! Detection of a systemd unit's failure beside a container's, in the same
//! run by the same medic: systemd as PID 1 in a container on the engine
//! (the e2e tests' machine, `MEDIC_TEST_SYSTEMD_IMAGE`), the medic binary
//! under test running in it as root (`systemd-run`), with its defaults,
//! watching one unit (`/bin/sleep infinity`) over D-Bus and one idle
//! container through the engine's socket.
//!
//! Each round kills the unit's main pid with SIGKILL (or `docker kill`s the
//! container) and waits until medic has brought it back. Detection is the
//! time from the manager's own record of the death to medic's `failing` line
//! (medic's own stamp), on the one realtime clock of the host: for the unit,
//! the `_SOURCE_REALTIME_TIMESTAMP` PID 1 gives its journal line "Main
//! process exited" (stamped as systemd handles the exit, before it changes
//! the unit's state and signals it; the unit's own `ActiveExitTimestamp` is
//! gone once medic's `ResetFailedUnit` ran); for the container, the engine's
//! `die` event (`timeNano`), read from its event stream as it comes. The
//! fourth incident within 10 minutes is flapping, so each medic (fresh
//! state) takes three rounds of each.

use std::path::Path;
use std::time::Duration;

use crate::recovery::{engine_socket, jiff_ts, subscribe, table};
use crate::systemd_machine::Machine;
use crate::util::{docker, events, medic, ms, percentile, run_idle_container, wait_for};

const ROUNDS: usize = 21;
/// Incidents one medic gets before the next one counts as flapping (the default `flap_limit`).
const PER_MEDIC: usize = 3;
const MACHINE: &str = "medic-bench-systemd";
const CONTAINER: &str = "medic-bench-units-web";
const UNIT: &str = "crash.service";
/// The MESSAGE_ID of systemd's "Main process exited" journal line.
const PROCESS_EXIT: &str = "98e322203f7a4ed290d09fe03c09fe15";

pub fn run() {
    println!("## Detection: a systemd unit's failure beside a container's ({ROUNDS} rounds each)");
    let Some(image) = std::env::var("MEDIC_TEST_SYSTEMD_IMAGE")
        .ok()
        .filter(|i| !i.is_empty())
    else {
        println!(
            "not measured: MEDIC_TEST_SYSTEMD_IMAGE is unset (scripts/bench builds the image)\n"
        );
        return;
    };
    docker(&["rm", "-f", MACHINE, CONTAINER]).ok();
    let dir = tempfile::Builder::new()
        .prefix("medic-bench-units")
        .tempdir_in("/var/tmp")
        .expect("temp dir");
    let machine = Machine::boot(
        Box::new(|args| match docker(args) {
            Ok(out) => (true, out),
            Err(error) => (false, error),
        }),
        MACHINE,
        &image,
        &engine_socket(),
        &[
            format!("{}:/usr/local/bin/medic:ro", medic().display()),
            format!("{}:/bench", dir.path().display()),
        ],
    );
    machine.write(
        &format!("/etc/systemd/system/{UNIT}"),
        "[Service]\nExecStart=/bin/sleep infinity\n",
    );
    machine.must(&format!(
        "systemctl daemon-reload && systemctl start {UNIT}"
    ));
    run_idle_container(CONTAINER, "medic.bench=units");

    // Every `die` of the container as the engine's stream delivers it (its
    // in-memory log keeps too few events to be read back afterwards).
    let (died, deaths) = std::sync::mpsc::channel();
    let filters = format!(r#"{{"container":["{CONTAINER}"],"event":["die"]}}"#);
    let events = subscribe(&filters);
    std::thread::spawn(move || {
        for event in events {
            if died
                .send(event["timeNano"].as_i64().map(i128::from))
                .is_err()
            {
                break;
            }
        }
    });
    let (mut unit_seen, mut web_seen) = (Vec::new(), Vec::new());
    for group in 0..ROUNDS / PER_MEDIC {
        let watcher = Watcher::start(&machine, dir.path(), group);
        for incident in 1..=PER_MEDIC {
            let pid = machine.show(UNIT, "MainPID");
            machine.must(&format!("kill -KILL {pid}"));
            watcher.wait_recovered("unit", incident);
            docker(&["kill", CONTAINER]).expect("docker kill");
            watcher.wait_recovered("web", incident);
        }
        unit_seen.extend(watcher.failing("unit"));
        web_seen.extend(watcher.failing("web"));
        machine.must(&format!("systemctl stop medic-bench-{group}"));
    }
    let exits = machine.must(&format!(
        "journalctl -u {UNIT} MESSAGE_ID={PROCESS_EXIT} -o json --output-fields=_SOURCE_REALTIME_TIMESTAMP --no-pager"
    ));
    let unit_exited = exits.lines().map(|line| {
        let entry: serde_json::Value = serde_json::from_str(line).expect("a journal entry");
        let micros: i128 = entry["_SOURCE_REALTIME_TIMESTAMP"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no _SOURCE_REALTIME_TIMESTAMP: {line}"));
        micros * 1000
    });
    let web_died = (0..ROUNDS).map(|_| {
        deaths
            .recv_timeout(Duration::from_secs(10))
            .ok()
            .flatten()
            .expect("a die event per round")
    });
    let unit = since(unit_exited, &unit_seen);
    let web = since(web_died, &web_seen);
    docker(&["rm", "-f", CONTAINER]).ok();
    drop(machine);
    assert_eq!(
        (unit.len(), web.len()),
        (ROUNDS, ROUNDS),
        "one stamp and one failing line per round"
    );

    for (k, (unit, web)) in unit.iter().zip(&web).enumerate() {
        println!(
            "round {:>2}: unit {}, container {}",
            k + 1,
            ms(*unit),
            ms(*web)
        );
    }
    table(
        "Detection: the manager's record of the death → medic's `failing` line",
        &[
            ("unit: systemd \"Main process exited\" → failing", &unit),
            ("container: Docker die event → failing", &web),
        ],
    );
    let ratio = |p| percentile(&unit, p).as_secs_f64() / percentile(&web, p).as_secs_f64();
    println!(
        "ratio unit / container: p50 {:.2}×, p99 {:.2}×\n",
        ratio(50),
        ratio(99)
    );
}

/// From each of the manager's stamps to medic's line of the same round (ns
/// since the epoch); none when medic's line is earlier.
fn since(stamps: impl Iterator<Item = i128>, seen: &[i128]) -> Vec<Duration> {
    stamps
        .zip(seen)
        .map(|(at, seen)| Duration::from_nanos(u64::try_from(seen - at).unwrap_or(0)))
        .collect()
}

/// One medic in the machine, with a fresh state directory under /bench.
struct Watcher {
    log: std::path::PathBuf,
}

impl Watcher {
    /// Starts medic number `group` as a transient unit and waits until both services are healthy.
    fn start(machine: &Machine, dir: &Path, group: usize) -> Self {
        let config = format!(
            "[medic]\nstate_dir = \"/bench/{group}/state\"\ncontrol_socket = \"/bench/{group}/control.sock\"\nmetrics_listen = \"\"\n\n\
             [[service]]\nname = \"unit\"\nsystemd_unit = {{ name = \"{UNIT}\" }}\n\n\
             [[service]]\nname = \"web\"\ncontainer = {{ name = \"{CONTAINER}\" }}\n"
        );
        machine.write(&format!("/bench/{group}/medic.toml"), &config);
        machine.must(&format!(
            "systemd-run --unit=medic-bench-{group} --collect /usr/local/bin/medic run --config /bench/{group}/medic.toml"
        ));
        let watcher = Self {
            log: dir.join(format!("{group}/state/recovery.jsonl")),
        };
        for service in ["unit", "web"] {
            watcher.wait_count(service, "healthy", 1);
        }
        watcher
    }

    /// Waits for the `count`th `recovered` line of `service`.
    fn wait_recovered(&self, service: &str, count: usize) {
        self.wait_count(service, "recovered", count);
    }

    fn wait_count(&self, service: &str, kind: &str, count: usize) {
        wait_for(|| {
            events(&self.log)
                .iter()
                .filter(|e| e["service"] == service && e["event"] == kind)
                .count()
                >= count
        });
    }

    /// When medic decided each incident of `service` (its `failing` lines, in ns).
    fn failing(&self, service: &str) -> Vec<i128> {
        events(&self.log)
            .iter()
            .filter(|e| e["service"] == service && e["event"] == "failing")
            .filter_map(|e| jiff_ts(e["ts"].as_str()?))
            .collect()
    }
}
