//! Outbound HTTP for tools through `weaver`: a plain WASI command
//! (`http-get`) registered by an app with `[[tools]] network` reaches what
//! its grants allow, as the app, with the app's secret header; a URL outside
//! them, and a tool with no grants, are refused; the request and the refusal
//! are on the chain, the secret is not.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::path::Path;

use serde_json::Value;
use weft_e2e::upstream::Upstream;
use weft_e2e::{pack_app, start_kernel, weaver, weaver_at as w, Run};

fn ok(state: &Path, args: &[&str]) -> Run {
    let r = w(state, args);
    assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
    r
}

fn get(state: &Path, tool: &str, url: &str) -> Run {
    let input = serde_json::json!({ "url": url }).to_string();
    w(state, &["tool", "run", tool, "--json", "--", &input])
}

fn manifest(port: u16, tool_grant: &str) -> String {
    format!(
        r#"
[app]
name = "toolnet"
version = "0.1.0"

[capabilities]
network = {{ outbound = ["http://127.0.0.1:*"] }}

[[tools]]
name = "get"
component = "components/http-get.wasm"
network = {{ outbound = ["{tool_grant}"], secrets = [{{ secret = "API_KEY", server = "http://127.0.0.1:{port}", header = "authorization", prefix = "Bearer " }}] }}

[[tools]]
name = "offline"
component = "components/http-get.wasm"

[environment]
name = "dev"
"#
    )
}

#[test]
fn a_tool_reaches_what_its_grants_allow_as_its_app() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = d.join("state");
    let up = Upstream::start();
    let other = Upstream::start();
    let _k = start_kernel(&s, &[]);
    let text = manifest(up.port, &format!("http://127.0.0.1:{}", up.port));
    let bundle = pack_app(d, "toolnet", &text, &["http-get"]);
    ok(&s, &["app", "install", bundle.to_str().unwrap()]);
    ok(&s, &["app", "start", "toolnet"]);
    let st = s.to_str().unwrap();
    let r = weaver(
        &["--state", st, "secret", "set", "toolnet", "API_KEY"],
        b"sk-tool-secret-2024\n",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);

    // Allowed: the command's answer, with the app's secret header sent.
    let url = format!("http://127.0.0.1:{}/status", up.port);
    let r = get(&s, "get", &url);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let report: Value = r.json();
    assert_eq!(report["result"]["status"], 200, "{report}");
    assert_eq!(report["result"]["body"], "upstream ok", "{report}");
    let seen = up.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].header("authorization"),
        "Bearer sk-tool-secret-2024"
    );

    // Outside the tool's grants (though inside the app ceiling): refused
    // before anything is sent.
    let r = get(
        &s,
        "get",
        &format!("http://127.0.0.1:{}/status", other.port),
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stdout.contains("outside tool `get`'s network.outbound"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(other.seen().is_empty());

    // A tool whose entry grants no network gets none.
    let r = get(&s, "offline", &url);
    assert_ne!(r.code, 0);
    assert!(
        r.stdout.contains("no network: this component"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(up.seen().len(), 1);

    // The chain: the request as the app naming the tool, the refusal, the
    // grants at registration; never the secret.
    let export = ok(&s, &["chain", "export"]).stdout;
    assert!(
        !export.contains("sk-tool-secret"),
        "a secret reached the chain"
    );
    let events: Vec<Value> = export
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let http: Vec<&Value> = events.iter().filter(|e| e["kind"] == "net.http").collect();
    assert_eq!(http.len(), 1, "{http:?}");
    assert_eq!(http[0]["source"], "app:toolnet");
    assert_eq!(http[0]["payload"]["tool"], "get");
    assert_eq!(http[0]["payload"]["caller"], "operator");
    assert_eq!(http[0]["payload"]["status"], 200);
    assert!(events.iter().any(|e| e["kind"] == "gate.deny"
        && e["payload"]["action"] == "net.http.127.0.0.1"
        && e["payload"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("tool `get`")));
    let reg = events
        .iter()
        .find(|e| e["kind"] == "tool.register" && e["payload"]["name"] == "get")
        .unwrap();
    assert_eq!(
        reg["payload"]["outbound"][0],
        format!("http://127.0.0.1:{}", up.port)
    );
    let ls = ok(&s, &["net", "ls", "--json"]).json();
    assert_eq!(ls["apps"][0]["agents"][0]["tool"], "get", "{ls}");
    let logs = ok(&s, &["kernel", "logs"]).stdout;
    assert!(
        logs.contains(&format!("net: app:toolnet (tool get) GET {url} -> 200")),
        "{logs}"
    );
}

#[test]
fn a_tool_grant_beyond_the_ceiling_is_refused_at_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("toolnet");
    std::fs::create_dir_all(&root).unwrap();
    let text = manifest(8080, "https://api.example.com");
    std::fs::write(root.join("weftapp.toml"), text).unwrap();
    let r = weaver(&["app", "check", root.to_str().unwrap()], b"");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(
        out.contains("weftapp.toml:12:25")
            && out.contains("tools[0].network.outbound[0]")
            && out.contains("exceeds the app ceiling"),
        "{out}"
    );
}

#[test]
fn an_environments_allow_list_bounds_every_grant_at_install() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = d.join("state");
    let cfg = d.join("weft.toml");
    std::fs::write(
        &cfg,
        "[environments.dev]\noutbound = [\"http://127.0.0.1:8080\"]\n",
    )
    .unwrap();
    let _k = start_kernel(&s, &["--config", cfg.to_str().unwrap()]);
    // Within the app's ceiling, beyond the environment's list.
    let text = manifest(8080, "http://127.0.0.1:*");
    let bundle = pack_app(d, "toolnet", &text, &["http-get"]);
    let r = w(&s, &["app", "install", bundle.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("weftapp.toml:12:25: tools[0].network.outbound[0]")
            && r.stderr
                .contains("outside environment `dev`'s outbound allow-list"),
        "{}",
        r.stderr
    );
    // Within both: installs.
    let text = manifest(8080, "http://127.0.0.1:8080");
    let bundle = pack_app(
        d,
        "toolnet2",
        &text.replace("\"toolnet\"", "\"toolnet2\""),
        &["http-get"],
    );
    ok(&s, &["app", "install", bundle.to_str().unwrap()]);

    // A list entry that is not a grant stops the boot, naming it.
    std::fs::write(&cfg, "[environments.dev]\noutbound = [\"ftp://x\"]\n").unwrap();
    let r = weaver(
        &[
            "run",
            "--state",
            d.join("other").to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ],
        b"",
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("environments.dev.outbound[0]"),
        "{}",
        r.stderr
    );
}
