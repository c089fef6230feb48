//! The dashboard, seen through a real browser: Debian's Chromium driven by
//! chromedriver (started here on a free 127.0.0.1 port, stopped by pid)
//! from fantoccini, against `weaver run --ui` on a fresh state dir.
//! Screenshots go to target/ui-screenshots/. Missing chromium or
//! chromedriver fails the test, naming what to install (`just test-deps`).

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use weft_e2e::{guest, start_kernel, weaver_at, KernelProc};

const DEFAULT_POLICY: &str =
    include_str!("../components/subsystems/governance/default-policy.toml");

/// A config whose policy sends every `ipc.publish` to a person.
fn config(dir: &Path) -> String {
    let policy = format!(
        "{DEFAULT_POLICY}\n[[rules]]\nid = \"ask-first\"\ndescription = \"publishing needs a person\"\n\
         branch = \"executive\"\nseverity = \"blocking\"\nactions = [\"ipc.publish\"]\n\
         verdict = \"escalate\"\n"
    );
    std::fs::write(dir.join("policy.toml"), policy).unwrap();
    std::fs::write(
        dir.join("talker.caps.toml"),
        "ipc = \"all\"\nchain_append = true\n",
    )
    .unwrap();
    let cfg = dir.join("weft.toml");
    std::fs::write(
        &cfg,
        "[governance]\npolicy = \"policy.toml\"\n[escalation]\nwait_ms = 100\n\
         [ui]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    cfg.to_str().unwrap().to_string()
}

/// A program on PATH (or in /usr/bin), or a failure naming the package.
fn need(program: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "`{program}` is missing: install Debian's `{package}` (just test-deps, or \
             apt-get install -y chromium chromium-driver); the dashboard test needs a real browser"
        )
    })
}

/// chromedriver on a free port; killed by its pid when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn chromedriver() -> Driver {
    let bin = need("chromedriver", "chromium-driver");
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let d = Driver { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen in 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    d
}

async fn browser(d: &Driver, profile: &Path) -> Client {
    let chromium = need("chromium", "chromium");
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1500,1300",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": chromium, "args": args },
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    // Plain HTTP to 127.0.0.1: no TLS stack needed.
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", d.port))
        .await
        .expect("open a Chromium session through chromedriver")
}

fn shots() -> PathBuf {
    let d = weft_testkit::repo_root().join("target/ui-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots().join(name), png).unwrap();
}

/// Poll the page until `f` finds what it wants (or fail after 20 s).
async fn until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "not seen in 20 s: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_of(c: &Client, css: &str) -> Option<String> {
    c.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

/// One plain HTTP/1.1 request; (status, body).
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = if method == "POST" {
        r#"{"reason":"forged"}"#
    } else {
        ""
    };
    if method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    // An SSE answer never ends: read what arrives within the timeout.
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).into_owned();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

