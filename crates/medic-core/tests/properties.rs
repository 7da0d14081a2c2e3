//! Property tests: random scripts of observations, action results, controls and
//! time jumps, checked against the invariants of DESIGN.md.

mod support;

use std::time::Duration;

use medic_core::{Health, Policy};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use support::{UNIT, World, policy};

fn step() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("ok".to_owned()),
        4 => Just("fail".to_owned()),
        2 => Just("died".to_owned()),
        1 => Just("gone".to_owned()),
        1 => Just("commanded".to_owned()),
        1 => Just("ok@b".to_owned()),
        1 => Just("blind".to_owned()),
        3 => Just("done".to_owned()),
        3 => Just("error".to_owned()),
        1 => Just("interrupted".to_owned()),
        1 => Just("vanished".to_owned()),
        1 => Just("impossible".to_owned()),
        1 => Just("pause".to_owned()),
        1 => Just("resume".to_owned()),
        1 => Just("reset".to_owned()),
        1 => Just("recover".to_owned()),
        1 => Just("deploy".to_owned()),
        4 => (0u64..200).prop_map(|s| format!("+{s}s")),
    ]
}

fn fast_policy() -> Policy {
    Policy {
        probes: vec![medic_core::ProbeTiming {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
        }],
        ..policy()
    }
}

/// Runs a script step by step, letting `check` look at the world after each one.
fn replay(script: &[String], mut check: impl FnMut(&str, &World, usize, u32)) {
    let mut world = World::new(fast_policy());
    for step in script {
        let restarts = world.restarts;
        let trace_len = world.trace.len();
        world.step(step);
        check(step, &world, trace_len, restarts);
    }
}

