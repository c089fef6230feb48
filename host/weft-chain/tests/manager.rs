//! Behaviour of the live chain: group commit, signed heads, reopen, lineage,
//! export, locking and recovery.

#![allow(clippy::unwrap_used)]

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Arc;

use serde_json::json;
use weft_chain::{
    segment_file_for, verify_dir, ChainConfig, ChainError, ChainManager, Durability, SigningKey,
};

fn key(b: u8) -> SigningKey {
    SigningKey::from_bytes(&[b; 32])
}

/// `window`: recent events kept in memory (older ones are read from disk).
fn cfg(window: usize) -> ChainConfig {
    ChainConfig {
        chain_id: 7,
        window_events: window,
        signing_key: Some(key(1)),
        ..ChainConfig::default()
    }
}

fn open_segment(dir: &std::path::Path) -> std::path::PathBuf {
    segment_file_for(dir, u64::MAX).unwrap().unwrap()
}

#[test]
fn genesis_then_appends_link_up() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, report) = ChainManager::open(dir.path(), cfg(1000)).unwrap();
    assert!(report.created);
    assert_eq!(report.events, 1);
    let g = chain.get(0).unwrap();
    assert_eq!(g.kind, "chain.genesis");
    assert_eq!(g.hash, g.compute_hash());
    let p = g.payload_json().unwrap();
    assert_eq!(p["chain_id"], 7);
    assert_eq!(
        p["public_key"],
        hex::encode(key(1).verifying_key().to_bytes())
    );
    let mut prev = g;
    for i in 0..20u32 {
        let ev = chain.append("test", "t.event", &json!({ "i": i })).unwrap();
        assert_eq!(ev.seq, u64::from(i) + 1);
        assert_eq!(ev.hash, ev.compute_hash());
        assert!(ev.timestamp_ns >= prev.timestamp_ns);
        prev = ev;
    }
    assert_eq!(chain.len(), 21);
    let r = chain.verify_integrity();
    assert!(r.ok, "{r:?}");
    assert_eq!(r.events, 21);
}

#[test]
fn reads_get_tail_range() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _) = ChainManager::open(dir.path(), cfg(1000)).unwrap();
    for i in 0..9u32 {
        chain.append("t", "k", &i).unwrap();
    }
    assert!(chain.get(10).is_none());
    assert_eq!(chain.get(3).unwrap().decode_payload::<u32>().unwrap(), 2);
    let tail: Vec<u64> = chain.tail(3).iter().map(|e| e.seq).collect();
    assert_eq!(tail, vec![7, 8, 9]);
    assert_eq!(chain.tail(100).len(), 10);
    let r: Vec<u64> = chain.range(2..5).iter().map(|e| e.seq).collect();
    assert_eq!(r, vec![2, 3, 4]);
    assert_eq!(chain.range(8..).len(), 2);
    assert_eq!(chain.range(..=1).len(), 2);
    assert!(chain.range(20..30).is_empty());
}

#[test]
fn group_commit_many_threads_all_present_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _) = ChainManager::open(dir.path(), cfg(16)).unwrap();
    let chain = Arc::new(chain);
    let threads = 16;
    let per = 40;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let c = chain.clone();
            std::thread::spawn(move || {
                (0..per)
                    .map(|i| c.append_durable("t", "durable", &(t, i)).unwrap().seq)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), threads * per);
    let st = chain.status();
    assert!(st.durable_len > (threads * per) as u64);
    // Group commit: fewer fdatasyncs than durable appends.
    assert!(
        st.fsyncs < (threads * per) as u64,
        "fsyncs {} for {} durable appends",
        st.fsyncs,
        threads * per
    );
    drop(chain);
    let (chain, report) = ChainManager::open(dir.path(), cfg(16)).unwrap();
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(chain.len(), 1 + (threads * per) as u64);
    for s in seqs {
        assert_eq!(chain.get(s).unwrap().kind, "durable");
    }
    assert!(chain.verify_integrity().ok);
}

