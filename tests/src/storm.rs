//! medic in its own worst moments: hundreds of services failing at once, a
//! full disk, a read-only state_dir, journals rotating under `medic logs`.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::support::env;
use crate::support::medic::{Medic, bin, eventually, free_port, read_jsonl};
use crate::support::mount::Tmpfs;
use crate::support::server::serve_in_background;

/// Endpoints `/e/{i}` answering 200 `ok`, or 404 while `down` is set; and a
/// webhook `/hook` that keeps what it is sent.
struct Upstream {
    port: u16,
    down: Arc<AtomicBool>,
    hooks: Arc<Mutex<Vec<Value>>>,
}

impl Upstream {
    fn start() -> Self {
        let down = Arc::new(AtomicBool::new(false));
        let hooks: Arc<Mutex<Vec<Value>>> = Arc::default();
        let (d, h) = (down.clone(), hooks.clone());
        let app = axum::Router::new()
            .route(
                "/e/{i}",
                axum::routing::get(move || {
                    let down = d.load(Ordering::SeqCst);
                    async move {
                        if down {
                            (axum::http::StatusCode::NOT_FOUND, "gone")
                        } else {
                            (axum::http::StatusCode::OK, "ok")
                        }
                    }
                }),
            )
            .route(
                "/hook",
                axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                    h.lock().expect("hooks").push(body);
                    async { "ok" }
                }),
            );
        let port = serve_in_background(app);
        Self { port, down, hooks }
    }

    fn services(&self, count: usize) -> String {
        let mut config = format!(
            "[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n\n[[alert]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{}/hook\"\nmin_severity = \"info\"\n\n",
            self.port
        );
        for i in 0..count {
            config.push_str(&format!(
                "[[service]]\nname = \"ep{i}\"\n  [[service.probe]]\n  kind = \"http\"\n  url = \"http://127.0.0.1:{}/e/{i}\"\n\n",
                self.port
            ));
        }
        config
    }

    /// Waits until the webhook was sent an alert of `kind` (`storm resolved` for a resolving one).
    fn wait_for_hook(&self, what: &str, kind: &str) {
        eventually(what, || {
            self.hook_kinds().iter().any(|k| k == kind).then_some(())
        });
    }

    /// The `kind` of every alert the webhook was sent.
    fn hook_kinds(&self) -> Vec<String> {
        self.hooks
            .lock()
            .expect("hooks")
            .iter()
            .map(|h| {
                let kind = h["kind"].as_str().unwrap_or_default();
                let resolved = h["resolved"].as_bool().unwrap_or(false);
                format!("{kind}{}", if resolved { " resolved" } else { "" })
            })
            .collect()
    }
}

/// `medic status --json`, which must answer.
fn status(medic: &Medic) -> Value {
    let out = medic.cli(&["status", "--json"]);
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "medic status failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        medic.stderr()
    );
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

/// `medic status --json` while medic starts: None until it answers.
fn started(medic: &Medic) -> Option<Value> {
    let out = medic.cli(&["status", "--json"]);
    serde_json::from_slice(&out.stdout).ok()
}

fn count(status: &Value, health: &str) -> usize {
    status["services"]
        .as_array()
        .map_or(0, |s| s.iter().filter(|s| s["health"] == health).count())
}

#[test]
fn three_hundred_endpoints_failing_together_are_one_storm_and_all_come_back() {
    const N: usize = 300;
    let upstream = Upstream::start();
    let medic = Medic::start(&upstream.services(N));
    eventually("every endpoint healthy", || {
        (count(&started(&medic)?, "healthy") == N).then_some(())
    });

    upstream.down.store(true, Ordering::SeqCst);
    // The control socket answers all through the storm (`status` asserts it).
    eventually("every endpoint unhealthy", || {
        (count(&status(&medic), "unhealthy") == N).then_some(())
    });
    upstream.wait_for_hook("the storm alert at the sink", "storm");

    upstream.down.store(false, Ordering::SeqCst);
    eventually("every endpoint healthy again", || {
        (count(&status(&medic), "healthy") == N).then_some(())
    });
    upstream.wait_for_hook("the storm's end at the sink", "storm resolved");
    // One storm and its end reached the sink, not 300 alerts; each service's
    // own lines are still in the recovery log.
    let kinds = upstream.hook_kinds();
    assert_eq!(kinds, ["storm", "storm resolved"], "sink got {kinds:?}");
    let failing = medic
        .events()
        .iter()
        .filter(|e| e["event"] == "failing")
        .count();
    assert_eq!(failing, N);
    let stderr = medic.stderr();
    assert!(
        stderr.contains("services failing since") && stderr.contains("storm over"),
        "stderr has the storm's summary:\n{stderr}"
    );
    let storm = medic
        .wait_alert("storm")
        .into_iter()
        .find(|a| a["kind"] == "storm")
        .expect("the storm in the alerts file");
    assert!(storm["evidence"]["failing"].as_u64().unwrap_or(0) >= 60);
}

