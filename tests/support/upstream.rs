//! HTTP for the network tests: a small HTTP/1.1 server on 127.0.0.1 that
//! records every request and answers by path ([`Upstream`]), and a one-shot
//! client ([`request`]).
//!
//! | path | answer |
//! |---|---|
//! | `/status` | 200 `upstream ok` |
//! | `/slow` | 200 `late`, after 3 s |
//! | `/huge` | 200, 1 MiB with no length |
//! | `/redirect` | 302 to `http://10.9.9.9/x` (outside any grant) |
//! | `/api/boom` | 500 `it broke` |
//! | `/api…` | 200, `{"path", "got"}` (the body echoed) as JSON |
//! | anything else | 404 |

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The request target (path and query).
    pub path: String,
    /// Header names in lower case, with their values.
    pub headers: Vec<(String, String)>,
    /// The body, as text.
    pub body: String,
}

impl Seen {
    /// The value of header `name` (lower case), or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(h, _)| h == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }
}

/// A running server: its port and what it has seen so far.
pub struct Upstream {
    /// Its port on 127.0.0.1.
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    /// Start one (it runs until the test process ends).
    pub fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind the upstream server");
        let port = l.local_addr().expect("its address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { continue };
                let log = log.clone();
                std::thread::spawn(move || serve(c, &log));
            }
        });
        Upstream { port, seen }
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn serve(mut c: TcpStream, log: &Mutex<Vec<Seen>>) {
    let Some(seen) = read_request(&c) else { return };
    let path = seen.path.clone();
    let body = seen.body.clone();
    log.lock().unwrap_or_else(|p| p.into_inner()).push(seen);
    let reply = |c: &mut TcpStream, status: &str, extra: &str, body: &str| {
        // The client may have gone (a timeout test): nothing to report.
        let _ = write!(
            c,
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
            body.len()
        );
    };
    match path.split('?').next().unwrap_or("/") {
        "/status" => reply(&mut c, "200 OK", "", "upstream ok"),
        "/slow" => {
            std::thread::sleep(Duration::from_secs(3));
            reply(&mut c, "200 OK", "", "late");
        }
        "/huge" => {
            let _ = write!(c, "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n");
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..16 {
                if c.write_all(&chunk).is_err() {
                    break;
                }
            }
        }
        "/redirect" => reply(&mut c, "302 Found", "location: http://10.9.9.9/x\r\n", ""),
        "/api/boom" => reply(&mut c, "500 Internal Server Error", "", "it broke"),
        p if p.starts_with("/api") => {
            let out = serde_json::json!({ "path": path, "got": body }).to_string();
            reply(&mut c, "200 OK", "content-type: application/json\r\n", &out);
        }
        _ => reply(&mut c, "404 Not Found", "", "no"),
    }
}

fn read_request(c: &TcpStream) -> Option<Seen> {
    let mut r = BufReader::new(c.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if k == "content-length" {
                len = v.parse().ok()?;
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Seen {
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// One HTTP/1.1 request to `addr` (with `Authorization: Bearer token` when
/// given); the status and the body.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut c = TcpStream::connect(addr).expect("connect to the kernel's routes");
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send the request");
    let mut out = String::new();
    // A server that closes early still gave what it gave.
    let _ = c.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
