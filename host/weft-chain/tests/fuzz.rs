//! Property tests: the reader never panics on arbitrary input, recovers a
//! valid prefix from truncated files, and ignores short garbage tails.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use proptest::prelude::*;
use weft_chain::{
    scan_bytes, verify_bytes, ChainConfig, ChainError, ChainManager, SigningKey, VerifyingKey,
    CHAIN_FILE, HEADER_LEN,
};

fn key() -> VerifyingKey {
    SigningKey::from_bytes(&[5; 32]).verifying_key()
}

/// A valid chain file (12 events, checkpoints every 4) and its segment ends.
fn valid() -> &'static (Vec<u8>, Vec<usize>) {
    static FILE: OnceLock<(Vec<u8>, Vec<usize>)> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ChainConfig {
            chain_id: 2,
            checkpoint_every: 4,
            signing_key: Some(SigningKey::from_bytes(&[5; 32])),
            ..ChainConfig::default()
        };
        let (chain, _) = ChainManager::open(dir.path(), cfg).unwrap();
        for i in 0..11u32 {
            chain
                .append(
                    "fuzz",
                    "f",
                    &serde_json::json!({"i": i, "s": "x".repeat(i as usize)}),
                )
                .unwrap();
        }
        chain.shutdown().unwrap();
        let bytes = std::fs::read(dir.path().join(CHAIN_FILE)).unwrap();
        let mut ends = Vec::new();
        let mut off = 0;
        while off < bytes.len() {
            let len = u32::from_le_bytes(bytes[off + 24..off + 28].try_into().unwrap()) as usize;
            off += HEADER_LEN + len;
            ends.push(off);
        }
        (bytes, ends)
    })
}

fn total_segments(
    r: &(
        Vec<weft_chain::ChainEvent>,
        Vec<weft_chain::Checkpoint>,
        u64,
    ),
) -> usize {
    r.0.len() + r.1.len()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = scan_bytes(&bytes, Some(&key()));
        let _ = scan_bytes(&bytes, None);
        let r = verify_bytes(&bytes, Some(&key()));
        prop_assert!(bytes.is_empty() || !r.ok || r.events == 0);
    }

    #[test]
    fn random_bytes_after_magic_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = b"WEFTSEG\0".to_vec();
        bytes.extend_from_slice(&tail);
        match scan_bytes(&bytes, Some(&key())) {
            Ok(_) | Err(ChainError::Corrupt { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error kind {e}"),
        }
    }

    #[test]
    fn truncated_valid_file_recovers_prefix(cut in 0usize..4000) {
        let (bytes, ends) = valid();
        let cut = cut % (bytes.len() + 1);
        let r = scan_bytes(&bytes[..cut], Some(&key()));
        let r = r.map_err(|e| TestCaseError::fail(format!("cut {cut}: {e}")))?;
        let complete = ends.iter().filter(|e| **e <= cut).count();
        prop_assert_eq!(total_segments(&r), complete);
        let last_end = ends.iter().rev().find(|e| **e <= cut).copied().unwrap_or(0);
        prop_assert_eq!(r.2 as usize, cut - last_end);
    }

    #[test]
    fn garbage_tail_is_torn_not_corrupt(garbage in proptest::collection::vec(any::<u8>(), 1..300)) {
        let (bytes, ends) = valid();
        let mut b = bytes.clone();
        b.extend_from_slice(&garbage);
        let r = scan_bytes(&b, Some(&key()))
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(total_segments(&r), ends.len());
        prop_assert_eq!(r.2 as usize, garbage.len());
        prop_assert!(!verify_bytes(&b, Some(&key())).ok);
    }

    #[test]
    fn random_mutations_never_panic_or_pass_silently(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)
    ) {
        let (bytes, ends) = valid();
        let mut b = bytes.clone();
        let mut changed = false;
        for (pos, val) in edits {
            let p = pos % b.len();
            changed |= b[p] != val;
            b[p] = val;
        }
        match scan_bytes(&b, Some(&key())) {
            Err(ChainError::Corrupt { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error kind {e}"),
            Ok(r) => {
                // Accepted only unchanged, or with a torn final segment.
                if changed {
                    prop_assert!(r.2 > 0);
                    prop_assert_eq!(total_segments(&r), ends.len() - 1);
                }
            }
        }
    }
}
