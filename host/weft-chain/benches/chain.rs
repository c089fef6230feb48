//! Chain throughput benchmark (plain main, no criterion). Prints a markdown
//! table: buffered append/s, durable append/s with group commit, fdatasync
//! latency and the ceiling it implies, and verify/s.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_chain::{ChainConfig, ChainManager, SigningKey};

fn config() -> ChainConfig {
    ChainConfig {
        chain_id: 1,
        signing_key: Some(SigningKey::from_bytes(&[9; 32])),
        ..ChainConfig::default()
    }
}

/// A typical small kernel event payload.
#[derive(serde::Serialize)]
struct Payload<'a> {
    agent: &'a str,
    action: &'a str,
    n: u64,
}

fn fmt_rate(r: f64) -> String {
    let s = format!("{:.0}", r);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut rows: Vec<(String, String, String)> = Vec::new();

    // 1. Buffered appends from one thread.
    let (chain, _) = ChainManager::open(tmp.path().join("buffered"), config()).expect("open");
    for n in 0..20_000 {
        let p = Payload {
            agent: "agent-7",
            action: "tool.exec.ls",
            n,
        };
        chain.append("bench", "bench.event", &p).expect("append");
    }
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < Duration::from_millis(1500) {
        for _ in 0..10_000 {
            let p = Payload {
                agent: "agent-7",
                action: "tool.exec.ls",
                n,
            };
            chain.append("bench", "bench.event", &p).expect("append");
            n += 1;
        }
    }
    let buffered = n as f64 / t.elapsed().as_secs_f64();
    rows.push((
        "append/s, buffered (1 thread)".into(),
        fmt_rate(buffered),
        ">= 1,000,000".into(),
    ));
    let t = Instant::now();
    chain.sync().expect("sync");
    let drain = t.elapsed();

    // 2. In-memory verification over everything just appended.
    let mut best = f64::MAX;
    let mut events = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let r = chain.verify_integrity();
        let el = t.elapsed().as_secs_f64();
        assert!(r.ok, "{r:?}");
        events = r.events;
        best = best.min(el);
    }
    let verify_rate = events as f64 / best;
    rows.push((
        format!(
            "verify/s (in-memory, {} events, all cores)",
            fmt_rate(events as f64)
        ),
        fmt_rate(verify_rate),
        ">= 2,000,000".into(),
    ));
    chain.shutdown().expect("shutdown");
    drop(chain);

    // 3. Raw fdatasync latency on this disk.
    let probe = tmp.path().join("fsync-probe");
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&probe)
        .expect("probe");
    let mut lat = Vec::new();
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(1000) {
        let s = Instant::now();
        f.write_all(&[0u8; 256]).expect("write");
        f.sync_data().expect("fdatasync");
        lat.push(s.elapsed());
    }
    lat.sort();
    let mean = lat.iter().sum::<Duration>() / lat.len() as u32;
    let p50 = lat[lat.len() / 2];

    // 4. Durable appends, 64 writer threads, group commit.
    let writers = 64u32;
    let (chain, _) = ChainManager::open(tmp.path().join("durable"), config()).expect("open");
    let chain = Arc::new(chain);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let fsyncs_before = chain.status().fsyncs;
    let t = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let (chain, stop, count) = (chain.clone(), stop.clone(), count.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let p = Payload {
                        agent: "agent-7",
                        action: "ipc.send",
                        n,
                    };
                    chain
                        .append_durable("bench", "bench.durable", &p)
                        .expect("durable");
                    n += 1;
                }
                count.fetch_add(n, Ordering::Relaxed);
                let _ = w;
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(2000));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("writer thread");
    }
    let el = t.elapsed().as_secs_f64();
    let total = count.load(Ordering::Relaxed);
    let fsyncs = chain.status().fsyncs - fsyncs_before;
    let durable = total as f64 / el;
    let ceiling = f64::from(writers) / mean.as_secs_f64();
    rows.push((
        format!("append/s, durable ({writers} writers, group commit)"),
        fmt_rate(durable),
        ">= 100,000".into(),
    ));
    rows.push((
        "events per fdatasync (group size)".into(),
        format!("{:.1}", total as f64 / fsyncs.max(1) as f64),
        "-".into(),
    ));
    rows.push((
        "fdatasync latency (mean / p50)".into(),
        format!(
            "{:.1} µs / {:.1} µs",
            mean.as_secs_f64() * 1e6,
            p50.as_secs_f64() * 1e6
        ),
        "-".into(),
    ));
    rows.push((
        format!("theoretical durable ceiling ({writers} ÷ mean fdatasync)"),
        fmt_rate(ceiling),
        "-".into(),
    ));
    rows.push((
        "drain of buffered backlog at sync()".into(),
        format!("{:.1} ms", drain.as_secs_f64() * 1e3),
        "-".into(),
    ));
    chain.shutdown().expect("shutdown");

    rows.push((
        "SHAKE-256 backend".into(),
        weft_chain::keccak_backend().into(),
        "-".into(),
    ));
    println!();
    println!("| metric | value | goal |");
    println!("|---|---|---|");
    for (m, v, g) in rows {
        println!("| {m} | {v} | {g} |");
    }
}
