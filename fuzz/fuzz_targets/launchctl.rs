//! Any text as `launchctl` output through the parsers medic reads it with
//! (`print`, `list <label>` and the `list` table) and what is made of the
//! facts (classification, evidence, the last-exit line): no output, however
//! strange, can panic medic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medic_launchd::{Expect, JobFacts, classify, parse_list, parse_list_table, parse_print};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for facts in [
        parse_print("com.example.job", &text),
        parse_list("com.example.job", &text),
    ] {
        read(&facts);
    }
    for entry in parse_list_table(&text) {
        if let Some(exit) = entry.last_exit {
            let _ = exit.describe(None);
        }
    }
    let _ = classify(None, Expect::ExitedOk);
    let _ = classify(None, Expect::Running);
});

/// Everything the daemon asks of the facts.
fn read(facts: &JobFacts) {
    // The job as medic reads it by default, and as a service that must stay up.
    let _ = classify(Some(facts), Expect::Running);
    let verdict = classify(Some(facts), Expect::ExitedOk);
    let _ = (
        verdict.class.as_str(),
        verdict.class.is_ok(),
        verdict.message,
    );
    let _ = (
        facts.is_running(),
        facts.is_starting(),
        facts.idle_exit(),
        facts.has_plist_file(),
    );
    let _ = serde_json::Value::Object(facts.evidence()).to_string();
    let _ = facts.last_exit_line();
}