proptest! {
    // A fixed seed: every run checks the same 500 scripts, so a failure is a
    // change in medic, not luck (raise `cases` locally to search further).
    #![proptest_config(ProptestConfig {
        cases: 500,
        rng_seed: RngSeed::Fixed(0x6d65_6469_6321),
        ..ProptestConfig::default()
    })]

    /// Never more than max_attempts automatic restarts in one incident (a
    /// person's recover starts a fresh budget).
    #[test]
    fn restarts_are_bounded_per_incident(script in prop::collection::vec(step(), 1..120)) {
        let policy = fast_policy();
        let mut per_incident: std::collections::BTreeMap<String, u32> = Default::default();
        replay(&script, |step, world, trace_len, restarts_before| {
            let incident = world.sup.unit_status(world.now, UNIT).unwrap().incident;
            if step == "recover" {
                per_incident.clear();
            }
            let new = world.restarts - restarts_before;
            if let Some(id) = incident {
                let count = per_incident.entry(id).or_default();
                *count += new;
                // A restart that found its target gone did not run, and one whose
                // target was removed after it (the same attempt runs again): not counted.
                let removed_after = step == "gone"
                    && world.trace[trace_len..].iter().any(|t| t.starts_with("restart_failed"));
                if step == "vanished" || removed_after {
                    *count = count.saturating_sub(1);
                }
                assert!(*count <= policy.max_attempts, "{count} restarts in one incident: {:?}", world.trace);
            }
        });
    }

    /// No automatic action while paused or blind, and none after escalation until a person acts.
    #[test]
    fn no_action_while_paused_blind_or_escalated(script in prop::collection::vec(step(), 1..120)) {
        let mut held_before = false;
        // A person's recover (or a failed deploy's rollback) decided while a job
        // of the unit still runs launches when that job ends: a person asked.
        let mut person_waiting = false;
        replay(&script, |step, world, trace_len, _| {
            // A failed deploy is rolled back even when paused: a person asked for that guard.
            let deploy_guard = world.trace[trace_len..].iter().any(|t| t == "deploy_failed");
            let acted = !deploy_guard
                && world.trace[trace_len..].iter().any(|t| t.starts_with('→') && t != "→lkg");
            let status = world.sup.unit_status(world.now, UNIT).unwrap();
            let blind = status.probes.iter().flatten().any(|p| p.observation.outcome == medic_core::Outcome::Blind);
            let held_after = status.paused.is_some() || blind || status.state == "escalated";
            // What may lift a hold: a person, or an observation that sees again.
            let lifts = matches!(step, "resume" | "reset" | "ok" | "ok@b" | "fail" | "died" | "gone" | "commanded");
            let for_a_person = step == "recover" || (acted && person_waiting);
            if acted && !for_a_person && (held_after || (held_before && !lifts)) {
                panic!("acted while held after `{step}`: {:?}", world.trace);
            }
            match step {
                _ if step == "recover" || deploy_guard => person_waiting = !acted,
                "reset" | "pause" | "deploy" => person_waiting = false,
                _ if acted => person_waiting = false,
                _ => {}
            }
            held_before = held_after;
        });
    }

    /// A unit whose last observation is older than 2 × interval + timeout is never reported healthy.
    #[test]
    fn stale_is_never_healthy(script in prop::collection::vec(step(), 1..80)) {
        let timing = fast_policy().probes[0];
        replay(&script, |_, world, _, _| {
            let status = world.sup.unit_status(world.now, UNIT).unwrap();
            let fresh = status.probes.iter().flatten().all(|p| world.now.duration_since(p.at) < timing.stale_after())
                && status.probes.iter().all(Option::is_some);
            if !fresh {
                assert_ne!(status.health, Health::Healthy, "stale but healthy: {:?}", world.trace);
            }
        });
    }

    /// Whatever happened, once the running action finishes and fresh successes
    /// arrive, the unit is healthy again — unless it is escalated, which only a person clears.
    #[test]
    fn fresh_successes_return_to_healthy(script in prop::collection::vec(step(), 1..80)) {
        let mut world = World::new(fast_policy());
        for step in &script {
            world.step(step);
        }
        for _ in 0..3 {
            match world.sup.unit_status(world.now, UNIT).unwrap().state {
                "escalated" => world.run("reset ok"),
                _ => world.run("resume done ok"),
            };
        }
        let status = world.sup.unit_status(world.now, UNIT).unwrap();
        assert_eq!(status.state, "healthy", "{:?}", world.trace);
        assert_eq!(status.health, Health::Healthy);
        assert!(status.incident.is_none());
    }

    /// One notification per incident state change, never one per probe: an
    /// incident raises at most one alert that opens (escalated; a failed deploy
    /// adds its own) and exactly one line that ends it, however its probes flap.
    #[test]
    fn one_alert_per_incident_state_change(script in prop::collection::vec(step(), 1..120)) {
        let mut world = World::new(fast_policy());
        for step in &script {
            world.step(step);
        }
        let mut per_incident: std::collections::BTreeMap<String, (u32, u32, u32)> = Default::default();
        for alert in &world.alerts {
            let Some(incident) = &alert.incident else { continue };
            let counts = per_incident.entry(incident.clone()).or_default();
            match (alert.resolved, alert.kind) {
                (true, _) => counts.1 += 1,
                // Flapping is said once (and resolved once) beside the incident's own alerts.
                (false, "deploy_failed" | "flapping") => counts.2 += 1,
                (false, _) => counts.0 += 1,
            }
        }
        // A person's deploy or recover on an incident is a new state change: it may escalate again.
        let recovers = script.iter().filter(|s| *s == "recover").count() as u32;
        for (incident, (opening, ending, deploys)) in &per_incident {
            assert!(*opening <= 1 + deploys + recovers && *ending <= 1, "{incident}: {opening} opening, {ending} ending alerts: {:?}", world.trace);
        }
        // Each closed incident ends with one resolving line; a reset adds one only for an alerted incident.
        let count = |name: &str| world.trace.iter().filter(|t| *t == name).count();
        let closed = count("recovered") + count("rolled_back");
        let ends = world.alerts.iter().filter(|a| a.resolved && a.incident.is_some()).count();
        // The incident that said it flaps is resolved when the flapping ends, not when it closes.
        let flapping = count("!critical:flapping");
        // A deploy closes the incident it was made onto, if there was one.
        assert!(closed <= ends + flapping && ends <= closed + count("reset") + count("deployed") + count("flapping_ended"), "{closed} closed, {ends} ending alerts: {:?}", world.trace);
    }

    /// Every event of an incident carries its id, and an incident id is never reused.
    #[test]
    fn incidents_have_unique_ids(script in prop::collection::vec(step(), 1..120)) {
        let mut world = World::new(fast_policy());
        let mut seen = std::collections::BTreeSet::new();
        let mut current: Option<String> = None;
        for step in &script {
            world.step(step);
            let incident = world.sup.unit_status(world.now, UNIT).unwrap().incident;
            if incident != current {
                if let Some(id) = &incident {
                    assert!(seen.insert(id.clone()), "incident id {id} reused");
                }
                current = incident;
            }
        }
    }

    /// A deploy always ends: without another word from the person, its
    /// deadlines promote it, roll it back or escalate (unless medic is blind).
    #[test]
    fn a_deploy_never_holds_recovery_forever(script in prop::collection::vec(step(), 1..80)) {
        let mut world = World::new(fast_policy());
        for step in &script {
            world.step(step);
        }
        world.run("+61s +31s +31s");
        let status = world.sup.unit_status(world.now, UNIT).unwrap();
        let blind = status.probes.iter().flatten().any(|p| p.observation.outcome == medic_core::Outcome::Blind);
        if !blind {
            assert_ne!(status.state, "deploying", "{:?}", world.trace);
        }
    }

    /// What becomes the last known good has stayed healthy, with no incident,
    /// for one probe interval (5 s here) since it was judged healthy: never a
    /// glimpse. (Provisional records, kept only when there is none, are not traced.)
    #[test]
    fn the_last_known_good_has_stayed_healthy(script in prop::collection::vec(step(), 1..120)) {
        let mut healthy_since = None;
        replay(&script, |_, world, trace_len, _| {
            let state = world.sup.unit_status(world.now, UNIT).unwrap().state;
            if world.trace[trace_len..].iter().any(|t| t == "→lkg") {
                let since = healthy_since.expect("healthy before it is recorded");
                assert!(
                    world.now - since >= Duration::from_secs(5),
                    "healthy for {:?} only: {:?}",
                    world.now - since,
                    world.trace
                );
            }
            healthy_since = match state {
                "healthy" => healthy_since.or(Some(world.now)),
                _ => None,
            };
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 500,
        rng_seed: RngSeed::Fixed(0x6d65_6469_6324),
        ..ProptestConfig::default()
    })]

    /// A restart of medic at any point never strands an incident: saved,
    /// restored into a new supervisor and fed the rest of the inputs, then a
    /// service that keeps failing, it reaches the same end as the run without
    /// the restart (up to timing).
    #[test]
    fn a_restart_of_medic_reaches_the_same_end(
        script in prop::collection::vec(step(), 1..80),
        cut in any::<prop::sample::Index>(),
        down in 0u64..3600,
    ) {
        let cut = cut.index(script.len() + 1);
        // The rest of the script, then a unit that keeps failing and actions that keep failing.
        // (A pause is lifted first: held, the two runs may rest in different places.)
        let tail = format!("resume {}", "died error +31s ".repeat(8));
        let mut plain = World::new(fast_policy());
        let mut restarted = World::new(fast_policy());
        for (i, step) in script.iter().enumerate() {
            if i == cut {
                restarted.step(&format!("restart-medic+{down}s"));
                plain.step(&format!("+{down}s"));
            }
            plain.step(step);
            restarted.step(step);
        }
        for world in [&mut plain, &mut restarted] {
            world.run(&tail);
        }
        // Escalated, or held by a pause with its incident open, or healthy.
        let end = |world: &World| {
            let status = world.sup.unit_status(world.now, UNIT).unwrap();
            (status.state == "escalated", status.paused.is_some(), status.incident.is_some())
        };
        prop_assert_eq!(end(&plain), end(&restarted), "without: {:?}\nwith: {:?}", plain.trace, restarted.trace);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        rng_seed: RngSeed::Fixed(0x6d65_6469_6314),
        ..ProptestConfig::default()
    })]

    /// Whatever recover_timeout, backoff and windows say, a service that keeps
    /// failing reaches rollback or escalation within a bounded number of
    /// restarts: one whose restarts never verify, within `max_attempts`; one
    /// that dies again after each verified restart, within `flap_limit`
    /// incidents when they come closer than the flap window allows.
    #[test]
    fn a_failing_service_never_restarts_forever(
        recover in 1u64..600,
        backoff in 0u64..120,
        backoff_max in 0u64..600,
        flap_window in 1u64..7200,
        flap_limit in 1u32..6,
        gap in 0u64..3600,
        verified in any::<bool>(),
    ) {
        let policy = Policy {
            recover_timeout: Duration::from_secs(recover),
            backoff_base: Duration::from_secs(backoff),
            backoff_max: Duration::from_secs(backoff_max),
            flap_window: Duration::from_secs(flap_window),
            flap_limit,
            ..fast_policy()
        };
        let mut world = World::new(policy.clone());
        world.run("ok");
        let reached = |world: &World| world.rollbacks > 0 || world.trace.iter().any(|t| t == "escalated");
        let bound = (policy.max_attempts * (flap_limit + 1)) as usize;
        let step = match verified {
            // Restarted and verified, then down again `gap` later.
            // (A flapping incident's rollback waits one backoff step.)
            true => format!("died +{}s done ok +{gap}s +{}s", backoff + 1, backoff_max + 1),
            // Restarts that report done but never bring it back.
            false => format!("died done fail +{}s +{}s", recover + 1, backoff_max + 1),
        };
        for _ in 0..=bound {
            world.run(&step);
            if reached(&world) {
                break;
            }
        }
        let period = backoff + 1 + gap + backoff_max + 2;
        if !verified || period * u64::from(flap_limit) < flap_window {
            prop_assert!(reached(&world), "{} restarts, no rollback: {:?}", world.restarts, world.trace);
        }
        if !verified {
            prop_assert!(world.restarts <= policy.max_attempts, "{:?}", world.trace);
        }
    }
}

