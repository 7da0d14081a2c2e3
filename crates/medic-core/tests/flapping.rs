//! Table tests of issue #35 in virtual time: a person's restart or a deploy's
//! replacement is no incident and never counts; flapping with nothing
//! different to roll back to alerts once and keeps restarting after a delay
//! that grows and resets; escalation stops action only after failed restarts
//! and a failed or impossible rollback.

mod support;

use std::time::Duration;

use insta::assert_snapshot;
use medic_core::{Policy, Severity};
use support::{UNIT, World, policy};

fn run(policy: Policy, script: &str) -> String {
    World::new(policy).run(script)
}

/// The messages of the recovery-log events a script produced, in order.
fn messages(world: &mut World, script: &str) -> Vec<String> {
    world.logged.clear();
    let mut messages = Vec::new();
    for step in script.split_whitespace() {
        world.step(step);
        while let Some(line) = world.logged.pop_front() {
            messages.push(line);
        }
    }
    messages
}

/// Three incidents that restart fine, then the fourth within ten minutes.
const THREE_THEN_A_FOURTH: &str = "ok died done ok +1m died done ok +1m died done ok +1m died +1s";

#[test]
fn a_persons_restart_is_no_incident_and_never_counts() {
    assert_snapshot!(run(policy(), "ok commanded commanded ok"), @"healthy restarted");
    // Any number of them, then a crash: an ordinary first incident, restarted at once.
    let script = "ok commanded ok +1m commanded ok +1m commanded ok +1m commanded ok +1m died";
    assert_snapshot!(run(policy(), script), @"healthy restarted restarted restarted restarted failing(1) restart(1) →restart(1)");
    let mut world = World::new(policy());
    let logged = messages(&mut world, "ok commanded ok");
    assert_eq!(
        logged,
        [
            "healthy on fresh observations",
            "restarted by `docker restart` (a person or a script)"
        ]
    );
    assert!(world.alerts.is_empty());
}

#[test]
fn a_persons_restart_that_does_not_come_back_is_restored() {
    assert_snapshot!(run(policy(), "ok commanded +9s"), @"healthy");
    let mut world = World::new(policy());
    assert_snapshot!(world.run("ok commanded +10s done ok"), @"healthy failing(1) restart(1) →restart(1) restart_done(1) recovered !info:recovered");
    let mut world = World::new(policy());
    let logged = messages(&mut world, "ok commanded +10s");
    assert_eq!(
        logged[1],
        "exited with exit code 143; stopped by a command: not back within 10s"
    );
}

#[test]
fn a_crash_after_a_persons_restart_is_an_incident_at_once() {
    assert_snapshot!(run(policy(), "ok commanded died"), @"healthy failing(1) restart(1) →restart(1)");
    // Booting (a probe that cannot connect yet) is left to the grace.
    assert_snapshot!(run(policy(), "ok commanded fail fail fail fail ok"), @"healthy restarted");
    // The engine's restart policy undoing a crash stays an incident.
    assert_snapshot!(run(policy(), "ok engine ok"), @"healthy failing(1) recovered !info:recovered");
}

#[test]
fn a_replacement_under_the_same_name_is_no_incident() {
    let mut world = World::new(policy());
    let logged = messages(&mut world, "ok@1a2b3c4d5e6f7a8b gone ok@3f2a1b9c8d7e6f5a");
    assert_eq!(
        logged,
        [
            "healthy on fresh observations",
            "replaced: new container 3f2a1b9c8d7e… under the same name"
        ]
    );
    // Compose recreating it: stopped by its command, removed, a new one started.
    assert_snapshot!(run(policy(), "ok@a commanded gone ok@b"), @"healthy replaced");
}

/// The deploy: three replacements and a `docker kill` within ten
/// minutes; the kill is a first incident, restarted at once.
#[test]
fn three_replacements_then_a_kill_is_restarted_at_once() {
    let script = "ok@a gone ok@b +1m gone ok@c +1m gone ok@d +1m died";
    assert_snapshot!(run(policy(), script), @"healthy replaced replaced replaced failing(1) restart(1) →restart(1)");
}

/// A deploy's removal that nothing replaces within `replace_grace` is
/// restored then (recreated): an incident from that moment.
#[test]
fn a_removal_not_replaced_in_time_is_recreated() {
    let mut world = World::new(policy());
    let logged = messages(&mut world, "ok gone +30s");
    assert_eq!(logged[1], "removed: no healthy replacement within 30s");
    assert_snapshot!(world.run("done ok"), @"restart_done(1) recovered !warning:restored_removed");
}

