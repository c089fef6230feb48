//! Agent roles through `weaver`: a supervisor starts, lists, restarts and
//! stops workers of its own app (`weft:kernel/supervisor`); a worker asking
//! the same is denied, and the denial is on the chain; a worker may not
//! publish where a coordinator may; stopping the app stops what its
//! supervisor started; `system` and `spawn` outside a supervisor are
//! refused at check time with their position. And priority: with one
//! scheduler thread, a `high` agent gets more guest time than a `low` one.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::path::Path;

use serde_json::{json, Value};
use weft_e2e::{pack_app, start_kernel, start_kernel_with, weaver, weaver_at, Run};

const CREW: &str = r#"
[app]
name = "crew"
version = "0.1.0"

[capabilities]
ipc = "all"

[[agents]]
id = "boss"
component = "components/probe.wasm"
role = "supervisor"
capabilities = { ipc = "all" }

# Not started with the app: the boss starts instances of it.
[[agents]]
id = "worker"
component = "components/probe.wasm"
auto_start = false
capabilities = { ipc = "all" }

[[agents]]
id = "lead"
component = "components/probe.wasm"
role = "coordinator"
capabilities = { ipc = "all" }

[environment]
name = "dev"
"#;

fn ok(state: &Path, args: &[&str]) -> Run {
    let r = weaver_at(state, args);
    assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
    r
}

/// Ask `agent` (a probe) to run one syscall; its `{"ok"|"err": ..}` reply.
fn op(state: &Path, agent: &str, op: Value) -> Value {
    ok(
        state,
        &[
            "agent",
            "send",
            agent,
            &op.to_string(),
            "--json",
            "--wait-ms",
            "10000",
        ],
    )
    .json()
}

