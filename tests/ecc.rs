//! ECC end to end through the real `weaver` binary: an app whose agent
//! (the `memory` example, real wasm) inserts and searches vectors and links
//! a causal graph; refusals per operation, per namespace and outside the
//! app's own namespaces; `weaver ecc` on the control socket; and a kernel
//! killed with SIGKILL coming back with every acknowledged entry.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use weft_e2e::{guest, start_kernel, weaver, weaver_at as w, Run};

fn ok(state: &Path, args: &[&str]) -> Run {
    let r = w(state, args);
    assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
    r
}

const MANIFEST: &str = r#"[app]
name = "mem"
version = "0.1.0"

[capabilities]
ipc = "all"
ecc = { ops = ["*"], namespaces = ["mem", "mem/*", "other"] }

[[agents]]
id = "keeper"
component = "components/memory.wasm"
capabilities = { ipc = "all", ecc = { ops = ["create_index", "insert", "search", "stats", "get", "delete", "add_node", "link", "graph", "emit", "drain"], namespaces = ["mem/notes", "other"] } }
config = { ns = "mem/notes", dimension = 8, distance = "l2" }

[[agents]]
id = "reader"
component = "components/memory.wasm"
capabilities = { ipc = "all", ecc = { ops = ["search", "stats"], namespaces = ["mem/*"] } }
config = { ns = "mem/notes", dimension = 8 }
"#;

/// The app, signed with a fresh key the kernel on `state` trusts.
fn app(dir: &Path, state: &Path, manifest: &str) -> PathBuf {
    let app = dir.join("mem");
    std::fs::create_dir_all(app.join("components")).unwrap();
    std::fs::write(app.join("weftapp.toml"), manifest).unwrap();
    std::fs::copy(guest("memory"), app.join("components/memory.wasm")).unwrap();
    let key = dir.join("key.hex");
    std::fs::write(&key, format!("{:064x}", 77u64)).unwrap();
    let out = dir.join("mem.weftapp");
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
        .unwrap();
    ok(state, &["trust", "add", "dev", public.trim()]);
    out
}

/// Send `req` to `agent` of app `mem`; the agent's `{"ok"|"err": ..}` reply.
fn send(state: &Path, agent: &str, req: Value) -> Value {
    let r = ok(
        state,
        &[
            "agent",
            "send",
            &format!("mem.{agent}"),
            &req.to_string(),
            "--json",
        ],
    );
    serde_json::from_str(r.stdout.trim()).unwrap()
}

/// 200 vectors in 8 dimensions, a deterministic spread.
fn vectors() -> Vec<(u64, Vec<f32>)> {
    (0..200u64)
        .map(|i| {
            let v = (0..8)
                .map(|d| (((i * 7919 + d * 104_729) % 1000) as f32) / 1000.0)
                .collect();
            (i, v)
        })
        .collect()
}

fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

fn keys(hits: &Value) -> Vec<u64> {
    hits.as_array()
        .unwrap()
        .iter()
        .map(|h| {
            h["key"]
                .as_u64()
                .or_else(|| h["key"]["num"].as_u64())
                .unwrap_or_else(|| panic!("no numeric key in {hits}"))
        })
        .collect()
}

