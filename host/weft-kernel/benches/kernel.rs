//! `cargo bench -p weft-kernel`: spawn latency and rate, agent-to-agent
//! message throughput, and memory per idle agent, with real components.
//!
//! `KERNEL_BENCH_PROFILE_SPAWN=N` makes only N detached spawns (each
//! running, then stopped) and prints nothing, for a profiler.

use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use common::Ops;
use serde_json::json;
use weft_kernel::{
    Capabilities, IpcScope, Kernel, KernelConfig, MessageTarget, Payload, Principal, ProcessState,
    Spawn, SpawnRequest,
};

/// The allocator `weaver` runs the kernel with.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use weft_testkit::memory::resident_bytes as rss_bytes;

fn all_ipc() -> Capabilities {
    Capabilities {
        ipc: IpcScope::All,
        ..Capabilities::default()
    }
}

async fn pair(
    k: &Kernel,
    probe: &weft_runtime::LoadedComponent,
    tag: &str,
    rounds: u64,
) -> tokio::sync::mpsc::Receiver<weft_kernel::KernelMessage> {
    let topic = format!("{tag}.done");
    let done = k.subscribe(&topic).await;
    let mut pong = SpawnRequest::new(format!("{tag}-pong"), probe.clone());
    pong.config = json!({"mode": "pong"});
    pong.capabilities = all_ipc();
    k.spawn(pong).await.expect("pong");
    let mut ping = SpawnRequest::new(format!("{tag}-ping"), probe.clone());
    ping.config = json!({"mode": "ping", "peer": format!("{tag}-pong"), "rounds": rounds, "done_topic": topic});
    ping.capabilities = all_ipc();
    k.spawn(ping).await.expect("ping");
    done
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // On a worker thread, where the kernel's callers (agent tasks, control
    // connections) are: the main thread would pay a cross-thread wake-up
    // for every task it hands to the scheduler.
    tokio::spawn(bench()).await.expect("bench");
}

/// A kernel on a fresh state dir (kept alive with it) and the probe agent.
async fn boot(config: KernelConfig) -> (Kernel, weft_runtime::LoadedComponent, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config;
    config.kernel.cache_dir = Some(weft_testkit::shared_cache_dir());
    let k = Kernel::boot(config, dir.path()).await.expect("boot");
    let probe = k
        .load_component(&weft_testkit::guest("probe"))
        .expect("probe");
    (k, probe, dir)
}

