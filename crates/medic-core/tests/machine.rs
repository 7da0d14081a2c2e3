//! Table tests of the recovery state machine in virtual time: a script of
//! observations, action results, controls and time jumps in; the trace of
//! recovery-log events, actions (→) and alerts (!) out.

mod support;

use std::time::Duration;

use insta::assert_snapshot;
use medic_core::{Health, Observation, Policy, Urgency};
use support::{UNIT, World, policy};

fn run(policy: Policy, script: &str) -> String {
    World::new(policy).run(script)
}

fn watch_only() -> Policy {
    Policy {
        can_restart: false,
        can_rollback: false,
        ..policy()
    }
}

#[test]
fn a_restart_that_works_closes_the_incident() {
    assert_snapshot!(run(policy(), "ok fail fail fail done ok"), @"healthy failing(1) restart(1) →restart(1) restart_done(1) recovered !info:recovered");
}

#[test]
fn failures_below_the_threshold_do_nothing() {
    assert_snapshot!(run(policy(), "ok fail fail ok fail fail ok"), @"healthy");
}

#[test]
fn a_decisive_failure_acts_at_once() {
    assert_snapshot!(run(policy(), "ok died"), @"healthy failing(1) restart(1) →restart(1)");
}

#[test]
fn three_failed_restarts_roll_back_and_a_verified_rollback_recovers() {
    assert_snapshot!(run(policy(), "ok died error +2s error +5s error done ok"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(2) →restart(2) restart_failed(2) restart(3) →restart(3) restart_failed(3) rollback →rollback rollback_done rolled_back !warning:rolled_back");
}

#[test]
fn a_failed_rollback_escalates_and_nothing_more_happens() {
    assert_snapshot!(run(policy(), "ok died error +2s error +5s error error fail fail fail +10m fail"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(2) →restart(2) restart_failed(2) restart(3) →restart(3) restart_failed(3) rollback →rollback rollback_failed escalated !critical:escalated");
}

#[test]
fn without_rollback_three_failed_restarts_escalate() {
    let policy = Policy {
        can_rollback: false,
        ..policy()
    };
    assert_snapshot!(run(policy, "ok died error +2s error +5s error"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(2) →restart(2) restart_failed(2) restart(3) →restart(3) restart_failed(3) escalated !critical:escalated");
}

/// The escalation's evidence says why the last restart failed (a systemd
/// unit's restarts refused by polkit name the rule to install there).
#[test]
fn the_escalation_carries_the_last_restart_error() {
    let mut world = World::new(Policy {
        can_rollback: false,
        ..policy()
    });
    assert_snapshot!(world.run("ok died error +2s error +5s timed-out"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(2) →restart(2) restart_failed(2) restart(3) →restart(3) restart_failed(3) escalated !critical:escalated");
    let alert = world.alerts.last().unwrap();
    assert_eq!(alert.kind, "escalated");
    assert_eq!(
        alert.evidence["last_restart_error"],
        "cancelled after 5m 5s without a result"
    );
    let mut world = World::new(policy());
    world.run("ok died error +2s error +5s error impossible");
    let alert = world.alerts.last().unwrap();
    assert_eq!(alert.evidence["last_restart_error"], "exit 1", "{alert:?}");
}

#[test]
fn an_action_that_does_not_verify_in_time_counts_as_failed() {
    assert_snapshot!(run(policy(), "ok died done +10s"), @"healthy failing(1) restart(1) →restart(1) restart_done(1) restart_failed(1)");
}

#[test]
fn dying_again_during_verification_counts_as_failed_but_booting_does_not() {
    assert_snapshot!(run(policy(), "ok died done fail fail fail ok"), @"healthy failing(1) restart(1) →restart(1) restart_done(1) recovered !info:recovered");
    assert_snapshot!(run(policy(), "ok died done died"), @"healthy failing(1) restart(1) →restart(1) restart_done(1) restart_failed(1)");
}

#[test]
fn backoff_doubles_between_attempts() {
    let mut world = World::new(policy());
    world.run("ok died error");
    assert_eq!(world.restarts, 1);
    world.run("+999ms");
    assert_eq!(world.restarts, 1, "the second attempt waits at least 1 s");
    world.run("+200ms");
    assert_eq!(world.restarts, 2);
    world.run("error +1999ms");
    assert_eq!(world.restarts, 2, "the third attempt waits at least 2 s");
    world.run("+300ms");
    assert_eq!(world.restarts, 3);
}

/// Each incident gets its own `max_attempts`: a verified restart is not a
/// failed attempt, and the next failure starts again at attempt 1 of 3, with no backoff.
#[test]
fn every_incident_starts_at_attempt_one_without_backoff() {
    assert_snapshot!(run(policy(), "ok died done ok +2s died error +2s error +5s error"), @"healthy failing(1) restart(1) →restart(1) restart_done(1) recovered !info:recovered failing(1) restart(1) →restart(1) restart_failed(1) restart(2) →restart(2) restart_failed(2) restart(3) →restart(3) restart_failed(3) rollback →rollback");
    let mut world = World::new(policy());
    world.run("ok died done ok +1m died done ok +1m died");
    let times = &world.restart_times;
    assert_eq!(
        times[2] - world.restart_times[0],
        Duration::from_secs(120),
        "each first restart at once"
    );
}

/// `flap_limit` (3) incidents within `flap_window` (10 min): the fourth skips
/// its restarts and goes straight to rollback (after one backoff step, so that
/// a removal reported after the kill is not raced), saying why in log, alert and status.
#[test]
fn the_fourth_incident_in_the_flap_window_goes_straight_to_rollback() {
    let mut world = World::new(policy());
    let script = "ok died done ok +1m died done ok +1m died done ok +1m died +1s";
    assert_snapshot!(world.run(script), @"healthy failing(1) restart(1) →restart(1) restart_done(1) recovered !info:recovered failing(1) restart(1) →restart(1) restart_done(1) recovered !info:recovered failing(1) restart(1) →restart(1) restart_done(1) recovered !info:recovered failing rollback →rollback");
    let status = world.sup.unit_status(world.now, UNIT).unwrap();
    assert_eq!(
        status.reason.as_deref(),
        Some("flapping: 4 incidents in 10 min")
    );
    let mut failed = World::new(policy());
    failed.run(script);
    assert_snapshot!(failed.run("error"), @"rollback_failed escalated !critical:escalated");
    assert_eq!(
        failed.alerts.last().unwrap().message,
        "flapping: 4 incidents in 10 min; rollback failed: exit 1"
    );
    assert_snapshot!(world.run("done ok"), @"rollback_done rolled_back !warning:rolled_back");
    let alert = world.alerts.last().unwrap();
    assert!(
        alert.message.contains("flapping: 4 incidents in 10 min"),
        "{}",
        alert.message
    );
    // Incidents older than the window no longer count.
    assert_snapshot!(run(policy(), "ok died done ok +4m died done ok +4m died done ok +4m died"), @"healthy failing(1) restart(1) →restart(1) restart_done(1) recovered !info:recovered failing(1) restart(1) →restart(1) restart_done(1) recovered !info:recovered failing(1) restart(1) →restart(1) restart_done(1) recovered !info:recovered failing(1) restart(1) →restart(1)");
}

/// Flapping without a rollback keeps restarting, after the flap delay, and
/// says so once (the rest of the rule in `flapping.rs`).
#[test]
fn flapping_without_a_rollback_keeps_restarting_after_a_delay() {
    let policy = Policy {
        can_rollback: false,
        ..policy()
    };
    assert_snapshot!(run(policy, "ok died done ok +1m died done ok +1m died done ok +1m died +10s"), @"healthy failing(1) restart(1) →restart(1) restart_done(1) recovered !info:recovered failing(1) restart(1) →restart(1) restart_done(1) recovered !info:recovered failing(1) restart(1) →restart(1) restart_done(1) recovered !info:recovered failing(1) flapping !critical:flapping restart(1) →restart(1)");
}

#[test]
fn the_start_period_forgives_normal_failures_but_not_decisive_ones() {
    let policy = Policy {
        start_period: Duration::from_secs(30),
        ..policy()
    };
    assert_snapshot!(run(policy.clone(), "fail fail fail fail ok"), @"healthy");
    assert_snapshot!(run(policy.clone(), "died"), @"failing(1) restart(1) →restart(1)");
    assert_snapshot!(run(policy, "+31s fail fail fail"), @"failing(1) restart(1) →restart(1)");
}

#[test]
fn watch_only_reports_and_recovers_without_acting() {
    assert_snapshot!(run(watch_only(), "ok fail fail fail fail ok"), @"healthy failing recovered !info:recovered");
}

#[test]
fn paused_services_are_not_acted_on_until_resumed() {
    assert_snapshot!(run(policy(), "ok pause died +1m fail resume"), @"healthy paused failing(1) resumed(1) restart(1) →restart(1)");
}

#[test]
fn a_pause_with_an_end_expires() {
    let mut world = World::new(policy());
    world.run("ok");
    world.control(medic_core::Control::Pause {
        until: Some(world.now + Duration::from_secs(60)),
    });
    assert_snapshot!(world.run("died +59s"), @"failing(1)");
    assert_snapshot!(world.run("+2s"), @"resumed(1) restart(1) →restart(1)");
}

#[test]
fn blind_services_are_not_acted_on() {
    assert_snapshot!(run(policy(), "ok died error blind +1m"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) blind(2)");
    assert_snapshot!(run(policy(), "ok died error blind +1m ok"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) blind(2) sight_restored(2) recovered !info:recovered");
    assert_snapshot!(run(policy(), "ok blind fail fail fail ok"), @"healthy blind sight_restored failing(1) restart(1) →restart(1)");
}

#[test]
fn a_removed_thing_waits_for_a_replacement_before_restoring() {
    assert_snapshot!(run(policy(), "ok gone +29s ok"), @"healthy replaced");
    assert_snapshot!(run(policy(), "ok gone +30s"), @"healthy failing(1) restart(1) →recreate(1)");
    assert_snapshot!(run(policy(), "ok gone +30s done ok"), @"healthy failing(1) restart(1) →recreate(1) restart_done(1) recovered !warning:restored_removed");
    assert_snapshot!(run(policy(), "ok died gone +31s done ok"), @"healthy failing(1) restart(1) →restart(1) restart_done(1) recovered !warning:restored_removed");
    // A removal soon after another incident (a `docker stop` undone, then
    // `docker-compose rm`) still waits for a replacement: nothing after 2 s.
    assert_snapshot!(run(policy(), "ok died done ok gone +2s"), @"healthy failing(1) restart(1) →restart(1) restart_done(1) recovered !info:recovered");
}

#[test]
fn escalated_stays_escalated_until_reset() {
    let mut world = World::new(Policy {
        can_rollback: false,
        ..policy()
    });
    world.run("ok died error +2s error +5s error ok ok +1h ok");
    let status = world.sup.unit_status(world.now, UNIT).unwrap();
    assert_eq!(status.state, "escalated");
    assert_snapshot!(world.run("reset ok"), @"reset !info:resolved healthy");
}

#[test]
fn recover_restarts_now_even_when_escalated() {
    let policy = Policy {
        can_rollback: false,
        ..policy()
    };
    assert_snapshot!(run(policy, "ok died error +2s error +5s error recover done ok"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(2) →restart(2) restart_failed(2) restart(3) →restart(3) restart_failed(3) escalated !critical:escalated restart(1) →restart(1) restart_done(1) recovered !info:resolved");
}

#[test]
fn stale_observations_are_reported_unknown_never_healthy() {
    let mut world = World::new(Policy {
        probes: vec![medic_core::ProbeTiming {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        }],
        ..policy()
    });
    world.run("ok");
    assert_eq!(world.sup.overall(world.now), Health::Healthy);
    // interval 1 s, timeout 1 s: stale after 3 s without an observation.
    assert_snapshot!(world.run("+3s"), @"stale");
    assert_eq!(world.sup.overall(world.now), Health::Unknown);
    assert_snapshot!(world.run("ok"), @"sight_restored →lkg");
    assert_eq!(world.sup.overall(world.now), Health::Healthy);
}

#[test]
fn never_observed_is_unknown() {
    let world = World::new(policy());
    assert_eq!(world.sup.overall(world.now), Health::Unknown);
}

/// Shutdown cuts a restart short: it stays the running step in the state
/// store, and the next medic verifies it on fresh observations.
#[test]
fn an_interrupted_restart_is_verified_by_the_next_medic() {
    assert_snapshot!(run(policy(), "ok died interrupted ok"), @"healthy failing(1) restart(1) →restart(1) interrupted(1) watching(1) resumed(1) recovered !info:recovered");
}

/// A container rollback cut short (between stop, rename, create and start)
/// is run again by the next medic, as a resumed job: it finishes from the
/// last known good spec, whatever step it was cut at.
#[test]
fn an_interrupted_rollback_is_finished_by_the_next_medic() {
    let resumes = policy_resuming();
    let script = "ok died error +2s error +5s error interrupted +1ms";
    assert_snapshot!(run(resumes.clone(), script), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(2) →restart(2) restart_failed(2) restart(3) →restart(3) restart_failed(3) rollback →rollback interrupted watching resumed rollback →finish-rollback");
    let mut world = World::new(resumes);
    world.run(script);
    assert_snapshot!(world.run("done ok"), @"rollback_done rolled_back !warning:rolled_back");
    // Cut again while finishing: still one to finish.
    let mut twice = World::new(policy_resuming());
    twice.run(script);
    assert_snapshot!(twice.run("interrupted +1ms"), @"interrupted watching resumed rollback →finish-rollback");
    // Without it (a command target's script), it is only verified.
    assert_snapshot!(run(policy(), script), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(2) →restart(2) restart_failed(2) restart(3) →restart(3) restart_failed(3) rollback →rollback interrupted watching resumed");
}

fn policy_resuming() -> Policy {
    Policy {
        rollback_resumes: true,
        ..policy()
    }
}

/// Once medic stops, nothing new launches: a due step stays due in the state
/// store, and the next medic runs it.
#[test]
fn nothing_launches_after_shutdown() {
    let mut world = World::new(policy());
    assert_snapshot!(world.run("ok shutdown died"), @"healthy failing(1) restart(1)");
    assert!(world.running.is_empty());
    assert_snapshot!(world.run("restart-medic +1ms"), @"watching(1) resumed(1) restart(1) →restart(1)");
}

/// The shell cancelled a job past its deadline: a failed step, its slot free.
#[test]
fn a_job_the_shell_cancelled_counts_as_failed() {
    assert_snapshot!(run(policy(), "ok died timed-out"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1)");
    assert_eq!(
        run(policy(), "ok died timed-out +2s")
            .matches("→restart")
            .count(),
        2
    );
}

/// Issue #28, case 5: the deploy command reports after its timeout, while the
/// rollback runs: logged and ignored, never taken for the rollback's result.
#[test]
fn a_late_deploy_result_is_not_the_rollbacks() {
    let mut world = World::new(policy());
    assert_snapshot!(world.run("ok deploy +61s"), @"healthy deploy deploy_failed !critical:deploy_failed rollback →rollback");
    assert_snapshot!(world.run("deploy-done"), @"ignored");
    assert_eq!(world.running.len(), 1, "the rollback still runs");
    assert_snapshot!(world.run("done ok"), @"rollback_done rolled_back !warning:rolled_back");
    assert_eq!(world.deploy_ends, [medic_core::DeployEnd::RolledBack]);
}

/// How a deploy ends is the core's word, once per deploy.
#[test]
fn a_deploy_ends_once_promoted_rolled_back_escalated_or_reset() {
    use medic_core::DeployEnd::*;
    let ends = |script: &str| {
        let mut world = World::new(policy());
        world.run(script);
        world.deploy_ends
    };
    assert_eq!(ends("ok deploy done ok ok"), [Promoted]);
    assert_eq!(ends("ok deploy error done ok"), [RolledBack]);
    assert_eq!(ends("ok deploy error error"), [Escalated]);
    assert_eq!(ends("ok deploy reset"), [Reset]);
    assert_eq!(ends("ok died done ok"), []);
}

/// A failed deploy's end carries why it failed (the shell answers `medic
/// deploy` with it); a promoted one carries nothing.
#[test]
fn a_deploy_end_says_why_the_deploy_failed() {
    let failures = |script: &str| {
        let mut world = World::new(policy());
        world.run(script);
        world.deploy_failures
    };
    assert_eq!(failures("ok deploy done ok ok"), [None]);
    assert_eq!(
        failures("ok deploy error done ok"),
        [Some("deploy command failed: exit 1".to_owned())]
    );
    assert_eq!(
        failures("ok deploy +61s done ok"),
        [Some(
            "the deploy command did not report back in time".to_owned()
        )]
    );
}

/// medic restarted at each moment of the ladder: every incident resumes where
/// it stood, says so once, and ends in recovery, rollback or escalation.
#[test]
fn a_restart_of_medic_resumes_every_phase() {
    // During the backoff before attempt 2: attempt 2 still comes at its time.
    assert_snapshot!(run(policy(), "ok died error restart-medic +2s"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) watching(2) resumed(2) restart(2) →restart(2)");
    // Long after its time: at once.
    assert_snapshot!(run(policy(), "ok died error restart-medic+1h +0s"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) watching(2) resumed(2) restart(2) →restart(2)");
    // During attempt 2: its result is unknown, it is verified on fresh observations, and the ladder goes on.
    assert_snapshot!(run(policy(), "ok died error +2s restart-medic fail +10s +5s"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(2) →restart(2) watching(2) resumed(2) restart_failed(2) restart(3) →restart(3)");
    // The same attempt, back healthy: recovered.
    assert_snapshot!(run(policy(), "ok died error +2s restart-medic +1s ok"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(2) →restart(2) watching(2) resumed(2) recovered !info:recovered");
    // During verification of attempt 3.
    assert_snapshot!(run(policy(), "ok died error +2s error +5s done restart-medic fail +10s done ok"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(2) →restart(2) restart_failed(2) restart(3) →restart(3) restart_done(3) watching(3) resumed(3) restart_failed(3) rollback →rollback rollback_done rolled_back !warning:rolled_back");
    // During the rollback: verified, then escalated when it does not bring the unit back.
    assert_snapshot!(run(policy(), "ok died error +2s error +5s error restart-medic +10s fail"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(2) →restart(2) restart_failed(2) restart(3) →restart(3) restart_failed(3) rollback →rollback watching resumed rollback_failed escalated !critical:escalated");
    // Escalated stays escalated.
    assert_snapshot!(run(policy(), "ok died error +2s error +5s error error restart-medic +1h fail"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(2) →restart(2) restart_failed(2) restart(3) →restart(3) restart_failed(3) rollback →rollback rollback_failed escalated !critical:escalated watching resumed");
    // Paused stays paused; a pause with an end still ends.
    assert_snapshot!(run(policy(), "ok died pause error restart-medic +1h resume"), @"healthy failing(1) restart(1) →restart(1) paused(1) restart_failed(1) watching(2) resumed(2) resumed(2) restart(2) →restart(2)");
    // A deploy that was running failed: rolled back as the guard says.
    assert_snapshot!(run(policy(), "ok deploy restart-medic done ok"), @"healthy deploy watching deploy_failed !critical:deploy_failed rollback →rollback rollback_done rolled_back !warning:rolled_back");
    // Nothing open: nothing said.
    assert_snapshot!(run(policy(), "ok restart-medic ok"), @"healthy watching healthy");
}

#[test]
fn a_timed_pause_still_ends_after_a_restart_of_medic() {
    let mut world = World::new(policy());
    world.run("ok died");
    world.control(medic_core::Control::Pause {
        until: Some(world.now + Duration::from_secs(60)),
    });
    assert_snapshot!(world.run("error restart-medic +61s"), @"restart_failed(1) watching(2) resumed(2) resumed(2) restart(2) →restart(2)");
}

/// An action that never reports counts as failed at `action_timeout`; the
/// next one waits for it to end (one job per unit), and its late result is
/// logged and ignored, never counted for the next one.
#[test]
fn an_action_that_never_reports_fails_at_its_deadline() {
    assert_snapshot!(run(policy(), "ok died +5m +2s error"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(2) ignored →restart(2)");
}

#[test]
fn dependencies_hold_restarts_until_the_parent_is_healthy() {
    use medic_core::{Input, Observation, Urgency};
    let mut world = World::new(policy());
    world.sup.add_unit(world.now, "db", policy());
    world.sup.set_dependencies(UNIT, vec!["db".into()]);
    let db = |world: &mut World, observation| {
        world.input(Input::Observed {
            unit: "db".into(),
            probe: 0,
            observation,
        })
    };
    world.run("ok");
    db(&mut world, Observation::ok(Duration::ZERO, "ok"));
    db(
        &mut world,
        Observation::fail(Duration::ZERO, "down").with_urgency(Urgency::Decisive),
    );
    world.trace.clear();
    world.run("died");
    assert_eq!(world.restarts, 1, "only db restarted so far");
    world.finish_unit(
        "db",
        medic_core::ActionResult::Done {
            message: "ok".into(),
            evidence: Default::default(),
        },
    );
    db(&mut world, Observation::ok(Duration::ZERO, "ok"));
    assert_eq!(world.restarts, 2, "web restarted once db is healthy");
    assert_snapshot!(world.trace.join(" "), @"failing(1) waiting_for_dependency(1) restart_done(1) recovered !info:recovered restart(1) →restart(1)");
}

#[test]
fn a_selector_dependency_is_ready_when_every_instance_is_healthy() {
    use medic_core::{Input, Observation, Urgency};
    let mut world = World::new(policy());
    // `db` is a selector service: its units are its instances.
    for unit in ["db/app_db_1", "db/app_db_2", "dbx"] {
        world.sup.add_unit(world.now, unit, policy());
    }
    world.sup.set_dependencies(UNIT, vec!["db".into()]);
    let observe = |world: &mut World, unit: &str, ok: bool| {
        let observation = if ok {
            Observation::ok(Duration::ZERO, "ok")
        } else {
            Observation::fail(Duration::ZERO, "down").with_urgency(Urgency::Decisive)
        };
        world.input(Input::Observed {
            unit: unit.into(),
            probe: 0,
            observation,
        })
    };
    world.run("ok");
    observe(&mut world, "db/app_db_1", true);
    // One instance never observed, another unit merely sharing the prefix: still held.
    world.run("died");
    assert_eq!(world.restarts, 0, "held while db/app_db_2 is not healthy");
    observe(&mut world, "dbx", true);
    assert_eq!(world.restarts, 0, "dbx is not an instance of db");
    observe(&mut world, "db/app_db_2", true);
    assert_eq!(world.restarts, 1, "released once every instance is healthy");
}

#[test]
fn long_blindness_raises_one_alert_and_resolves_it() {
    let mut world = World::new(policy());
    world.sup.set_blind_alert_after(Duration::from_secs(300));
    world.sup.add_unit(world.now, "db", policy());
    world.run("ok");
    let blind = |world: &mut World, unit: &str| {
        let observation =
            medic_core::Observation::blind(Duration::ZERO, "Docker engine unreachable");
        world.input(medic_core::Input::Observed {
            unit: unit.into(),
            probe: 0,
            observation,
        });
    };
    blind(&mut world, UNIT);
    blind(&mut world, "db");
    assert_snapshot!(world.run("+4m"), @"");
    assert_snapshot!(world.run("+2m +10m"), @"!critical:blind");
    assert_snapshot!(world.run("ok"), @"sight_restored →lkg");
    world.input(medic_core::Input::Observed {
        unit: "db".into(),
        probe: 0,
        observation: medic_core::Observation::ok(Duration::ZERO, "ok"),
    });
    assert_snapshot!(world.trace.last().unwrap(), @"!info:blind");
}

/// Found by the simulation (seed 160): a restart of medic while a unit is
/// blind counts the blindness from when it began, so a medic restarted more
/// often than `blind_alert_after` still alerts; one the probes see through
/// after the restart is over, and the next one counts afresh.
#[test]
fn a_restart_of_medic_does_not_reset_the_blindness_count() {
    // Blind for 3 min of a 5 min `blind_alert_after`, then medic restarts.
    let restarted = || {
        let after = Duration::from_secs(300);
        let mut world = World::new(policy());
        world.sup.set_blind_alert_after(after);
        world.run("ok blind +3m");
        world.restart_medic();
        world.sup.set_blind_alert_after(after);
        world
    };
    let mut world = restarted();
    assert_snapshot!(world.run("blind +1m"), @"blind");
    assert_snapshot!(world.run("+1m +10s"), @"!critical:blind");

    let mut world = restarted();
    assert_snapshot!(world.run("ok blind +4m"), @"healthy blind");
    assert_snapshot!(world.run("+1m +10s"), @"!critical:blind");
}

#[test]
fn a_healthy_deploy_becomes_the_last_known_good() {
    // Failures while the command runs are the deploy's business, not an incident.
    assert_snapshot!(run(policy(), "ok deploy died fail fail fail done ok"), @"healthy deploy deploy_done deployed");
}

#[test]
fn a_deploy_that_is_not_healthy_in_time_is_rolled_back() {
    assert_snapshot!(run(policy(), "ok deploy done fail +30s done ok"), @"healthy deploy deploy_done deploy_failed !critical:deploy_failed rollback →rollback rollback_done rolled_back !warning:rolled_back");
}

#[test]
fn a_deploy_whose_new_version_dies_is_rolled_back_at_once() {
    assert_snapshot!(run(policy(), "ok deploy done died done ok"), @"healthy deploy deploy_done deploy_failed !critical:deploy_failed rollback →rollback rollback_done rolled_back !warning:rolled_back");
}

#[test]
fn a_removed_container_may_still_be_replaced_before_the_deploy_timeout() {
    assert_snapshot!(run(policy(), "ok deploy done gone +10s ok"), @"healthy deploy deploy_done deployed");
}

#[test]
fn a_failed_deploy_command_rolls_back_even_when_paused() {
    assert_snapshot!(run(policy(), "ok pause deploy error done ok"), @"healthy paused deploy deploy_failed !critical:deploy_failed rollback →rollback rollback_done rolled_back !warning:rolled_back");
}

#[test]
fn a_deploy_command_that_never_reports_back_fails_the_deploy() {
    assert_snapshot!(run(policy(), "ok deploy +61s"), @"healthy deploy deploy_failed !critical:deploy_failed rollback →rollback");
}

#[test]
fn a_failed_deploy_without_rollback_escalates() {
    let policy = Policy {
        can_rollback: false,
        ..policy()
    };
    assert_snapshot!(run(policy, "ok deploy error"), @"healthy deploy deploy_failed escalated !critical:escalated");
}

#[test]
fn a_deploy_waits_for_a_running_action() {
    let mut world = World::new(policy());
    world.run("ok died");
    assert!(!world.sup.can_deploy(UNIT), "a restart is running");
    world.run("done ok");
    assert!(world.sup.can_deploy(UNIT));
    world.run("deploy");
    assert!(!world.sup.can_deploy(UNIT), "one deploy at a time");
    let status = world.sup.unit_status(world.now, UNIT).unwrap();
    assert_eq!(status.health, Health::Unknown, "nothing claimed mid-deploy");
    assert_eq!(status.state, "deploying");
}

#[test]
fn a_target_removed_while_it_is_restarted_gets_its_replace_grace() {
    // `docker rm -f`: died first, gone by the time the restart runs. A
    // replacement gets replace_grace (30 s) before medic recreates the container.
    assert_snapshot!(run(policy(), "ok died vanished +29s"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1)");
    assert_snapshot!(run(policy(), "ok died vanished +30s done ok"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(1) →recreate(1) restart_done(1) recovered !warning:restored_removed");
    assert_snapshot!(run(policy(), "ok died vanished +10s ok"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) recovered !info:recovered");
    // The removal seen by a probe while the restart ran, then by the restart itself.
    assert_snapshot!(run(policy(), "ok died gone vanished +30s done ok"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(1) →recreate(1) restart_done(1) recovered !warning:restored_removed");
}

/// `podman rm -f` racing the restart: the start "succeeded" into a
/// container Podman then removed. Gone while the restart is verified is a
/// removal (replace_grace, the same attempt again, recreating), not attempt
/// 1 failed; gone again after that recreate is a failed attempt.
#[test]
fn a_target_removed_after_its_restart_found_it_is_a_removal() {
    assert_snapshot!(run(policy(), "ok died done gone +29s"), @"healthy failing(1) restart(1) →restart(1) restart_done(1) restart_failed(1)");
    assert_snapshot!(run(policy(), "ok died done gone +30s done ok"), @"healthy failing(1) restart(1) →restart(1) restart_done(1) restart_failed(1) restart(1) →recreate(1) restart_done(1) recovered !warning:restored_removed");
    assert_snapshot!(run(policy(), "ok died done gone +30s done gone +5s"), @"healthy failing(1) restart(1) →restart(1) restart_done(1) restart_failed(1) restart(1) →recreate(1) restart_done(1) restart_failed(1) restart(2) →recreate(2)");
    // A replacement within the grace is adopted.
    assert_snapshot!(run(policy(), "ok died done gone +10s ok"), @"healthy failing(1) restart(1) →restart(1) restart_done(1) restart_failed(1) recovered !info:recovered");
}

#[test]
fn a_probe_that_began_before_the_restart_finished_does_not_judge_it() {
    let mut world = World::new(policy());
    world.run("ok died");
    let began = world.now;
    world.run("+100ms done");
    // The container probe a Docker event started during the restart reports the old death.
    let stale = Observation::fail(Duration::from_millis(5), "exited with exit code 137")
        .with_urgency(Urgency::Decisive)
        .started_at(began);
    world.observe(stale);
    let ok_before = Observation::ok(Duration::from_millis(5), "200 OK").started_at(began);
    world.observe(ok_before);
    assert_snapshot!(world.trace.join(" "), @"watching healthy failing(1) restart(1) →restart(1) restart_done(1)");
    world.run("ok");
    assert!(
        world
            .trace
            .ends_with(&["recovered".to_owned(), "!info:recovered".to_owned(),]),
        "{:?}",
        world.trace
    );
}

/// A removal waits `replace_grace` (30 s) whatever step the ladder is on: in
/// the backoff before attempt 2, and before the rollback once the attempts are used.
#[test]
fn a_removal_during_any_ladder_step_waits_replace_grace() {
    assert_snapshot!(run(policy(), "ok died error gone +2s +27s"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1)");
    assert_snapshot!(run(policy(), "ok died error gone +30s"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(2) →recreate(2)");
    assert_snapshot!(run(policy(), "ok died error +2s error +5s gone error +29s"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(2) →restart(2) restart_failed(2) restart(3) →restart(3) restart_failed(3)");
    assert_snapshot!(run(policy(), "ok died error +2s error +5s gone error +30s"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(2) →restart(2) restart_failed(2) restart(3) →restart(3) restart_failed(3) rollback →rollback");
    // A replacement appears within the grace: adopted and verified, nothing overwritten.
    assert_snapshot!(run(policy(), "ok died error +2s error +5s gone error +10s ok"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(2) →restart(2) restart_failed(2) restart(3) →restart(3) restart_failed(3) recovered !info:recovered");
}

/// The shell's recreate met a container of the same name (a deploy's): it is
/// adopted (reported done) and verified, not a failed attempt.
#[test]
fn a_recreate_that_meets_a_replacement_adopts_it() {
    assert_snapshot!(run(policy(), "ok gone +30s done ok"), @"healthy failing(1) restart(1) →recreate(1) restart_done(1) recovered !warning:restored_removed");
}

/// Below the threshold a healthy unit is shown as failing (1/3), while the
/// state machine still waits for the threshold before acting.
#[test]
fn failures_below_the_threshold_are_shown_not_acted_on() {
    let mut world = World::new(policy());
    assert_snapshot!(world.run("ok fail"), @"healthy");
    let status = world.sup.unit_status(world.now, UNIT).unwrap();
    assert_eq!(status.below_threshold, Some((1, 3)));
    assert_eq!(status.state, "healthy");
    world.run("fail fail");
    let status = world.sup.unit_status(world.now, UNIT).unwrap();
    assert_eq!(status.below_threshold, None, "an incident is open now");
}

#[test]
fn the_engines_own_restart_gets_the_first_chance() {
    // Back within the grace: medic does not act, and says who brought it back.
    let mut world = World::new(policy());
    assert_snapshot!(world.run("ok engine +1s ok"), @"healthy failing(1) recovered !info:recovered");
    let recovered = world.alerts.last().unwrap();
    assert_eq!(
        recovered.message,
        "started again by restart policy `always`; medic did not act"
    );
    // Not back within the grace (a `docker stop` the policy never undoes): medic acts then.
    assert_snapshot!(run(policy(), "ok engine +9s"), @"healthy failing(1)");
    let mut world = World::new(policy());
    assert_snapshot!(world.run("ok engine +10s done ok"), @"healthy failing(1) restart(1) →restart(1) restart_done(1) recovered !info:recovered");
    assert_eq!(
        world.restart_times[0] - world.now + Duration::from_secs(10),
        medic_core::ENGINE_GRACE
    );
    // Only the first attempt waits: a second failure in the incident follows the backoff.
    assert_snapshot!(run(policy(), "ok engine +10s error engine +2s"), @"healthy failing(1) restart(1) →restart(1) restart_failed(1) restart(2) →restart(2)");
}

/// A crash-looping container that the container probe glimpses running (the
/// ~10 ms it runs) is never recorded as the last known good: only a unit still
/// healthy on a fresh round that began a probe interval (at most 10 s) after it
/// was judged healthy is. Here a removed container's replacement crash-loops:
/// each glimpse closes its incident, none becomes the last known good, and the
/// fourth incident is flapping and rolls back to the good version recorded before.
#[test]
fn a_glimpse_of_a_crash_looping_container_is_never_the_last_known_good() {
    let mut world = World::new(policy());
    assert_snapshot!(world.run("ok +9s ok"), @"healthy");
    assert_eq!(
        world.provisional_lkg, 1,
        "kept by the shell only when it has none"
    );
    assert_snapshot!(world.run("+1s ok"), @"→lkg");
    let crash_loop = "gone +30s done ok +10ms died done ok +10ms died done ok +10ms died +1s";
    assert_snapshot!(world.run(crash_loop), @"failing(1) restart(1) →recreate(1) restart_done(1) recovered !warning:restored_removed failing(1) restart(1) →restart(1) restart_done(1) recovered !info:recovered failing(1) restart(1) →restart(1) restart_done(1) recovered !info:recovered failing rollback →rollback");
    assert_eq!(world.rollbacks, 1);
}
