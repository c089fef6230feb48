//! Crash safety: a child process appends durably from several threads and
//! reports every seq `append_durable` returned; the parent SIGKILLs it at
//! random moments and checks that every reported seq survived.
//!
//! After every kill the log still extends the head seen after the previous
//! kill (a consistency proof between the two signed heads verifies), and a
//! receipt for a durable event verifies offline.
//!
//! The child is this same test binary re-executed with an exact name filter
//! and an env var, which works under both `cargo test` and cargo-nextest.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use weft_chain::{ChainConfig, ChainManager};

const CHILD_ENV: &str = "WEFT_CHAIN_CRASH_CHILD_DIR";
const TEST_NAME: &str = "sigkill_never_loses_durable_appends";

fn config() -> ChainConfig {
    ChainConfig {
        chain_id: 9,
        // Small segments: kills also land in rotations.
        max_segment_bytes: 16 << 10,
        ..ChainConfig::default()
    }
}

fn child_main(dir: &str) -> ! {
    let report = |line: String| {
        let mut out = std::io::stdout().lock();
        // One write per line; a kill mid-line leaves no trailing newline.
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    };
    let chain = match ChainManager::open(dir, config()) {
        Ok((c, _)) => std::sync::Arc::new(c),
        Err(e) => {
            report(format!("ERROR open: {e}\n"));
            std::process::exit(3);
        }
    };
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let chain = chain.clone();
            std::thread::spawn(move || {
                for i in 0u64.. {
                    // Mix in buffered appends so torn buffered data shows up too.
                    if i % 3 == 0 {
                        if let Err(e) = chain.append("crash", "crash.buffered", &(t, i)) {
                            report(format!("ERROR append: {e}\n"));
                            return;
                        }
                    }
                    match chain.append_durable("crash", "crash.durable", &(t, i)) {
                        Ok(ev) => report(format!("DURABLE {}\n", ev.seq)),
                        Err(e) => {
                            report(format!("ERROR durable: {e}\n"));
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    std::process::exit(4);
}

#[test]
fn sigkill_never_loses_durable_appends() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child_main(&dir);
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::thread_rng();
    let mut total = 0usize;
    let mut truncations = 0usize;
    let mut prev_head: Option<weft_chain::SignedHead> = None;
    let rounds = 24;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut seqs = Vec::new();
            let mut errors = Vec::new();
            let mut r = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                if line.last() != Some(&b'\n') {
                    break; // cut off by the kill: not a complete report
                }
                let text = String::from_utf8_lossy(&line);
                if let Some(n) = text.trim().strip_prefix("DURABLE ") {
                    seqs.push(n.parse::<u64>().unwrap());
                } else if text.starts_with("ERROR") {
                    errors.push(text.to_string());
                }
            }
            (seqs, errors)
        });
        // Later rounds run longer so the chain has data to lose.
        let delay = rng.gen_range(5..=80);
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let (seqs, errors) = reader.join().unwrap();
        assert!(errors.is_empty(), "round {round}: child errors {errors:?}");

        let (chain, report) = ChainManager::open(dir.path(), config())
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        truncations += usize::from(report.truncated_bytes > 0);
        let verify = chain.verify_integrity();
        assert!(verify.ok, "round {round}: {verify:?}");
        let set: BTreeSet<u64> = seqs.iter().copied().collect();
        for s in &set {
            let ev = chain.get(*s).unwrap_or_else(|| {
                panic!("round {round}: durable seq {s} lost (len {})", chain.len())
            });
            assert_eq!(ev.kind, "crash.durable", "round {round}: seq {s}");
        }
        total += set.len();
        // The log only grew since the last kill: prove it between heads.
        let key = chain.public_key();
        let head = chain.durable_head().unwrap();
        if let Some(prev) = &prev_head {
            let p = chain.consistency(prev.tree_size, head.tree_size).unwrap();
            p.verify_heads(prev, &head, &key)
                .unwrap_or_else(|e| panic!("round {round}: consistency: {e}"));
        }
        if let Some(s) = set.iter().next_back() {
            chain.prove(*s).unwrap().verify(&key).unwrap();
        }
        prev_head = Some(head);
        chain.shutdown().unwrap();
    }
    eprintln!(
        "crash test: {rounds} kills, {total} durable seqs checked, {truncations} torn tails repaired, {:?}",
        started.elapsed()
    );
    assert!(total > 0, "the child never reported a durable append");
}