#[test]
fn a_storm_outlives_a_restart_of_medic_and_its_end_reaches_the_sink() {
    const N: usize = 100;
    let upstream = Upstream::start();
    let mut medic = Medic::start(&upstream.services(N));
    eventually("every endpoint healthy", || {
        (count(&started(&medic)?, "healthy") == N).then_some(())
    });
    upstream.down.store(true, Ordering::SeqCst);
    upstream.wait_for_hook("the storm alert at the sink", "storm");
    // In change lines (state.json is a checkpoint, rewritten only when the
    // lines outweigh it): the storm at once, its members within a second.
    eventually("the storm and its members kept in the state store", || {
        let state = medic.saved_state()?;
        let members = state["storm"]["members"].as_array().map_or(0, Vec::len);
        (state["storm"]["since"].is_string() && members == N).then_some(())
    });
    medic.kill9();
    upstream.down.store(false, Ordering::SeqCst);
    medic.spawn();
    eventually("every endpoint healthy again", || {
        (count(&started(&medic)?, "healthy") == N).then_some(())
    });
    upstream.wait_for_hook("the storm's end at the sink", "storm resolved");
    // The restarted medic knew the storm: its end, and no per-service
    // resolution of incidents the sink was never told about.
    let kinds = upstream.hook_kinds();
    assert_eq!(kinds, ["storm", "storm resolved"], "sink got {kinds:?}");
}

