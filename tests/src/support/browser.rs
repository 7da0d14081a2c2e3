//! A real headless Chromium driven through chromedriver's WebDriver HTTP API on
//! loopback, with a tiny blocking HTTP/1.1 client (no browser automation crate):
//! open a page, run a script, read the console log, take a screenshot.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::medic::{eventually, free_port};

/// One request to 127.0.0.1:`port`; the status and the body, or None when the connection failed.
pub fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .ok()?;
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    // Servers may keep the connection open (chromedriver does): read the
    // head, then exactly Content-Length bytes, or chunks up to the last one.
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = find(&answer, b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        answer.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&answer[..head_end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let body = &answer[head_end..];
        let done = match length {
            Some(length) => body.len() >= length,
            None if chunked => find(body, b"\r\n0\r\n\r\n").is_some() || body.starts_with(b"0\r\n"),
            None => false,
        };
        if done {
            break;
        }
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&answer[head_end..]).into_owned();
    let body = if chunked { dechunk(&body) } else { body };
    Some((status, body))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// chromedriver with one headless Chromium session; both stop on drop.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium (a new profile, no
    /// background networking) that logs every console message.
    pub fn start(chromedriver: &str, chromium: &str) -> Self {
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("a profile dir");
        let mut browser = Self {
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        eventually("chromedriver to answer", || {
            let (_, body) = http(port, "GET", "/status", None)?;
            let status: Value = serde_json::from_str(&body).ok()?;
            status["value"]["ready"].as_bool().filter(|r| *r)
        });
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1200,1400",
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .chain([format!(
            "--user-data-dir={}",
            browser._profile.path().display()
        )])
        .collect::<Vec<_>>();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let answer = browser.call("POST", "/session", Some(&capabilities));
        browser.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_owned();
        browser
    }

    /// One WebDriver command; its `value` (panics on a WebDriver error).
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, text) = http(self.port, method, path, body)
            .unwrap_or_else(|| panic!("chromedriver did not answer {method} {path}"));
        let answer: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("chromedriver answered {status} with non-JSON ({e}): {text}")
        });
        assert!(
            status == 200,
            "WebDriver {method} {path} failed with {status}: {answer}"
        );
        answer["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Navigates and waits for the load.
    pub fn open(&self, url: &str) {
        self.call(
            "POST",
            &self.session_path("/url"),
            Some(&json!({ "url": url })),
        );
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            Some(&json!({ "script": script, "args": [] })),
        )
    }

    /// The browser console's entries since the last call: `{level, message}` objects.
    pub fn console(&self) -> Vec<Value> {
        let value = self.call(
            "POST",
            &self.session_path("/se/log"),
            Some(&json!({ "type": "browser" })),
        );
        value.as_array().cloned().unwrap_or_default()
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) {
        let value = self.call("GET", &self.session_path("/screenshot"), None);
        let png = base64_decode(value.as_str().expect("a base64 screenshot"));
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create the screenshot dir");
        }
        std::fs::write(path, png).expect("write the screenshot");
        eprintln!("screenshot: {}", path.display());
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            http(self.port, "DELETE", &self.session_path(""), None);
        }
        self.driver.kill().ok();
        self.driver.wait().ok();
    }
}

/// Where tests keep screenshots: `target/medic-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    // target/debug/deps/e2e-… → target
    exe.ancestors()
        .nth(3)
        .expect("test binary lives in target/*/deps")
        .join("medic-screenshots")
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let digits: Vec<u8> = text.bytes().filter_map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, d)| n | u32::from(*d) << (18 - 6 * i));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}