#[test]
fn agents_store_search_are_refused_and_survive_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("state");
    let mut kernel = start_kernel(&s, &[]);
    let bundle = app(dir.path(), &s, MANIFEST);
    ok(&s, &["app", "install", bundle.to_str().unwrap()]);
    ok(&s, &["app", "start", "mem"]);

    // The keeper inserts 200 vectors in two batch calls.
    let data = vectors();
    for chunk in data.chunks(100) {
        let items: Vec<Value> = chunk
            .iter()
            .map(|(k, v)| json!({"key": k, "vector": v}))
            .collect();
        let r = send(&s, "keeper", json!({"op": "insert", "items": items}));
        assert_eq!(r["ok"]["inserted"], 100, "{r}");
    }
    // Its nearest neighbours are the exact ones (a small index: ef covers it).
    let q: Vec<f32> = vec![0.5; 8];
    let mut exact: Vec<(f32, u64)> = data.iter().map(|(k, v)| (l2(&q, v), *k)).collect();
    exact.sort_by(|a, b| a.0.total_cmp(&b.0));
    let want: Vec<u64> = exact.iter().take(10).map(|e| e.1).collect();
    let r = send(
        &s,
        "keeper",
        json!({"op": "search", "vector": q, "k": 10, "ef": 200}),
    );
    assert_eq!(keys(&r["ok"]), want, "{r}");
    // The reader may search the same namespace...
    let r = send(
        &s,
        "reader",
        json!({"op": "search", "vector": q, "k": 10, "ef": 200}),
    );
    assert_eq!(keys(&r["ok"]), want, "{r}");
    // ... but not insert (op), nor use a namespace outside its grant.
    let r = send(
        &s,
        "reader",
        json!({"op": "insert", "items": [{"key": 999, "vector": q}]}),
    );
    assert_eq!(r["err"]["kind"], "denied", "{r}");
    assert!(
        r["err"]["message"].as_str().unwrap().contains("insert"),
        "{r}"
    );
    let r = send(
        &s,
        "keeper",
        json!({"op": "search", "ns": "mem/secret", "vector": q}),
    );
    assert_eq!(r["err"]["kind"], "denied", "{r}");
    assert!(
        r["err"]["message"].as_str().unwrap().contains("mem/secret"),
        "{r}"
    );
    // `other` is in the keeper's grant, but belongs to no namespace app `mem` owns.
    let r = send(&s, "keeper", json!({"op": "stats", "ns": "other"}));
    assert_eq!(r["err"]["kind"], "denied", "{r}");
    assert!(
        r["err"]["message"].as_str().unwrap().contains("app `mem`"),
        "{r}"
    );

    // A causal chain, and a cycle refused.
    for (a, b) in [(1, 2), (2, 3), (3, 4)] {
        let r = send(&s, "keeper", json!({"op": "link", "from": a, "to": b}));
        assert_eq!(r["ok"]["created"], true, "{r}");
    }
    let r = send(&s, "keeper", json!({"op": "link", "from": 4, "to": 1}));
    assert_eq!(r["err"]["kind"], "invalid", "{r}");
    assert!(
        r["err"]["message"].as_str().unwrap().contains("cycle"),
        "{r}"
    );
    // A delete, so recovery has a tombstone to keep.
    let r = send(&s, "keeper", json!({"op": "delete", "keys": [want[0]]}));
    assert_eq!(r["ok"], 1, "{r}");

    // The operator's view.
    let stats = ok(&s, &["ecc", "stats", "--json"]).json();
    let ns = &stats["namespaces"][0];
    assert_eq!(ns["ns"], "mem/notes");
    assert_eq!(ns["index"]["count"], 199);
    assert_eq!(ns["index"]["tombstones"], 1);
    assert_eq!(
        (ns["nodes"].as_u64(), ns["edges"].as_u64()),
        (Some(4), Some(3))
    );
    let qf = dir.path().join("q.txt");
    std::fs::write(&qf, "0.5 0.5 0.5 0.5\n0.5, 0.5, 0.5, 0.5\n").unwrap();
    let hits = ok(
        &s,
        &[
            "ecc",
            "search",
            "mem/notes",
            "--vector",
            qf.to_str().unwrap(),
            "-k",
            "10",
            "--ef",
            "200",
            "--json",
        ],
    )
    .json();
    assert_eq!(
        keys(&hits),
        want[1..]
            .iter()
            .chain(&exact.iter().map(|e| e.1).nth(10))
            .copied()
            .collect::<Vec<_>>()
    );
    let human = ok(
        &s,
        &[
            "ecc",
            "search",
            "mem/notes",
            "--vector",
            qf.to_str().unwrap(),
            "-k",
            "3",
        ],
    );
    assert!(human.stdout.starts_with("RANK"), "{}", human.stdout);
    let dot = ok(
        &s,
        &["ecc", "graph", "mem/notes", "1", "--depth", "2", "--dot"],
    )
    .stdout;
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(
        dot.contains("\"n1\" -> \"n2\"") && dot.contains("\"n2\" -> \"n3\""),
        "{dot}"
    );
    assert!(!dot.contains("\"n4\""), "depth 2 stops at 3: {dot}");
    let g = ok(
        &s,
        &["ecc", "graph", "mem/notes", "1", "--depth", "3", "--json"],
    )
    .json();
    assert_eq!(g["nodes"].as_array().unwrap().len(), 4);
    let cal = ok(&s, &["ecc", "calibration", "--json"]).json();
    assert!(cal["insert_ns"].as_u64().unwrap() > 0, "{cal}");
    // A bad vector file is named, with where.
    std::fs::write(&qf, "0.5 x").unwrap();
    let r = w(
        &s,
        &[
            "ecc",
            "search",
            "mem/notes",
            "--vector",
            qf.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("q.txt") && r.stderr.contains("line 1 column 5"),
        "{}",
        r.stderr
    );
    // A wrong dimension is the library's typed error.
    std::fs::write(&qf, "[1, 2]").unwrap();
    let r = w(
        &s,
        &[
            "ecc",
            "search",
            "mem/notes",
            "--vector",
            qf.to_str().unwrap(),
        ],
    );
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("dimension"), "{}", r.stderr);

    // Every mutation is on the chain, and so are the refusals.
    let chain = ok(&s, &["chain", "export"]).stdout;
    let ops = chain
        .lines()
        .filter(|l| l.contains("\"kind\":\"ecc.op\""))
        .count();
    // 2 inserts, 3 x (2 add_node + link) + refused link (recorded, refused on apply), 1 delete.
    assert!(ops > 2 + 9, "{ops} ecc.op records");
    let denials = chain
        .lines()
        .filter(|l| l.contains("gate.deny") && l.contains("ecc."))
        .count();
    assert!(denials >= 3, "{denials} ecc denials on the chain");
    assert!(chain.contains("\"kind\":\"ecc.calibration\""));

    // kill -9, boot again: the app resumes and the state is what was acknowledged.
    kernel.0.kill().unwrap();
    kernel.0.wait().unwrap();
    let _again = start_kernel(&s, &[]);
    let after = ok(&s, &["ecc", "stats", "--json"]).json();
    assert_eq!(after["namespaces"], stats["namespaces"]);
    assert!(after["replayed_at_boot"].as_u64().unwrap() >= 12, "{after}");
    let r = send(
        &s,
        "keeper",
        json!({"op": "search", "vector": q, "k": 10, "ef": 200}),
    );
    assert_eq!(keys(&r["ok"]), keys(&hits), "{r}");
    let r = send(&s, "keeper", json!({"op": "trace", "from": 1, "depth": 5}));
    assert_eq!(r["ok"].as_array().unwrap().len(), 4, "{r}");

    // A clean stop snapshots; the next boot replays nothing.
    ok(&s, &["kernel", "stop"]);
    drop(_again);
    let _third = start_kernel(&s, &[]);
    let third = ok(&s, &["ecc", "stats", "--json"]).json();
    assert_eq!(third["namespaces"], stats["namespaces"]);
    assert_eq!(third["replayed_at_boot"], 0, "{third}");
    assert!(Path::new(&s).join("ecc/ecc.snapshot").exists());
}

