//! `[medic]`: defaults, paths that follow `state_dir`, control access.

use std::path::PathBuf;
use std::time::Duration;

use insta::assert_snapshot;

use super::{check, valid};
use crate::config::*;

#[test]
fn settings_have_defaults_and_follow_state_dir() {
    let medic = valid("").medic;
    assert_eq!(
        medic,
        Settings {
            state_dir: "/var/lib/medic".into(),
            recovery_log: "/var/lib/medic/recovery.jsonl".into(),
            alerts_file: "/var/lib/medic/alerts/critical.jsonl".into(),
            control_socket: "/run/medic/control.sock".into(),
            control_access: SocketAccess {
                mode: 0o600,
                owner: None,
                group: None,
            },
            control_tcp: None,
            metrics_listen: Some("127.0.0.1:9464".into()),
            status_listen: StatusListen::WithMetrics,
            web_config: None,
            external_url: None,
            docker_host: None,
            reconcile_interval: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(4),
            blind_alert_after: Duration::from_secs(300),
            max_concurrent_actions: 4,
            max_concurrent_probes: 256,
            journal_max_size: 64 * 1024 * 1024,
            journal_keep: 5,
            storm: crate::storm::StormRule {
                share: 0.2,
                window: Duration::from_secs(60),
            },
        }
    );
    let medic = valid(
        r#"
[medic]
state_dir = "/tmp/m"
alerts_file = "/srv/alerts.jsonl"
metrics_listen = ""
docker_host = "tcp://127.0.0.1:2375"
reconcile_interval = "1m30s"
"#,
    )
    .medic;
    assert_eq!(medic.recovery_log, PathBuf::from("/tmp/m/recovery.jsonl"));
    assert_eq!(medic.alerts_file, PathBuf::from("/srv/alerts.jsonl"));
    assert_eq!(medic.metrics_listen, None);
    assert_eq!(medic.docker_host.as_deref(), Some("tcp://127.0.0.1:2375"));
    assert_eq!(medic.reconcile_interval, Duration::from_secs(90));
    assert_snapshot!(check("[medic]\nmax_concurrent_actions = 0\nmax_concurrent_probes = 0\n"), @r"
    medic.toml:2:26: error: `max_concurrent_actions` must be at least 1
      hint: the default is 4
    medic.toml:3:25: error: `max_concurrent_probes` must be at least 1
      hint: the default is 256
    ");
}

#[test]
fn control_access_and_tcp_control_need_valid_values() {
    let medic = valid(
        r#"
[medic]
control_socket_mode = "0660"
control_socket_group = "adm"
control_listen = "127.0.0.1:9465"
control_token_file = "/etc/medic/token"
"#,
    )
    .medic;
    assert_eq!(medic.control_access.mode, 0o660);
    assert_eq!(medic.control_access.group.as_deref(), Some("adm"));
    assert_eq!(
        medic.control_tcp,
        Some(TcpControl {
            listen: "127.0.0.1:9465".into(),
            token_file: "/etc/medic/token".into(),
        })
    );
    assert_snapshot!(check("[medic]\ncontrol_socket_mode = \"rw\"\ncontrol_listen = \"0.0.0.0:9465\"\n"), @r#"
    medic.toml:2:23: error: `control_socket_mode` must be octal permission bits
      hint: for example "0600" or "0660"
    medic.toml:3:18: error: `control_listen` needs `control_token_file`
      hint: TCP control always requires a bearer token: put one in a file only medic can read
    "#);
}
