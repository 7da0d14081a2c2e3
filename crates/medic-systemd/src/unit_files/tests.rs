//! The rollback's plan (what it writes where) and its writes on a real
//! directory.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;

fn file(path: &str, content: &str) -> UnitFile {
    UnitFile {
        path: path.into(),
        content: content.into(),
        mode: 0o644,
    }
}

fn files(fragment: UnitFile, drop_ins: &[UnitFile]) -> UnitFiles {
    UnitFiles {
        unit: "api.service".into(),
        fragment,
        drop_ins: drop_ins.to_vec(),
    }
}

/// The plan as `path <- first line` lines, for a table of cases.
#[track_caller]
fn check(good: &UnitFiles, now: &UnitFiles, expect: &[&str]) {
    let plan: Vec<String> = good
        .plan(now, Path::new("/etc/systemd/system"))
        .iter()
        .map(|w| {
            let first = w.content.lines().next().unwrap_or("");
            format!("{} <- {first}", w.path.display())
        })
        .collect();
    assert_eq!(plan, expect);
    assert_eq!(good.same_as(now), expect.is_empty());
}

const GOOD: &str = "[Service]\nExecStart=/usr/bin/api\n";
const BAD: &str = "[Service]\nExecStart=/usr/bin/api --broken\n";

#[test]
fn a_changed_admin_unit_file_is_written_back_in_place() {
    let path = "/etc/systemd/system/api.service";
    check(
        &files(file(path, GOOD), &[]),
        &files(file(path, BAD), &[]),
        &["/etc/systemd/system/api.service <- [Service]"],
    );
}

#[test]
fn a_package_unit_file_is_overridden_in_etc_never_written_in_usr_lib() {
    let path = "/usr/lib/systemd/system/api.service";
    check(
        &files(file(path, GOOD), &[]),
        &files(file(path, BAD), &[]),
        &["/etc/systemd/system/api.service <- [Service]"],
    );
}

#[test]
fn the_same_contents_elsewhere_need_no_write() {
    check(
        &files(file("/usr/lib/systemd/system/api.service", GOOD), &[]),
        &files(file("/etc/systemd/system/api.service", GOOD), &[]),
        &[],
    );
}

#[test]
fn a_new_drop_in_is_emptied_and_a_changed_or_lost_one_written_back() {
    let good = files(
        file("/usr/lib/systemd/system/api.service", GOOD),
        &[
            file(
                "/usr/lib/systemd/system/api.service.d/10-limits.conf",
                "[Service]\nLimitNOFILE=4096\n",
            ),
            file(
                "/etc/systemd/system/api.service.d/20-env.conf",
                "[Service]\nEnvironment=A=1\n",
            ),
        ],
    );
    let now = files(
        file("/usr/lib/systemd/system/api.service", GOOD),
        &[
            file(
                "/usr/lib/systemd/system/api.service.d/10-limits.conf",
                "[Service]\nLimitNOFILE=4096\n",
            ),
            file(
                "/etc/systemd/system/api.service.d/20-env.conf",
                "#changed\n[Service]\nEnvironment=A=2\n",
            ),
            file(
                "/run/systemd/system/api.service.d/30-bad.conf",
                "[Service]\nExecStart=\n",
            ),
        ],
    );
    check(
        &good,
        &now,
        &[
            "/etc/systemd/system/api.service.d/20-env.conf <- [Service]",
            "/etc/systemd/system/api.service.d/30-bad.conf <- # Emptied by medic's rollback: this drop-in was not part of the unit's last known good.",
        ],
    );
}

#[test]
fn an_emptied_drop_in_says_nothing() {
    let good = files(file("/etc/systemd/system/api.service", GOOD), &[]);
    let now = files(
        file("/etc/systemd/system/api.service", GOOD),
        &[file(
            "/etc/systemd/system/api.service.d/30-bad.conf",
            EMPTIED,
        )],
    );
    check(&good, &now, &[]);
}

#[test]
fn a_write_keeps_the_file_it_replaces_and_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.service");
    std::fs::write(&path, BAD).unwrap();
    let write = Write {
        path: path.clone(),
        content: GOOD.into(),
        mode: 0o600,
    };
    let kept = write
        .apply("20261207T210000Z")
        .unwrap()
        .expect("a kept copy");
    assert_eq!(
        kept,
        dir.path().join("api.service.medic-failed-20261207T210000Z")
    );
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), BAD);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), GOOD);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A drop-in directory that does not exist yet is made; nothing to keep.
    let drop_in = Write {
        path: dir.path().join("api.service.d/30-bad.conf"),
        content: EMPTIED.into(),
        mode: 0o644,
    };
    assert_eq!(drop_in.apply("x").unwrap(), None);
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("restore"))
        .collect();
    assert!(left.is_empty(), "no temporary file left: {left:?}");
}

#[test]
fn read_takes_what_systemd_loaded_and_refuses_what_it_cannot_keep() {
    let dir = tempfile::tempdir().unwrap();
    let fragment = dir.path().join("api.service");
    std::fs::write(&fragment, GOOD).unwrap();
    let mut facts = UnitFacts {
        name: "api.service".into(),
        fragment_path: fragment.display().to_string(),
        ..UnitFacts::default()
    };
    let read = UnitFiles::read(&facts).unwrap();
    assert_eq!(read.fragment.content, GOOD);
    facts.fragment_path.clear();
    assert!(matches!(
        UnitFiles::read(&facts),
        Err(UnitFilesError::NoFile { .. })
    ));
    std::fs::write(&fragment, "#".repeat(70_000)).unwrap();
    facts.fragment_path = fragment.display().to_string();
    assert!(matches!(
        UnitFiles::read(&facts),
        Err(UnitFilesError::TooLarge { .. })
    ));
}
