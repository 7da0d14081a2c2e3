//! `web_config`: TLS and basic authentication for medic's HTTP listeners, in
//! the format of the Prometheus exporter toolkit (`tls_server_config`,
//! `basic_auth_users` with bcrypt hashes), so the file an operator already
//! writes for node_exporter works here too. rustls does the TLS and the
//! `bcrypt` crate the password checks (its comparison is constant-time); an
//! unknown user is checked against a dummy hash so it takes as long as a known one.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The web config file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    /// TLS for the listeners; plain HTTP without it.
    tls_server_config: Option<RawTls>,
    /// User name → bcrypt hash; no authentication when empty.
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

/// `tls_server_config`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    /// The server certificate chain (PEM).
    cert_file: PathBuf,
    /// Its private key (PEM).
    key_file: PathBuf,
    /// CA certificates that client certificates must chain to (PEM).
    client_ca_file: Option<PathBuf>,
    /// `NoClientCert` (default), `VerifyClientCertIfGiven` or `RequireAndVerifyClientCert`.
    client_auth_type: Option<String>,
    /// `TLS12` (default) or `TLS13`.
    min_version: Option<String>,
}

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
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file(&tls.cert_file))
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .with_context(|| format!("cannot read cert_file {}", tls.cert_file.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "cert_file {} holds no certificate",
        tls.cert_file.display()
    );
    let key = PrivateKeyDer::from_pem_file(file(&tls.key_file))
        .with_context(|| format!("cannot read key_file {}", tls.key_file.display()))?;
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version.as_deref() {
        None | Some("TLS12") => rustls::ALL_VERSIONS,
        Some("TLS13") => &[&rustls::version::TLS13],
        Some(other) => anyhow::bail!("min_version `{other}`: write TLS12 or TLS13"),
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
        (kind @ ("RequireAndVerifyClientCert" | "VerifyClientCertIfGiven"), Some(ca)) => {
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
            let verifier = if kind == "VerifyClientCertIfGiven" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().context("client_ca_file")?)
        }
        ("RequireAndVerifyClientCert" | "VerifyClientCertIfGiven", None) => {
            anyhow::bail!("client_auth_type `{auth_type}` needs client_ca_file")
        }
        (other, _) => anyhow::bail!(
            "client_auth_type `{other}`: write NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
        ),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .context("the certificate and key do not fit together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
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

/// The web config in force, shared by the listeners and replaced on SIGHUP:
/// each new connection takes the current certificate, each request the current users.
#[derive(Debug, Clone)]
pub struct Guard {
    current: Arc<RwLock<WebConfig>>,
    /// SHA-256 of user, password and hash → checked good; cleared when full.
    good: Arc<Mutex<HashSet<[u8; 32]>>>,
}

impl Guard {
    /// Guards with `config`.
    pub fn new(config: WebConfig) -> Self {
        Self {
            current: Arc::new(RwLock::new(config)),
            good: Arc::default(),
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

    /// Whether `authorization` (the header's value) names a user with the right
    /// password; always true when the config has no users.
    async fn check(&self, authorization: Option<&HeaderValue>) -> bool {
        let users = match self.current.read() {
            Ok(current) if current.authenticates() => current.users.clone(),
            _ => return true,
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
            return false;
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
            return true;
        }
        // bcrypt takes tens of milliseconds on purpose: off the single runtime thread.
        let verified = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        if known
            && verified
            && let Ok(mut good) = self.good.lock()
        {
            if good.len() >= REMEMBERED {
                good.clear();
            }
            good.insert(key);
        }
        known && verified
    }
}

/// Middleware: 401 with a `WWW-Authenticate` challenge unless the request carries good credentials.
pub async fn basic_auth(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    if guard
        .check(request.headers().get(header::AUTHORIZATION))
        .await
    {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"medic\", charset=\"UTF-8\"",
        )],
        "authentication required\n",
    )
        .into_response()
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
            error("http_server_config:\n  http2: false\n")
                .contains("unknown field `http_server_config`")
        );
    }

    #[tokio::test]
    async fn basic_auth_needs_a_known_user_and_the_right_password() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let guard = Guard::new(WebConfig {
            path: PathBuf::new(),
            tls: None,
            users: Arc::new(BTreeMap::from([("prom".to_owned(), hash)])),
        });
        let header = |user: &str, password: &str| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            HeaderValue::from_str(&format!("Basic {token}")).unwrap()
        };
        assert!(guard.check(Some(&header("prom", "s3cret"))).await);
        // Remembered: the second check needs no bcrypt and gives the same answer.
        assert!(guard.check(Some(&header("prom", "s3cret"))).await);
        assert!(!guard.check(Some(&header("prom", "wrong"))).await);
        assert!(!guard.check(Some(&header("root", "s3cret"))).await);
        assert!(!guard.check(None).await);
        assert!(
            !guard
                .check(Some(&HeaderValue::from_static("Bearer x")))
                .await
        );
    }
}
