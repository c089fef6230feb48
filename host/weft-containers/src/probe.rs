//! Health probes and service calls: plain async functions a health driver or
//! the kernel's service router can call. HTTP is HTTP/1.1 over one fresh
//! TCP connection per call (hyper's connection API, already in the tree via
//! bollard), with a bound on the response size.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Body;
use hyper::client::conn::http1;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::container::ContainerId;
use crate::engine::Engine;
use crate::error::ProbeError;

/// Largest response body [`post_json`] and [`probe_http_get`] accept.
pub const MAX_RESPONSE: usize = 4 * 1024 * 1024;

/// How long a freshly accepted connection is watched for an immediate close.
/// Docker's userland proxy accepts on the published port even when nothing
/// listens in the container, then closes at once; a real server does not.
pub const SETTLE: Duration = Duration::from_millis(15);

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Bytes,
}

/// Connects to `addr`; healthy when the connection is accepted and not
/// closed at once (see [`SETTLE`]). Returns the time taken.
pub async fn probe_tcp(addr: SocketAddr, timeout: Duration) -> Result<Duration, ProbeError> {
    probe_tcp_with_settle(addr, timeout, SETTLE).await
}

/// [`probe_tcp`] watching for an immediate close for `settle` (at most a
/// quarter of `timeout`); `Duration::ZERO` only connects, which a published
/// port behind Docker's userland proxy always accepts.
pub async fn probe_tcp_with_settle(
    addr: SocketAddr,
    timeout: Duration,
    settle: Duration,
) -> Result<Duration, ProbeError> {
    let t0 = Instant::now();
    let run = async {
        let s = TcpStream::connect(addr)
            .await
            .map_err(|e| ProbeError::Connect { addr, source: e })?;
        let settle = settle.min(timeout / 4);
        if settle.is_zero() {
            return Ok(());
        }
        let mut b = [0u8; 1];
        match tokio::time::timeout(settle, s.peek(&mut b)).await {
            // Nothing to read yet, or the server spoke first: alive.
            Err(_) | Ok(Ok(1..)) => Ok(()),
            Ok(Ok(0)) | Ok(Err(_)) => Err(ProbeError::ClosedAtOnce { addr }),
        }
    };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| ProbeError::Timeout {
            target: addr.to_string(),
            after: timeout,
        })??;
    Ok(t0.elapsed())
}

/// `GET url`; healthy when the status is `expected_status`. Only `http://`
/// URLs (`http://127.0.0.1:8080/healthz`); host names are resolved.
pub async fn probe_http_get(
    url: &str,
    expected_status: u16,
    timeout: Duration,
) -> Result<HttpReply, ProbeError> {
    let run = async {
        let (host, port, path) = parse_http_url(url)?;
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| ProbeError::Resolve {
                host: host.clone(),
                reason: e.to_string(),
            })?
            .next()
            .ok_or_else(|| ProbeError::Resolve {
                host: host.clone(),
                reason: "no addresses".into(),
            })?;
        let req = hyper::Request::get(path)
            .header(HOST, authority(&host, port))
            .header(CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .map_err(|e| ProbeError::Http {
                addr,
                message: e.to_string(),
            })?;
        exchange(addr, req, MAX_RESPONSE).await
    };
    let reply = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| ProbeError::Timeout {
            target: url.to_string(),
            after: timeout,
        })??;
    if reply.status != expected_status {
        return Err(ProbeError::Status {
            expected: expected_status,
            got: reply.status,
        });
    }
    Ok(reply)
}

/// Runs `cmd` in the container; healthy when it exits 0.
pub async fn probe_exec(
    engine: &Engine,
    id: &ContainerId,
    cmd: &[&str],
    timeout: Duration,
) -> Result<(), ProbeError> {
    let out = engine.exec(id, cmd, timeout).await?;
    if out.exit_code == 0 {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text.truncate(text.floor_char_boundary(4096));
    Err(ProbeError::ExitCode {
        code: out.exit_code,
        output: text.trim().to_string(),
    })
}

/// Delivers a service call: `POST path` with a JSON body to `addr` (the
/// container's published port). Any status is returned; the body is
/// bounded by [`MAX_RESPONSE`].
pub async fn post_json(
    addr: SocketAddr,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<HttpReply, ProbeError> {
    post_json_limited(addr, path, body, timeout, MAX_RESPONSE).await
}

/// [`post_json`] with a response limit of `max_response` bytes.
pub async fn post_json_limited(
    addr: SocketAddr,
    path: &str,
    body: &[u8],
    timeout: Duration,
    max_response: usize,
) -> Result<HttpReply, ProbeError> {
    post_json_with(
        addr,
        path,
        Bytes::copy_from_slice(body),
        &[],
        timeout,
        max_response,
    )
    .await
}

/// [`post_json_limited`] with extra request headers (a service call's
/// `Weft-Method`, `Weft-Sender`).
pub async fn post_json_with(
    addr: SocketAddr,
    path: &str,
    body: Bytes,
    headers: &[(&str, HeaderValue)],
    timeout: Duration,
    max_response: usize,
) -> Result<HttpReply, ProbeError> {
    check_path(path, path)?;
    let mut req = hyper::Request::post(path)
        .header(HOST, addr.to_string())
        .header(CONTENT_TYPE, "application/json")
        .header(CONNECTION, "close");
    for (k, v) in headers {
        req = req.header(*k, v.clone());
    }
    let req = req.body(Full::new(body)).map_err(|e| ProbeError::Http {
        addr,
        message: e.to_string(),
    })?;
    tokio::time::timeout(timeout, exchange(addr, req, max_response))
        .await
        .map_err(|_| ProbeError::Timeout {
            target: format!("POST http://{addr}{path}"),
            after: timeout,
        })?
}

async fn exchange<B>(
    addr: SocketAddr,
    req: hyper::Request<B>,
    limit: usize,
) -> Result<HttpReply, ProbeError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let http = |e: hyper::Error| ProbeError::Http {
        addr,
        message: e.to_string(),
    };
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| ProbeError::Connect { addr, source: e })?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.map_err(http)?;
    // The connection is driven beside the request; aborted with it on
    // timeout (the guard drops).
    let driver = AbortOnDrop(tokio::spawn(conn));
    let resp = sender.send_request(req).await.map_err(http)?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(http)?;
        if let Some(d) = frame.data_ref() {
            if buf.len() + d.len() > limit {
                return Err(ProbeError::TooLarge { addr, limit });
            }
            buf.extend_from_slice(d);
        }
    }
    drop(driver);
    Ok(HttpReply {
        status,
        body: Bytes::from(buf),
    })
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn check_path(url: &str, path: &str) -> Result<(), ProbeError> {
    if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ProbeError::BadUrl {
            url: url.to_string(),
            reason: "the path must start with `/` and hold no spaces or control characters",
        });
    }
    Ok(())
}

