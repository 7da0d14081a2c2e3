//! The shipped rules' one selector (the `medic:up` recording rule) can be
//! changed: rules scraped under another job name still pass `promtool check
//! rules` and their unit tests. Needs `promtool` (prometheus).

use std::path::Path;
use std::process::Command;

use crate::support::env;

/// The shipped rules and their tests, with medic's job renamed to `job`.
fn renamed(job: &str, dir: &Path) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/prometheus");
    let rules = std::fs::read_to_string(shipped.join("medic-rules.yml")).unwrap();
    let selector = "expr: up{job=\"medic\"}";
    assert_eq!(
        rules
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') && l.contains("job=\"medic\""))
            .count(),
        1,
        "the selector stands in one place, the medic:up rule"
    );
    assert!(
        rules.contains(selector),
        "medic:up's selector changed shape"
    );
    let ours = format!("expr: up{{job=\"{job}\"}}");
    std::fs::write(dir.join("medic-rules.yml"), rules.replace(selector, &ours)).unwrap();
    // The unit tests' input series and expected labels name the job too.
    let tests = std::fs::read_to_string(shipped.join("medic-rules.test.yml")).unwrap();
    std::fs::write(
        dir.join("medic-rules.test.yml"),
        tests
            .replace("job=\"medic\"", &format!("job=\"{job}\""))
            .replace("job: medic", &format!("job: {job}")),
    )
    .unwrap();
}

fn promtool(promtool: &str, args: &[&str], dir: &Path) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_rules_scraped_under_another_job_name_still_pass_their_tests() {
    let Some(tool) = env::program("promtool") else {
        return;
    };
    for job in ["medic", "fleet-medic"] {
        let dir = tempfile::tempdir().unwrap();
        renamed(job, dir.path());
        promtool(&tool, &["check", "rules", "medic-rules.yml"], dir.path());
        promtool(
            &tool,
            &["test", "rules", "medic-rules.test.yml"],
            dir.path(),
        );
    }
}