/// The rollback finds nothing different: one critical alert, a restart after
/// `flap_backoff`, no alert for the incident's end; later incidents restart
/// after 20 s, 40 s, … at most 5 min, with no alert of their own.
#[test]
fn flapping_with_nothing_to_roll_back_to_keeps_restarting() {
    let mut world = World::new(policy());
    world.run(THREE_THEN_A_FOURTH);
    assert_snapshot!(world.run("impossible +9s"), @"rollback_failed flapping !critical:flapping");
    assert_eq!(
        world.alerts.last().unwrap().message,
        "flapping: 4 incidents in 10 min; already on the last known good spec: nothing different to roll back to; still restarting, next in 10s"
    );
    let status = world.sup.unit_status(world.now, UNIT).unwrap();
    assert_eq!(status.state, "flapping");
    let flapping = status.flapping.unwrap();
    assert_eq!(flapping.next_delay, Duration::from_secs(20));
    assert_eq!(
        flapping.restart_at,
        Some(world.now + Duration::from_secs(1))
    );
    assert_snapshot!(world.run("+1s done ok"), @"restart(1) →restart(1) restart_done(1) recovered");
    let mut delays = Vec::new();
    for _ in 0..6 {
        world.run("+15s died");
        let (opened, before) = (world.now, world.restart_times.len());
        world.run("+5m");
        delays.push(world.restart_times[before].duration_since(opened));
        world.run("done ok");
    }
    let secs: Vec<u64> = delays.iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [20, 40, 80, 160, 300, 300]);
    let critical = world
        .alerts
        .iter()
        .filter(|a| a.severity == Severity::Critical);
    assert_eq!(critical.count(), 1, "{:?}", world.alerts);
    assert!(
        world.alerts.iter().all(|a| a.kind != "resolved"),
        "no resolved before it stays healthy"
    );
}

/// Healthy for `flap_window` since the last incident: one `resolved` for the
/// flapping alert (its incident's id), and the next incident restarts at once.
#[test]
fn the_flap_delay_resets_after_flap_window_healthy() {
    let mut world = World::new(policy());
    world.run(THREE_THEN_A_FOURTH);
    world.run("impossible +10s done ok");
    let alerted = world.alerts.last().unwrap().incident.clone();
    assert_snapshot!(world.run("+9m59s"), @"");
    assert_snapshot!(world.run("+1s"), @"flapping_ended !info:resolved");
    let resolved = world.alerts.last().unwrap();
    assert_eq!(
        (resolved.incident.clone(), resolved.resolved),
        (alerted, true)
    );
    let status = world.sup.unit_status(world.now, UNIT).unwrap();
    assert_eq!(status.flapping, None);
    assert_snapshot!(world.run("died"), @"failing(1) restart(1) →restart(1)");
    // A person's restart meanwhile does not interrupt the calm.
    let mut world = World::new(policy());
    world.run(THREE_THEN_A_FOURTH);
    world.run("impossible +10s done ok +5m commanded ok");
    assert_snapshot!(world.run("+5m"), @"flapping_ended !info:resolved");
}

/// kill -9 during a flap delay: the restarted medic keeps the delayed restart's
/// time, the delay that follows and the alert still to resolve.
#[test]
fn the_flap_delay_survives_a_restart_of_medic() {
    let mut world = World::new(policy());
    world.run(THREE_THEN_A_FOURTH);
    world.run("impossible +10s done ok +15s died +5s");
    assert_snapshot!(world.run("restart-medic +14s"), @"watching(1) resumed(1)");
    assert_snapshot!(world.run("+1s"), @"restart(1) →restart(1)");
    assert_snapshot!(world.run("done ok +15s died +39s"), @"restart_done(1) recovered !info:recovered failing(1)");
    assert_snapshot!(world.run("+1s done ok restart-medic+10m"), @"restart(1) →restart(1) restart_done(1) recovered !info:recovered watching");
    assert_snapshot!(world.run("ok +1s"), @"healthy flapping_ended !info:resolved");
    let critical = world
        .alerts
        .iter()
        .filter(|a| a.severity == Severity::Critical);
    assert_eq!(critical.count(), 1);
}

/// A flapping service whose rollback fails escalates (action proved useless);
/// one whose delayed restarts all fail tries the rollback again, finds it
/// impossible and escalates.
#[test]
fn escalation_needs_failed_restarts_and_a_failed_or_impossible_rollback() {
    let mut world = World::new(policy());
    world.run(THREE_THEN_A_FOURTH);
    assert_snapshot!(world.run("error"), @"rollback_failed escalated !critical:escalated");
    let mut world = World::new(policy());
    world.run(THREE_THEN_A_FOURTH);
    world.run("impossible +10s done ok +15s died +20s");
    assert_snapshot!(world.run("error +2s error +5s error impossible"), @"restart_failed(1) restart(2) →restart(2) restart_failed(2) restart(3) →restart(3) restart_failed(3) rollback →rollback rollback_failed escalated !critical:escalated");
    assert_snapshot!(world.run("+1h"), @"");
    // Restarts that fail in an ordinary incident: rollback impossible, escalated.
    assert_snapshot!(run(policy(), "ok died error +2s error +5s error impossible"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(2) →restart(2) restart_failed(2) restart(3) →restart(3) restart_failed(3) rollback →rollback rollback_failed escalated !critical:escalated");
}

/// A person's reset clears the flapping and resolves its alert.
#[test]
fn a_reset_ends_the_flapping() {
    let mut world = World::new(policy());
    world.run(THREE_THEN_A_FOURTH);
    world.run("impossible +10s done ok +15s died");
    assert_snapshot!(world.run("reset"), @"reset !info:resolved");
    assert_eq!(
        world.sup.unit_status(world.now, UNIT).unwrap().flapping,
        None
    );
}
