//! Soak: a long run of governed calls (each through the gate, recorded on
//! the chain, answered by a real component) with resident memory flat
//! after warm-up. Alone in its binary so that the process's memory is this
//! kernel's (cargo test runs the tests of one binary in one process).
//!
//! `just test` makes 40,000 calls; `just load` (`WEFT_LOAD=full`)
//! 1,000,000. The figures are printed (`--nocapture`) for
//! docs/reliability.md.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use weft_e2e::guest;
use weft_kernel::ipc::SendMessage;
use weft_kernel::{
    Capabilities, IpcScope, Kernel, KernelConfig, MessageTarget, Payload, Principal, SendOutcome,
    Spawn, SpawnRequest,
};

fn rss_kib() -> u64 {
    weft_testkit::memory::resident_bytes() / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_run_of_governed_calls_keeps_memory_flat() {
    let calls: u64 = match std::env::var("WEFT_LOAD").as_deref() {
        Ok("full") => 1_000_000,
        _ => 40_000,
    };
    // In flight at once: enough to keep both cores busy.
    const IN_FLIGHT: u64 = 8;
    let dir = tempfile::tempdir().unwrap();
    let mut config = KernelConfig::default();
    config.kernel.cache_dir = Some(weft_testkit::shared_cache_dir());
    let k = Kernel::boot(config, dir.path()).await.expect("boot");
    let c = k.load_component(&guest("probe")).unwrap();
    let mut req = SpawnRequest::new("echo", c);
    req.capabilities = Capabilities {
        ipc: IpcScope::All,
        ..Capabilities::default()
    };
    k.act(&Principal::Operator, Spawn::new(req)).await.unwrap();
    let events0 = k.chain().len();

    // Warm-up: a quarter of the run, at least well past the chain's
    // in-memory window (4,096 events) and the kernel log's ring.
    let warm = (calls / 4).max(12_000);
    let samples = 20;
    let step = (calls - warm) / samples;
    let mut rss = Vec::new();
    let start = Instant::now();
    let mut done = 0u64;
    let mut warm_at = None;
    while done < calls {
        let batch = IN_FLIGHT.min(calls - done);
        let mut set = tokio::task::JoinSet::new();
        for i in 0..batch {
            let k = k.clone();
            let text = format!("call {}", done + i);
            set.spawn(async move {
                let send = SendMessage::new(
                    MessageTarget::Named("echo".into()),
                    Payload::Text(text.clone()),
                )
                .wait(Duration::from_secs(30));
                match k.act(&Principal::Operator, send).await.unwrap() {
                    SendOutcome::Replied(p) => assert_eq!(p, Payload::Text(text)),
                    other => panic!("expected a reply, got {other:?}"),
                }
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
        done += batch;
        if done >= warm && warm_at.is_none() {
            warm_at = Some((rss_kib(), Instant::now()));
        }
        if done > warm && step > 0 && (done - warm) % step < IN_FLIGHT {
            rss.push((done, rss_kib()));
        }
    }
    let took = start.elapsed();
    let (warm_rss, warm_t) = warm_at.unwrap();
    let end_rss = rss_kib();
    let peak = rss
        .iter()
        .map(|r| r.1)
        .max()
        .unwrap_or(end_rss)
        .max(end_rss);
    let events = k.chain().len() - events0;
    let rate = (calls - warm) as f64 / warm_t.elapsed().as_secs_f64();
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "soak: {calls} governed calls ({events} chain events) in {:.1} s, {rate:.0} calls/s after warm-up; \
         RSS {:.1} MiB after {warm} warm-up calls, {:.1} MiB peak, {:.1} MiB at the end",
        took.as_secs_f64(),
        mib(warm_rss),
        mib(peak),
        mib(end_rss),
    );
    println!(
        "soak samples (calls, RSS MiB): {}",
        rss.iter()
            .map(|(n, r)| format!("({n}, {:.1})", mib(*r)))
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert!(
        events >= calls,
        "{calls} calls but only {events} chain events"
    );
    // Flat: growth after warm-up stays under 16 MiB however long the run
    // (a leak of 600 bytes a call fails the 28,000 calls after warm-up in
    // `just test`; 25 bytes a call fails the full run).
    let growth = peak.saturating_sub(warm_rss);
    let budget = 16 << 10;
    assert!(
        growth < budget,
        "resident memory grew {:.1} MiB after warm-up ({:.1} -> {:.1} MiB)",
        mib(growth),
        mib(warm_rss),
        mib(peak)
    );
    k.shutdown().await.unwrap();
}
