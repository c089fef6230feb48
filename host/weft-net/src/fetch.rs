//! The wire side of an outbound request, after the gate: resolve once,
//! check the address, connect to exactly that address, send, read at most
//! the limit. No kernel here, so it is tested against a local server alone.

use std::net::{IpAddr, SocketAddr};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use weft_model::net::{Grant, NetCaps, Scheme};

use crate::pool::{Conn, Key, Pool};
use crate::tls::TlsClient;

/// Where a request goes, as the grants see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// The host as written (lowercase, IPv6 without brackets).
    pub host: String,
    /// The port (the scheme's default when none is written).
    pub port: u16,
    /// The path (no query).
    pub path: String,
}

impl Target {
    /// Read a request URI. A missing scheme or host, or another scheme, is
    /// an error.
    pub fn of(uri: &http::Uri) -> Result<Target, String> {
        let scheme = uri
            .scheme_str()
            .and_then(Scheme::parse)
            .ok_or_else(|| format!("`{uri}`: scheme must be http or https"))?;
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("`{uri}` names no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Ok(Target {
            scheme,
            host: host.trim_end_matches('.').to_ascii_lowercase(),
            port: uri.port_u16().unwrap_or(scheme.default_port()),
            path: uri.path().to_string(),
        })
    }

    /// The URL as recorded: no query, no fragment, no credentials.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority(), self.path)
    }

    /// `host[:port]` as a `Host` header carries it (port only when not the
    /// scheme's default).
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The grants of `caps` that allow it.
    pub fn grants(&self, caps: &NetCaps) -> Vec<Grant> {
        caps.matching(self.scheme, &self.host, self.port)
    }
}

/// How a request ended, as recorded (`outcome`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Refused by the address check or a redirect check.
    #[error("refused: {0}")]
    Refused(String),
    /// Over `[net] timeout_ms`.
    #[error("timeout after {0} ms")]
    Timeout(u64),
    /// The response body went over `[net] max_response_bytes`.
    #[error("response larger than {0} bytes")]
    TooLarge(u64),
    /// The TLS handshake failed on the certificate (untrusted, wrong name,
    /// expired).
    #[error("TLS: {0}")]
    Certificate(String),
    /// The TLS handshake failed otherwise (protocol, alert).
    #[error("TLS: {0}")]
    Tls(String),
    /// Could not resolve, connect, or speak HTTP.
    #[error("failed: {0}")]
    Failed(String),
}

impl Failure {
    /// The recorded outcome word.
    pub fn outcome(&self) -> &'static str {
        match self {
            Failure::Refused(_) => "refused",
            Failure::Timeout(_) => "timeout",
            Failure::TooLarge(_) => "too_large",
            Failure::Certificate(_) | Failure::Tls(_) => "tls",
            Failure::Failed(_) => "failed",
        }
    }
}

/// Resolve `t` once and pick the first address some grant in `grants` may
/// reach; the caller connects to exactly that address.
pub async fn resolve(t: &Target, grants: &[Grant]) -> Result<SocketAddr, Failure> {
    let addrs: Vec<SocketAddr> = match t.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, t.port)],
        Err(_) => tokio::net::lookup_host((t.host.as_str(), t.port))
            .await
            .map_err(|e| Failure::Failed(format!("cannot resolve `{}`: {e}", t.host)))?
            .collect(),
    };
    addrs
        .iter()
        .find(|a| grants.iter().any(|g| g.reaches(a.ip())))
        .copied()
        .ok_or_else(|| {
            let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            Failure::Refused(format!(
                "`{}` resolves to {} (not public), and no grant names that address",
                t.host,
                list.join(", ")
            ))
        })
}

/// A response read in full (bounded).
#[derive(Debug)]
pub struct Fetched {
    /// Status, headers.
    pub parts: http::response::Parts,
    /// The body.
    pub body: Bytes,
}

/// Send `req` to `t` at `addr` (TLS with `tls` for `https`), reading at
/// most `limit` body bytes; `req`'s URI is sent in origin form. With `pool`,
/// an idle connection opened for this very `t` and `addr` is reused, and the
/// connection is kept after a response read in full.
pub async fn send<B>(
    addr: SocketAddr,
    t: &Target,
    tls: Option<&TlsClient>,
    pool: Option<&Pool<B>>,
    mut req: http::Request<B>,
    limit: u64,
) -> Result<Fetched, Failure>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let origin = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    *req.uri_mut() = origin
        .parse()
        .map_err(|e| Failure::Failed(format!("bad path: {e}")))?;
    // HTTP/1.1 requires `Host`, and virtual hosts route on it: always the
    // checked host, so a guest cannot pick another site behind an allowed IP.
    let host = http::HeaderValue::from_str(&t.authority())
        .map_err(|e| Failure::Failed(format!("bad host `{}`: {e}", t.host)))?;
    req.headers_mut().insert(http::header::HOST, host);
    let key = Key::new(t, addr);
    if let Some(pool) = pool {
        while let Some(mut conn) = pool.take(&key) {
            if conn.sender.ready().await.is_err() {
                continue;
            }
            match conn.sender.try_send_request(req).await {
                Ok(resp) => return read(resp, conn, limit, Some((pool, key))).await,
                // Closed before the request went out: the next one, or a new one.
                Err(mut e) => match e.take_message() {
                    Some(r) => req = r,
                    None => {
                        let e = e.into_error();
                        return Err(Failure::Failed(format!("request to {addr}: {e}")));
                    }
                },
            }
        }
    }
    let mut conn = connect(addr, t, tls).await?;
    let resp = conn
        .sender
        .send_request(req)
        .await
        .map_err(|e| Failure::Failed(format!("request to {addr}: {e}")))?;
    read(resp, conn, limit, pool.map(|p| (p, key))).await
}

