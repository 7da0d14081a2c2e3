//! `web_config`: TLS and basic authentication for medic's HTTP listeners, in
//! the format of the Prometheus exporter toolkit (`tls_server_config`,
//! `basic_auth_users` with bcrypt hashes), so the file an operator already
//! writes for node_exporter works here too. rustls does the TLS and the
//! `bcrypt` crate the password checks (its comparison is constant-time); an
//! unknown user is checked against a dummy hash so it takes as long as a known one.
//! One check runs at a time (as the toolkit's mutex does), a client address
//! that keeps failing is refused for a while (`attempts.rs`), and any internal
//! error refuses the request.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::attempts::Attempts;
use super::schema::{RawTls, RawWebConfig};

/// A loaded web config: what every listener under it enforces.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Where it was read from, to read it again on SIGHUP.
    pub path: PathBuf,
    /// The rustls server config; None: plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// User → bcrypt hash; empty: no authentication.
    pub users: Arc<BTreeMap<String, String>>,
}

impl WebConfig {
    /// Reads and checks `path`: the YAML, the certificate, the key and the
    /// client CA, and that every user's hash is a bcrypt hash. Relative file
    /// names are relative to the web config's directory (as in the toolkit).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read web_config {}", path.display()))?;
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig::default()
        } else {
            serde_norway::from_str(&text)
                .with_context(|| format!("web_config {} is not valid", path.display()))?
        };
        for key in raw.unhonoured() {
            tracing::warn!(web_config = %path.display(), "Not honoured: {key}");
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let tls = raw
            .tls_server_config
            .map(|tls| server_config(&tls, dir))
            .transpose()
            .with_context(|| format!("web_config {}: tls_server_config", path.display()))?;
        for (user, hash) in &raw.basic_auth_users {
            hash.parse::<bcrypt::HashParts>().map_err(|_| {
                anyhow::anyhow!(
                    "web_config {}: the password of `{user}` is not a bcrypt hash (make one with `htpasswd -nBC 10 {user}`)",
                    path.display()
                )
            })?;
        }
        Ok(Self {
            path: path.to_owned(),
            tls: tls.map(Arc::new),
            users: Arc::new(raw.basic_auth_users),
        })
    }

    /// Whether requests need a user and password.
    pub fn authenticates(&self) -> bool {
        !self.users.is_empty()
    }
}