#[test]
fn rotated_recovery_logs_are_read_as_one_by_medic_logs() {
    let upstream = Upstream::start();
    // A tiny size so a few flaps rotate; files stay private whatever the umask.
    let mut medic = Medic::start_with(
        "journal_max_size = \"1KiB\"\njournal_keep = 3",
        &upstream.services(2),
    );
    let log = medic.state("recovery.jsonl");
    eventually("medic answering", || started(&medic));
    for round in 0..3 {
        eventually("both healthy", || {
            (count(&status(&medic), "healthy") == 2).then_some(())
        });
        upstream.down.store(true, Ordering::SeqCst);
        eventually("both unhealthy", || {
            (count(&status(&medic), "unhealthy") == 2).then_some(())
        });
        upstream.down.store(false, Ordering::SeqCst);
        eprintln!("round {round} done");
    }
    eventually("both healthy", || {
        (count(&status(&medic), "healthy") == 2).then_some(())
    });
    medic.terminate();
    let rotated = journal_files(&log);
    assert!(rotated.len() >= 3, "rotated: {rotated:?}");
    assert!(
        rotated.len() <= 4,
        "journal_keep = 3 bounds them: {rotated:?}"
    );
    let mut written = 0;
    for file in &rotated {
        let mode = std::fs::metadata(file).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is private", file.display());
        assert!(std::fs::metadata(file).expect("stat").len() <= 1024 + 512);
        written += read_jsonl(file).len();
    }
    let out = medic.cli(&["logs", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), written, "medic logs reads every rotated file");
    let ts: Vec<&str> = lines.iter().filter_map(|l| l["ts"].as_str()).collect();
    assert!(ts.is_sorted(), "oldest first across files");
    let since = medic.cli(&["logs", "--json", "--since", "1h"]);
    assert_eq!(
        String::from_utf8_lossy(&since.stdout).lines().count(),
        written
    );
    for name in [
        "state.json",
        "state.changes.jsonl",
        "availability.json",
        "alerts/outbox.jsonl",
    ] {
        let mode = std::fs::metadata(medic.state(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name} is private");
    }
}

/// `recovery.jsonl.N` … `.1`, then `recovery.jsonl`: the journal's files, oldest first.
fn journal_files(path: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<std::path::PathBuf> = (1..)
        .map(|n| std::path::PathBuf::from(format!("{}.{n}", path.display())))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    files.push(path.to_owned());
    files
}

/// Fills the file system holding `path` until writes fail.
fn fill(path: &std::path::Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("create the filler");
    let block = vec![0u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    while file.write_all(&block[..512]).is_ok() {}
    file.sync_all().ok();
}

#[test]
fn a_read_only_state_dir_at_start_is_survived_reported_and_still_locked() {
    const N: usize = 3;
    if env::root().is_none() {
        return;
    }
    let upstream = Upstream::start();
    let mut medic = Medic::prepare(&upstream.services(N));
    let state = medic.dir.path().join("state");
    let tmpfs = Tmpfs::mount(&state, "2m");
    tmpfs.read_only(true);
    medic.spawn();

    // medic supervises, keeps its state in memory and says what it cannot write.
    let problems = eventually(
        "healthy, with the read-only state_dir in medic status",
        || {
            let status = started(&medic)?;
            let problems = status["problems"].as_array()?.clone();
            (count(&status, "healthy") == N && problems.len() >= 3).then_some(problems)
        },
    );
    for file in ["recovery log", "alerts file", "state store"] {
        let problem = format!("{file} not writable: Read-only file system");
        assert!(
            problems.iter().any(|p| p == &problem),
            "{problem}: {problems:?}"
        );
    }
    let text = medic.cli(&["status"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("not writable: Read-only file system"));
    eventually("the sink told once", || {
        (upstream.hook_kinds() == ["storage"]).then_some(())
    });
    // The one-daemon lock holds on a directory medic cannot write.
    let second = Command::new(bin("medic"))
        .args(["run", "--config"])
        .arg(&medic.config)
        .output()
        .expect("run a second medic");
    assert_eq!(second.status.code(), Some(2), "{second:?}");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!(
            "another medic is running with state_dir {}",
            state.display()
        )),
        "{stderr}"
    );

    // Writable again: the lines that waited are written, state.json appears, the problems clear.
    tmpfs.read_only(false);
    eventually("the problems cleared", || {
        status(&medic)["problems"].is_null().then_some(())
    });
    eventually("the lines that waited, written", || {
        let healthy = medic
            .events()
            .iter()
            .filter(|e| e["event"] == "healthy")
            .count();
        (healthy == N).then_some(())
    });
    assert!(medic.state("state.json").exists());
    eventually("the sink told the files are writable again", || {
        (upstream.hook_kinds() == ["storage", "storage resolved"]).then_some(())
    });
    let (exit, _) = medic.terminate();
    assert!(exit.success(), "medic exits cleanly: {}", medic.stderr());
}

#[test]
fn a_full_disk_is_reported_and_survived_and_the_lines_come_when_it_frees() {
    // Enough services that their failing lines overflow the page the log's end is in.
    const N: usize = 20;
    if env::root().is_none() {
        return;
    }
    let upstream = Upstream::start();
    let port = free_port();
    let mut medic = Medic::prepare_with(
        &format!("metrics_listen = \"127.0.0.1:{port}\""),
        &upstream.services(N),
    );
    let state = medic.dir.path().join("state");
    let _tmpfs = Tmpfs::mount(&state, "2m");
    medic.spawn();
    eventually("every endpoint healthy", || {
        (count(&started(&medic)?, "healthy") == N).then_some(())
    });
    let before = medic.events().len();
    let filler = state.join("filler");
    fill(&filler);

    // Failures while the disk is full: medic keeps supervising and says why it cannot write.
    upstream.down.store(true, Ordering::SeqCst);
    let problems = eventually("the full disk in medic status", || {
        let status = status(&medic);
        let log_refused = status["problems"].as_array().is_some_and(|p| {
            p.iter()
                .any(|p| p.as_str().is_some_and(|p| p.starts_with("recovery log")))
        });
        (count(&status, "unhealthy") == N && log_refused).then(|| status["problems"].clone())
    });
    assert!(
        problems
            .as_array()
            .expect("problems")
            .iter()
            .any(|p| p == "recovery log not writable: No space left on device"),
        "{problems}"
    );
    let text = medic.cli(&["status"]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("not writable: No space left on device")
    );
    let metrics = eventually("the write errors in /metrics", || {
        let out = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{port}/metrics")])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .any(|l| {
                l.starts_with("medic_journal_write_errors_total{file=\"recovery log\"}")
                    && !l.ends_with(" 0")
            })
            .then_some(text)
    });
    assert!(metrics.contains("medic_journal_write_errors_total"));
    upstream.wait_for_hook("the sink told about the disk", "storage");
    upstream.down.store(false, Ordering::SeqCst);
    eventually("every endpoint healthy on a full disk", || {
        (count(&status(&medic), "healthy") == N).then_some(())
    });

    // Space again: the waiting lines are written, in order, and the problem clears.
    std::fs::remove_file(&filler).expect("free the disk");
    eventually("the problem cleared", || {
        status(&medic)["problems"].is_null().then_some(())
    });
    let events = medic.wait_event("the lines written while full", |e| {
        e["event"] == "recovered"
    });
    let failing = events[before..]
        .iter()
        .filter(|e| e["event"] == "failing")
        .count();
    assert_eq!(failing, N, "no line lost while the disk was full");
    eventually("the sink told the disk is writable again", || {
        upstream
            .hook_kinds()
            .iter()
            .filter(|k| k.starts_with("storage"))
            .count()
            .eq(&2)
            .then_some(())
    });
    let storage: Vec<String> = upstream
        .hook_kinds()
        .into_iter()
        .filter(|k| k.starts_with("storage"))
        .collect();
    assert_eq!(
        storage,
        ["storage", "storage resolved"],
        "told once, then once more"
    );
    let (exit, _) = medic.terminate();
    assert!(exit.success(), "medic exits cleanly: {}", medic.stderr());
}
