//! Gate latency benchmark (plain main, no criterion). Prints a markdown table
//! of median / p99 latency for capability checks and chained checks.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use weft_chain::{ChainConfig, ChainManager, SigningKey};
use weft_gate::{CapabilityGate, CapabilityRule, ChainedGate, GateBackend};

fn rules() -> Vec<CapabilityRule> {
    let mut r: Vec<CapabilityRule> = (0..16)
        .map(|i| CapabilityRule {
            agent: format!("agent-{i}"),
            allow: vec![
                "tool.exec.*".into(),
                "ipc.send".into(),
                "svc.cron.**".into(),
            ],
            deny: vec!["tool.exec.rm".into()],
        })
        .collect();
    r.push(CapabilityRule {
        agent: "*".into(),
        allow: vec!["health.**".into()],
        deny: vec!["kernel.**".into()],
    });
    r.push(CapabilityRule {
        agent: "worker-*".into(),
        allow: vec!["tool.*.ls".into()],
        deny: vec![],
    });
    r
}

/// Times each call individually; returns (median, p99) in ns.
fn measure(iters: usize, mut f: impl FnMut(usize)) -> (f64, f64) {
    let mut lat = Vec::with_capacity(iters);
    for i in 0..iters {
        let t = Instant::now();
        f(i);
        lat.push(t.elapsed());
    }
    lat.sort_unstable();
    let ns = |d: Duration| d.as_nanos() as f64;
    (ns(lat[iters / 2]), ns(lat[iters * 99 / 100]))
}

fn main() {
    let gate = CapabilityGate::with_rules(rules()).expect("rules");
    let ctx = json!({"cmd": "ls", "args": ["-l", "/tmp"]});
    let mut rows = Vec::new();

    let (timer, _) = measure(200_000, |_| {
        black_box(());
    });
    for _ in 0..100_000 {
        black_box(gate.check("agent-7", "tool.exec.ls", &ctx));
    }
    let (m, p) = measure(1_000_000, |_| {
        black_box(gate.check(black_box("agent-7"), black_box("tool.exec.ls"), &ctx));
    });
    rows.push((
        "CapabilityGate::check, permit (exact agent)".to_string(),
        m,
        p,
        "<= 1 µs median",
    ));
    let (m, p) = measure(1_000_000, |_| {
        black_box(gate.check(black_box("worker-3"), black_box("tool.exec.ls"), &ctx));
    });
    rows.push((
        "CapabilityGate::check, permit (glob agent)".into(),
        m,
        p,
        "<= 1 µs median",
    ));
    let (m, p) = measure(300_000, |_| {
        black_box(gate.check(black_box("agent-7"), black_box("tool.exec.rm"), &ctx));
    });
    rows.push((
        "CapabilityGate::check, deny (+ unsigned receipt)".into(),
        m,
        p,
        "-",
    ));

    let tmp = tempfile::tempdir().expect("tempdir");
    let key = SigningKey::from_bytes(&[5; 32]);
    let cfg = ChainConfig {
        signing_key: Some(key),
        ..ChainConfig::default()
    };
    let (chain, _) = ChainManager::open(tmp.path(), cfg).expect("chain");
    let chain = Arc::new(chain);
    let gate = Arc::new(gate);
    // New context every time. Nothing is signed per decision: the chain
    // signs one tree head per commit.
    let chained = ChainedGate::new(gate, chain.clone());
    let (m, p) = measure(50_000, |i| {
        let c = json!({"cmd": "ls", "n": i});
        black_box(chained.check(black_box("agent-7"), black_box("tool.exec.ls"), &c));
    });
    rows.push((
        "ChainedGate::check, varying contexts (canonical JSON + buffered append)".into(),
        m,
        p,
        "-",
    ));
    let (m, p) = measure(50_000, |_| {
        black_box(chained.check(black_box("agent-7"), black_box("tool.exec.ls"), &ctx));
    });
    rows.push(("ChainedGate::check, repeated context".into(), m, p, "-"));
    // Each decision is individually provable once its head is durable.
    chain.sync().expect("sync");
    let n = chain.len();
    let (m, p) = measure(20_000, |i| {
        let seq = n - 1 - (i as u64 % 4000);
        black_box(weft_gate::decision_receipt(&chain, seq).expect("receipt"));
    });
    rows.push((
        "decision_receipt (inclusion proof + durable head) of a recent decision".into(),
        m,
        p,
        "-",
    ));
    chain.shutdown().expect("shutdown");

    println!();
    println!("| metric | value | goal |");
    println!("|---|---|---|");
    for (name, m, p, goal) in rows {
        println!("| {name} | median {m:.0} ns, p99 {p:.0} ns | {goal} |");
    }
    println!("| timer overhead (included above) | median {timer:.0} ns | - |");
}