#[test]
fn a_durable_head_covers_every_commit_and_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _) = ChainManager::open(dir.path(), cfg(1000)).unwrap();
    let ev = chain.append_durable("t", "k", &0).unwrap();
    let head = chain.durable_head().unwrap();
    assert!(head.tree_size > ev.seq);
    head.verify(&key(1).verifying_key()).unwrap();
    for i in 0..35u32 {
        chain.append("t", "k", &i).unwrap();
    }
    chain.sync().unwrap();
    assert_eq!(chain.durable_head().unwrap().tree_size, 37);
    assert!(chain.status().heads >= 2);
    chain.shutdown().unwrap();
    let report = verify_dir(dir.path(), &key(1).verifying_key());
    assert!(report.ok, "{report:?}");
    assert_eq!(report.events, 37);
    assert_eq!(report.last_head.as_ref().unwrap().tree_size, 37);
    assert_eq!(report.unsigned_tail, 0);
    // A second shutdown (and Drop) must not append another head.
    let len = std::fs::metadata(open_segment(dir.path())).unwrap().len();
    chain.shutdown().unwrap();
    drop(chain);
    assert_eq!(
        std::fs::metadata(open_segment(dir.path())).unwrap().len(),
        len
    );
}

#[test]
fn reopen_continues_seq_and_links() {
    let dir = tempfile::tempdir().unwrap();
    let last = {
        let (chain, _) = ChainManager::open(dir.path(), cfg(16)).unwrap();
        for i in 0..10u32 {
            chain.append("t", "k", &i).unwrap();
        }
        chain.tail(1)[0].clone()
    };
    let (chain, report) = ChainManager::open(dir.path(), cfg(16)).unwrap();
    assert!(!report.created);
    assert_eq!(report.events, 11);
    assert_eq!(chain.tail(1)[0], last);
    // A clean shutdown leaves next to nothing to replay.
    assert!(report.replayed_events < 8, "{report:?}");
    let ev = chain.append("t", "k", &"after").unwrap();
    assert_eq!(ev.seq, 11);
    assert!(ev.timestamp_ns >= last.timestamp_ns);
    chain.shutdown().unwrap();
    let r = verify_dir(dir.path(), &key(1).verifying_key());
    assert!(r.ok, "{r:?}");
    assert_eq!(r.events, 12);
}

#[test]
fn torn_tail_is_truncated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (chain, _) = ChainManager::open(dir.path(), cfg(1000)).unwrap();
        for i in 0..5u32 {
            chain.append("t", "k", &i).unwrap();
        }
    }
    let path = open_segment(dir.path());
    let good = std::fs::read(&path).unwrap();
    // Simulate a crash mid-write: the start of a record after the good data
    // (a copy of the first event record's first 100 bytes).
    let garbage = &good[good.len() - 100..];
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(garbage)
        .unwrap();
    let r = verify_dir(dir.path(), &key(1).verifying_key());
    assert!(!r.ok);
    assert_eq!(r.torn_tail_bytes, 100, "{r:?}");
    assert_eq!(std::fs::read(&path).unwrap().len(), good.len() + 100);
    let (chain, report) = ChainManager::open(dir.path(), cfg(1000)).unwrap();
    assert_eq!(report.truncated_bytes, 100);
    assert_eq!(report.events, 6);
    assert_eq!(chain.len(), 6);
    chain.shutdown().unwrap();
    assert!(verify_dir(dir.path(), &key(1).verifying_key()).ok);
}

#[test]
fn second_open_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let (_chain, _) = ChainManager::open(dir.path(), cfg(1000)).unwrap();
    let err = ChainManager::open(dir.path(), cfg(1000)).unwrap_err();
    assert!(matches!(err, ChainError::Locked { .. }), "{err}");
}