fn spawn_talker(state: &Path, dir: &Path) {
    let probe = guest("probe");
    let caps = dir.join("talker.caps.toml");
    let r = weaver_at(
        state,
        &[
            "agent",
            "spawn",
            "talker",
            probe.to_str().unwrap(),
            "--config",
            r#"{"mode":"echo"}"#,
            "--caps",
            caps.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

/// `apps/hello`, signed with a fresh key, trusted, installed and started;
/// returns the signer's public key.
fn install_hello(state: &Path, dir: &Path) -> String {
    let key = dir.join("dev.key");
    let r = weft_e2e::weaver(&["key", "new", "-o", key.to_str().unwrap()], b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let public = r.stdout.trim().to_string();
    let bundle = dir.join("hello.weftapp");
    let app = weft_testkit::repo_root().join("apps/hello");
    let r = weft_e2e::weaver(
        &[
            "app",
            "pack",
            app.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "-o",
            bundle.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    for args in [
        vec!["trust", "add", "dev", public.as_str()],
        vec!["app", "install", bundle.to_str().unwrap()],
        vec!["app", "start", "hello"],
    ] {
        let r = weaver_at(state, &args);
        assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
    }
    public
}

fn publish(state: &Path) -> String {
    let r = weaver_at(
        state,
        &[
            "agent",
            "send",
            "talker",
            r#"{"op":"send","to":"topic:news","body":"hi"}"#,
            "--json",
        ],
    );
    r.stdout + &r.stderr
}

struct Booted {
    _k: KernelProc,
    url: String,
    addr: String,
    token: String,
}

fn boot(state: &Path, dir: &Path) -> Booted {
    let cfg = config(dir);
    let k = start_kernel(state, &["--config", &cfg]);
    let r = weaver_at(state, &["ui"]);
    assert_eq!(r.code, 0, "weaver ui: {}", r.stderr);
    let url = r.stdout.trim().to_string();
    let (base, token) = url.split_once("/?token=").expect("URL with a token");
    let addr = base.trim_start_matches("http://").to_string();
    // The token file holds the same token, owner-only.
    use std::os::unix::fs::PermissionsExt;
    let file = state.join("ui.token");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(token.len(), 64);
    Booted {
        _k: k,
        url: url.clone(),
        addr,
        token: token.to_string(),
    }
}

#[test]
fn without_the_token_every_data_endpoint_says_401_and_shows_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let b = boot(&state, dir.path());
    let wrong = "0".repeat(64);
    let bearer = format!("Bearer {}", b.token);
    let wrong_bearer = format!("Bearer {wrong}");
    let wrong_cookie = format!("weft_ui={wrong}");
    for path in ["/api/snapshot", "/api/events", "/api/chain/verify"] {
        for headers in [
            vec![],
            vec![("Authorization", wrong_bearer.as_str())],
            vec![("Cookie", wrong_cookie.as_str())],
        ] {
            let (status, body) = http(&b.addr, "GET", path, &headers);
            assert_eq!(status, 401, "{path} {headers:?}: {body}");
            assert!(
                body.contains("unauthorized") && !body.contains("processes"),
                "{path}: {body}"
            );
        }
        let (status, _) = http(&b.addr, "GET", &format!("{path}?token={wrong}"), &[]);
        assert_eq!(status, 401, "{path} with a wrong ?token=");
    }
    // A decision without a token, or with only the cookie, is refused.
    let cookie = format!("weft_ui={}", b.token);
    let (s, _) = http(&b.addr, "POST", "/api/escalations/1/approve", &[]);
    assert_eq!(s, 401);
    let (s, body) = http(
        &b.addr,
        "POST",
        "/api/escalations/1/approve",
        &[("Cookie", cookie.as_str())],
    );
    assert_eq!(s, 403, "{body}");
    // The token opens the data.
    let (s, body) = http(
        &b.addr,
        "GET",
        "/api/snapshot",
        &[("Authorization", bearer.as_str())],
    );
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["ps"].is_array() && v["chain"].is_array(), "{v}");
    // The page itself loads, without data in it.
    let (s, body) = http(&b.addr, "GET", "/", &[]);
    assert_eq!(s, 200);
    assert!(body.contains("<table id=\"processes\">"), "{body}");
    assert!(!body.contains(&b.token));
    // A non-loopback address is refused unless asked for.
    let other = dir.path().join("other");
    let r = weaver_at(&other, &["run", "--once", "--ui", "0.0.0.0:0"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("not a loopback address") && r.stderr.contains("--ui-public"),
        "{}",
        r.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_sees_agents_chain_events_and_approves_an_escalation() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let driver = chromedriver();
    let b = boot(&state, dir.path());
    let c = browser(&driver, &dir.path().join("profile")).await;

    // Without the token: the page loads and says so, with no data.
    c.goto(&format!("http://{}/", b.addr)).await.unwrap();
    let auth = until("the no-token notice", || async {
        text_of(&c, "#auth-status")
            .await
            .filter(|t| t.contains("no valid token"))
    })
    .await;
    assert!(auth.contains("no valid token"));
    assert!(c
        .find_all(Locator::Css("#processes tbody tr"))
        .await
        .unwrap()
        .is_empty());
    assert!(c
        .find_all(Locator::Css("#chain tbody tr[data-seq]"))
        .await
        .unwrap()
        .is_empty());
    shot(&c, "01-no-token.png").await;

    // With it: the kernel's state, and the token gone from the address bar.
    c.goto(&b.url).await.unwrap();
    until("token accepted", || async {
        text_of(&c, "#auth-status")
            .await
            .filter(|t| t == "token ok")
    })
    .await;
    until("the live feed", || async {
        text_of(&c, "#live").await.filter(|t| t == "live")
    })
    .await;
    assert!(!c.current_url().await.unwrap().as_str().contains("token"));
    // No reload from here on: a marker on the window must survive.
    c.execute("window.__stay = 42; return 1;", vec![])
        .await
        .unwrap();

    // An agent started with `weaver` appears in the process table.
    spawn_talker(&state, dir.path());
    let row = until("talker in the process table", || async {
        text_of(&c, "#processes tr[data-name=\"talker\"]").await
    })
    .await;
    assert!(row.contains("talker"), "{row}");
    shot(&c, "02-agent.png").await;

    // An app installed and started with `weaver`: its row (state, signer)
    // and its agent appear too.
    let public = install_hello(&state, dir.path());
    let app = until("hello running in the apps table", || async {
        text_of(&c, "#apps tr[data-name=\"hello\"]")
            .await
            .filter(|t| t.contains("running") || t.contains("Running"))
    })
    .await;
    assert!(app.contains("0.1.0"), "{app}");
    assert!(app.contains("dev") || app.contains(&public[..16]), "{app}");
    until("the app's agent in the process table", || async {
        text_of(&c, "#processes tr[data-name=\"hello.greeter\"]").await
    })
    .await;

    // A chain event appears live after an action: the publish opens an
    // escalation, and its events and its row show up without a reload.
    let before: u64 = c
        .find(Locator::Css("#chain tbody tr[data-seq]"))
        .await
        .unwrap()
        .attr("data-seq")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    let out = publish(&state);
    assert!(out.contains("pending: escalation #"), "{out}");
    until("a newer chain event", || async {
        let top = c
            .find(Locator::Css("#chain tbody tr[data-seq]"))
            .await
            .ok()?;
        let seq: u64 = top.attr("data-seq").await.ok()??.parse().ok()?;
        (seq > before).then_some(seq)
    })
    .await;
    assert!(!c
        .find_all(Locator::Css("#decisions tbody tr[data-seq]"))
        .await
        .unwrap()
        .is_empty());
    let esc = until("the escalation's approve button", || async {
        c.find(Locator::Css("#escalations tr[data-id] button.approve"))
            .await
            .ok()
    })
    .await;
    // A decision's receipt, on demand.
    c.find(Locator::Css("#decisions tbody tr[data-seq] button.receipt"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("a receipt", || async {
        text_of(&c, "#decisions tbody tr[data-seq] td.permit:last-child")
            .await
            .filter(|t| t.starts_with("in tree of"))
    })
    .await;
    let stayed = c.execute("return window.__stay;", vec![]).await.unwrap();
    assert_eq!(stayed, json!(42), "the page reloaded");
    shot(&c, "03-escalation.png").await;

    // Approve it from the page, with a reason.
    let reason = "looks fine from the dashboard";
    c.find(Locator::Css("#escalations tr[data-id] input.reason"))
        .await
        .unwrap()
        .send_keys(reason)
        .await
        .unwrap();
    esc.click().await.unwrap();
    until("the escalation approved", || async {
        text_of(&c, "#escalations tr[data-id]")
            .await
            .filter(|t| t.contains("approved") && t.contains(reason))
    })
    .await;
    // The chain's verification, as the page shows it.
    c.find(Locator::Css("#chain-verify"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let verified = until("the verify result", || async {
        text_of(&c, "#chain-verify-result")
            .await
            .filter(|t| t.contains("verified"))
    })
    .await;
    assert!(verified.starts_with("verified"), "{verified}");
    shot(&c, "04-approved.png").await;
    c.close().await.unwrap();

    // The decision is on the chain like the CLI's: who (the operator) and why.
    let r = weaver_at(&state, &["chain", "export"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = r
        .stdout
        .lines()
        .find(|l| l.contains("escalation.approve"))
        .unwrap_or_else(|| panic!("no escalation.approve in the export: {}", r.stdout));
    assert!(line.contains(reason) && line.contains("operator"), "{line}");
    let r = weaver_at(&state, &["chain", "verify"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}
