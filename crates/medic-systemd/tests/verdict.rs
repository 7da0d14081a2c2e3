//! Table tests of the classification on property sets recorded from real
//! units (`systemctl show -p …` on Debian bookworm's systemd 252), one line
//! per case: the case, medic's class and its message.

use medic_systemd::{Expect, UnitFacts, classify};

/// Facts from `Key=Value` words, as `systemctl show` prints them.
fn facts(show: &str) -> UnitFacts {
    let mut facts = UnitFacts {
        name: "api.service".into(),
        load_state: "loaded".into(),
        result: "success".into(),
        service_type: "simple".into(),
        restart: "no".into(),
        ..UnitFacts::default()
    };
    for word in show.split_whitespace() {
        let (key, value) = word.split_once('=').expect("Key=Value");
        let number = || value.parse().expect("a number");
        match key {
            "LoadState" => facts.load_state = value.into(),
            "ActiveState" => facts.active_state = value.into(),
            "SubState" => facts.sub_state = value.into(),
            "Result" => facts.result = value.into(),
            "ExecMainCode" => facts.exec_main_code = number(),
            "ExecMainStatus" => facts.exec_main_status = number(),
            "MainPID" => facts.main_pid = value.parse().expect("a pid"),
            "NRestarts" => facts.n_restarts = value.parse().expect("a count"),
            "Type" => facts.service_type = value.into(),
            "Restart" => facts.restart = value.into(),
            other => panic!("unknown property {other}"),
        }
    }
    facts
}

const CASES: &[(&str, Expect, &str)] = &[
    (
        "running",
        Expect::ExitedOk,
        "ActiveState=active SubState=running MainPID=812",
    ),
    (
        "running after systemd restarted it",
        Expect::ExitedOk,
        "ActiveState=active SubState=running MainPID=990 NRestarts=2 Restart=always ExecMainCode=2 ExecMainStatus=9",
    ),
    (
        "killed by SIGKILL",
        Expect::ExitedOk,
        "ActiveState=failed SubState=failed Result=signal ExecMainCode=2 ExecMainStatus=9",
    ),
    (
        "exit 3",
        Expect::ExitedOk,
        "ActiveState=failed SubState=failed Result=exit-code ExecMainCode=1 ExecMainStatus=3",
    ),
    (
        "exit 78",
        Expect::ExitedOk,
        "ActiveState=failed SubState=failed Result=exit-code ExecMainCode=1 ExecMainStatus=78",
    ),
    (
        "cannot execute",
        Expect::ExitedOk,
        "ActiveState=failed SubState=failed Result=exit-code ExecMainCode=1 ExecMainStatus=203",
    ),
    (
        "segfault",
        Expect::ExitedOk,
        "ActiveState=failed SubState=failed Result=core-dump ExecMainCode=3 ExecMainStatus=11",
    ),
    (
        "oom",
        Expect::ExitedOk,
        "ActiveState=failed SubState=failed Result=oom-kill ExecMainCode=2 ExecMainStatus=9",
    ),
    (
        "start timeout",
        Expect::ExitedOk,
        "ActiveState=failed SubState=failed Result=timeout ExecMainCode=2 ExecMainStatus=15 Type=notify",
    ),
    (
        "start limit hit",
        Expect::ExitedOk,
        "ActiveState=failed SubState=failed Result=start-limit-hit ExecMainCode=1 ExecMainStatus=1 NRestarts=5 Restart=always",
    ),
    (
        "systemd restarting it",
        Expect::ExitedOk,
        "ActiveState=activating SubState=auto-restart Result=signal ExecMainCode=2 ExecMainStatus=9 NRestarts=1 Restart=always",
    ),
    (
        "starting",
        Expect::ExitedOk,
        "ActiveState=activating SubState=start MainPID=77 Type=notify",
    ),
    (
        "reloading",
        Expect::ExitedOk,
        "ActiveState=reloading SubState=reload MainPID=77",
    ),
    (
        "stopping",
        Expect::ExitedOk,
        "ActiveState=deactivating SubState=stop-sigterm MainPID=77",
    ),
    (
        "stopped by a person",
        Expect::ExitedOk,
        "ActiveState=inactive SubState=dead ExecMainCode=2 ExecMainStatus=15",
    ),
    (
        "never started",
        Expect::ExitedOk,
        "ActiveState=inactive SubState=dead",
    ),
    (
        "oneshot done",
        Expect::ExitedOk,
        "ActiveState=inactive SubState=dead Type=oneshot ExecMainCode=1 ExecMainStatus=0",
    ),
    (
        "oneshot done, RemainAfterExit",
        Expect::ExitedOk,
        "ActiveState=active SubState=exited Type=oneshot ExecMainCode=1 ExecMainStatus=0",
    ),
    (
        "oneshot not run yet",
        Expect::ExitedOk,
        "ActiveState=inactive SubState=dead Type=oneshot",
    ),
    (
        "oneshot done, expect running",
        Expect::Running,
        "ActiveState=inactive SubState=dead Type=oneshot ExecMainCode=1 ExecMainStatus=0",
    ),
    (
        "oneshot failed",
        Expect::ExitedOk,
        "ActiveState=failed SubState=failed Result=exit-code Type=oneshot ExecMainCode=1 ExecMainStatus=1",
    ),
    (
        "oneshot running",
        Expect::ExitedOk,
        "ActiveState=activating SubState=start Type=oneshot MainPID=55",
    ),
    (
        "no unit file",
        Expect::ExitedOk,
        "LoadState=not-found ActiveState=inactive SubState=dead",
    ),
    (
        "masked",
        Expect::ExitedOk,
        "LoadState=masked ActiveState=inactive SubState=dead",
    ),
];

#[test]
fn units_read_as_a_person_reads_systemctl_status() {
    let table: Vec<String> = CASES
        .iter()
        .map(|(case, expect, show)| {
            let verdict = classify(&facts(show), *expect);
            format!("{case}: {} — {}", verdict.class.as_str(), verdict.message)
        })
        .collect();
    insta::assert_snapshot!(table.join("\n"));
}

#[test]
fn evidence_names_the_signal_and_the_restarts() {
    let evidence = facts(
        "ActiveState=failed SubState=failed Result=signal ExecMainCode=2 ExecMainStatus=9 NRestarts=3",
    )
    .evidence();
    insta::assert_snapshot!(serde_json::to_string_pretty(&evidence).expect("json"));
}