fn server_config(tls: &RawTls, dir: &Path) -> anyhow::Result<rustls::ServerConfig> {
    let file = |name: &Path| dir.join(name);
    let certs: Vec<CertificateDer<'static>> = match (&tls.cert, &tls.cert_file) {
        (Some(pem), _) => CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .context("cannot read the inline cert")?,
        (None, Some(path)) => CertificateDer::pem_file_iter(file(path))
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .with_context(|| format!("cannot read cert_file {}", path.display()))?,
        (None, None) => anyhow::bail!("write cert_file (or cert) and key_file (or key)"),
    };
    anyhow::ensure!(!certs.is_empty(), "the certificate holds no certificate");
    let key = match (&tls.key, &tls.key_file) {
        (Some(pem), _) => {
            PrivateKeyDer::from_pem_slice(pem.as_bytes()).context("cannot read the inline key")?
        }
        (None, Some(path)) => PrivateKeyDer::from_pem_file(file(path))
            .with_context(|| format!("cannot read key_file {}", path.display()))?,
        (None, None) => anyhow::bail!("write key_file (or key) beside the certificate"),
    };
    let version = |v: Option<&str>, default: u8| match v {
        None => Ok(default),
        Some("TLS10" | "TLS11" | "TLS12") => Ok(12),
        Some("TLS13") => Ok(13),
        Some(other) => Err(anyhow::anyhow!(
            "TLS version `{other}`: write TLS10, TLS11, TLS12 or TLS13"
        )),
    };
    let (min, max) = (
        version(tls.min_version.as_deref(), 12)?,
        version(tls.max_version.as_deref(), 13)?,
    );
    let versions: &[&rustls::SupportedProtocolVersion] = match (min, max) {
        (12, 13) => rustls::ALL_VERSIONS,
        (13, 13) => &[&rustls::version::TLS13],
        (12, 12) => &[&rustls::version::TLS12],
        _ => anyhow::bail!("min_version is above max_version"),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .context("TLS versions")?;
    let auth_type = tls
        .client_auth_type
        .as_deref()
        .unwrap_or(if tls.client_ca_file.is_some() {
            "RequireAndVerifyClientCert"
        } else {
            "NoClientCert"
        });
    let builder = match (auth_type, &tls.client_ca_file) {
        ("NoClientCert", _) => builder.with_no_client_auth(),
        (
            kind @ ("RequireAndVerifyClientCert"
            | "VerifyClientCertIfGiven"
            | "RequireAnyClientCert"
            | "RequestClientCert"),
            Some(ca),
        ) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(file(ca))
                .with_context(|| format!("cannot read client_ca_file {}", ca.display()))?
            {
                roots
                    .add(cert.with_context(|| format!("client_ca_file {}", ca.display()))?)
                    .with_context(|| format!("client_ca_file {}", ca.display()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            let verifier = if matches!(kind, "VerifyClientCertIfGiven" | "RequestClientCert") {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().context("client_ca_file")?)
        }
        ("RequestClientCert", None) => builder.with_no_client_auth(),
        (
            "RequireAndVerifyClientCert" | "VerifyClientCertIfGiven" | "RequireAnyClientCert",
            None,
        ) => {
            anyhow::bail!("client_auth_type `{auth_type}` needs client_ca_file")
        }
        (other, _) => anyhow::bail!(
            "client_auth_type `{other}`: write NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
        ),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .context("the certificate and key do not fit together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ignore_client_order = tls.prefer_server_cipher_suites.unwrap_or(false);
    Ok(config)
}

/// A bcrypt hash (cost 10, the toolkit's usual) that unknown users are checked
/// against, so that a wrong user name costs as long as a wrong password.
static DUMMY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    // Invariant: hashing with a valid cost (4..=31) cannot fail.
    bcrypt::hash("medic: no such user", 10).unwrap_or_default()
});
/// Most remembered good credentials (a scrape every few seconds need not pay bcrypt each time).
const REMEMBERED: usize = 64;
/// Most requests waiting for the password check; more are answered 429 at once.
const WAITING: usize = 64;
/// What a request told to come back later waits when no window says how long.
const BUSY: Duration = Duration::from_secs(1);

/// The web config in force, shared by the listeners and replaced on SIGHUP:
/// each new connection takes the current certificate, each request the current users.
#[derive(Debug, Clone)]
pub struct Guard {
    current: Arc<RwLock<WebConfig>>,
    /// SHA-256 of user, password and hash → checked good; cleared when full.
    good: Arc<Mutex<HashSet<[u8; 32]>>>,
    /// One bcrypt check at a time: a flood of passwords costs one thread of
    /// tokio's blocking pool (which probes share), not one each.
    checking: Arc<Semaphore>,
    /// Requests waiting for `checking`, at most [`WAITING`].
    waiting: Arc<AtomicUsize>,
    /// Failed attempts by client address.
    attempts: Arc<Mutex<Attempts>>,
}

/// What the password check says of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Good credentials, or none needed.
    Pass,
    /// No or wrong credentials, or the check could not be made.
    Refuse,
    /// Not checked: the client failed too often, or too many wait; come back after this.
    Later(Duration),
}

/// Counts one request waiting for the check while it lives (a client that
/// disconnects drops its request, and so this).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Guard {
    /// Guards with `config`.
    pub fn new(config: WebConfig) -> Self {
        Self {
            current: Arc::new(RwLock::new(config)),
            good: Arc::default(),
            checking: Arc::new(Semaphore::new(1)),
            waiting: Arc::default(),
            attempts: Arc::default(),
        }
    }

    /// The TLS config for a new connection; None: plain HTTP.
    pub fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.current.read().ok().and_then(|c| c.tls.clone())
    }

    /// Reads the file again; on an error the config in force stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let path = self
            .current
            .read()
            .map(|c| c.path.clone())
            .unwrap_or_default();
        let fresh = WebConfig::load(&path)?;
        if let Ok(mut current) = self.current.write() {
            *current = fresh;
        }
        Ok(())
    }

    /// Whether `authorization` (the header's value) names a user with the
    /// right password, for a request from `client`; always passes when the
    /// config has no users, and refuses on any internal error.
    async fn check(&self, authorization: Option<&HeaderValue>, client: Option<IpAddr>) -> Verdict {
        let users = match self.current.read() {
            Ok(current) if !current.authenticates() => return Verdict::Pass,
            Ok(current) => current.users.clone(),
            Err(_) => {
                tracing::error!("web_config is unreadable after a panic: refusing every request");
                return Verdict::Refuse;
            }
        };
        let Some((user, password)) = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|v| {
                base64::engine::general_purpose::STANDARD
                    .decode(v.trim())
                    .ok()
            })
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())))
        else {
            return Verdict::Refuse;
        };
        let (known, hash) = match users.get(&user) {
            Some(hash) => (true, hash.clone()),
            None => (false, DUMMY.clone()),
        };
        let key: [u8; 32] = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .chain_update([0])
            .chain_update(hash.as_bytes())
            .finalize()
            .into();
        if known && self.good.lock().is_ok_and(|good| good.contains(&key)) {
            return Verdict::Pass;
        }
        if let Some(verdict) = self.refused(client) {
            return verdict;
        }
        let permit = {
            let waiting = Waiting(&self.waiting);
            if self.waiting.fetch_add(1, Ordering::AcqRel) >= WAITING {
                return Verdict::Later(BUSY);
            }
            let permit = self.checking.clone().acquire_owned().await;
            drop(waiting);
            match permit {
                Ok(permit) => permit,
                Err(_) => return Verdict::Refuse,
            }
        };
        // Failures counted while this request waited.
        if let Some(verdict) = self.refused(client) {
            return verdict;
        }
        // bcrypt takes tens of milliseconds on purpose: off the single runtime
        // thread, and the permit comes back with the answer, so the next check
        // begins after this one's failure is counted (or when the check ends
        // even if this request is gone).
        let checked =
            tokio::task::spawn_blocking(move || (bcrypt::verify(password, &hash), permit)).await;
        let verified = matches!(checked, Ok((Ok(true), _)));
        if known && verified {
            if let Ok(mut good) = self.good.lock() {
                if good.len() >= REMEMBERED {
                    good.clear();
                }
                good.insert(key);
            }
            return Verdict::Pass;
        }
        match self.attempts.lock() {
            Ok(mut attempts) => {
                if attempts.failed(client, Instant::now()) {
                    tracing::warn!(
                        client = %client.map_or_else(|| "unknown".to_owned(), |c| c.to_string()),
                        "Too many wrong passwords: this client is refused for a while"
                    );
                }
            }
            Err(_) => tracing::error!("failed logins are untracked after a panic"),
        }
        Verdict::Refuse
    }

    /// `Later` when `client` has failed too often (or its count cannot be read).
    fn refused(&self, client: Option<IpAddr>) -> Option<Verdict> {
        match self.attempts.lock() {
            Ok(attempts) => attempts
                .refused_for(client, Instant::now())
                .map(Verdict::Later),
            Err(_) => Some(Verdict::Refuse),
        }
    }
}