fn names(state: &Path) -> Vec<String> {
    ok(state, &["ps", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_supervisor_manages_workers_of_its_app_and_a_worker_may_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let state = d.join("state");
    let _k = start_kernel(&state, &[]);
    let bundle = pack_app(d, "crew", CREW, &["probe"]);
    ok(&state, &["app", "install", bundle.to_str().unwrap()]);
    ok(&state, &["app", "start", "crew"]);
    assert!(!names(&state).contains(&"crew.worker".to_string()));

    // The supervisor starts two instances of the declared worker.
    let r = op(
        &state,
        "crew.boss",
        json!({ "op": "spawn", "agent": "worker", "name": "w1" }),
    );
    let w1 = r["ok"].as_u64().unwrap_or_else(|| panic!("{r}"));
    let r = op(
        &state,
        "crew.boss",
        json!({ "op": "spawn", "agent": "worker", "name": "w2", "config": { "mode": "echo" } }),
    );
    assert!(r["ok"].is_u64(), "{r}");
    let boss = ok(&state, &["agent", "inspect", "crew.boss", "--json"]).json();
    assert_eq!(boss["role"], "supervisor");
    let w = ok(&state, &["agent", "inspect", "crew.w1", "--json"]).json();
    assert_eq!(w["pid"], w1);
    assert_eq!(w["role"], "worker");
    assert_eq!(w["parent"], boss["pid"]);
    assert_eq!(w["owner"], "crew.boss");
    assert_eq!(w["lineage"], "agent:crew.boss");
    let human = ok(&state, &["agent", "inspect", "crew.w1"]).stdout;
    assert!(
        human.contains("role          worker") && human.contains("lineage       agent:crew.boss"),
        "{human}"
    );
    // It answers like any agent.
    let r = ok(&state, &["agent", "send", "crew.w1", "hi"]).stdout;
    assert_eq!(r.trim(), "hi");

    let kids = op(&state, "crew.boss", json!({ "op": "children" }));
    let kid_names: Vec<&str> = kids["ok"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(kid_names, ["crew.w1", "crew.w2"], "{kids}");

    // Unknown entries, other apps' names: refused with the reason.
    let r = op(
        &state,
        "crew.boss",
        json!({ "op": "spawn", "agent": "wroker", "name": "x" }),
    );
    let e = r["err"].to_string();
    assert!(
        e.contains("declares no agent `wroker`") && e.contains("worker"),
        "{e}"
    );

    // A worker is not a supervisor: denied, and the denial is recorded.
    let r = op(
        &state,
        "crew.w1",
        json!({ "op": "spawn", "agent": "worker", "name": "w9" }),
    );
    let e = r["err"].to_string();
    assert!(e.contains("Denied") && e.contains("is a worker"), "{e}");
    let r = op(&state, "crew.w1", json!({ "op": "stop", "name": "w2" }));
    assert!(r["err"].to_string().contains("Denied"), "{r}");
    let denials: Vec<Value> = ok(&state, &["chain", "export"])
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| {
            e["kind"] == "gate.deny"
                && e["payload"]["agent"] == "crew.w1"
                && e["payload"]["action"] == "agent.spawn"
        })
        .collect();
    assert_eq!(denials.len(), 1, "gate.deny of the worker's spawn");

    // Workers do not publish; coordinators do.
    let r = op(
        &state,
        "crew.w1",
        json!({ "op": "send", "to": "topic:news", "body": "hi" }),
    );
    assert!(
        r["err"]
            .to_string()
            .contains("is a worker and may not publish"),
        "{r}"
    );
    let r = op(
        &state,
        "crew.lead",
        json!({ "op": "send", "to": "topic:news", "body": "hi" }),
    );
    assert!(r["ok"].is_u64(), "{r}");

    // Restart and stop, by the supervisor.
    let r = op(
        &state,
        "crew.boss",
        json!({ "op": "restart", "name": "w1" }),
    );
    assert_eq!(r, json!({ "ok": null }));
    let r = op(&state, "crew.boss", json!({ "op": "stop", "name": "w1" }));
    assert_eq!(r, json!({ "ok": null }));
    assert!(!names(&state).contains(&"crew.w1".to_string()));
    let spawns = ok(&state, &["chain", "export"])
        .stdout
        .lines()
        .filter(|l| l.contains("\"agent.spawn\"") && l.contains("crew.w2"))
        .count();
    assert!(spawns >= 1, "agent.spawn of crew.w2 on the chain");

    // Stopping the app stops what its supervisor started.
    ok(&state, &["app", "stop", "crew"]);
    let left: Vec<String> = names(&state)
        .into_iter()
        .filter(|n| n.starts_with("crew."))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn manifests_may_not_claim_system_or_spawn_outside_a_supervisor() {
    let dir = tempfile::tempdir().unwrap();
    for (bad, at, says) in [
        (
            CREW.replace("role = \"coordinator\"", "role = \"system\""),
            "weftapp.toml:25:8",
            "reserved for the kernel",
        ),
        (
            CREW.replace("[capabilities]\nipc = \"all\"", "[capabilities]\nipc = \"all\"\nspawn = true")
                .replace(
                "id = \"lead\"\ncomponent = \"components/probe.wasm\"\nrole = \"coordinator\"\ncapabilities = { ipc = \"all\" }",
                "id = \"lead\"\ncomponent = \"components/probe.wasm\"\ncapabilities = { ipc = \"all\", spawn = true }",
            ),
            "weftapp.toml:26:39",
            "only a supervisor may start agents",
        ),
        (
            CREW.replace("role = \"coordinator\"", "priority = \"urgent\""),
            "weftapp.toml:25:12",
            "\"low\", \"normal\" or \"high\"",
        ),
    ] {
        let root = dir.path().join("bad");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("weftapp.toml"), &bad).unwrap();
        let r = weaver(&["app", "check", root.to_str().unwrap()], b"");
        assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
        let out = format!("{}{}", r.stdout, r.stderr);
        assert!(out.contains(at) && out.contains(says), "want {at} {says}: {out}");
    }
}

const PRIO: &str = r#"
[app]
name = "prio"
version = "0.1.0"

[[agents]]
id = "hi"
component = "components/probe.wasm"
priority = "high"
limits = { fuel_per_message = 1_000_000_000_000, timeout_ms = 20_000 }

[[agents]]
id = "lo"
component = "components/probe.wasm"
priority = "low"
limits = { fuel_per_message = 1_000_000_000_000, timeout_ms = 20_000 }

[environment]
name = "dev"
"#;

#[test]
fn a_high_priority_agent_gets_more_guest_time_under_contention() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let state = d.join("state");
    // One scheduler thread: the two agents contend for it.
    let _k = start_kernel_with(&state, &[], &[("TOKIO_WORKER_THREADS", "1")]);
    let bundle = pack_app(d, "prio", PRIO, &["probe"]);
    ok(&state, &["app", "install", bundle.to_str().unwrap()]);
    ok(&state, &["app", "start", "prio"]);
    let hi_inspect = ok(&state, &["agent", "inspect", "prio.hi", "--json"]).json();
    assert_eq!(hi_inspect["priority"], "high");

    // Both busy for the same 2 s of wall time, at once.
    let spin = |agent: &'static str, state: std::path::PathBuf| {
        std::thread::spawn(move || op(&state, agent, json!({ "op": "spin_ms", "ms": 2000 })))
    };
    let hi = spin("prio.hi", state.clone());
    let lo = spin("prio.lo", state.clone());
    let (hi, lo) = (hi.join().unwrap(), lo.join().unwrap());
    let (hi, lo) = (
        hi["ok"].as_u64().unwrap_or_else(|| panic!("{hi}")),
        lo["ok"].as_u64().unwrap_or_else(|| panic!("{lo}")),
    );
    // Slices of 16:1; the sends' skew lets one run alone briefly.
    eprintln!(
        "rounds in 2 s: high {hi}, low {lo} ({:.1}x)",
        hi as f64 / lo.max(1) as f64
    );
    assert!(hi > 3 * lo, "high {hi} rounds vs low {lo}");
}
