//! `[net]` in `weft.toml`.

use std::path::PathBuf;

use serde::Deserialize;

use crate::tls::TlsClient;

/// The unit's section. Every key optional.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetConfig {
    /// Whole-request time limit for an outbound request, ms.
    pub timeout_ms: u64,
    /// Largest response body an outbound request may return.
    pub max_response_bytes: u64,
    /// Outbound requests an agent may make while handling one message.
    pub max_requests_per_message: u32,
    /// Where to serve apps' `[[routes]]` (`127.0.0.1:8080`); none: not served
    /// unless `weaver run --http` says so.
    pub listen: Option<String>,
    /// Default body limit of a route, bytes.
    pub max_body_bytes: u64,
    /// Default time limit of a route, ms.
    pub route_timeout_ms: u64,
    /// PEM files of CAs trusted for outbound `https` besides the compiled-in
    /// Mozilla roots (relative to `weft.toml`'s directory).
    pub ca_certs: Vec<PathBuf>,
    /// The TLS client built from those at boot (none before `init`).
    #[serde(skip)]
    pub tls: Option<TlsClient>,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            timeout_ms: 10_000,
            max_response_bytes: 4 << 20,
            max_requests_per_message: 32,
            listen: None,
            max_body_bytes: 1 << 20,
            route_timeout_ms: 10_000,
            ca_certs: Vec::new(),
            tls: None,
        }
    }
}
