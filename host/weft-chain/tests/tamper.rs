//! Flip every byte of a small chain's files: `verify_dir` must detect each
//! flip and name the seq of the damaged record (or, for the final record of
//! the open segment, report a torn tail). Boot reads only the tail after the
//! last durable index point: a flip there is refused (or cut as a torn
//! tail), a flip before it is left to `verify` (boot does not read it).

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::path::Path;

use weft_chain::layout::{CHUNK, SEGMENT_HEADER_LEN};
use weft_chain::record::{read_frame, Framed, HeadBody, TYPE_HEAD};
use weft_chain::{verify_dir, ChainConfig, ChainError, ChainManager, SigningKey};

struct Rec {
    start: usize,
    end: usize,
    /// Seq of the event, or for a head the seq the next event gets.
    seq: u64,
    head: Option<HeadBody>,
}

fn records(bytes: &[u8]) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut off = SEGMENT_HEADER_LEN;
    let mut seq = 0;
    while off < bytes.len() {
        let Framed::Ok { ty, body, len } = read_frame(&bytes[off..]) else {
            panic!("unparsable at {off}")
        };
        let head = (ty == TYPE_HEAD).then(|| HeadBody::decode(body).unwrap());
        out.push(Rec {
            start: off,
            end: off + len,
            seq,
            head: head.clone(),
        });
        if head.is_none() {
            seq += 1;
        }
        off += len;
    }
    out
}

fn config() -> ChainConfig {
    ChainConfig {
        chain_id: 1,
        signing_key: Some(SigningKey::from_bytes(&[3; 32])),
        ..ChainConfig::default()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() && p.file_name().unwrap() != "LOCK" {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn every_byte_flip_is_detected() {
    let src = tempfile::tempdir().unwrap();
    {
        let (chain, _) = ChainManager::open(src.path(), config()).unwrap();
        for i in 0..20u32 {
            chain
                .append("tamper", "t.event", &serde_json::json!({ "i": i }))
                .unwrap();
            if i == 9 {
                chain.sync().unwrap();
            }
        }
        chain.record_lineage("agent:a", "agent:b", "spawn").unwrap();
        chain.shutdown().unwrap();
    }
    let seg = "00000000000000000000.seg";
    let original = std::fs::read(src.path().join(seg)).unwrap();
    let recs = records(&original);
    let last_head = recs.last().unwrap().head.clone().unwrap();
    assert_eq!(last_head.tree_size, 22);
    // Where boot's replay starts: everything before is only read by verify.
    let replay_from = last_head.index_resume_offset as usize;
    assert!(replay_from > SEGMENT_HEADER_LEN, "two chunks are durable");
    let key = SigningKey::from_bytes(&[3; 32]).verifying_key();
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join(seg);
    let (mut corrupt, mut torn, mut unread) = (0, 0, 0);

    for offset in 0..original.len() {
        let (ri, rec) = recs
            .iter()
            .enumerate()
            .find(|(_, r)| (r.start..r.end).contains(&offset))
            .map_or((usize::MAX, None), |(i, r)| (i, Some(r)));
        let is_last = ri == recs.len() - 1;
        for mask in [0x01u8, 0x80, 0xff] {
            for e in std::fs::read_dir(work.path()).unwrap() {
                std::fs::remove_file(e.unwrap().path()).unwrap();
            }
            copy_dir(src.path(), work.path());
            let mut bytes = original.clone();
            bytes[offset] ^= mask;
            std::fs::write(&path, &bytes).unwrap();
            let ctx = format!("offset {offset} mask {mask:#x} record {ri}");
            let r = verify_dir(work.path(), &key);
            assert!(!r.ok, "{ctx}: verify passed");
            let (seq, why) = r.first_bad.clone().unwrap();
            match rec {
                None => assert_eq!(seq, 0, "{ctx}: header flip: {why}"),
                Some(rec) => assert_eq!(seq, rec.seq, "{ctx}: {why}"),
            }
            if is_last {
                assert_eq!(
                    r.torn_tail_bytes as usize,
                    rec.unwrap().end - rec.unwrap().start,
                    "{ctx}"
                );
            } else {
                assert_eq!(r.torn_tail_bytes, 0, "{ctx}: {why}");
            }
            if mask != 0x01 {
                continue;
            }
            // The same flip at boot.
            match ChainManager::open(work.path(), config()) {
                Err(ChainError::Corrupt { segment, .. }) => {
                    assert_eq!(segment, 0, "{ctx}");
                    // Boot reads the header, the start head and the tail.
                    assert!(offset < recs[0].end || offset >= replay_from, "{ctx}");
                    // Never truncated or rewritten on corruption.
                    assert_eq!(std::fs::read(&path).unwrap(), bytes);
                    corrupt += 1;
                }
                Err(e) => panic!("{ctx}: unexpected error {e}"),
                Ok((chain, rep)) if is_last => {
                    assert_eq!(
                        rep.truncated_bytes as usize,
                        rec.unwrap().end - rec.unwrap().start
                    );
                    assert_eq!(rep.events, 22);
                    drop(chain);
                    torn += 1;
                }
                Ok((chain, _)) => {
                    // Only what boot does not read may pass it.
                    assert!(offset < replay_from, "{ctx}: boot accepted a flip it read");
                    drop(chain);
                    unread += 1;
                }
            }
        }
    }
    assert!(
        corrupt > 0 && torn > 0 && unread > 0,
        "corrupt {corrupt} torn {torn} unread {unread}"
    );

    // Index and kind-index flips: verify names the chunk's last event.
    for (file, is_idx) in [
        ("00000000000000000000.idx", true),
        ("00000000000000000000.kinds", false),
    ] {
        let orig = std::fs::read(src.path().join(file)).unwrap();
        assert!(!orig.is_empty(), "{file}");
        for offset in 0..orig.len() {
            for e in std::fs::read_dir(work.path()).unwrap() {
                std::fs::remove_file(e.unwrap().path()).unwrap();
            }
            copy_dir(src.path(), work.path());
            let mut b = orig.clone();
            b[offset] ^= 0x01;
            std::fs::write(work.path().join(file), &b).unwrap();
            let r = verify_dir(work.path(), &key);
            assert!(!r.ok, "{file} offset {offset}: verify passed");
            let (seq, why) = r.first_bad.unwrap();
            if is_idx {
                // Entries: chunk 0 (12 + 32 bytes), chunk 1 (12 + 64).
                let chunk = if offset < 44 { 0 } else { 1 };
                assert_eq!(
                    seq,
                    chunk * CHUNK + CHUNK - 1,
                    "{file} offset {offset}: {why}"
                );
            } else {
                assert_eq!(seq, 21, "{file} offset {offset}: {why}");
            }
        }
    }
}
