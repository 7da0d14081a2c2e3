//! The storm rule as the supervisor's output, in virtual time: many units
//! failing at once come out as one `Action::Storm` began / summary / ended,
//! the alerts of its members say `held`, and a restarted medic continues the
//! storm it saved. The shell only carries these out (issue #28).

// Not every helper of the shared world is used here.
#[allow(dead_code)]
mod support;

use std::time::Duration;

use insta::assert_snapshot;
use medic_core::storm::SUMMARY_EVERY;
use medic_core::{ActionResult, Input, Observation, Urgency};
use support::{World, policy};

/// Units besides the world's own: 30, so the rule's floor of 10 is the threshold.
fn world() -> World {
    let mut world = World::new(policy());
    for n in 0..30 {
        let unit = format!("ep{n:02}");
        world.sup.add_unit(world.now, &unit, policy());
        world.observe_unit(&unit, Observation::ok(Duration::ZERO, "200"));
    }
    world.lines.clear();
    world
}

fn die(world: &mut World, units: std::ops::Range<usize>) {
    for n in units {
        let died = Observation::fail(Duration::ZERO, "died").with_urgency(Urgency::Decisive);
        world.observe_unit(&format!("ep{n:02}"), died);
    }
}

fn done() -> ActionResult {
    ActionResult::Done {
        message: "exit 0".into(),
        evidence: Default::default(),
    }
}

fn error() -> ActionResult {
    ActionResult::Failed {
        message: "exit 1".into(),
        evidence: Default::default(),
    }
}

fn recover(world: &mut World, units: std::ops::Range<usize>) {
    for n in units {
        let unit = format!("ep{n:02}");
        world.finish_unit(&unit, done());
        world.observe_unit(&unit, Observation::ok(Duration::ZERO, "200"));
    }
}

/// The storm's own lines and the alerts, in order (not the per-unit events).
fn storm_lines(world: &World) -> String {
    let lines: Vec<String> = world
        .lines
        .iter()
        .filter(|(_, line)| line.starts_with("storm") || line.starts_with('!'))
        .map(|(unit, line)| format!("{unit}:{line}"))
        .collect();
    lines.join(" ")
}

#[test]
fn ten_failures_at_once_are_one_storm_that_ends_when_most_are_back() {
    let mut world = world();
    die(&mut world, 0..9);
    assert_snapshot!(storm_lines(&world), @"");
    die(&mut world, 9..10);
    assert_snapshot!(storm_lines(&world), @"medic:storm-began(10)");
    // It comes right after the failure that made it.
    let at = world.lines.iter().position(|(_, l)| l.starts_with("storm"));
    let before = &world.lines[at.expect("began") - 1];
    assert_eq!(before, &("ep09".to_owned(), "failing(1)".to_owned()));
    world.lines.clear();
    // 31 units: the threshold is the floor, 10; it ends below half of it.
    recover(&mut world, 0..6);
    assert_snapshot!(storm_lines(&world), @"ep00:!info:recovered(held) ep01:!info:recovered(held) ep02:!info:recovered(held) ep03:!info:recovered(held) ep04:!info:recovered(held) medic:storm-ended(4) ep05:!info:recovered(held)");
}

#[test]
fn a_storm_members_alerts_are_held_and_an_outsiders_are_not() {
    let mut world = world();
    die(&mut world, 0..12);
    world.lines.clear();
    // ep00's restarts fail until it escalates: a member, held.
    for _ in 0..3 {
        world.finish_unit("ep00", error());
        world.advance(Duration::from_secs(60));
    }
    world.finish_unit("ep00", error());
    // The count grew while ep00 tried: a summary.
    assert_snapshot!(storm_lines(&world), @"medic:storm-summary(12) ep00:!critical:escalated(held)");
    world.lines.clear();
    // Most come back: the storm ends; its members' resolving lines stay held.
    recover(&mut world, 1..12);
    assert_snapshot!(storm_lines(&world), @"ep01:!info:recovered(held) ep02:!info:recovered(held) ep03:!info:recovered(held) ep04:!info:recovered(held) ep05:!info:recovered(held) ep06:!info:recovered(held) ep07:!info:recovered(held) medic:storm-ended(4) ep08:!info:recovered(held) ep09:!info:recovered(held) ep10:!info:recovered(held) ep11:!info:recovered(held)");
    world.lines.clear();
    // The escalated member reset by a person: its resolving line stays held too.
    world.input(reset("ep00"));
    assert_snapshot!(storm_lines(&world), @"ep00:!info:resolved(held)");
    world.lines.clear();
    // After the storm, a new incident is an ordinary one: its alert goes out.
    die(&mut world, 20..21);
    for _ in 0..4 {
        world.finish_unit("ep20", error());
        world.advance(Duration::from_secs(60));
    }
    assert_snapshot!(storm_lines(&world), @"ep20:!critical:escalated");
}

fn reset(unit: &str) -> Input {
    Input::Control {
        unit: unit.into(),
        control: medic_core::Control::Reset,
    }
}

#[test]
fn a_growing_storm_is_summarised_at_most_every_30_seconds() {
    let mut world = world();
    die(&mut world, 0..10);
    world.lines.clear();
    world.advance(SUMMARY_EVERY);
    // No change in the count: no summary.
    assert_snapshot!(storm_lines(&world), @"");
    die(&mut world, 10..15);
    world.advance(Duration::from_secs(1));
    assert_snapshot!(storm_lines(&world), @"medic:storm-summary(15)");
    world.lines.clear();
    die(&mut world, 15..16);
    world.advance(SUMMARY_EVERY - Duration::from_secs(2));
    assert_snapshot!(storm_lines(&world), @"");
    world.advance(Duration::from_secs(2));
    assert_snapshot!(storm_lines(&world), @"medic:storm-summary(16)");
}

#[test]
fn a_restarted_medic_continues_the_storm_and_ends_it() {
    let mut world = world();
    die(&mut world, 0..12);
    let saved = world.sup.storm().saved().expect("a storm to keep");
    assert!(world.sup.take_storm_changed());
    world.restart_medic();
    world.sup.restore_storm(world.now, saved);
    world.lines.clear();
    let active = world.sup.storm().active().expect("it goes on");
    assert_eq!(active.failing, 12);
    recover(&mut world, 0..8);
    // Members' resolving lines stay off the sinks, during the storm and after.
    assert_snapshot!(storm_lines(&world), @"ep00:!info:recovered(held) ep01:!info:recovered(held) ep02:!info:recovered(held) ep03:!info:recovered(held) ep04:!info:recovered(held) ep05:!info:recovered(held) ep06:!info:recovered(held) medic:storm-ended(4) ep07:!info:recovered(held)");
}

#[test]
fn a_unit_no_longer_watched_leaves_the_storm() {
    let mut world = world();
    die(&mut world, 0..10);
    world.lines.clear();
    for n in 0..6 {
        world.sup.remove_unit(world.now, &format!("ep{n:02}"));
    }
    world.drain();
    assert_snapshot!(storm_lines(&world), @"medic:storm-ended(4)");
}