async fn bench() {
    let (k, probe, _dir) = boot(KernelConfig::default()).await;
    let mut rows: Rows = Vec::new();
    if let Ok(n) = std::env::var("KERNEL_BENCH_PROFILE_SPAWN") {
        // Only N detached spawns, stopped in turn, for a profiler.
        for i in 0..n.parse::<u32>().unwrap_or(20_000) {
            let req = SpawnRequest::new(format!("p{i}"), probe.clone());
            let pid = k
                .act(&Principal::Operator, Spawn::detached(req))
                .await
                .expect("spawn");
            while k.inspect(pid).map(|p| p.state) != Some(ProcessState::Running) {
                tokio::task::yield_now().await;
            }
            k.stop(pid).await.expect("stop");
        }
        return;
    }

    // Spawn as the caller sees it: gated, recorded and registered; the
    // instance and its `init` come up in the agent's own task.
    let n = 2_000;
    // Latency: one at a time, each up and running before the next, so no
    // other agent's `init` shares the cores with the call measured.
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let req = SpawnRequest::new(format!("l{i}"), probe.clone());
        let t = Instant::now();
        let pid = k
            .act(&Principal::Operator, Spawn::detached(req))
            .await
            .expect("spawn");
        lat.push(t.elapsed());
        while k.inspect(pid).map(|p| p.state) != Some(ProcessState::Running) {
            tokio::task::yield_now().await;
        }
    }
    for p in k.processes() {
        k.stop(p.pid).await.expect("stop");
    }
    // Rate: back to back, `init`s running beside the spawns.
    let start = Instant::now();
    for i in 0..n {
        let req = SpawnRequest::new(format!("d{i}"), probe.clone());
        k.act(&Principal::Operator, Spawn::detached(req))
            .await
            .expect("spawn");
    }
    let total = start.elapsed();
    while k
        .processes()
        .iter()
        .any(|p| p.state != ProcessState::Running)
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let up = start.elapsed();
    lat.sort();
    let med = lat[n / 2];
    rows.push((
        "spawn latency (detached: gate + chain + registration), median".into(),
        format!("{:.1} µs", med.as_secs_f64() * 1e6),
        "≤ 10 µs".into(),
        Some(med <= Duration::from_micros(10)),
    ));
    rows.push((
        format!("spawn rate (detached), and {n} agents up and running"),
        format!(
            "{:.0} /s, all running after {:.1} ms",
            n as f64 / total.as_secs_f64(),
            up.as_secs_f64() * 1e3
        ),
        "—".into(),
        None,
    ));
    for p in k.processes() {
        k.stop(p.pid).await.expect("stop");
    }

    // spawn_and_wait: returns once `init` has run (what app start needs).
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        k.spawn(SpawnRequest::new(format!("s{i}"), probe.clone()))
            .await
            .expect("spawn");
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    lat.sort();
    let med = lat[n / 2];
    rows.push((
        "spawn_and_wait latency, median (gate + chain + instantiate + init)".into(),
        format!("{:.1} µs", med.as_secs_f64() * 1e6),
        "≤ 30 µs".into(),
        Some(med <= Duration::from_micros(30)),
    ));
    rows.push((
        "spawn_and_wait rate".into(),
        format!("{:.0} /s", n as f64 / total.as_secs_f64()),
        "—".into(),
        None,
    ));
    for p in k.processes() {
        k.stop(p.pid).await.expect("stop");
    }

    // The same with a warm pool slot: spawn, stop, spawn again (what a
    // kernel with churn sees; the first figure pays fresh memory faults).
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let pid = k
            .spawn(SpawnRequest::new(format!("c{i}"), probe.clone()))
            .await
            .expect("spawn");
        lat.push(t.elapsed());
        k.stop(pid).await.expect("stop");
    }
    lat.sort();
    let warm = lat[n / 2];
    rows.push((
        "spawn_and_wait latency, median, reusing a freed pool slot (spawn + stop in turn)".into(),
        format!("{:.1} µs", warm.as_secs_f64() * 1e6),
        "≤ 30 µs".into(),
        Some(warm <= Duration::from_micros(30)),
    ));

    // Throughput: one ping-pong pair, then four pairs at once.
    for pairs in [1u64, 4] {
        let rounds = 100_000 / pairs;
        let mut dones = Vec::new();
        for p in 0..pairs {
            dones.push(pair(&k, &probe, &format!("t{pairs}-{p}"), rounds).await);
        }
        let start = Instant::now();
        for p in 0..pairs {
            let ping = k.pid_of(&format!("t{pairs}-{p}-ping")).expect("ping");
            k.send(MessageTarget::Agent(ping), Payload::Text("start".into()))
                .await
                .expect("start");
        }
        for d in &mut dones {
            d.recv().await.expect("done");
        }
        let took = start.elapsed();
        let msgs = (pairs * rounds * 2) as f64;
        let rate = msgs / took.as_secs_f64();
        rows.push((
            format!("agent→agent messages, {pairs} ping-pong pair(s), each recorded on the chain"),
            format!("{rate:.0} msgs/s"),
            "≥ 200,000".into(),
            Some(rate >= 200_000.0),
        ));
        for p in k.processes() {
            k.stop(p.pid).await.expect("stop");
        }
    }

    // Memory per idle agent, and what stays resident once they are gone:
    // freed pool slots keep up to `[runtime] keep_resident_kib` of dirtied
    // memory for fast reuse. Measured with the default, then with 0 on a
    // fresh kernel (the first one shut down and dropped).
    idle_memory(&k, &probe, "keep_resident_kib = 1024 (default)", &mut rows).await;
    k.shutdown().await.expect("shutdown");
    drop((k, probe));
    let mut config = KernelConfig::default();
    config.runtime.keep_resident_kib = 0;
    let (k, probe, _dir2) = boot(config).await;
    idle_memory(&k, &probe, "keep_resident_kib = 0", &mut rows).await;
    k.shutdown().await.expect("shutdown");

    println!("\n## weft-kernel\n");
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

type Rows = Vec<(String, String, String, Option<bool>)>;

/// RSS growth over 10,000 idle agents on `k`, what is still held after
/// they stop, and spawn_and_wait on a reused slot with this kernel's
/// keep-resident setting (`label`).
async fn idle_memory(
    k: &Kernel,
    probe: &weft_runtime::LoadedComponent,
    label: &str,
    rows: &mut Rows,
) {
    let count = 10_000;
    let before = rss_bytes();
    for i in 0..count {
        k.spawn(SpawnRequest::new(format!("idle{i}"), probe.clone()))
            .await
            .expect("spawn idle");
    }
    let after = rss_bytes();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let total = after.saturating_sub(before);
    rows.push((
        format!("memory per idle agent ({count} live), {label}"),
        format!(
            "{:.1} KiB ({:.0} MiB total)",
            total as f64 / count as f64 / 1024.0,
            mib(total)
        ),
        "10,000 in ≤ 512 MiB".into(),
        Some(mib(total) <= 512.0),
    ));
    for p in k.processes() {
        k.stop(p.pid).await.expect("stop");
    }
    let gone = rss_bytes();
    rows.push((
        format!("resident after stopping all {count} vs before spawning, {label}"),
        format!(
            "{:.0} → {:.0} MiB ({:.2}x)",
            mib(before),
            mib(gone),
            gone as f64 / before as f64
        ),
        "≤ 1.2x".into(),
        Some(gone as f64 <= before as f64 * 1.2),
    ));
    let mut lat = Vec::with_capacity(500);
    for i in 0..500 {
        let t = Instant::now();
        let pid = k
            .spawn(SpawnRequest::new(format!("r{i}"), probe.clone()))
            .await
            .expect("spawn");
        lat.push(t.elapsed());
        k.stop(pid).await.expect("stop");
    }
    lat.sort();
    rows.push((
        format!("spawn_and_wait on a reused slot, median, {label}"),
        format!("{:.1} µs", lat[250].as_secs_f64() * 1e6),
        "≤ 30 µs".into(),
        Some(lat[250] <= Duration::from_micros(30)),
    ));
}
