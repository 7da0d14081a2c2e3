//! `scripts/bench`: medic's figures beside a baseline measured in the same run
//! on the same machine. `medic-bench [recovery|engines|probes|idle|startup|storm|containers|disk|month|units|all] [--seconds N] [--size N] [--containers N] [--medic PATH]`
//! (`--medic`: run that medic binary instead of the one built beside this, e.g.
//! an older commit's build, to compare figures on the same benchmark code)
//!
//! - recovery: kill → running and answering HTTP, medic versus a bare
//!   `docker start`; detection latency from Docker's `die` event to medic's
//!   decision, beside the engine's floor (an inspect answered right after `die`);
//!   Docker's `health_status: unhealthy` event → `/health` ok again, medic
//!   versus a bare `docker restart`.
//! - engines: kill, `rm -f` and a bad image on Docker and on Podman, Podman's
//!   figures as ratios against Docker's.
//! - probes: 100, 1,000 and 10,000 HTTP endpoints probed every 10 s, medic
//!   versus Monit doing the same checks: probes per second, lateness, CPU, RSS.
//! - idle: medic beside Monit watching 1, 50 and 200 containers at the
//!   default interval, and 50 with an HTTP probe each every 1 s: CPU and RSS
//!   at rest, the ratios, and the footprint targets met or not.
//! - startup: `medic check` wall time on a 100-service config versus 1 service.
//! - storm: 10,000 endpoints (`--size N`) healthy, all failing for 60 s, then
//!   back: probes made, CPU, RSS, status latency, recovery time, lines and bytes written.
//! - containers: 200 containers (`--containers N`) killed at once and
//!   brought back by medic, beside `docker start` by 4 workers.
//! - disk: 10,000 endpoints (`--size N`) started, healthy for 3 min, one storm:
//!   bytes medic wrote and each file in state_dir per phase, and per day.
//! - month: 10,000 units' availability history (`--size N`) after 30 days in
//!   virtual time, in process: resident memory beside the same units after
//!   1 hour, and one `history()` export of every unit.
//! - units: detection of a systemd unit's failure (SIGKILL of its main pid,
//!   systemd's own state change → medic's `failing` line) beside a
//!   container's (Docker's `die` event → the same line), by one medic in
//!   systemd as PID 1 in a container (`MEDIC_TEST_SYSTEMD_IMAGE`).
//!
//! Needs DOCKER_HOST pointing at an engine with medic-test/good:1 and Monit
//! installed (scripts/bench provides both).

mod containers;
mod disk;
mod engines;
mod idle;
mod month;
mod probes;
mod recovery;
mod startup;
mod storm;
#[path = "../../support/systemd_machine.rs"]
mod systemd_machine;
mod units;
mod util;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut which = "all".to_owned();
    let mut seconds = 60;
    let mut size = 10_000;
    let mut containers = 200;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--seconds takes a whole number");
            }
            "--size" => {
                size = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--size takes a whole number");
            }
            "--containers" => {
                containers = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--containers takes a whole number");
            }
            "--medic" => {
                let path = args
                    .next()
                    .expect("--medic takes the path of a medic binary");
                util::MEDIC.set(path.into()).ok();
            }
            other => which = other.to_owned(),
        }
    }
    println!("medic benchmarks ({})", util::host());
    println!("medic binary: {}\n", util::medic().display());
    let all = which == "all";
    if all || which == "recovery" {
        recovery::run();
    }
    if all || which == "engines" {
        engines::run();
    }
    if all || which == "probes" {
        probes::run(seconds);
    }
    if all || which == "idle" {
        idle::run(seconds);
    }
    if all || which == "startup" {
        startup::run();
    }
    if all || which == "storm" {
        storm::run(size);
    }
    if all || which == "containers" {
        containers::run(containers);
    }
    if all || which == "disk" {
        disk::run(size);
    }
    if all || which == "month" {
        month::run(size);
    }
    if all || which == "units" {
        units::run();
    }
}
