//! Any text as a config file: parsing and validation never panic, and every
//! error renders with its position (the spans point into the text it came from).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match medic_core::config::parse(text, "fuzz.toml") {
        Ok(config) => {
            let _ = format!("{config:?}");
        }
        Err(errors) => {
            assert!(
                !errors.errors.is_empty(),
                "a rejected config names an error"
            );
            let _ = errors.to_string();
        }
    }
});
