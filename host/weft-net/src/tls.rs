//! TLS for outbound `https`: rustls with the `ring` provider, trusting the
//! compiled-in Mozilla roots (`webpki-roots`: a fresh machine may have no
//! ca-certificates) plus the CAs of `[net] ca_certs`. SNI is the URL's
//! host, the certificate must name it, and ALPN offers only `http/1.1`
//! (the client speaks HTTP/1.1). The TCP connection handed in is the one
//! [`crate::fetch::resolve`] checked, so TLS adds no second lookup.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::fetch::Failure;

/// Why `[net] ca_certs` could not be loaded (a boot error).
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The file could not be read.
    #[error("[net] ca_certs: cannot read `{0}`: {1}")]
    Read(PathBuf, std::io::Error),
    /// A `CERTIFICATE` block is not valid PEM.
    #[error("[net] ca_certs: `{0}` is malformed PEM: {1}")]
    Malformed(PathBuf, String),
    /// No `CERTIFICATE` block at all.
    #[error("[net] ca_certs: `{0}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    Empty(PathBuf),
    /// rustls refused the certificate as a trust anchor.
    #[error("[net] ca_certs: `{0}` is not a usable CA certificate: {1}")]
    Rejected(PathBuf, rustls::Error),
    /// The client configuration itself failed.
    #[error("TLS client: {0}")]
    Client(rustls::Error),
}

/// The outbound TLS client (cheap to clone).
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<rustls::ClientConfig>,
    extra: usize,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TlsClient(webpki roots + {} extra CAs)", self.extra)
    }
}

impl TlsClient {
    /// Trust the Mozilla roots and every certificate in the PEM files
    /// `ca_certs` (relative ones under `base`). A file that cannot be read,
    /// is malformed or holds no certificate is an error naming it.
    pub fn new(ca_certs: &[PathBuf], base: Option<&Path>) -> Result<TlsClient, CaError> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let mut extra = 0;
        for p in ca_certs {
            let path = match base {
                Some(b) if p.is_relative() => b.join(p),
                _ => p.clone(),
            };
            let pem = std::fs::read(&path).map_err(|e| CaError::Read(path.clone(), e))?;
            let mut n = 0;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| CaError::Malformed(path.clone(), e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| CaError::Rejected(path.clone(), e))?;
                n += 1;
            }
            if n == 0 {
                return Err(CaError::Empty(path));
            }
            extra += n;
        }
        // An explicit provider: no reliance on a process-wide default that
        // another crate's rustls features could make ambiguous.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(CaError::Client)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsClient {
            config: Arc::new(config),
            extra,
        })
    }

    /// Handshake over `tcp` with `host` (a DNS name or an IP literal) as
    /// SNI and as the name the certificate must carry.
    pub async fn connect(
        &self,
        host: &str,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>, Failure> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| Failure::Tls(format!("`{host}` is not a TLS server name: {e}")))?;
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| classify(host, &e))
    }
}

/// A handshake error as the guest and the chain see it: certificate
/// problems apart (the guest gets `TLS-certificate-error`), each with a
/// reason a person can act on.
fn classify(host: &str, e: &std::io::Error) -> Failure {
    let Some(err) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return Failure::Tls(format!("handshake with `{host}`: {e}"));
    };
    match err {
        rustls::Error::InvalidCertificate(c) => Failure::Certificate(match c {
            CertificateError::UnknownIssuer => format!(
                "certificate not trusted: `{host}`'s issuer is not among the trusted roots ([net] ca_certs)"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("hostname mismatch: {c}")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("certificate expired: {c}")
            }
            other => format!("certificate rejected: {other}"),
        }),
        rustls::Error::AlertReceived(a) => {
            Failure::Tls(format!("`{host}` ended the handshake with alert {a:?}"))
        }
        other => Failure::Tls(format!("handshake with `{host}`: {other}")),
    }
}