/// A new connection to exactly `addr`: TCP, then for `https` the TLS
/// handshake, then HTTP/1.1.
async fn connect<B>(
    addr: SocketAddr,
    t: &Target,
    tls: Option<&TlsClient>,
) -> Result<Conn<B>, Failure>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| Failure::Failed(format!("cannot connect to {addr}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    match t.scheme {
        Scheme::Http => handshake(TokioIo::new(tcp), addr).await,
        Scheme::Https => {
            let tls = tls.ok_or_else(|| {
                Failure::Tls("no TLS client (the net unit was not initialised)".into())
            })?;
            let stream = tls.connect(&t.host, tcp).await?;
            handshake(TokioIo::new(stream), addr).await
        }
    }
}

async fn handshake<IO, B>(io: IO, addr: SocketAddr) -> Result<Conn<B>, Failure>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| Failure::Failed(format!("HTTP handshake with {addr}: {e}")))?;
    let task = tokio::spawn(async move {
        let _closed_or_broken = conn.await;
    });
    Ok(Conn::new(sender, task.abort_handle()))
}

/// Read `resp`'s body (at most `limit` bytes), then keep `conn` in the pool
/// if there is one. Over the limit, `conn` is dropped (closed).
async fn read<B>(
    resp: http::Response<hyper::body::Incoming>,
    conn: Conn<B>,
    limit: u64,
    keep: Option<(&Pool<B>, Key)>,
) -> Result<Fetched, Failure> {
    let (parts, mut body) = resp.into_parts();
    if let Some(n) = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if n > limit {
            return Err(Failure::TooLarge(limit));
        }
    }
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Failure::Failed(format!("reading the response: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if (buf.len() + data.len()) as u64 > limit {
                return Err(Failure::TooLarge(limit));
            }
            buf.extend_from_slice(&data);
        }
    }
    if let Some((pool, key)) = keep {
        pool.put(key, conn);
    }
    Ok(Fetched {
        parts,
        body: buf.freeze(),
    })
}

/// For a 3xx response with a `Location`: the target it points to,
/// resolved against `from`.
pub fn redirect_target(from: &Target, parts: &http::response::Parts) -> Option<Target> {
    if !parts.status.is_redirection() {
        return None;
    }
    let loc = parts.headers.get(http::header::LOCATION)?.to_str().ok()?;
    let uri: http::Uri = loc.parse().ok()?;
    if uri.scheme().is_some() {
        return Target::of(&uri).ok();
    }
    // Relative: same scheme, host and port.
    Some(Target {
        path: uri.path().to_string(),
        ..from.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(list: &[&str]) -> NetCaps {
        NetCaps {
            outbound: list.iter().map(|s| s.to_string()).collect(),
            secrets: vec![],
        }
    }

    #[test]
    fn targets_and_urls() {
        let t = Target::of(&"http://Example.com:8080/a/b?key=secret".parse().unwrap()).unwrap();
        assert_eq!(t.url(), "http://example.com:8080/a/b");
        let t = Target::of(&"https://[::1]/x".parse().unwrap()).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 443));
        assert_eq!(t.url(), "https://[::1]/x");
        assert!(Target::of(&"/relative".parse().unwrap()).is_err());
        assert!(Target::of(&"ftp://x/".parse().unwrap()).is_err());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_unless_named() {
        let t = Target::of(&"http://localhost:9/".parse().unwrap()).unwrap();
        let wild = caps(&["http://*:*"]);
        let e = resolve(&t, &t.grants(&wild)).await.unwrap_err();
        assert_eq!(e.outcome(), "refused", "{e}");
        let named = caps(&["http://localhost:*"]);
        let a = resolve(&t, &t.grants(&named)).await.unwrap();
        assert!(a.ip().is_loopback());
        let lit = Target::of(&"http://127.0.0.1:9/".parse().unwrap()).unwrap();
        assert!(resolve(&lit, &lit.grants(&caps(&["http://127.0.0.1:*"])))
            .await
            .is_ok());
        assert!(resolve(&lit, &lit.grants(&wild)).await.is_err());
    }
}
