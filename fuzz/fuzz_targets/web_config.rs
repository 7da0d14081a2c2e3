//! Any text as a `web_config` file (the exporter-toolkit YAML) through
//! medic's own loader, `WebConfig::load`, which also reads the certificate,
//! key and client CA files it names: no web config can panic medic. The
//! directory beside it holds a real certificate and key (`web_config/`: a
//! self-signed P-256 pair made for this target only, for 127.0.0.1), so
//! inputs that name `server.pem` and `server-key.pem` build a real rustls config.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use medic_daemon::web::{Guard, WebConfig};

/// The web config's directory for the whole run: the certificate and key once, the file per input.
static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (name, pem) in [
        ("server.pem", include_str!("web_config/server.pem")),
        ("server-key.pem", include_str!("web_config/server-key.pem")),
    ] {
        std::fs::write(dir.path().join(name), pem).expect("write a PEM file");
    }
    dir
});

fuzz_target!(|data: &[u8]| {
    let path = DIR.path().join("web.yml");
    std::fs::write(&path, data).expect("write web.yml");
    let Ok(config) = WebConfig::load(&path) else {
        return;
    };
    let _ = config.authenticates();
    let guard = Guard::new(config);
    let _ = guard.tls();
    let _ = guard.reload();
});
