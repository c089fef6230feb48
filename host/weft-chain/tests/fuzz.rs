//! Property tests: boot and verification never panic on arbitrary segment
//! bytes, boot recovers the complete prefix of a truncated segment, short
//! garbage tails are torn (never corruption), and no edit passes verify.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use weft_chain::layout::SEGMENT_HEADER_LEN;
use weft_chain::record::{read_frame, Framed, TYPE_EVENT};
use weft_chain::{verify_dir, ChainConfig, ChainError, ChainManager, SigningKey, VerifyingKey};

const SEG: &str = "00000000000000000000.seg";

fn key() -> VerifyingKey {
    SigningKey::from_bytes(&[5; 32]).verifying_key()
}

fn cfg() -> ChainConfig {
    ChainConfig {
        chain_id: 2,
        signing_key: Some(SigningKey::from_bytes(&[5; 32])),
        ..ChainConfig::default()
    }
}

/// A valid chain (12 events, heads at several commits): its segment bytes
/// and, per record, (end offset, is event).
type Valid = (tempfile::TempDir, Vec<u8>, Vec<(usize, bool)>);

fn valid() -> &'static Valid {
    static V: OnceLock<Valid> = OnceLock::new();
    V.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (chain, _) = ChainManager::open(dir.path(), cfg()).unwrap();
        for i in 0..11u32 {
            chain
                .append(
                    "fuzz",
                    "f",
                    &serde_json::json!({"i": i, "s": "x".repeat(i as usize)}),
                )
                .unwrap();
            if i % 4 == 3 {
                chain.sync().unwrap();
            }
        }
        chain.shutdown().unwrap();
        let bytes = std::fs::read(dir.path().join(SEG)).unwrap();
        let mut recs = Vec::new();
        let mut off = SEGMENT_HEADER_LEN;
        while off < bytes.len() {
            let Framed::Ok { ty, len, .. } = read_frame(&bytes[off..]) else {
                panic!()
            };
            off += len;
            recs.push((off, ty == TYPE_EVENT));
        }
        (dir, bytes, recs)
    })
}

/// A chain dir holding `seg` as its only segment (index files from the
/// valid chain, so only the log differs).
fn with_segment(seg: &[u8]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let src = valid().0.path();
    for f in ["00000000000000000000.idx", "00000000000000000000.kinds"] {
        std::fs::copy(src.join(f), d.path().join(f)).unwrap();
    }
    std::fs::write(d.path().join(SEG), seg).unwrap();
    d
}

fn events_in(dir: &Path) -> u64 {
    let (chain, _) = ChainManager::open(dir, cfg()).unwrap();
    chain.len()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let d = with_segment(&bytes);
        let r = verify_dir(d.path(), &key());
        prop_assert!(!r.ok);
        let _ = ChainManager::open(d.path(), cfg());
    }

    #[test]
    fn random_records_after_a_valid_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = valid().1[..SEGMENT_HEADER_LEN].to_vec();
        bytes.extend_from_slice(&tail);
        let d = with_segment(&bytes);
        prop_assert!(!verify_dir(d.path(), &key()).ok);
        match ChainManager::open(d.path(), cfg()) {
            Ok(_) | Err(ChainError::Corrupt { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error kind {e}"),
        }
    }

    #[test]
    fn truncated_segment_recovers_its_complete_prefix(cut in 0usize..4000) {
        let (_, bytes, recs) = valid();
        let cut = cut % (bytes.len() + 1);
        let start_head_end = recs[0].0;
        let d = with_segment(&bytes[..cut]);
        if cut < start_head_end {
            // Not even the start head: nothing to resume.
            prop_assert!(ChainManager::open(d.path(), cfg()).is_err());
            return Ok(());
        }
        let complete = recs.iter().filter(|(e, ev)| *ev && *e <= cut).count() as u64;
        // A cut before the genesis event's end leaves an empty tree, which
        // boot fills with a fresh genesis.
        prop_assert_eq!(events_in(d.path()), complete.max(1), "cut {}", cut);
        prop_assert!(verify_dir(d.path(), &key()).ok);
    }

    #[test]
    fn garbage_tail_is_torn_not_corrupt(garbage in proptest::collection::vec(any::<u8>(), 1..300)) {
        let (_, bytes, recs) = valid();
        let mut b = bytes.clone();
        b.extend_from_slice(&garbage);
        let d = with_segment(&b);
        let r = verify_dir(d.path(), &key());
        prop_assert!(!r.ok);
        prop_assert_eq!(r.torn_tail_bytes as usize, garbage.len());
        let (chain, rep) = ChainManager::open(d.path(), cfg())
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(rep.truncated_bytes as usize, garbage.len());
        prop_assert_eq!(chain.len(), recs.iter().filter(|r| r.1).count() as u64);
    }

    #[test]
    fn random_edits_never_pass_verify(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)
    ) {
        let (_, bytes, _) = valid();
        let mut b = bytes.clone();
        let mut changed = false;
        for (pos, val) in edits {
            let p = pos % b.len();
            changed |= b[p] != val;
            b[p] = val;
        }
        let d = with_segment(&b);
        let r = verify_dir(d.path(), &key());
        prop_assert_eq!(r.ok, !changed, "{:?}", r);
        match ChainManager::open(d.path(), cfg()) {
            Ok(_) | Err(ChainError::Corrupt { .. }) | Err(ChainError::KeyMismatch { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error kind {e}"),
        }
    }
}
