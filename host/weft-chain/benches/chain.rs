//! Chain benchmark (plain main, no criterion). Prints a markdown table:
//! buffered and durable (group commit) append rates, fdatasync latency and
//! the ceiling it implies, streaming verification rate and peak memory,
//! proof generation, bytes per `ipc.send` record, and boot time / resident
//! memory / verify memory at growing chain sizes (10k .. 10M events; set
//! `WEFT_CHAIN_BENCH_MAX` to stop earlier).
//!
//! Memory figures come from child processes (this binary re-executed), so
//! each starts from a clean heap: `VmHWM` is the peak resident set.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_chain::{ChainConfig, ChainManager, SigningKey};

const CHILD: &str = "WEFT_CHAIN_BENCH_CHILD";

fn config() -> ChainConfig {
    ChainConfig {
        chain_id: 1,
        signing_key: Some(SigningKey::from_bytes(&[9; 32])),
        ..ChainConfig::default()
    }
}

/// What the kernel records for one message (`ipc.send`, see
/// host/weft-kernel/src/ipc/actions.rs), as CBOR through serde_json.
fn ipc_send(n: u64) -> serde_json::Value {
    serde_json::json!({
        "id": n,
        "from": 7,
        "to": { "pid": 8 },
        "to_pid": 8,
        "payload": "json",
        "len": 42,
        "correlation_id": null,
        "delivered": 1,
    })
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

/// Peak and current resident set of this process, in MiB.
fn rss_mib() -> (f64, f64) {
    use weft_testkit::memory::{mib, peak_resident_bytes, resident_bytes};
    (mib(peak_resident_bytes()), mib(resident_bytes()))
}

fn child(args: &[String]) {
    let dir = Path::new(&args[1]);
    match args[0].as_str() {
        "boot" => {
            let t = Instant::now();
            let (chain, report) = ChainManager::open(dir, config()).expect("open");
            let el = t.elapsed();
            // Appends and reads keep memory flat too.
            for i in 0..20_000u64 {
                chain
                    .append("agent-7", "ipc.send", &ipc_send(i))
                    .expect("append");
            }
            chain.sync().expect("sync");
            let len = chain.len();
            let _ = chain.get(len / 2).expect("read an old event");
            let (_, rss) = rss_mib();
            println!(
                "{} {} {} {}",
                el.as_secs_f64() * 1e3,
                rss,
                report.replayed_events,
                report.bytes_read
            );
            // Leave the chain as it was (the next size appends more).
            chain.shutdown().expect("shutdown");
        }
        "verify" => {
            let key = SigningKey::from_bytes(&[9; 32]).verifying_key();
            let t = Instant::now();
            let r = weft_chain::verify_dir(dir, &key);
            let el = t.elapsed().as_secs_f64();
            assert!(r.ok, "{r:?}");
            let (hwm, _) = rss_mib();
            println!("{} {} {}", r.events, el, hwm);
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn run_child(mode: &str, dir: &Path) -> Vec<f64> {
    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
        .env(CHILD, format!("{mode} {}", dir.display()))
        .output()
        .expect("child");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|v| v.parse().expect("number"))
        .collect()
}

/// Appends buffered `ipc.send` events until the chain holds `n`.
fn grow(dir: &Path, n: u64) {
    let (chain, _) = ChainManager::open(dir, config()).expect("open");
    let mut i = chain.len();
    while i < n {
        chain
            .append("agent-7", "ipc.send", &ipc_send(i))
            .expect("append");
        i += 1;
    }
    chain.shutdown().expect("shutdown");
}

fn main() {
    if let Ok(a) = std::env::var(CHILD) {
        let args: Vec<String> = a.splitn(2, ' ').map(str::to_string).collect();
        child(&args);
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut rows: Vec<(String, String, String)> = Vec::new();

    // 1. Buffered appends from one thread (ipc.send records).
    let (chain, _) = ChainManager::open(tmp.path().join("buffered"), config()).expect("open");
    for n in 0..20_000 {
        chain
            .append("agent-7", "ipc.send", &ipc_send(n))
            .expect("append");
    }
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < Duration::from_millis(1500) {
        for _ in 0..10_000 {
            chain
                .append("agent-7", "ipc.send", &ipc_send(n))
                .expect("append");
            n += 1;
        }
    }
    let buffered = n as f64 / t.elapsed().as_secs_f64();
    rows.push((
        "append/s, buffered (1 thread, ipc.send records)".into(),
        fmt_rate(buffered),
        ">= 1,000,000".into(),
    ));
    let t = Instant::now();
    chain.sync().expect("sync");
    let drain = t.elapsed();
    let len = chain.len();
    let st = chain.status();

    // 2. Proof generation: recent events (in memory) and random old ones
    //    (index + log on disk, page cache warm).
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut rnd = |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    let head = chain.durable_head().expect("head");
    let t = Instant::now();
    let mut proofs = 0u64;
    while t.elapsed() < Duration::from_millis(1000) {
        for _ in 0..1000 {
            let s = rnd(head.tree_size);
            std::hint::black_box(chain.prove(s).expect("prove"));
            proofs += 1;
        }
    }
    let prove_old = proofs as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut proofs = 0u64;
    while t.elapsed() < Duration::from_millis(1000) {
        for _ in 0..1000 {
            let s = head.tree_size - 1 - rnd(2000);
            std::hint::black_box(chain.prove(s).expect("prove"));
            proofs += 1;
        }
    }
    let prove_new = proofs as f64 / t.elapsed().as_secs_f64();
    let r = chain.prove(rnd(head.tree_size)).expect("prove");
    let key = SigningKey::from_bytes(&[9; 32]).verifying_key();
    let t = Instant::now();
    for _ in 0..2000 {
        r.verify(&key).expect("receipt");
    }
    let check = t.elapsed().as_secs_f64() / 2000.0;
    rows.push((
        format!(
            "proofs/s, random event of {} (index + log from page cache)",
            fmt_rate(head.tree_size as f64)
        ),
        fmt_rate(prove_old),
        ">= 100,000".into(),
    ));
    rows.push((
        "proofs/s, one of the last 2,000 events".into(),
        fmt_rate(prove_new),
        ">= 100,000".into(),
    ));
    rows.push((
        format!(
            "receipt check (Ed25519 + {} hashes), offline",
            r.proof.len()
        ),
        format!("{:.1} µs", check * 1e6),
        "-".into(),
    ));
    chain.shutdown().expect("shutdown");
    drop(chain);

    // 3. Bytes per record on disk.
    let dir = tmp.path().join("buffered");
    let (mut log, mut idx) = (0u64, 0u64);
    for e in std::fs::read_dir(&dir).expect("dir") {
        let p = e.expect("entry").path();
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        match p.extension().and_then(|e| e.to_str()) {
            Some("seg") => log += len,
            Some("idx") | Some("kinds") => idx += len,
            _ => {}
        }
    }
    let payload = weft_chain::to_cbor(&ipc_send(123_456)).expect("cbor").len();
    rows.push((
        format!(
            "bytes per ipc.send record in the log ({} events, {} heads; payload {payload} B CBOR)",
            fmt_rate(len as f64),
            st.heads
        ),
        format!("{:.1}", log as f64 / len as f64),
        "<= 150".into(),
    ));
    rows.push((
        "index bytes per event (offsets + tree nodes)".into(),
        format!("{:.1}", idx as f64 / len as f64),
        "-".into(),
    ));

    // 4. Streaming verification of that directory, one core, in a child.
    let v = run_child("verify", &dir);
    rows.push((
        format!(
            "verify/s, streaming from disk, one core ({} events)",
            fmt_rate(v[0])
        ),
        fmt_rate(v[0] / v[1]),
        ">= 2,000,000".into(),
    ));
    rows.push((
        "verify peak resident memory".into(),
        format!("{:.1} MiB", v[2]),
        "<= 64 MiB".into(),
    ));

    // 5. Raw fdatasync latency on this disk.
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

    // 6. Durable appends, 64 writer threads, group commit.
    let writers = 64u32;
    let (chain, _) = ChainManager::open(tmp.path().join("durable"), config()).expect("open");
    let chain = Arc::new(chain);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let fsyncs_before = chain.status().fsyncs;
    let t = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|_| {
            let (chain, stop, count) = (chain.clone(), stop.clone(), count.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    chain
                        .append_durable("agent-7", "ipc.send", &ipc_send(n))
                        .expect("durable");
                    n += 1;
                }
                count.fetch_add(n, Ordering::Relaxed);
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
        format!("append/s, durable ({writers} writers, group commit, a signed head per commit)"),
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
    drop(chain);

    // 7. Boot time, resident memory and verify memory as the chain grows.
    let max: u64 = std::env::var("WEFT_CHAIN_BENCH_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let grow_dir = tmp.path().join("grow");
    let mut size = 10_000u64;
    while size <= max {
        grow(&grow_dir, size);
        let b = run_child("boot", &grow_dir);
        let v = run_child("verify", &grow_dir);
        rows.push((
            format!(
                "at {} events: boot / resident after boot + 20k appends / verify peak",
                fmt_rate(size as f64)
            ),
            format!(
                "{:.2} ms ({} events, {} KiB replayed) / {:.1} MiB / {:.1} MiB ({} events/s)",
                b[0],
                b[2],
                (b[3] / 1024.0).round(),
                b[1],
                v[2],
                fmt_rate(v[0] / v[1])
            ),
            "boot <= 20 ms, memory flat".into(),
        ));
        size *= 10;
    }

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
