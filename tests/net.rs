//! The `net` unit through the real `weaver` binary, against HTTP servers
//! this test starts on 127.0.0.1: outbound requests allowed, refused
//! (allow-list, redirect, DNS answer), cut by the timeout and the size
//! limit, all on the chain; `https` to a TLS server with a test CA
//! (trusted through `[net] ca_certs`, a leaf for another name refused); a
//! webhook route reaching an agent (token, body limit, timeout, a stopped
//! app); secrets never in the chain export.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use weft_e2e::upstream::{request as http, Upstream};
use weft_e2e::{guest, start_kernel, weaver, weaver_at as w, Run};

fn ok(state: &Path, args: &[&str]) -> Run {
    let r = w(state, args);
    assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
    r
}

/// `weft.toml` with tight `[net]` limits.
fn config(dir: &Path) -> PathBuf {
    let p = dir.join("weft.toml");
    std::fs::write(
        &p,
        "[net]\ntimeout_ms = 1000\nmax_response_bytes = 100000\nmax_requests_per_message = 8\n",
    )
    .unwrap();
    p
}

fn chain(state: &Path) -> Vec<serde_json::Value> {
    ok(state, &["chain", "export"])
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn kinds<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

fn fetch(state: &Path, url: &str) -> serde_json::Value {
    let msg = serde_json::json!({ "fetch": url }).to_string();
    ok(
        state,
        &["agent", "send", "f", &msg, "--json", "--wait-ms", "10000"],
    )
    .json()
}

#[test]
fn outbound_requests_are_allowed_refused_limited_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("state");
    let up = Upstream::start();
    let port = up.port;
    let other = Upstream::start().port;
    let cfg = config(dir.path());
    let _k = start_kernel(&s, &["--config", cfg.to_str().unwrap()]);
    let caps = dir.path().join("caps.toml");
    std::fs::write(
        &caps,
        format!("ipc = \"all\"\n[network]\noutbound = [\"http://127.0.0.1:{port}\", \"http://*:{port}\"]\n"),
    )
    .unwrap();
    let fetcher = guest("fetcher");
    ok(
        &s,
        &[
            "agent",
            "spawn",
            "f",
            fetcher.to_str().unwrap(),
            "--caps",
            caps.to_str().unwrap(),
        ],
    );

    // Allowed: the answer comes back; the chain has the URL without its query.
    let r = fetch(
        &s,
        &format!("http://127.0.0.1:{port}/status?key=hidden-query"),
    );
    assert_eq!(
        (r["status"].as_u64(), r["body"].as_str()),
        (Some(200), Some("upstream ok")),
        "{r}"
    );
    assert!(up
        .seen()
        .iter()
        .any(|r| r.path == "/status?key=hidden-query"));

    // Outside the allow-list: refused by the gate, nothing sent.
    let r = fetch(&s, &format!("http://127.0.0.1:{other}/status"));
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("outside agent `f`'s network.outbound"),
        "{r}"
    );

    // `localhost` matches only the wildcard grant, which may not reach a
    // loopback address: refused after resolving, before connecting.
    let before = up.seen().len();
    let r = fetch(&s, &format!("http://localhost:{port}/status"));
    assert!(r["error"].as_str().unwrap().contains("not public"), "{r}");
    assert_eq!(
        up.seen().len(),
        before,
        "a refused address was connected to"
    );

    // A redirect to a host outside the grants.
    let r = fetch(&s, &format!("http://127.0.0.1:{port}/redirect"));
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("redirect to http://10.9.9.9/x"),
        "{r}"
    );

    // Limits.
    let r = fetch(&s, &format!("http://127.0.0.1:{port}/slow"));
    assert!(r["error"].as_str().unwrap().contains("Timeout"), "{r}");
    let r = fetch(&s, &format!("http://127.0.0.1:{port}/huge"));
    assert!(r["error"].as_str().unwrap().contains("BodySize"), "{r}");

    let events = chain(&s);
    let http: Vec<_> = kinds(&events, "net.http")
        .into_iter()
        .map(|e| &e["payload"])
        .collect();
    let outcomes: Vec<&str> = http
        .iter()
        .map(|p| p["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["ok", "refused", "refused", "timeout", "too_large"],
        "{http:?}"
    );
    assert_eq!(http[0]["url"], format!("http://127.0.0.1:{port}/status"));
    assert_eq!(
        (http[0]["status"].as_u64(), http[0]["bytes"].as_u64()),
        (Some(200), Some(11))
    );
    let text = ok(&s, &["chain", "export"]).stdout;
    assert!(
        !text.contains("hidden-query"),
        "a query string reached the chain"
    );
    assert!(kinds(&events, "gate.deny")
        .iter()
        .any(|e| e["payload"]["action"] == "net.http.127.0.0.1"));
    let logs = ok(&s, &["kernel", "logs"]).stdout;
    assert!(
        logs.contains(&format!("net: f GET http://127.0.0.1:{port}/status -> 200")),
        "{logs}"
    );
}

