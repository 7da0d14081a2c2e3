//! The dashboards against the real daemon: `medic top` driven in tmux
//! (send-keys, capture-pane) and the status page in a real headless Chromium
//! (lights for healthy, failing and unknown services, a live turn to red, the
//! stale display when medic stops, no console errors, no external request).

use std::net::TcpListener;
use std::process::Command;

use serde_json::Value;

use crate::support::browser::{Browser, http, screenshot_dir};
use crate::support::env;
use crate::support::medic::{Medic, bin, eventually, free_port};

const FAST: &str = "[defaults]\ninterval = \"200ms\"\ntimeout = \"150ms\"\n\n";

fn tcp_service(name: &str, port: u16) -> String {
    format!(
        "[[service]]\nname = \"{name}\"\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:{port}\"\n\n"
    )
}

/// A container service on an engine that does not exist: blind, so `unknown`.
fn blind_service(name: &str) -> String {
    format!("[[service]]\nname = \"{name}\"\ncontainer = {{ name = \"{name}\" }}\n\n")
}

/// The page's JSON, once the daemon answers.
fn api_status(port: u16) -> Option<Value> {
    let (status, body) = http(port, "GET", "/api/status", None)?;
    (status == 200).then(|| serde_json::from_str(&body).ok())?
}

/// A service's field in the page's JSON.
fn field(status: &Value, service: &str, key: &str) -> Option<String> {
    status["services"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == service)?[key]
        .as_str()
        .map(str::to_owned)
}

/// A tmux server of its own (`-L`), so tests never touch a person's sessions.
struct Tmux {
    program: String,
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(&self.program)
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "top"])
    }

    /// Polls the pane until `pred` holds (panics after the deadline with the last screen).
    #[track_caller]
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = std::time::Instant::now();
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < crate::support::medic::DEADLINE,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

/// The table row of a service (`│● name …`), if shown.
fn row<'a>(screen: &'a str, service: &str) -> Option<&'a str> {
    let prefix = format!("● {service} ");
    screen.lines().find(|l| l.contains(&prefix))
}

#[test]
fn top_shows_services_reflects_a_failure_filters_and_restores_the_terminal() {
    let Some(tmux) = env::program("tmux") else {
        return;
    };
    let (good, flip, bad) = (free_port(), free_port(), free_port());
    let _good = TcpListener::bind(("127.0.0.1", good)).unwrap();
    let flip_listener = TcpListener::bind(("127.0.0.1", flip)).unwrap();
    let config = FAST.to_owned()
        + &tcp_service("bad", bad)
        + &tcp_service("flip", flip)
        + &tcp_service("good", good);
    let mut medic = Medic::start(&config);
    medic.wait_event("flip healthy", |e| {
        e["service"] == "flip" && e["event"] == "healthy"
    });

    let tmux = Tmux {
        program: tmux,
        socket: format!("medic-test-{}", std::process::id()),
    };
    let command = format!(
        "{} top --interval 300ms --config {}; echo TOP-EXITED $?; sleep 600",
        bin("medic").display(),
        medic.config.display()
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "150",
        "-y",
        "40",
        &command,
    ]);
    tmux.wait_for("every service with its state", |s| {
        row(s, "good").is_some_and(|r| r.contains("healthy"))
            && row(s, "flip").is_some_and(|r| r.contains("healthy"))
            && row(s, "bad").is_some_and(|r| r.contains("failing"))
            && s.contains("recovery log")
    });
    assert_eq!(
        tmux.run(&["display", "-p", "-t", "top", "#{alternate_on}"])
            .trim(),
        "1"
    );

    // The probe starts failing: the row turns within a refresh, and the event shows.
    drop(flip_listener);
    tmux.wait_for("flip failing", |s| {
        row(s, "flip").is_some_and(|r| r.contains("failing") && r.contains("unhealthy"))
            && s.lines()
                .any(|l| l.contains("failing") && l.contains("flip: cannot connect"))
    });

    // Failed only: the healthy service leaves the table, the failing ones stay.
    tmux.run(&["send-keys", "-t", "top", "f"]);
    tmux.wait_for("the failed-only filter", |s| {
        s.contains("[failed only]")
            && row(s, "good").is_none()
            && row(s, "flip").is_some()
            && row(s, "bad").is_some()
    });

    // Pause the selected (first) service, after confirming.
    tmux.run(&["send-keys", "-t", "top", "p"]);
    tmux.wait_for("the confirmation", |s| {
        s.contains("pause bad? y to confirm")
    });
    tmux.run(&["send-keys", "-t", "top", "y"]);
    tmux.wait_for("bad paused", |s| {
        row(s, "bad").is_some_and(|r| r.contains("(paused)"))
    });
    medic.wait_event("bad paused", |e| {
        e["service"] == "bad" && e["event"] == "paused"
    });

    // The daemon stops: the dashboard says its data is stale and claims no health.
    medic.terminate();
    tmux.wait_for("the stale display", |s| {
        s.contains("STALE")
            && ["bad", "flip"]
                .iter()
                .all(|name| row(s, name).is_some_and(|r| r.contains(" stale ")))
    });

    // q quits with exit 0 and gives the terminal back: main screen, no dashboard left.
    tmux.run(&["send-keys", "-t", "top", "q"]);
    let screen = tmux.wait_for("medic top to exit", |s| s.contains("TOP-EXITED 0"));
    assert!(!screen.contains("recovery log"), "{screen}");
    assert_eq!(
        tmux.run(&["display", "-p", "-t", "top", "#{alternate_on}"])
            .trim(),
        "0"
    );
    assert_eq!(
        tmux.run(&["display", "-p", "-t", "top", "#{cursor_flag}"])
            .trim(),
        "1"
    );
}

