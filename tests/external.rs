//! An external (`url`) service through `weaver`: an agent's request to the
//! service, and to one of its methods, becomes an HTTP POST to a local test
//! server, whose response is the reply; a server error is the caller's
//! error; every call is gated as the app and recorded as `net.http`; the
//! service goes away with the app.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::path::Path;

use serde_json::{json, Value};
use weft_e2e::upstream::Upstream;
use weft_e2e::{pack_app, start_kernel, weaver_at, Run};

fn ok(state: &Path, args: &[&str]) -> Run {
    let r = weaver_at(state, args);
    assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
    r
}

fn call(state: &Path, to: &str, body: &str) -> Value {
    let op = json!({ "op": "request", "to": to, "body": body, "timeout_ms": 5000 });
    ok(
        state,
        &["agent", "send", "ext.caller", &op.to_string(), "--json"],
    )
    .json()
}

#[test]
fn an_external_service_is_called_over_http_as_the_app() {
    let up = Upstream::start();
    let port = up.port;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let state = d.join("state");
    let _k = start_kernel(&state, &[]);
    let manifest = format!(
        r#"
[app]
name = "ext"
version = "0.1.0"

[[agents]]
id = "caller"
component = "components/probe.wasm"
capabilities = {{ ipc = "all" }}

[[services]]
name = "remote"
url = "http://127.0.0.1:{port}/api"

[environment]
name = "dev"
"#
    );
    let bundle = pack_app(d, "ext", &manifest, &["probe"]);
    ok(&state, &["app", "install", bundle.to_str().unwrap()]);
    ok(&state, &["app", "start", "ext"]);

    let r = call(&state, "service:remote", "hello");
    assert_eq!(r["ok"]["got"], "hello", "{r}");
    assert_eq!(r["ok"]["path"], "/api");
    let r = call(&state, "service:remote/summarize", "text");
    assert_eq!(r["ok"]["path"], "/api/summarize", "{r}");
    let r = call(&state, "service:remote/boom", "x");
    let e = r["err"].to_string();
    assert!(
        e.contains("500 Internal Server Error") && !e.contains("it broke"),
        "{r}"
    );

    let seen = up.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths, ["/api", "/api/summarize", "/api/boom"]);
    let first = &seen[0];
    assert_eq!(first.body, "hello");
    assert_eq!(first.header("x-weft-service"), "remote");
    assert_eq!(first.header("x-weft-sender"), "ext.caller");
    assert!(first.header("content-type").starts_with("text/plain"));

    // One line per call in the kernel log, the failure a warning.
    let logs = ok(&state, &["kernel", "logs"]).stdout;
    assert!(
        logs.contains(&format!(
            "net: app:ext service `remote` POST http://127.0.0.1:{port}/api/summarize -> 200"
        )),
        "{logs}"
    );
    assert!(logs.contains("/api/boom -> 500"), "{logs}");

    // Gated as the app, recorded with the service named, bodies never.
    let events: Vec<Value> = ok(&state, &["chain", "export"])
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    let http: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "net.http" && e["payload"]["service"] == "remote")
        .collect();
    assert_eq!(http.len(), 3, "{http:?}");
    assert!(http.iter().all(|e| e["source"] == "app:ext"), "{http:?}");
    assert_eq!(http[2]["payload"]["outcome"], "status");
    assert!(events.iter().any(|e| e["kind"] == "gate.permit"
        && e["payload"]["action"] == "net.http.127.0.0.1"
        && e["payload"]["agent"] == "app:ext"));
    let leaks: Vec<&Value> = events
        .iter()
        .filter(|e| {
            let t = e.to_string();
            t.contains("it broke") || t.contains("\\\"got\\\"") || t.contains("\"got\"")
        })
        .collect();
    assert!(leaks.is_empty(), "bodies on the chain: {leaks:?}");

    // Down and up with the app, gone with it.
    ok(&state, &["app", "stop", "ext"]);
    ok(&state, &["app", "start", "ext"]);
    let r = call(&state, "service:remote", "again");
    assert_eq!(r["ok"]["got"], "again", "{r}");
    ok(&state, &["app", "rm", "ext"]);
    let r = weaver_at(&state, &["tree", "ls", "/kernel/services", "--json"]);
    assert!(!r.stdout.contains("remote"), "{}", r.stdout);
}

#[test]
fn an_external_service_outside_the_environments_list_is_refused() {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let state = d.join("state");
    let cfg = d.join("weft.toml");
    // Another port than the service's.
    std::fs::write(
        &cfg,
        "[environments.dev]\noutbound = [\"http://127.0.0.1:1\"]\n",
    )
    .unwrap();
    let _k = start_kernel(&state, &["--config", cfg.to_str().unwrap()]);
    let manifest = format!(
        "[app]\nname = \"ext\"\nversion = \"0.1.0\"\n\n[[agents]]\nid = \"caller\"\n\
         component = \"components/probe.wasm\"\ncapabilities = {{ ipc = \"all\" }}\n\n\
         [[services]]\nname = \"remote\"\nurl = \"http://127.0.0.1:{}/api\"\n\n\
         [environment]\nname = \"dev\"\n",
        up.port
    );
    let bundle = pack_app(d, "ext", &manifest, &["probe"]);
    ok(&state, &["app", "install", bundle.to_str().unwrap()]);
    ok(&state, &["app", "start", "ext"]);
    let r = call(&state, "service:remote", "hello");
    assert!(
        r["err"]
            .to_string()
            .contains("outside environment `dev`'s outbound allow-list"),
        "{r}"
    );
    assert!(up.seen().is_empty(), "a refused call reached the server");
}
