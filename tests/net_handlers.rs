//! A route served by a component exporting `wasi:http/incoming-handler`
//! (`hello-http`), through `weaver run --http`: the request reaches a fresh
//! instance and its response comes back; the route's token, time limit and
//! the kernel's response limit hold; a stopped app's route answers 503;
//! each request is a `net.ingress` record naming the component and the fuel
//! it used; the handler reaches what the route's `network` grants, as the
//! app, and nothing else.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::path::Path;

use serde_json::Value;
use weft_e2e::upstream::{request as http, Upstream};
use weft_e2e::{pack_app, start_kernel, weaver, weaver_at as w, Run};

fn ok(state: &Path, args: &[&str]) -> Run {
    let r = w(state, args);
    assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
    r
}

const MANIFEST: &str = r#"
[app]
name = "hello"
version = "0.1.0"

[[routes]]
path = "/hello"
component = "components/hello_http.wasm"

[[routes]]
path = "/fetch"
component = "components/hello_http.wasm"
network = { outbound = ["http://127.0.0.1:UPSTREAM"] }

[[routes]]
path = "/private"
component = "components/hello_http.wasm"
token_secret = "TOKEN"
timeout_ms = 500

[environment]
name = "dev"
"#;

#[test]
fn a_component_route_answers_with_its_handlers_response() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = d.join("state");
    let cfg = d.join("weft.toml");
    std::fs::write(&cfg, "[net]\nmax_response_bytes = 100000\n").unwrap();
    let _k = start_kernel(
        &s,
        &["--config", cfg.to_str().unwrap(), "--http", "127.0.0.1:0"],
    );
    let up = Upstream::start();
    let manifest = MANIFEST.replace("UPSTREAM", &up.port.to_string());
    let bundle = pack_app(d, "hello", &manifest, &["hello_http"]);
    ok(&s, &["app", "install", bundle.to_str().unwrap()]);
    let st = s.to_str().unwrap();
    let r = weaver(
        &["--state", st, "secret", "set", "hello", "TOKEN"],
        b"t0k3n",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    ok(&s, &["app", "start", "hello"]);
    let ls = ok(&s, &["net", "ls", "--json"]).json();
    let addr = ls["listen"].as_str().unwrap().to_string();
    assert_eq!(
        ls["apps"][0]["routes"][0]["component"], "components/hello_http.wasm",
        "{ls}"
    );

    // The handler sees the request as sent and answers it.
    let (status, body) = http(&addr, "POST", "/hello?x=1", None, "ping");
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&v["method"], &v["path"], &v["query"], &v["body"]),
        (
            &"POST".into(),
            &"/hello".into(),
            &"x=1".into(),
            &"ping".into()
        ),
        "{v}"
    );
    assert_eq!(v["authority"], addr);

    // A body of 80,000 bytes streams through (more than the channel's
    // chunks); one over [net] max_response_bytes is refused.
    let (status, body) = http(&addr, "GET", "/hello?bytes=80000", None, "");
    assert_eq!((status, body.len()), (200, 80_000));
    let (status, body) = http(&addr, "GET", "/hello?bytes=200000", None, "");
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("over 100000 bytes"), "{body}");

    // The route's token; its time limit stops a handler that waits, the
    // fuel one that spins.
    assert_eq!(http(&addr, "GET", "/private", None, "").0, 401);
    let (status, body) = http(&addr, "GET", "/private", Some("t0k3n"), "");
    assert_eq!(status, 200, "{body}");
    let t = std::time::Instant::now();
    let (status, body) = http(&addr, "GET", "/private?sleep=10000", Some("t0k3n"), "");
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("within 500 ms"), "{body}");
    assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
    let (status, body) = http(&addr, "GET", "/hello?spin", None, "");
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("out of fuel"), "{body}");
    // ...and the route still serves the next request.
    assert_eq!(http(&addr, "GET", "/hello", None, "").0, 200);

    // Outbound from a handler: what its route grants, as the app; a route
    // without grants reaches nothing.
    let status_url = format!("http://127.0.0.1:{}/status", up.port);
    let (status, body) = http(
        &addr,
        "GET",
        &format!("/fetch?fetch={status_url}"),
        None,
        "",
    );
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["fetched"]["body"], "upstream ok", "{v}");
    let (_, body) = http(
        &addr,
        "GET",
        &format!("/hello?fetch={status_url}"),
        None,
        "",
    );
    assert!(body.contains("no network"), "{body}");
    assert_eq!(up.seen().len(), 1);

    ok(&s, &["app", "stop", "hello"]);
    assert_eq!(http(&addr, "GET", "/hello", None, "").0, 503);

    let export = ok(&s, &["chain", "export"]).stdout;
    assert!(!export.contains("t0k3n"), "the token reached the chain");
    let events: Vec<Value> = export
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let ingress: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "net.ingress")
        .map(|e| &e["payload"])
        .collect();
    let outcomes: Vec<(&str, u64)> = ingress
        .iter()
        .map(|p| {
            (
                p["outcome"].as_str().unwrap(),
                p["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("ok", 200),
            ("ok", 200),
            ("too_large", 502),
            ("unauthorized", 401),
            ("ok", 200),
            ("timeout", 504),
            ("failed", 502),
            ("ok", 200),
            ("ok", 200),
            ("ok", 200),
            ("stopped", 503)
        ],
        "{ingress:?}"
    );
    assert_eq!(ingress[0]["component"], "components/hello_http.wasm");
    assert!(
        ingress[0]["fuel_used"].as_u64().unwrap() > 0,
        "{:?}",
        ingress[0]
    );
    let fetched: Vec<&Value> = events.iter().filter(|e| e["kind"] == "net.http").collect();
    assert_eq!(fetched.len(), 1, "{fetched:?}");
    assert_eq!(fetched[0]["source"], "app:hello");
    assert_eq!(fetched[0]["payload"]["route"], "/fetch");
    assert!(events.iter().any(|e| e["kind"] == "net.route.add"
        && e["payload"]["component"] == "components/hello_http.wasm"
        && e["payload"]["digest"]
            .as_str()
            .is_some_and(|d| d.len() == 64)));
}

#[test]
fn a_route_component_that_is_no_handler_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = d.join("state");
    let _k = start_kernel(&s, &["--http", "127.0.0.1:0"]);
    let text = MANIFEST
        .replace("hello_http.wasm", "calc.wasm")
        .replace("UPSTREAM", "8080");
    let bundle = pack_app(d, "hello", &text, &["calc"]);
    ok(&s, &["app", "install", bundle.to_str().unwrap()]);
    // `app check` names it at its line before anything is installed...
    let r = weaver(&["app", "check", d.join("hello").to_str().unwrap()], b"");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("weftapp.toml:8:13: `components/calc.wasm` is not a route handler"),
        "{}",
        r.stderr
    );
    // ...and a kernel refuses to start it (a bundle that skipped the check).
    let r = w(&s, &["app", "start", "hello"]);
    assert_ne!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("route `/hello`: invalid: `components/calc.wasm`")
            && r.stderr
                .contains("not a wasi:http/incoming-handler component"),
        "{}",
        r.stderr
    );
}