/// One episode of the flapping properties: a person's restart, a deploy's
/// replacement, or a crash, after a gap.
#[derive(Debug, Clone)]
enum Episode {
    /// `docker restart`: back after `0` seconds (within ENGINE_GRACE).
    Person(u64),
    /// `docker rm -f` and `docker run`: back after `0` seconds (within replace_grace).
    Replaced(u64),
    /// A crash, its restart verified.
    Crash,
}

fn episode() -> impl Strategy<Value = (u64, Episode)> {
    let episode = prop_oneof![
        (0u64..10).prop_map(Episode::Person),
        (0u64..30).prop_map(Episode::Replaced),
        Just(Episode::Crash),
    ];
    (0u64..400, episode)
}

/// Runs until nothing is due: each restart works (`done ok`), each rollback
/// works or finds nothing different to roll back to.
fn settle(world: &mut World, rollback_works: bool) {
    for _ in 0..50 {
        match world.running.first().map(|job| job.step) {
            Some(medic_core::Step::Restart(_)) => {
                world.run("done ok");
            }
            Some(medic_core::Step::Rollback) => {
                world.run(if rollback_works {
                    "done ok"
                } else {
                    "impossible"
                });
            }
            _ => {
                let Some(at) = world.sup.poll_timeout() else {
                    return;
                };
                if world.sup.unit_status(world.now, UNIT).unwrap().state == "healthy" {
                    return;
                }
                world.advance(at.saturating_duration_since(world.now));
            }
        }
    }
}

