//! https probes against a real TLS server (rustls) with a certificate from a
//! CA generated in the test.

use std::sync::Arc;
use std::time::Duration;

use medic_core::Outcome;
use medic_core::config::ProbeKind;
use medic_probe::{ClientPool, ProbeError, ProbeRunner};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::util::{expect, http, probe, run_http};

const SECOND: Duration = Duration::from_secs(1);

/// The server certificate's notAfter, 2031-05-17T00:00:00Z, in Unix seconds.
const NOT_AFTER: i64 = 1_936_742_400;

/// A CA (returned as PEM) and an https server on 127.0.0.1 with a
/// certificate it signed, valid until [`NOT_AFTER`]; the server answers
/// every request "200 ok".
async fn tls_server() -> (String, u16) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    leaf_params.not_after = rcgen::date_time_ymd(2031, 5, 17);
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();

    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that rejects the certificate ends the handshake: fine.
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                tls.write_all(answer).await.ok();
                tls.shutdown().await.ok();
            });
        }
    });
    (ca.pem(), port)
}

#[tokio::test]
async fn an_untrusted_certificate_fails_unless_its_ca_is_given() {
    let (ca_pem, port) = tls_server().await;
    let url = format!("https://127.0.0.1:{port}/health");

    let observation = run_http(http(url.clone()), SECOND).await;
    expect(&observation, Outcome::Fail, "cannot connect");
    assert!(
        observation.message.contains("certificate"),
        "{:?}",
        observation.message
    );
    assert_eq!(observation.evidence["failed_check"], "connect");

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let mut trusted = http(url.clone());
    trusted.ca_file = Some(ca_file);
    trusted.body_contains = Some("ok".into());
    let observation = run_http(trusted, SECOND).await;
    expect(&observation, Outcome::Ok, "HTTP 200");
    assert_eq!(
        observation.cert_expiry,
        Some(NOT_AFTER),
        "read to the second"
    );

    let mut unverified = http(url);
    unverified.tls_verify = false;
    let observation = run_http(unverified, SECOND).await;
    expect(&observation, Outcome::Ok, "HTTP 200");
    assert_eq!(observation.cert_expiry, Some(NOT_AFTER));
}

#[tokio::test]
async fn plain_http_has_no_certificate_expiry() {
    let (_, port) = tls_server().await;
    // The TLS server cannot speak plain HTTP: a failed exchange has no expiry either.
    let observation = run_http(http(format!("http://127.0.0.1:{port}/")), SECOND).await;
    assert_eq!(observation.cert_expiry, None);
}

#[test]
fn a_missing_or_empty_ca_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let build = |path: std::path::PathBuf| {
        let mut spec = http("https://127.0.0.1:1/".into());
        spec.ca_file = Some(path);
        ProbeRunner::new(
            &probe(ProbeKind::Http(std::sync::Arc::new(spec)), SECOND),
            &ClientPool::new(),
        )
    };
    assert!(matches!(
        build(dir.path().join("missing.pem")),
        Err(ProbeError::CaFileRead { .. })
    ));
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    assert!(matches!(
        build(empty),
        Err(ProbeError::CaFileContent { .. })
    ));
}