/// Middleware: 401 with a `WWW-Authenticate` challenge unless the request
/// carries good credentials; 429 with `Retry-After` for a client refused for now.
pub async fn basic_auth(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    match guard
        .check(request.headers().get(header::AUTHORIZATION), client)
        .await
    {
        Verdict::Pass => next.run(request).await,
        Verdict::Refuse => (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Basic realm=\"medic\", charset=\"UTF-8\"",
            )],
            "authentication required\n",
        )
            .into_response(),
        Verdict::Later(wait) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(
                header::RETRY_AFTER,
                (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).to_string(),
            )],
            "too many wrong passwords from this address; try again later\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> anyhow::Result<WebConfig> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("web.yml");
        std::fs::write(&path, yaml)?;
        WebConfig::load(&path)
    }

    #[test]
    fn the_toolkit_format_and_its_mistakes() {
        let empty = load("").unwrap();
        assert!(empty.tls.is_none() && !empty.authenticates());
        let hash = bcrypt::hash("pw", 4).unwrap();
        let users = load(&format!("basic_auth_users:\n  prom: '{hash}'\n")).unwrap();
        assert!(users.authenticates());
        let error = |yaml: &str| format!("{:#}", load(yaml).unwrap_err());
        assert!(error("basic_auth_users:\n  prom: plain\n").contains("not a bcrypt hash"));
        assert!(
            error("tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n")
                .contains("cannot read cert_file missing.pem")
        );
        assert!(
            error("tls_server_config:\n  cert: junk\n  key: junk\n")
                .contains("holds no certificate")
        );
        assert!(error("tls_server_config:\n  key_file: k.pem\n").contains("write cert_file"));
        assert!(error("tls_server_config:\n  ciphers: []\n").contains("unknown field `ciphers`"));
        // The toolkit's HTTP settings and rate limit are taken (and warned about).
        let http = "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n";
        assert!(load(&format!("{http}rate_limit:\n  interval: 1s\n  burst: 5\n")).is_ok());
    }

    fn guard(password: &str) -> Guard {
        let hash = bcrypt::hash(password, 4).unwrap();
        Guard::new(WebConfig {
            path: PathBuf::new(),
            tls: None,
            users: Arc::new(BTreeMap::from([("prom".to_owned(), hash)])),
        })
    }

    fn header(user: &str, password: &str) -> HeaderValue {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {token}")).unwrap()
    }

    fn client(ip: &str) -> Option<IpAddr> {
        Some(ip.parse().unwrap())
    }

    #[tokio::test]
    async fn basic_auth_needs_a_known_user_and_the_right_password() {
        let guard = guard("s3cret");
        let check = |value: Option<HeaderValue>| {
            let guard = guard.clone();
            async move { guard.check(value.as_ref(), client("10.0.0.1")).await }
        };
        assert_eq!(check(Some(header("prom", "s3cret"))).await, Verdict::Pass);
        // Remembered: the second check needs no bcrypt and gives the same answer.
        assert_eq!(check(Some(header("prom", "s3cret"))).await, Verdict::Pass);
        assert_eq!(check(Some(header("prom", "wrong"))).await, Verdict::Refuse);
        assert_eq!(check(Some(header("root", "s3cret"))).await, Verdict::Refuse);
        assert_eq!(check(None).await, Verdict::Refuse);
        assert_eq!(
            check(Some(HeaderValue::from_static("Bearer x"))).await,
            Verdict::Refuse
        );
    }

    #[tokio::test]
    async fn a_client_that_keeps_failing_is_refused_unchecked_and_others_are_not() {
        let guard = guard("s3cret");
        // Prometheus's credentials, checked once and remembered.
        assert_eq!(
            guard
                .check(Some(&header("prom", "s3cret")), client("10.0.0.1"))
                .await,
            Verdict::Pass
        );
        for _ in 0..super::super::attempts::FAILURES {
            assert_eq!(
                guard
                    .check(Some(&header("prom", "guess")), client("10.0.0.1"))
                    .await,
                Verdict::Refuse
            );
        }
        let refused = guard
            .check(Some(&header("prom", "guess")), client("10.0.0.1"))
            .await;
        assert!(
            matches!(refused, Verdict::Later(wait) if wait > Duration::ZERO),
            "{refused:?}"
        );
        // Even the right password is not checked now, unless it was remembered.
        assert!(matches!(
            guard
                .check(Some(&header("root", "s3cret")), client("10.0.0.1"))
                .await,
            Verdict::Later(_)
        ));
        assert_eq!(
            guard
                .check(Some(&header("prom", "s3cret")), client("10.0.0.1"))
                .await,
            Verdict::Pass
        );
        // Another address is checked as before.
        assert_eq!(
            guard
                .check(Some(&header("prom", "guess")), client("10.0.0.2"))
                .await,
            Verdict::Refuse
        );
    }

    #[tokio::test]
    async fn a_poisoned_lock_refuses_every_request() {
        let guard = guard("s3cret");
        let current = guard.current.clone();
        std::thread::spawn(move || {
            let _held = current.write().unwrap();
            panic!("poison the web config's lock");
        })
        .join()
        .unwrap_err();
        assert_eq!(
            guard
                .check(Some(&header("prom", "s3cret")), client("10.0.0.1"))
                .await,
            Verdict::Refuse
        );
        assert_eq!(guard.check(None, client("10.0.0.1")).await, Verdict::Refuse);
        // And so does a poisoned count of failed attempts.
        let guard = self::guard("s3cret");
        let attempts = guard.attempts.clone();
        std::thread::spawn(move || {
            let _held = attempts.lock().unwrap();
            panic!("poison the attempts' lock");
        })
        .join()
        .unwrap_err();
        assert_eq!(
            guard
                .check(Some(&header("prom", "s3cret")), client("10.0.0.1"))
                .await,
            Verdict::Refuse
        );
    }
}