/// The light each service shows, from the colour the browser painted.
const LIGHTS: &str = r#"
const names = { "rgb(31, 157, 85)": "green", "rgb(227, 160, 8)": "amber",
                "rgb(214, 58, 58)": "red", "rgb(154, 160, 166)": "grey" };
const out = {};
for (const a of document.querySelectorAll("article.service")) {
  const color = getComputedStyle(a.querySelector(".light")).backgroundColor;
  out[a.dataset.service] = names[color] || color;
}
return out;
"#;

/// Every URL the page loaded (the document and its resources).
const REQUESTS: &str = r#"
return performance.getEntriesByType("navigation").concat(performance.getEntriesByType("resource")).map(e => e.name);
"#;

#[test]
fn status_page_in_chromium_shows_lights_turns_red_live_and_goes_grey_when_stale() {
    let Some(chromium) = env::program("chromium") else {
        return;
    };
    let Some(chromedriver) = env::program("chromedriver") else {
        return;
    };
    let (good, flip, bad, metrics) = (free_port(), free_port(), free_port(), free_port());
    let _good = TcpListener::bind(("127.0.0.1", good)).unwrap();
    let flip_listener = TcpListener::bind(("127.0.0.1", flip)).unwrap();
    let config = FAST.to_owned()
        + &tcp_service("bad", bad)
        + &tcp_service("flip", flip)
        + &tcp_service("good", good)
        + &blind_service("ghost");
    // An engine that is not there: the container service is blind.
    let keys = format!(
        "metrics_listen = \"127.0.0.1:{metrics}\"\ndocker_host = \"unix:///nonexistent/medic-test-no-engine.sock\""
    );
    let mut medic = Medic::start_with(&keys, &config);
    let expected = [
        ("good", "green"),
        ("flip", "green"),
        ("bad", "red"),
        ("ghost", "grey"),
    ];
    eventually("the daemon's verdicts", || {
        let status = api_status(metrics)?;
        expected
            .iter()
            .all(|(s, light)| field(&status, s, "light").as_deref() == Some(*light))
            .then_some(())
    });
    let status = api_status(metrics).expect("the page's JSON");
    assert_eq!(
        field(&status, "ghost", "health").as_deref(),
        Some("unknown")
    );

    // Without JavaScript: the server-rendered page carries the same lights.
    let (status, html) = http(metrics, "GET", "/", None).expect("the page");
    assert_eq!(status, 200);
    for (service, light) in expected {
        assert!(
            html.contains(&format!(
                "data-service=\"{service}\" data-light=\"{light}\""
            )),
            "{service} is not {light} in the static page:\n{html}"
        );
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );

    let browser = Browser::start(&chromedriver, &chromium);
    let url = format!("http://127.0.0.1:{metrics}/");
    browser.open(&url);
    let shots = screenshot_dir();
    let lights = browser.script(LIGHTS);
    for (service, light) in expected {
        assert_eq!(lights[service], light, "{service}: {lights}");
    }
    assert_eq!(
        browser.script("return document.body.classList.contains('stale')"),
        false
    );
    browser.screenshot(&shots.join("status-page-healthy-failing-unknown.png"));

    // The probe fails: the page turns flip red by itself, without a reload.
    browser.script("window.medicTestMarker = 1; return 1;");
    drop(flip_listener);
    eventually("flip to turn red in the page", || {
        (browser.script(LIGHTS)["flip"] == "red").then_some(())
    });
    assert_eq!(
        browser.script("return window.medicTestMarker"),
        1,
        "the page reloaded"
    );
    let text = browser.script("return document.body.innerText").to_string();
    assert!(
        text.contains("cannot connect"),
        "the incident's evidence: {text}"
    );
    browser.screenshot(&shots.join("status-page-turned-red.png"));

    // Every request went to medic on loopback; no console errors.
    let requests = browser.script(REQUESTS);
    let requests = requests.as_array().expect("a list of URLs");
    assert!(
        requests.len() >= 3,
        "document, CSS, script, polls: {requests:?}"
    );
    for request in requests {
        let url = request.as_str().unwrap_or_default();
        assert!(
            url.starts_with(&format!("http://127.0.0.1:{metrics}/")),
            "a request left loopback: {url}"
        );
    }
    // One rendering: the script fetches the server-rendered page again (the
    // document once as navigation, then as polls) and swaps what changed.
    assert!(
        requests
            .iter()
            .filter(|r| r.as_str() == Some(url.as_str()))
            .count()
            >= 2,
        "the page polls itself: {requests:?}"
    );
    let script = http(metrics, "GET", "/page.js", None)
        .expect("the script")
        .1;
    assert!(
        !script.contains("/api/status") && !script.contains("createElement"),
        "the script renders nothing itself"
    );
    // A line of our own proves the console is read at all.
    browser.script("console.warn('medic-test-console'); return 1;");
    let console = browser.console();
    let (ours, errors): (Vec<Value>, Vec<Value>) = console
        .into_iter()
        .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
        .partition(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("medic-test-console"))
        });
    assert_eq!(ours.len(), 1, "the console log is not readable");
    assert!(errors.is_empty(), "console errors: {errors:?}");

    // medic stops: the page says its data is stale and no light stays green.
    medic.terminate();
    eventually("the stale banner", || {
        let stale = browser.script("return document.body.classList.contains('stale')");
        let banner = browser
            .script("return getComputedStyle(document.getElementById('stale-banner')).display");
        (stale == true && banner != "none").then_some(())
    });
    let lights = browser.script(LIGHTS);
    for (service, _) in expected {
        assert_eq!(lights[service], "grey", "{service} on stale data: {lights}");
    }
    browser.screenshot(&shots.join("status-page-stale.png"));
}

