//! Flip every byte of a small chain file: each flip must be detected, either
//! as corruption naming the right segment, or (final segment only) as a torn
//! tail that loses exactly that segment and that `verify_file` reports.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use weft_chain::{
    scan_bytes, verify_file, ChainConfig, ChainError, ChainManager, SigningKey, CHAIN_FILE,
    HEADER_LEN,
};

struct Seg {
    start: usize,
    end: usize,
    /// Event seq, or None for a checkpoint.
    seq: Option<u64>,
}

fn segments(bytes: &[u8]) -> Vec<Seg> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < bytes.len() {
        let len = u32::from_le_bytes(bytes[off + 24..off + 28].try_into().unwrap()) as usize;
        let ty = u16::from_le_bytes(bytes[off + 10..off + 12].try_into().unwrap());
        let id = u64::from_le_bytes(bytes[off + 16..off + 24].try_into().unwrap());
        out.push(Seg {
            start: off,
            end: off + HEADER_LEN + len,
            seq: (ty == 1).then_some(id),
        });
        off += HEADER_LEN + len;
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

#[test]
fn every_byte_flip_is_detected() {
    let src = tempfile::tempdir().unwrap();
    {
        let (chain, _) = ChainManager::open(src.path(), config()).unwrap();
        for i in 0..4u32 {
            chain
                .append("tamper", "t.event", &serde_json::json!({ "i": i }))
                .unwrap();
        }
        chain.shutdown().unwrap();
    }
    let original = std::fs::read(src.path().join(CHAIN_FILE)).unwrap();
    let segs = segments(&original);
    assert_eq!(segs.len(), 6, "5 events + final checkpoint");
    assert_eq!(segs.last().unwrap().seq, None);
    let key = SigningKey::from_bytes(&[3; 32]).verifying_key();
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join(CHAIN_FILE);
    let (mut corrupt, mut torn) = (0, 0);

    for offset in 0..original.len() {
        let (si, seg) = segs
            .iter()
            .enumerate()
            .find(|(_, s)| (s.start..s.end).contains(&offset))
            .unwrap();
        let is_last = si == segs.len() - 1;
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bytes = original.clone();
            bytes[offset] ^= mask;
            let ctx = format!("offset {offset} mask {mask:#x} segment {si}");
            match scan_bytes(&bytes, Some(&key)) {
                Err(ChainError::Corrupt {
                    segment,
                    seq,
                    offset: at,
                    ..
                }) => {
                    assert_eq!(segment, si as u64, "{ctx}");
                    assert_eq!(at, seg.start as u64, "{ctx}");
                    if offset >= seg.start + HEADER_LEN {
                        // Header intact: the error names the event's seq.
                        assert_eq!(seq, seg.seq, "{ctx}");
                    }
                    corrupt += 1;
                }
                Err(e) => panic!("{ctx}: unexpected error {e}"),
                Ok((events, checkpoints, torn_bytes)) => {
                    assert!(is_last, "{ctx}: flip passed silently");
                    assert_eq!(torn_bytes as usize, seg.end - seg.start, "{ctx}");
                    assert_eq!(events.len() + checkpoints.len(), segs.len() - 1, "{ctx}");
                    torn += 1;
                }
            }
        }

        // The same flip through the file APIs (one mask keeps this quick).
        let mut bytes = original.clone();
        bytes[offset] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let report = verify_file(&path, &key).unwrap();
        assert!(!report.ok, "offset {offset}: verify_file passed");
        assert!(report.first_bad.is_some());
        match ChainManager::open(work.path(), config()) {
            Err(ChainError::Corrupt { segment, .. }) => {
                assert_eq!(segment, si as u64, "offset {offset}");
                // Never truncated or rewritten on corruption.
                assert_eq!(std::fs::read(&path).unwrap(), bytes);
            }
            Err(e) => panic!("offset {offset}: unexpected error {e}"),
            Ok((chain, rep)) => {
                assert!(is_last, "offset {offset}: open accepted a flip");
                assert_eq!(report.torn_tail_bytes as usize, seg.end - seg.start);
                assert_eq!(rep.truncated_bytes as usize, seg.end - seg.start);
                assert_eq!(rep.events, 5);
                assert_eq!(rep.checkpoints, 0);
                drop(chain);
            }
        }
    }
    assert!(corrupt > 0 && torn > 0, "corrupt {corrupt} torn {torn}");
}
