//! The `web_config` file as written: the whole web configuration schema of
//! the Prometheus exporter toolkit v0.14 (node_exporter's `web.yml`), so a
//! file node_exporter accepts is never refused; what rustls or medic cannot
//! honour is named in a warning at start (`unhonoured`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// The web config file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebConfig {
    /// TLS for the listeners; plain HTTP without it.
    pub tls_server_config: Option<RawTls>,
    /// HTTP settings of the toolkit's server.
    pub http_server_config: Option<RawHttp>,
    /// User name → bcrypt hash; no authentication when empty.
    #[serde(default)]
    pub basic_auth_users: BTreeMap<String, String>,
    /// The toolkit's request rate limit.
    pub rate_limit: Option<RawRateLimit>,
}

/// `tls_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    /// The server certificate chain (PEM file).
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM file).
    pub key_file: Option<PathBuf>,
    /// The certificate chain inline (PEM), instead of `cert_file`.
    pub cert: Option<String>,
    /// The private key inline (PEM), instead of `key_file`.
    pub key: Option<String>,
    /// CA certificates that client certificates must chain to (PEM).
    pub client_ca_file: Option<PathBuf>,
    /// `NoClientCert` (default), `RequestClientCert`, `RequireAnyClientCert`,
    /// `VerifyClientCertIfGiven` or `RequireAndVerifyClientCert`.
    pub client_auth_type: Option<String>,
    /// Subject alternative names a client certificate must carry one of.
    pub client_allowed_sans: Option<Vec<String>>,
    /// `TLS10`, `TLS11`, `TLS12` (default) or `TLS13`.
    pub min_version: Option<String>,
    /// `TLS10` … `TLS13` (default).
    pub max_version: Option<String>,
    /// Go's cipher suite names.
    pub cipher_suites: Option<Vec<String>>,
    /// Whether the server's cipher suite order wins.
    pub prefer_server_cipher_suites: Option<bool>,
    /// Go's curve names (`X25519`, `CurveP256`, …).
    pub curve_preferences: Option<Vec<String>>,
}

/// `http_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    /// Whether HTTP/2 is offered (the toolkit's default: true).
    pub http2: Option<bool>,
    /// Response headers to add (the toolkit allows a fixed set of security headers).
    pub headers: Option<BTreeMap<String, String>>,
}

/// `rate_limit`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    /// The time between two allowed requests (Go duration).
    pub interval: Option<String>,
    /// Requests allowed at once.
    pub burst: Option<u64>,
}

impl RawWebConfig {
    /// The keys this file sets that medic does not honour, each with why: a
    /// warning at start names them, the file is still used.
    pub(super) fn unhonoured(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(tls) = &self.tls_server_config {
            if tls.cipher_suites.is_some() {
                out.push("tls_server_config.cipher_suites: rustls offers its own safe suites (TLS 1.3 and ECDHE with AEAD for 1.2); the list is not used".to_owned());
            }
            if tls.curve_preferences.is_some() {
                out.push("tls_server_config.curve_preferences: rustls offers its own key exchange groups (X25519, P-256, P-384); the list is not used".to_owned());
            }
            if tls.client_allowed_sans.is_some() {
                out.push("tls_server_config.client_allowed_sans: client certificates are verified against client_ca_file, their names are not checked".to_owned());
            }
            for (key, version) in [
                ("min_version", &tls.min_version),
                ("max_version", &tls.max_version),
            ] {
                if matches!(version.as_deref(), Some("TLS10" | "TLS11")) {
                    out.push(format!(
                        "tls_server_config.{key}: rustls speaks TLS 1.2 and 1.3 only"
                    ));
                }
            }
            if matches!(
                tls.client_auth_type.as_deref(),
                Some("RequestClientCert" | "RequireAnyClientCert")
            ) {
                out.push("tls_server_config.client_auth_type: RequestClientCert and RequireAnyClientCert take unverified certificates; medic verifies them against client_ca_file (as VerifyClientCertIfGiven / RequireAndVerifyClientCert)".to_owned());
            }
        }
        if let Some(http) = &self.http_server_config {
            if http.http2 == Some(true) {
                out.push("http_server_config.http2: medic serves HTTP/1.1 only".to_owned());
            }
            if http.headers.as_ref().is_some_and(|h| !h.is_empty()) {
                out.push(
                    "http_server_config.headers: medic does not add response headers".to_owned(),
                );
            }
        }
        if let Some(limit) = &self.rate_limit {
            let interval = limit.interval.as_deref().unwrap_or("unset");
            let burst = limit.burst.map_or("unset".to_owned(), |b| b.to_string());
            out.push(format!("rate_limit: medic limits password checks (one at a time, failing clients held off), not requests; interval {interval}, burst {burst} not applied"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::RawWebConfig;

    #[track_caller]
    fn check(yaml: &str, expect: &[&str]) {
        let raw: RawWebConfig = serde_norway::from_str(yaml).expect("the toolkit's schema");
        let keys: Vec<String> = raw
            .unhonoured()
            .iter()
            .map(|w| w.split(':').next().unwrap_or("").to_owned())
            .collect();
        assert_eq!(keys, expect, "{yaml}");
    }

    #[test]
    fn every_key_of_the_toolkit_is_taken_and_what_is_not_honoured_is_named() {
        check("basic_auth_users: {}\n", &[]);
        check(
            "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n  min_version: TLS12\n  max_version: TLS13\n  prefer_server_cipher_suites: true\nhttp_server_config:\n  http2: false\n",
            &[],
        );
        check(
            "tls_server_config:\n  cert: x\n  key: y\n  client_auth_type: RequireAnyClientCert\n  client_ca_file: ca.pem\n  client_allowed_sans: [a.example]\n  min_version: TLS10\n  max_version: TLS11\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n  prefer_server_cipher_suites: false\n  curve_preferences: [X25519]\nhttp_server_config:\n  http2: true\n  headers:\n    Strict-Transport-Security: max-age=31536000\nrate_limit:\n  interval: 1s\n  burst: 10\n",
            &[
                "tls_server_config.cipher_suites",
                "tls_server_config.curve_preferences",
                "tls_server_config.client_allowed_sans",
                "tls_server_config.min_version",
                "tls_server_config.max_version",
                "tls_server_config.client_auth_type",
                "http_server_config.http2",
                "http_server_config.headers",
                "rate_limit",
            ],
        );
    }
}