/// `[ecc] shares` in weft.toml opens a namespace outside the app's own to
/// that app's agents (still only within their `ecc` capabilities); the
/// same request without it is refused (above).
#[test]
fn ecc_shares_open_another_namespace_to_an_app() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("state");
    let cfg = dir.path().join("weft.toml");
    std::fs::write(&cfg, "[ecc]\nshares = { mem = [\"other\"] }\n").unwrap();
    let _k = start_kernel(&s, &["--config", cfg.to_str().unwrap()]);
    let bundle = app(dir.path(), &s, MANIFEST);
    ok(&s, &["app", "install", bundle.to_str().unwrap()]);
    ok(&s, &["app", "start", "mem"]);
    let r = send(
        &s,
        "keeper",
        json!({"op": "link", "ns": "other", "from": 1, "to": 2}),
    );
    assert_eq!(r["ok"]["created"], true, "{r}");
    // The share does not widen the agent's own grant: the reader's
    // capabilities name only mem/*.
    let r = send(&s, "reader", json!({"op": "stats", "ns": "other"}));
    assert_eq!(r["err"]["kind"], "denied", "{r}");
    let stats = ok(&s, &["ecc", "stats", "--json"]).json();
    assert!(stats.to_string().contains("\"other\""), "{stats}");
}

