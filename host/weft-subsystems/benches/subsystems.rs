//! `cargo bench -p weft-subsystems`: governed tool invocations through the
//! whole path, cold boot with every subsystem component, and instantiation
//! of each language's tool from the compile cache.

use std::time::{Duration, Instant};

use weft_kernel::tools::{InvokeTool, RegisterTool, ToolEntry};
use weft_kernel::{Kernel, KernelConfig, Principal};
use weft_runtime::{Extensions, Grants, Limits};
use weft_subsystems::governance::GovernanceUnit;
use weft_testkit::{dist_guest, guest, shared_cache_dir};

fn config() -> KernelConfig {
    let mut c = KernelConfig::default();
    c.kernel.cache_dir = Some(shared_cache_dir());
    c.runtime.pool_instances = 1_000;
    c
}

async fn boot(c: KernelConfig, dir: &std::path::Path) -> Kernel {
    Kernel::boot_with(c, dir, weft_subsystems::units())
        .await
        .expect("boot")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn governed_calls(varying: bool) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = boot(config(), dir.path()).await;
    let wc = k.load_component(&guest("wordcount")).expect("wordcount");
    let op = Principal::Operator;
    k.act(&op, RegisterTool(ToolEntry::new("wordcount", wc)))
        .await
        .expect("register");
    let input = r#"{"text":"the quick brown fox"}"#;
    for _ in 0..500 {
        k.act(&op, InvokeTool::new("wordcount", input))
            .await
            .expect("warm-up");
    }
    let n = 20_000;
    let inputs: Vec<String> = (0..n)
        .map(|i| match varying {
            true => format!(r#"{{"text":"the quick brown fox {i}"}}"#),
            false => input.to_string(),
        })
        .collect();
    let t = Instant::now();
    for input in &inputs {
        k.act(&op, InvokeTool::new("wordcount", input))
            .await
            .expect("invoke");
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    k.shutdown().await.expect("shutdown");
    rate
}

async fn governance_costs() -> (Duration, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = boot(config(), dir.path()).await;
    let g = k
        .subsystem::<GovernanceUnit>()
        .and_then(|u| u.governance())
        .expect("governance installed");
    let gate = weft_gate::GovernanceGate::new(g.clone(), "prod");
    let ctx = serde_json::json!({ "effect": { "risk": 0.3, "privacy": 0.2 } });
    for _ in 0..200 {
        weft_gate::GateBackend::check(&gate, "a", "tool.exec.calc", &ctx);
    }
    let checks = (0..2000)
        .map(|_| {
            let t = Instant::now();
            weft_gate::GateBackend::check(&gate, "a", "tool.exec.calc", &ctx);
            t.elapsed()
        })
        .collect();
    let policy = include_str!("../../../components/subsystems/governance/default-policy.toml");
    let reloads = (0..20)
        .map(|_| {
            let t = Instant::now();
            g.reload_policy(policy).expect("reload");
            t.elapsed()
        })
        .collect();
    k.shutdown().await.expect("shutdown");
    (median(checks), median(reloads))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut rows: Vec<(String, String, String, Option<bool>)> = Vec::new();

    // Warm the compile cache, then time cold boots (new state dir each).
    let warm = tempfile::tempdir().expect("tempdir");
    let k = boot(config(), warm.path()).await;
    for unit in ["governance", "cron", "health"] {
        let status = k.unit(unit).expect(unit).status().to_string();
        assert!(!status.contains("UNAVAILABLE"), "{unit}: {status}");
    }
    k.shutdown().await.expect("shutdown");
    let mut boots = Vec::new();
    for _ in 0..7 {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Instant::now();
        let k = boot(config(), dir.path()).await;
        boots.push(t.elapsed());
        k.shutdown().await.expect("shutdown");
    }
    let boot = median(boots);
    rows.push((
        "cold boot to Running + governance, cron, health loaded from the cache (median of 7)"
            .into(),
        format!("{:.1} ms", boot.as_secs_f64() * 1e3),
        "≤ 20 ms".into(),
        Some(boot <= Duration::from_millis(20)),
    ));

    // Governed tool invocations on one core: gate (capability + governance
    // component, decision recorded) -> tool component -> tool.exec on the
    // chain. Every decision is provable by the chain's signed tree heads;
    // the second row varies the input so no decision repeats.
    for varying in [false, true] {
        let rate = governed_calls(varying).await;
        rows.push((
            format!(
                "governed tool invocations/s, one core (gate + governance component + tool component + chain){}",
                if varying { ", varying inputs" } else { "" }
            ),
            format!("{rate:.0} /s ({:.1} µs each)", 1e6 / rate),
            "≥ 50,000 /s".into(),
            Some(rate >= 50_000.0),
        ));
    }

    // One governance decision through the component, and a policy reload
    // (a fresh instance that parses the policy).
    let (check, reload) = governance_costs().await;
    rows.push((
        "governance check through the component (GovernanceGate::check), median".into(),
        format!("{:.1} µs", check.as_secs_f64() * 1e6),
        "—".into(),
        None,
    ));
    rows.push((
        "governance policy reload (fresh instance + policy parse), median".into(),
        format!("{:.2} ms", reload.as_secs_f64() * 1e3),
        "—".into(),
        None,
    ));

    // Instantiation of each language's tool from the cache.
    let rt = weft_runtime::Runtime::new(weft_runtime::RuntimeConfig {
        cache_dir: Some(shared_cache_dir()),
        ..Default::default()
    })
    .expect("runtime");
    for (lang, path) in [
        ("Rust", guest("wordcount")),
        ("C", dist_guest("wordcount-c.wasm")),
        ("Python", dist_guest("wordcount-py.wasm")),
        ("JavaScript", dist_guest("wordcount-js.wasm")),
    ] {
        let bytes = std::fs::read(&path).expect("read");
        let t = Instant::now();
        let c = rt.load(&bytes).expect("load");
        let load = t.elapsed();
        let pre = rt.tool_pre(&c).expect("pre");
        let limits = Limits::default();
        let mut samples = Vec::new();
        for _ in 0..51 {
            let t = Instant::now();
            let mut store = rt
                .new_store(&limits, &Grants::default(), Extensions::default())
                .expect("store");
            let tool = pre
                .instantiate_async(&mut store)
                .await
                .expect("instantiate");
            samples.push(t.elapsed());
            drop((tool, store));
        }
        rows.push((
            format!(
                "{lang} tool ({} KB): cache load / instantiate median",
                bytes.len() / 1024
            ),
            format!(
                "{:.2} ms / {:.1} µs",
                load.as_secs_f64() * 1e3,
                median(samples).as_secs_f64() * 1e6
            ),
            "—".into(),
            None,
        ));
    }

    println!("\n## weft-subsystems\n");
    println!("| metric | value | goal | met |");
    println!("|---|---|---|---|");
    for (m, v, g, ok) in rows {
        let met = match ok {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        println!("| {m} | {v} | {g} | {met} |");
    }
}