/// The flap rule, written plainly: when each incident's first restart is due
/// after it opened (`flap_limit` 3 in 10 min; rollback after 1 s; from 10 s,
/// doubling, at most 5 min; forgotten once healthy for 10 min).
#[derive(Default)]
struct FlapRule {
    opened: Vec<u64>,
    next: Option<u64>,
    calm_since: u64,
}

impl FlapRule {
    /// The delay before the first restart of an incident opening at `t` (seconds).
    fn incident(&mut self, t: u64, rollback_works: bool) -> u64 {
        if self.next.is_some() && t >= self.calm_since + 600 {
            self.next = None;
        }
        self.opened.retain(|o| t - o < 600);
        let flapping = self.opened.len() >= 3;
        self.opened.push(t);
        match self.next {
            Some(delay) => {
                self.next = Some((delay * 2).min(300));
                delay
            }
            None if flapping && !rollback_works => {
                self.next = Some(20);
                1 + 10
            }
            None => 0,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        rng_seed: RngSeed::Fixed(0x6d65_6469_6335),
        ..ProptestConfig::default()
    })]

    /// A person's restart or a deploy's replacement never counts: with them
    /// taken out (the same time passing instead), medic decides exactly the
    /// same, and they leave one event each and nothing else.
    #[test]
    fn a_persons_restart_never_counts(episodes in prop::collection::vec(episode(), 1..30)) {
        let mut with = World::new(policy());
        let mut without = World::new(policy());
        with.run("ok@a");
        without.run("ok@a");
        for (gap, episode) in &episodes {
            let (all, crashes_only) = match episode {
                Episode::Person(back) => (format!("+{gap}s commanded +{back}s ok@a"), format!("+{gap}s +{back}s")),
                Episode::Replaced(back) => (format!("+{gap}s gone +{back}s ok@c"), format!("+{gap}s +{back}s")),
                Episode::Crash => (format!("+{gap}s died"), format!("+{gap}s died")),
            };
            with.run(&all);
            without.run(&crashes_only);
            settle(&mut with, false);
            settle(&mut without, false);
        }
        let decisions = |world: &World| -> Vec<String> {
            world.trace.iter().filter(|t| !matches!(t.as_str(), "restarted" | "replaced" | "→lkg")).cloned().collect()
        };
        prop_assert_eq!(decisions(&with), decisions(&without));
        let on_purpose = episodes.iter().filter(|(_, e)| !matches!(e, Episode::Crash)).count();
        let logged = with.trace.iter().filter(|t| matches!(t.as_str(), "restarted" | "replaced")).count();
        prop_assert_eq!(logged, on_purpose, "{:?}", with.trace);
    }

    /// Any sequence of incidents whose restarts work ends healthy, never
    /// escalated; each first restart waits exactly what the flap rule says
    /// (nothing, the rollback and 10 s, or the growing delay, reset after
    /// 10 min healthy); the flapping is alerted once per flapping spell.
    #[test]
    fn incidents_whose_restarts_work_end_healthy(
        gaps in prop::collection::vec(0u64..900, 1..25),
        rollback_works in any::<bool>(),
    ) {
        let mut world = World::new(policy());
        world.run("ok");
        let start = world.now;
        let mut rule = FlapRule::default();
        for gap in gaps {
            world.run(&format!("+{gap}s"));
            let (opened, restarts) = (world.now, world.restart_times.len());
            world.run("died");
            let expected = rule.incident((opened - start).as_secs(), rollback_works);
            settle(&mut world, rollback_works);
            let status = world.sup.unit_status(world.now, UNIT).unwrap();
            prop_assert_eq!(status.state, "healthy", "{:?}", world.trace);
            if world.trace.last().map(String::as_str) != Some("!warning:rolled_back") {
                let first = world.restart_times[restarts];
                prop_assert_eq!((first - opened).as_secs(), expected, "{:?}", world.trace);
            }
            rule.calm_since = (world.now - start).as_secs();
        }
        prop_assert!(!world.trace.iter().any(|t| t == "escalated"), "{:?}", world.trace);
        let alerted = world.trace.iter().filter(|t| *t == "!critical:flapping").count();
        let ended = world.trace.iter().filter(|t| *t == "flapping_ended").count();
        prop_assert!(alerted <= ended + 1, "{:?}", world.trace);
    }

    /// Escalation, which stops automatic action, comes only right after a
    /// rollback failed or was impossible; and a flapping service whose
    /// rollback was impossible escalates only once its restarts failed too:
    /// never while a restart could still work.
    #[test]
    fn escalation_only_after_failed_restarts_and_rollback(script in prop::collection::vec(step(), 1..120)) {
        let mut world = World::new(fast_policy());
        for step in &script {
            world.step(step);
        }
        let trace = &world.trace;
        for (i, t) in trace.iter().enumerate() {
            if t != "escalated" {
                continue;
            }
            let opened = trace[..i].iter().rposition(|t| t.starts_with("failing")).unwrap_or(0);
            let incident = &trace[opened..i];
            let rollback_ended = incident.last().is_some_and(|t| t == "rollback_failed");
            let restarts_failed = incident.iter().filter(|t| t.starts_with("restart_failed")).count();
            let kept_restarting = incident.iter().any(|t| t.starts_with("flapping"));
            prop_assert!(
                rollback_ended && (!kept_restarting || restarts_failed >= 3),
                "escalated at {i}: {:?}", trace
            );
        }
    }
}