#[test]
fn ecc_capabilities_in_manifests_are_checked_with_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // An operation that does not exist (line 12: the agent).
        (
            MANIFEST.replace(
                "\"create_index\", \"insert\"",
                "\"create_index\", \"insrt\"",
            ),
            12,
            "insrt",
        ),
        // A namespace beyond the ceiling.
        (
            MANIFEST.replace(
                "namespaces = [\"mem/notes\", \"other\"]",
                "namespaces = [\"mem/notes\", \"elsewhere\"]",
            ),
            12,
            "elsewhere",
        ),
        // Not a table.
        (
            MANIFEST.replace(
                "ecc = { ops = [\"*\"], namespaces = [\"mem\", \"mem/*\", \"other\"] }",
                "ecc = \"all\"",
            ),
            7,
            "ops",
        ),
        // An unknown key.
        (
            MANIFEST.replace("ecc = { ops = [\"*\"],", "ecc = { opz = [\"*\"],"),
            7,
            "unknown",
        ),
        // A bad namespace pattern.
        (
            MANIFEST.replace(
                "\"mem\", \"mem/*\", \"other\"",
                "\"mem\", \"mem//x\", \"other\"",
            ),
            7,
            "mem//x",
        ),
    ];
    for (i, (manifest, line, word)) in cases.iter().enumerate() {
        let app = dir.path().join(format!("bad{i}"));
        std::fs::create_dir_all(app.join("components")).unwrap();
        std::fs::copy(guest("memory"), app.join("components/memory.wasm")).unwrap();
        std::fs::write(app.join("weftapp.toml"), manifest).unwrap();
        let r = weaver(&["app", "pack", app.to_str().unwrap()], b"");
        assert_eq!(r.code, 1, "case {i}: {}{}", r.stdout, r.stderr);
        let at = format!("weftapp.toml:{line}:");
        assert!(r.stderr.contains(&at), "case {i}: no {at} in {}", r.stderr);
        assert!(
            r.stderr.contains(word),
            "case {i}: no {word} in {}",
            r.stderr
        );
    }
    // And the good one packs.
    let app = dir.path().join("good");
    std::fs::create_dir_all(app.join("components")).unwrap();
    std::fs::copy(guest("memory"), app.join("components/memory.wasm")).unwrap();
    std::fs::write(app.join("weftapp.toml"), MANIFEST).unwrap();
    let r = weaver(&["app", "pack", app.to_str().unwrap()], b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn the_cognitive_tick_reaches_subscribed_agents() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("state");
    let cfg = dir.path().join("weft.toml");
    std::fs::write(
        &cfg,
        "[ecc]\ncalibrate = false\n[ecc.tick]\ninterval_ms = 20\nmin_ms = 10\nmax_ms = 500\n",
    )
    .unwrap();
    let _k = start_kernel(&s, &["--config", cfg.to_str().unwrap()]);
    let probe = guest("probe");
    let caps = dir.path().join("caps.toml");
    std::fs::write(&caps, "ipc = \"all\"\n").unwrap();
    ok(
        &s,
        &[
            "agent",
            "spawn",
            "listener",
            probe.to_str().unwrap(),
            "--caps",
            caps.to_str().unwrap(),
        ],
    );
    let send = |req: Value| -> Value {
        let r = ok(
            &s,
            &["agent", "send", "listener", &req.to_string(), "--json"],
        );
        serde_json::from_str(r.stdout.trim()).unwrap()
    };
    // Nobody subscribed yet: ticks run, nothing is published.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let before = ok(&s, &["ecc", "tick", "--json"]).json();
    assert!(before["stats"]["ticks"].as_u64().unwrap() >= 3, "{before}");
    assert_eq!(before["published"], 0, "{before}");
    let r = send(json!({ "op": "subscribe", "topic": "ecc.tick" }));
    assert!(r.get("err").is_none(), "{r}");
    std::thread::sleep(std::time::Duration::from_millis(400));
    let after = ok(&s, &["ecc", "tick", "--json"]).json();
    let published = after["published"].as_u64().unwrap();
    assert!(published >= 5, "{after}");
    // Cheap ticks shrink the interval toward min_ms (an overrun would grow it).
    let interval = after["stats"]["interval_ns"].as_u64().unwrap();
    assert!((10_000_000..=20_000_000).contains(&interval), "{after}");
    // The agent handled the ticks (plus the subscribe and this count).
    let handled = send(json!({ "op": "count" }))["ok"].as_u64().unwrap();
    assert!(handled >= published, "{handled} < {published}");
    let table = ok(&s, &["ecc", "tick"]).stdout;
    assert!(
        table.contains("topic ecc.tick") && table.contains("published"),
        "{table}"
    );
    // Each delivered tick is a publish by the kernel, on the chain.
    let export = ok(&s, &["chain", "export"]).stdout;
    assert!(export.contains("ecc.tick"), "no tick on the chain");
}
