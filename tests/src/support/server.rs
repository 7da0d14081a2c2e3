//! Real HTTP servers on 127.0.0.1 for medic to watch: `testsrv` processes that
//! tests kill and medic's restart command starts again, and in-process servers
//! that misbehave (slow, huge bodies).

use std::path::PathBuf;
use std::process::Command;

use super::medic::{bin, eventually};

/// A `testsrv` process serving GET /health on a port, tracked through its pid file.
pub struct TestServer {
    pub port: u16,
    pub pid_file: PathBuf,
}

impl TestServer {
    /// The argv that starts the server in the background: what a restart command runs.
    pub fn start_command(&self) -> Vec<String> {
        let line = format!(
            "{} 127.0.0.1:{} {} >/dev/null 2>&1 &",
            bin("testsrv").display(),
            self.port,
            self.pid_file.display()
        );
        vec!["sh".into(), "-c".into(), line]
    }

    /// The command as a TOML array.
    pub fn start_command_toml(&self) -> String {
        serde_json::to_string(&self.start_command()).expect("strings encode")
    }

    /// Starts it and waits until it answers.
    pub fn start(port: u16, dir: &std::path::Path) -> Self {
        let server = Self {
            port,
            pid_file: dir.join(format!("testsrv-{port}.pid")),
        };
        let argv = server.start_command();
        let status = Command::new(&argv[0])
            .args(&argv[1..])
            .status()
            .expect("start testsrv");
        assert!(status.success());
        server.wait_up();
        server
    }

    /// Waits until GET /health answers.
    pub fn wait_up(&self) {
        eventually("testsrv to answer", || self.answers().then_some(()));
    }

    /// Whether GET /health answers `ok` now.
    pub fn answers(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let request = "GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n";
        let mut answer = String::new();
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_to_string(&mut answer).is_ok()
            && answer.ends_with("ok")
    }

    /// Kills the current process (SIGKILL) and waits until the port is closed.
    pub fn kill(&self) {
        let pid: i32 = std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .expect("testsrv wrote its pid");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .ok();
        eventually("testsrv to stop answering", || {
            (!self.answers()).then_some(())
        });
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            )
            .ok();
        }
    }
}

/// Whether GET http://127.0.0.1:PORT/health answers a body ending in `ok`.
pub fn health_ok(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let request = "GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n";
    let mut answer = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.trim_end().ends_with("ok")
}

/// Serves an axum router on 127.0.0.1 from a background thread; returns the port.
pub fn serve_in_background(app: axum::Router) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    serve_on(listener, app);
    port
}

/// Serves an axum router on an already bound listener from a background thread.
pub fn serve_on(listener: std::net::TcpListener, app: axum::Router) {
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            axum::serve(listener, app).await.ok();
        });
    });
}