#[test]
fn wrong_key_or_chain_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    ChainManager::open(dir.path(), cfg(1000)).unwrap();
    let mut other = cfg(1000);
    other.signing_key = Some(key(2));
    let err = ChainManager::open(dir.path(), other).unwrap_err();
    assert!(matches!(err, ChainError::KeyMismatch { .. }), "{err}");
    let mut other = cfg(1000);
    other.chain_id = 8;
    let err = ChainManager::open(dir.path(), other).unwrap_err();
    assert!(
        matches!(
            err,
            ChainError::ChainIdMismatch {
                expected: 8,
                found: 7
            }
        ),
        "{err}"
    );
    let r = verify_dir(dir.path(), &key(2).verifying_key());
    assert!(!r.ok);
    assert!(
        r.first_bad.as_ref().unwrap().1.contains("signature"),
        "{r:?}"
    );
}

#[test]
fn default_config_creates_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, report) = ChainManager::open(dir.path(), ChainConfig::default()).unwrap();
    assert!(report.key_created);
    let pk = chain.public_key();
    drop(chain);
    let (chain, report) = ChainManager::open(dir.path(), ChainConfig::default()).unwrap();
    assert!(!report.key_created);
    assert_eq!(chain.public_key(), pk);
    assert_eq!(chain.status().public_key, hex::encode(pk.to_bytes()));
}

#[test]
fn append_with_sees_its_own_seq() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _) = ChainManager::open(dir.path(), cfg(1000)).unwrap();
    chain.append("t", "k", &1).unwrap();
    let ev = chain
        .append_with("t", "self", Durability::Durable, |seq| json!({ "me": seq }))
        .unwrap();
    assert_eq!(ev.seq, 2);
    assert_eq!(ev.payload_json().unwrap()["me"], 2);
    assert!(chain.status().durable_len >= 3);
}

#[test]
fn closed_chain_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _) = ChainManager::open(dir.path(), cfg(1000)).unwrap();
    chain.shutdown().unwrap();
    assert!(matches!(
        chain.append("t", "k", &1),
        Err(ChainError::Closed)
    ));
    assert!(matches!(
        chain.append_durable("t", "k", &1),
        Err(ChainError::Closed)
    ));
    // The lock is released: the chain can be reopened while `chain` lives.
    ChainManager::open(dir.path(), cfg(1000)).unwrap();
}

#[test]
fn oversized_labels_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _) = ChainManager::open(dir.path(), cfg(1000)).unwrap();
    let long = "x".repeat(2000);
    assert!(matches!(
        chain.append(&long, "k", &1),
        Err(ChainError::TooLarge { .. })
    ));
    assert!(chain.append("t", &long, &1).is_err());
}

#[test]
fn lineage_walks_to_root_and_detects_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _) = ChainManager::open(dir.path(), cfg(1000)).unwrap();
    let s1 = chain
        .record_lineage("agent:root", "agent:a", "spawn")
        .unwrap();
    chain.append("t", "noise", &0).unwrap();
    let s2 = chain.record_lineage("agent:a", "agent:b", "fork").unwrap();
    let links = chain.verify_lineage("agent:b").unwrap();
    assert_eq!(links.len(), 2);
    assert_eq!((links[0].seq, links[0].parent.as_str()), (s2, "agent:a"));
    assert_eq!((links[1].seq, links[1].parent.as_str()), (s1, "agent:root"));
    assert_eq!(links[0].derivation, "fork");
    assert!(chain.verify_lineage("agent:root").is_err());
    assert!(chain.record_lineage("x", "x", "self").is_err());
    chain.record_lineage("p", "q", "d").unwrap();
    chain.record_lineage("q", "p", "d").unwrap();
    let err = chain.verify_lineage("q").unwrap_err();
    assert!(err.to_string().contains("cycle"), "{err}");
    // The index is rebuilt from the file on reopen.
    drop(chain);
    let (chain, _) = ChainManager::open(dir.path(), cfg(1000)).unwrap();
    assert_eq!(chain.verify_lineage("agent:b").unwrap(), links);
}

