//! Startup: `medic check` (parse the config, run every probe once, print the
//! table) on a 100-service config, against the same with 1 service, whose
//! time is the fixed cost of starting the process and the runtime.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{config_file, medic, ms, percentile};

const ROUNDS: usize = 10;

pub fn run() {
    let server = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = server.local_addr().expect("address").port();
    // Accept and drop every connection: a tcp probe only needs the connect to succeed.
    std::thread::spawn(move || for _ in server.incoming() {});
    let one = time_check(1, port);
    let hundred = time_check(100, port);
    println!("## Startup: `medic check` ({ROUNDS} rounds, tcp probes on loopback)");
    println!(
        "1 service     p50 {:>10}  p99 {:>10}",
        ms(percentile(&one, 50)),
        ms(percentile(&one, 99))
    );
    println!(
        "100 services  p50 {:>10}  p99 {:>10}",
        ms(percentile(&hundred, 50)),
        ms(percentile(&hundred, 99))
    );
    println!(
        "ratio 100 / 1 service (p50): {:.2}×\n",
        percentile(&hundred, 50).as_secs_f64() / percentile(&one, 50).as_secs_f64()
    );
}

fn time_check(services: usize, port: u16) -> Vec<Duration> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = "\n".to_owned();
    for i in 0..services {
        config.push_str(&format!(
            "[[service]]\nname = \"s{i}\"\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:{port}\"\n\n"
        ));
    }
    let path = config_file(dir.path(), &config);
    (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            let status = Command::new(medic())
                .args(["check", "--config"])
                .arg(&path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run medic check");
            assert!(status.success(), "medic check failed");
            start.elapsed()
        })
        .collect()
}
