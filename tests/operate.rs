//! Operating a running kernel from `weaver`: escalations decided by a
//! person (surviving `kill -9`), and agents started, inspected, restarted
//! and stopped by the operator.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::path::Path;

use serde_json::Value;
use weft_e2e::{guest, start_kernel, weaver_at, KernelProc};

const DEFAULT_POLICY: &str =
    include_str!("../components/subsystems/governance/default-policy.toml");

/// A config whose policy sends every `ipc.publish` to a person, and whose
/// callers wait only 100 ms for one.
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
        "[governance]\npolicy = \"policy.toml\"\n[escalation]\nwait_ms = 100\n",
    )
    .unwrap();
    cfg.to_str().unwrap().to_string()
}

fn boot(state: &Path, cfg: &str) -> KernelProc {
    start_kernel(state, &["--config", cfg])
}

fn publish(state: &Path) -> weft_e2e::Run {
    weaver_at(
        state,
        &[
            "agent",
            "send",
            "talker",
            r#"{"op":"send","to":"topic:news","body":"hi"}"#,
            "--json",
        ],
    )
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
    assert!(r.stdout.contains("spawned talker"), "{}", r.stdout);
}

fn pending(state: &Path) -> Vec<Value> {
    let r = weaver_at(state, &["gov", "pending", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.json().as_array().cloned().unwrap_or_default()
}

#[test]
fn an_escalation_waits_for_a_person_and_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let cfg = config(dir.path());
    let mut k = boot(&state, &cfg);
    spawn_talker(&state, dir.path());

    // Nobody decides within wait_ms: the agent is told it is pending.
    let r = publish(&state);
    assert!(r.stdout.contains("pending: escalation #"), "{}", r.stdout);
    let p = pending(&state);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0]["principal"], "talker");
    assert_eq!(p[0]["action"], "ipc.publish");
    let id = p[0]["id"].as_u64().unwrap().to_string();
    let table = weaver_at(&state, &["gov", "pending"]);
    assert!(table.stdout.contains("ipc.publish"), "{}", table.stdout);

    // A decision needs a reason; approved, the agent's next try goes through.
    let r = weaver_at(&state, &["gov", "approve", &id]);
    assert_ne!(r.code, 0);
    let r = weaver_at(&state, &["gov", "approve", &id, "--reason", "fine by me"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = publish(&state);
    assert!(r.stdout.contains("\"ok\""), "{}", r.stdout);
    assert!(pending(&state).is_empty());

    // Another one, then kill -9: the queue comes back with the kernel.
    let r = publish(&state);
    assert!(r.stdout.contains("pending"), "{}", r.stdout);
    let id2 = pending(&state)[0]["id"].as_u64().unwrap().to_string();
    assert_ne!(id, id2);
    k.0.kill().unwrap();
    k.0.wait().unwrap();
    let _k = boot(&state, &cfg);
    let p = pending(&state);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0]["id"].as_u64().unwrap().to_string(), id2);
    let r = weaver_at(
        &state,
        &["gov", "deny", &id2, "--reason", "not on a Sunday"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    spawn_talker(&state, dir.path());
    let r = publish(&state);
    assert!(
        r.stdout.contains("pending"),
        "a new request opens a new escalation: {}",
        r.stdout
    );

    // The decisions are on the chain with who decided and why, and the
    // chain still verifies.
    let r = weaver_at(&state, &["chain", "export"]);
    let all = r.stdout;
    assert!(
        all.contains("escalation.approve") && all.contains("fine by me"),
        "{all}"
    );
    assert!(all.contains("escalation.deny") && all.contains("not on a Sunday"));
    let r = weaver_at(&state, &["gov", "pending", "--all", "--json"]);
    let states: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(states, ["pending", "denied", "used"]);
}

#[test]
fn the_operator_spawns_inspects_restarts_and_stops_agents() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let cfg = config(dir.path());
    let _k = boot(&state, &cfg);
    spawn_talker(&state, dir.path());
    // The name is taken now.
    let probe = guest("probe");
    let r = weaver_at(
        &state,
        &["agent", "spawn", "talker", probe.to_str().unwrap()],
    );
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("talker"), "{}", r.stderr);
    // Bad capabilities are named with their position.
    std::fs::write(dir.path().join("bad.toml"), "ipc = \"all\"\nspawn = 3\n").unwrap();
    let bad = dir.path().join("bad.toml");
    let r = weaver_at(
        &state,
        &[
            "agent",
            "spawn",
            "other",
            probe.to_str().unwrap(),
            "--caps",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(r.stderr.contains("bad.toml:2:9"), "{}", r.stderr);

    let r = weaver_at(&state, &["agent", "inspect", "talker", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["owner"], "operator");
    assert_eq!(v["capabilities"]["chain_append"], true);
    let r = weaver_at(&state, &["agent", "inspect", "talkr"]);
    assert!(r.stderr.contains("did you mean `talker`"), "{}", r.stderr);

    let r = weaver_at(&state, &["agent", "restart", "talker"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = weaver_at(
        &state,
        &["agent", "send", "talker", r#"{"op":"count"}"#, "--json"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = weaver_at(&state, &["agent", "stop", "talker"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = weaver_at(&state, &["ps", "--json"]);
    assert!(!r.stdout.contains("\"talker\""), "{}", r.stdout);
    let r = weaver_at(&state, &["chain", "export"]);
    for kind in ["agent.spawn", "agent.restart", "agent.stop"] {
        assert!(r.stdout.contains(kind), "{kind}");
    }
}