#[test]
fn availability_history_survives_a_restart() {
    let (port, metrics) = (free_port(), free_port());
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let keys = format!("metrics_listen = \"127.0.0.1:{metrics}\"");
    let mut medic = Medic::start_with(&keys, &(FAST.to_owned() + &tcp_service("db", port)));
    medic.wait_event("db healthy", |e| {
        e["service"] == "db" && e["event"] == "healthy"
    });
    // Some healthy time on record, then a graceful stop writes the history.
    eventually("a second of healthy time", || {
        let status = api_status(metrics)?;
        let windows = status["services"][0]["availability"].as_array()?.clone();
        let day = windows.iter().find(|w| w["window"] == "24h")?;
        (day["ratio"].as_f64()? > 0.0).then_some(())
    });
    let (exit, _) = medic.terminate();
    assert!(exit.success(), "{}", medic.stderr());
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(medic.state("availability.json")).unwrap())
            .unwrap();
    let hours = file["units"]["db"]["hours"]
        .as_array()
        .expect("db's hour buckets");
    assert!(!hours.is_empty(), "{file}");

    // Restarted with the service down: its 24 h figure still counts the healthy
    // time from before the restart, so it is neither missing nor zero.
    drop(listener);
    medic.spawn();
    medic.wait_event("db failing after the restart", |e| {
        e["service"] == "db" && e["event"] == "failing"
    });
    let ratio = eventually("a 24 h figure after the restart", || {
        let status = api_status(metrics)?;
        let windows = status["services"][0]["availability"].as_array()?.clone();
        windows.iter().find(|w| w["window"] == "30d")?["ratio"].as_f64()
    });
    assert!(ratio > 0.0 && ratio < 1.0, "30 d availability {ratio}");
    let report = medic.cli(&["status", "--json"]);
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    let day = report["services"][0]["availability_24h"].as_f64().unwrap();
    assert!(
        day > 0.0 && day < 1.0,
        "medic status availability_24h {day}"
    );
}