#[test]
fn export_jsonl_decodes_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _) = ChainManager::open(dir.path(), cfg(1000)).unwrap();
    chain
        .append(
            "svc",
            "demo",
            &json!({"name": "x", "n": -3, "ok": true, "list": [1.5]}),
        )
        .unwrap();
    chain
        .append("svc", "cbor", &ciborium::Value::Bytes(vec![1, 2]))
        .unwrap();
    let mut out = Vec::new();
    assert_eq!(chain.export_jsonl(&mut out).unwrap(), 3);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["kind"], "demo");
    assert_eq!(
        lines[1]["payload"],
        json!({"name": "x", "n": -3, "ok": true, "list": [1.5]})
    );
    assert_eq!(lines[2]["payload"], "0102");
    assert_eq!(lines[1]["hash"].as_str().unwrap().len(), 64);
}

#[test]
fn status_reports_head() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _) = ChainManager::open(dir.path(), cfg(1000)).unwrap();
    chain.append_durable("t", "k", &1).unwrap();
    let st = chain.status();
    assert_eq!(st.chain_id, 7);
    assert_eq!(st.len, 2);
    assert_eq!(st.last_seq, 1);
    assert_eq!(st.durable_head.as_ref().unwrap().tree_size, 2);
    assert_eq!(st.path, dir.path());
    assert_eq!(st.durable_len, 2);
    assert_eq!(st.segments, 1);
}

#[test]
fn old_events_are_read_back_from_disk_through_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _) = ChainManager::open(dir.path(), cfg(16)).unwrap();
    let mut evs = vec![chain.get(0).unwrap()];
    for i in 0..500u32 {
        evs.push(
            chain
                .append("t", &format!("k{}", i % 3), &json!({ "i": i }))
                .unwrap(),
        );
        if i % 100 == 0 {
            chain.sync().unwrap();
        }
    }
    chain.sync().unwrap();
    // Only a window stays in memory; everything reads back equal.
    for _ in 0..50 {
        chain.append("t", "more", &0).unwrap();
    }
    chain.sync().unwrap();
    assert!(chain.status().window <= 64, "{:?}", chain.status());
    for ev in &evs {
        assert_eq!(&chain.get(ev.seq).unwrap(), ev, "seq {}", ev.seq);
    }
    let r = chain.range(3..300);
    assert_eq!(r.len(), 297);
    assert!(r.iter().zip(&evs[3..300]).all(|(a, b)| a == b));
    assert_eq!(chain.tail(551).len(), 551);
}

#[test]
fn segments_rotate_at_their_size_and_everything_still_verifies_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(16);
    c.max_segment_bytes = 8 << 10;
    let (chain, _) = ChainManager::open(dir.path(), c.clone()).unwrap();
    for i in 0..2000u32 {
        chain
            .append("t", "k", &json!({ "i": i, "pad": "x".repeat(20) }))
            .unwrap();
    }
    chain.sync().unwrap();
    let st = chain.status();
    assert!(st.segments > 5, "{st:?}");
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "seg") && p != open_segment(dir.path()) {
            // Bounded: the limit plus at most one chunk of records.
            assert!(
                std::fs::metadata(&p).unwrap().len() < (8 << 10) + 8 * 200,
                "{p:?}"
            );
        }
    }
    assert_eq!(
        chain
            .get(1234)
            .unwrap()
            .decode_payload::<serde_json::Value>()
            .unwrap()["i"],
        1233
    );
    let r = chain.verify_integrity();
    assert!(r.ok && r.events == 2001, "{r:?}");
    drop(chain);
    let (chain, report) = ChainManager::open(dir.path(), c).unwrap();
    assert_eq!(report.events, 2001);
    assert!(report.bytes_read < 8 << 10, "{report:?}");
    chain.append("t", "k", &"after").unwrap();
    chain.shutdown().unwrap();
    let r = verify_dir(dir.path(), &key(1).verifying_key());
    assert!(
        r.ok && r.events == 2002 && r.segments == st.segments,
        "{r:?}"
    );
}
