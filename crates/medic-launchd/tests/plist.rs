//! Last known good plists: capture, compare as property lists, restore with a forensic copy.

use medic_launchd::PlistCopy;
use medic_launchd::plist::{find, log_paths, tail};

fn agent(program: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>com.example.job</string>
	<key>ProgramArguments</key>
	<array><string>{program}</string></array>
	<key>StandardErrorPath</key>
	<string>/tmp/job.err</string>
</dict>
</plist>
"#
    )
}

#[test]
fn restore_puts_the_good_copy_back_and_keeps_the_failing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("com.example.job.plist");
    std::fs::write(&path, agent("/bin/good")).unwrap();
    let good = PlistCopy::capture("com.example.job", &path).unwrap();
    assert!(!good.differs_from_disk());

    // Same property list, other formatting: not a difference.
    std::fs::write(&path, agent("/bin/good").replace('\t', "    ")).unwrap();
    assert!(!good.differs_from_disk());

    std::fs::write(&path, agent("/bin/bad")).unwrap();
    assert!(good.differs_from_disk());
    let kept = good.restore("20261123T040000Z").unwrap().unwrap();
    assert_eq!(
        kept.file_name().unwrap(),
        "com.example.job.plist.medic-failed-20261123T040000Z"
    );
    assert!(std::fs::read_to_string(&kept).unwrap().contains("/bin/bad"));
    assert!(!good.differs_from_disk());
    assert_eq!(log_paths(&path).1.unwrap().to_str(), Some("/tmp/job.err"));

    // A deleted plist differs and is restored without a forensic copy.
    std::fs::remove_file(&path).unwrap();
    assert!(good.differs_from_disk());
    assert_eq!(good.restore("x").unwrap(), None);
    assert!(!good.differs_from_disk());
}

#[test]
fn find_looks_in_the_standard_folders() {
    let home = tempfile::tempdir().unwrap();
    let folder = home.path().join("Library/LaunchAgents");
    std::fs::create_dir_all(&folder).unwrap();
    assert_eq!(find("com.example.job", None, None, Some(home.path())), None);
    std::fs::write(folder.join("com.example.job.plist"), agent("/bin/x")).unwrap();
    assert_eq!(
        find("com.example.job", None, None, Some(home.path())),
        Some(folder.join("com.example.job.plist"))
    );
    let configured = home.path().join("elsewhere.plist");
    assert_eq!(
        find(
            "com.example.job",
            Some(&configured),
            None,
            Some(home.path())
        ),
        Some(configured)
    );
}

#[test]
fn tail_keeps_the_last_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("job.err");
    let text: String = (1..=100).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&log, text).unwrap();
    assert_eq!(tail(&log, 2).unwrap(), ["line 99", "line 100"]);
    assert_eq!(tail(&dir.path().join("none"), 2), None);
}

/// Like containers, only the newest three forensic copies of a plist are kept.
#[test]
fn restore_keeps_the_newest_three_forensic_copies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("com.example.job.plist");
    let other = dir
        .path()
        .join("com.example.other.plist.medic-failed-20260101T000000Z");
    std::fs::write(&other, "another job's copy").unwrap();
    std::fs::write(&path, agent("/bin/good")).unwrap();
    let good = PlistCopy::capture("com.example.job", &path).unwrap();
    for (i, stamp) in [
        "20261123T040001Z",
        "20261123T040002Z",
        "20261123T040003Z",
        "20261123T040004Z",
        "20261123T040005Z",
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(&path, agent(&format!("/bin/bad{i}"))).unwrap();
        good.restore(stamp).unwrap();
    }
    let mut kept: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("com.example.job.plist.medic-failed-"))
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        [
            "com.example.job.plist.medic-failed-20261123T040003Z",
            "com.example.job.plist.medic-failed-20261123T040004Z",
            "com.example.job.plist.medic-failed-20261123T040005Z",
        ]
    );
    let newest = dir.path().join(&kept[2]);
    assert!(
        std::fs::read_to_string(newest)
            .unwrap()
            .contains("/bin/bad4")
    );
    assert!(other.exists(), "another job's copies are not touched");
    assert!(!good.differs_from_disk());
}