/// `http://host[:port][/path]` into its parts.
fn parse_http_url(url: &str) -> Result<(String, u16, String), ProbeError> {
    let bad = |reason| ProbeError::BadUrl {
        url: url.to_string(),
        reason,
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("only http:// URLs are probed"))?;
    let (auth, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if auth.contains('@') {
        return Err(bad("credentials in URLs are not supported"));
    }
    let (host, port) = if let Some(r) = auth.strip_prefix('[') {
        let (h, after) = r.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(bad("expected `:port` after `]`")),
        }
    } else {
        match auth.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (auth, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| bad("bad port"))?,
        None => 80,
    };
    check_path(url, path)?;
    Ok((host.to_string(), port, path.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_http_url("http://127.0.0.1:8080/healthz?x=1").unwrap(),
            ("127.0.0.1".into(), 8080, "/healthz?x=1".into())
        );
        assert_eq!(
            parse_http_url("http://localhost").unwrap(),
            ("localhost".into(), 80, "/".into())
        );
        assert_eq!(
            parse_http_url("http://[::1]:81/a").unwrap(),
            ("::1".into(), 81, "/a".into())
        );
        for bad in [
            "https://x/",
            "http://:80/",
            "http://a:0/",
            "http://u@a/",
            "http://a/b c",
            "ftp://a",
        ] {
            assert!(parse_http_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn tcp_probe_sees_closed_at_once() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        // Accept and close at once, like docker-proxy with nothing behind it.
        let t = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            drop(s);
            l
        });
        let e = probe_tcp(addr, Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(e, ProbeError::ClosedAtOnce { .. }), "{e}");
        let l = t.await.unwrap();
        let t = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(s);
        });
        probe_tcp(addr, Duration::from_secs(1)).await.unwrap();
        t.await.unwrap();
        drop(tokio::net::TcpListener::bind(addr).await); // free again: refused
        assert!(matches!(
            probe_tcp(addr, Duration::from_secs(1)).await.unwrap_err(),
            ProbeError::Connect { .. }
        ));
    }

    #[tokio::test]
    async fn http_round_trip_and_limit() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut req = Vec::new();
                    let mut b = [0u8; 4096];
                    // Read headers and a body of Content-Length bytes.
                    loop {
                        let n = s.read(&mut b).await.unwrap();
                        req.extend_from_slice(&b[..n]);
                        let text = String::from_utf8_lossy(&req).to_string();
                        if let Some(i) = text.find("\r\n\r\n") {
                            let len = text
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length: ")
                                        .map(|v| v.trim().parse::<usize>().unwrap())
                                })
                                .unwrap_or(0);
                            if req.len() >= i + 4 + len || n == 0 {
                                let body = req[i + 4..].to_vec();
                                let big = text.contains(" /big ");
                                let payload = if big { vec![b'x'; 5000] } else { body };
                                let head = format!(
                                    "HTTP/1.1 201 Created\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                    payload.len()
                                );
                                s.write_all(head.as_bytes()).await.unwrap();
                                s.write_all(&payload).await.unwrap();
                                return;
                            }
                        }
                    }
                });
            }
        });
        let r = post_json(addr, "/call", br#"{"a":1}"#, Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!((r.status, &r.body[..]), (201, &br#"{"a":1}"#[..]));
        let url = format!("http://{addr}/ok");
        probe_http_get(&url, 201, Duration::from_secs(2))
            .await
            .unwrap();
        assert!(matches!(
            probe_http_get(&url, 200, Duration::from_secs(2))
                .await
                .unwrap_err(),
            ProbeError::Status {
                expected: 200,
                got: 201
            }
        ));
        let e = post_json_limited(addr, "/big", b"{}", Duration::from_secs(2), 100).await;
        assert!(
            matches!(e, Err(ProbeError::TooLarge { limit: 100, .. })),
            "{e:?}"
        );
    }
}