/// `apps/webhook` pointed at `port`, with a second route whose agent waits
/// on `/slow` longer than the route allows.
fn webhook_app(dir: &Path, port: u16) -> PathBuf {
    let app = dir.join("webhook");
    std::fs::create_dir_all(app.join("components")).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../apps/webhook/weftapp.toml");
    let mut text = std::fs::read_to_string(src)
        .unwrap()
        .replace("8099", &port.to_string());
    text = text.replace(
        "[environment]",
        &format!(
            "[[agents]]\nid = \"slowpoke\"\ncomponent = \"components/fetcher.wasm\"\nconfig = {{ upstream = \"http://127.0.0.1:{port}/slow\" }}\ncapabilities = {{ network = {{ outbound = [\"http://127.0.0.1:{port}\"] }} }}\n\n[[routes]]\npath = \"/hooks/slow\"\nagent = \"slowpoke\"\ntimeout_ms = 300\n\n[environment]"
        ),
    );
    std::fs::write(app.join("weftapp.toml"), text).unwrap();
    std::fs::copy(guest("fetcher"), app.join("components/fetcher.wasm")).unwrap();
    std::fs::copy(guest("hello_http"), app.join("components/hello_http.wasm")).unwrap();
    app
}

/// Sign and pack `app`; returns the bundle and the public key.
fn pack(dir: &Path, app: &Path) -> (PathBuf, String) {
    let key = dir.join("key.hex");
    std::fs::write(&key, format!("{:064x}", 77)).unwrap();
    let out = app.with_extension("weftapp");
    let r = weaver(
        &[
            "app",
            "pack",
            app.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let public = r
        .stdout
        .split("signed by ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    (out, public)
}

#[test]
fn a_webhook_reaches_its_agent_and_secrets_stay_off_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("state");
    let up = Upstream::start();
    let port = up.port;
    let cfg = config(dir.path());
    let _k = start_kernel(
        &s,
        &["--config", cfg.to_str().unwrap(), "--http", "127.0.0.1:0"],
    );
    let (bundle, public) = pack(dir.path(), &webhook_app(dir.path(), port));
    ok(&s, &["trust", "add", "dev", &public]);
    ok(&s, &["app", "install", bundle.to_str().unwrap()]);
    for (name, value) in [
        ("API_KEY", "sk-very-secret-4711\n"),
        ("HOOK_TOKEN", "hook-token-0815"),
    ] {
        let st = s.to_str().unwrap();
        let r = weaver(
            &["--state", st, "secret", "set", "webhook", name],
            value.as_bytes(),
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    assert_eq!(
        ok(&s, &["secret", "ls", "webhook"]).stdout,
        "API_KEY\nHOOK_TOKEN\n"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(s.join("secrets/webhook/API_KEY"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    ok(&s, &["app", "start", "webhook"]);
    let ls = ok(&s, &["net", "ls", "--json"]).json();
    let addr = ls["listen"].as_str().unwrap().to_string();
    let app = &ls["apps"][0];
    // Sorted by path: the example's handler component, then the webhook.
    assert_eq!(app["routes"][0]["component"], "components/hello_http.wasm");
    assert_eq!(app["routes"][1]["path"], "/hooks/github");
    assert!(
        app["agents"]
            .to_string()
            .contains(&format!("http://127.0.0.1:{port}")),
        "{ls}"
    );

    // The webhook reaches the agent, which calls upstream with the secret.
    let (status, body) = http(
        &addr,
        "POST",
        "/hooks/github?x=1",
        Some("hook-token-0815"),
        "{\"a\":1}",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        "POST /hooks/github got 7 bytes; upstream said 200: upstream ok"
    );
    assert!(up
        .seen()
        .iter()
        .any(|r| r.path == "/status" && r.header("authorization") == "Bearer sk-very-secret-4711"));

    assert_eq!(http(&addr, "POST", "/hooks/github", None, "").0, 401);
    assert_eq!(
        http(&addr, "POST", "/hooks/github", Some("wrong"), "").0,
        401
    );
    assert_eq!(http(&addr, "GET", "/nowhere", None, "").0, 404);
    let big = "x".repeat(70_000);
    assert_eq!(
        http(
            &addr,
            "POST",
            "/hooks/github",
            Some("hook-token-0815"),
            &big
        )
        .0,
        413
    );
    assert_eq!(http(&addr, "POST", "/hooks/slow", None, "").0, 504);

    ok(&s, &["app", "stop", "webhook"]);
    let (status, body) = http(&addr, "POST", "/hooks/github", Some("hook-token-0815"), "");
    assert_eq!(status, 503, "{body}");

    let text = ok(&s, &["chain", "export"]).stdout;
    for secret in ["sk-very-secret-4711", "hook-token-0815"] {
        assert!(!text.contains(secret), "secret `{secret}` is on the chain");
    }
    let events = chain(&s);
    let statuses: Vec<u64> = kinds(&events, "net.ingress")
        .iter()
        .map(|e| e["payload"]["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 401, 401, 413, 504, 503]);
    assert_eq!(kinds(&events, "secret.set").len(), 2);
    ok(&s, &["secret", "rm", "webhook", "API_KEY"]);
    assert_eq!(ok(&s, &["secret", "ls", "webhook"]).stdout, "HOOK_TOKEN\n");
}

type Leaf = (
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
);

/// A test CA (as PEM) and one leaf it signed for each list of names.
fn pki(leaves: &[&[&str]]) -> (String, Vec<Leaf>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, "Weft e2e CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = p.self_signed(&ca_key).unwrap();
    let leaves = leaves
        .iter()
        .map(|names| {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            let key = KeyPair::generate().unwrap();
            let leaf = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &ca, &ca_key)
                .unwrap();
            let key = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
            (leaf.der().clone(), key.into())
        })
        .collect();
    (ca.pem(), leaves)
}

/// An HTTPS/1.1 server with `cert`: every request gets `secure ok, host
/// <its Host header>`.
fn tls_upstream(
    cert: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let config = Arc::new(config);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut s = rustls::StreamOwned::new(conn, c);
                let mut buf = Vec::new();
                let mut b = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&b[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let host = head
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("host:"))
                    .map(|l| l[5..].trim().to_string())
                    .unwrap_or_default();
                let body = format!("secure ok, host {host}");
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                s.conn.send_close_notify();
                let _ = s.flush();
            });
        }
    });
    port
}

#[test]
fn https_outbound_is_verified_allow_listed_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("state");
    // Two leaves of one CA: one for this host, one for another name.
    let (ca, mut leaves) = pki(&[&["localhost", "127.0.0.1"], &["other.example"]]);
    let (cert, key) = leaves.remove(0);
    let good = tls_upstream(cert, key);
    let (cert, key) = leaves.remove(0);
    let misnamed = tls_upstream(cert, key);
    std::fs::write(dir.path().join("ca.pem"), &ca).unwrap();

    // A broken ca_certs file is a boot error naming it.
    std::fs::write(dir.path().join("bad.pem"), "no certificate here\n").unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[net]\nca_certs = [\"bad.pem\"]\n").unwrap();
    let r = weaver(
        &[
            "--state",
            dir.path().join("bad-state").to_str().unwrap(),
            "run",
            "--config",
            bad.to_str().unwrap(),
        ],
        b"",
    );
    assert_ne!(r.code, 0, "booted with a bad CA file");
    assert!(r.stderr.contains("bad.pem"), "{}", r.stderr);

    let cfg = dir.path().join("weft.toml");
    std::fs::write(&cfg, "[net]\ntimeout_ms = 5000\nca_certs = [\"ca.pem\"]\n").unwrap();
    let _k = start_kernel(&s, &["--config", cfg.to_str().unwrap()]);
    let caps = dir.path().join("caps.toml");
    std::fs::write(
        &caps,
        format!("ipc = \"all\"\n[network]\noutbound = [\"https://127.0.0.1:{good}\", \"https://127.0.0.1:{misnamed}\", \"https://localhost:{good}\"]\n"),
    )
    .unwrap();
    let fetcher = guest("fetcher");
    let spawn = [
        "agent",
        "spawn",
        "f",
        fetcher.to_str().unwrap(),
        "--caps",
        caps.to_str().unwrap(),
    ];
    ok(&s, &spawn);

    // Trusted through ca_certs, by IP and by name; Host is the checked host.
    for host in ["127.0.0.1", "localhost"] {
        let r = fetch(&s, &format!("https://{host}:{good}/status?key=hidden"));
        let want = format!("secure ok, host {host}:{good}");
        assert_eq!(
            (r["status"].as_u64(), r["body"].as_str()),
            (Some(200), Some(want.as_str())),
            "{r}"
        );
    }
    // The right CA, the wrong name.
    let r = fetch(&s, &format!("https://127.0.0.1:{misnamed}/status"));
    assert!(
        r["error"].as_str().unwrap().contains("TlsCertificateError"),
        "{r}"
    );
    // The grants still decide: plain http to the same port, another port.
    for url in [
        format!("http://127.0.0.1:{good}/status"),
        format!("https://127.0.0.1:{}/status", good.wrapping_add(1)),
    ] {
        let r = fetch(&s, &url);
        assert!(
            r["error"].as_str().unwrap().contains("outside agent `f`'s"),
            "{url}: {r}"
        );
    }

    let events = chain(&s);
    let http: Vec<_> = kinds(&events, "net.http")
        .into_iter()
        .map(|e| &e["payload"])
        .collect();
    let seen: Vec<(&str, &str)> = http
        .iter()
        .map(|p| (p["url"].as_str().unwrap(), p["outcome"].as_str().unwrap()))
        .collect();
    let (a, b, c) = (
        format!("https://127.0.0.1:{good}/status"),
        format!("https://localhost:{good}/status"),
        format!("https://127.0.0.1:{misnamed}/status"),
    );
    assert_eq!(seen, [(&*a, "ok"), (&*b, "ok"), (&*c, "tls")], "{http:?}");
    assert_eq!(http[0]["status"], 200);
    assert!(
        http[2]["error"]
            .as_str()
            .unwrap()
            .contains("hostname mismatch"),
        "{:?}",
        http[2]
    );
    assert!(!ok(&s, &["chain", "export"]).stdout.contains("hidden"));
    let denied = kinds(&events, "gate.deny")
        .iter()
        .filter(|e| e["payload"]["action"] == "net.http.127.0.0.1")
        .count();
    assert_eq!(denied, 2, "the two requests outside the grants");
}
