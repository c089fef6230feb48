//! ExoChain: the Weft kernel's append-only, hash-linked, Ed25519-signed,
//! crash-safe event log.
//!
//! * [`ChainManager`] is the live chain: `append` (buffered), `append_durable`
//!   (group-committed fdatasync), `append_with` (payload sees its own seq),
//!   reads, verification, lineage and export.
//! * [`verify_file`] / [`read_file`] check a `chain.log` offline with only the
//!   public key.
//! * The on-disk format is specified in `docs/chain-format.md`.

mod checkpoint;
mod error;
mod event;
mod keccak;
#[cfg(target_arch = "x86_64")]
mod keccak_x4;
mod keys;
mod lineage;
mod manager;
pub mod merkle;
mod reader;
mod segment;
mod types;
mod writer;

pub use checkpoint::{Checkpoint, CHECKPOINT_DOMAIN, CHECKPOINT_LEN};
pub use error::{ChainError, Result};
pub use event::{
    cbor_to_json, event_hash, shake256, to_cbor, ChainEvent, EVENT_HASH_DOMAIN, GENESIS_KIND,
    MAX_LABEL, MAX_PAYLOAD,
};
pub use keccak::{keccak_backend, shake256_x4};
pub use keys::{parse_public_key_hex, public_key_hex, SigningKeyFile};
pub use lineage::{LineageLink, LineageRecord, LINEAGE_KIND};
pub use manager::{now_ns, ChainManager, CHAIN_FILE, KEY_FILE};
pub use reader::{read_file, verify_file, ChainFile, GenesisPayload, VerifyReport};
pub use segment::{HeaderError, SegmentHeader, SegmentKind, FORMAT_VERSION, HEADER_LEN, MAGIC};
pub use types::{ChainConfig, ChainStatus, Durability, OpenReport};

// Re-exported so dependents use the same key types without a direct dependency.
pub use ed25519_dalek::{Signature, SigningKey, VerifyingKey};

impl AsRef<ChainEvent> for ChainEvent {
    fn as_ref(&self) -> &ChainEvent {
        self
    }
}

/// Verifies raw chain bytes without touching disk (fuzzing and tests).
/// Returns the same report `verify_file` would.
pub fn verify_bytes(bytes: &[u8], public_key: Option<&VerifyingKey>) -> VerifyReport {
    let s = reader::scan(bytes, public_key);
    let err = s.error.as_ref().map(|e| e.to_string());
    reader::file_report_pub(&s, err)
}

/// Scans raw chain bytes like `open` does: `Ok((events, checkpoints,
/// torn_bytes))` or the first corruption error. Never panics.
pub fn scan_bytes(
    bytes: &[u8],
    public_key: Option<&VerifyingKey>,
) -> Result<(Vec<ChainEvent>, Vec<Checkpoint>, u64)> {
    let s = reader::scan(bytes, public_key);
    match s.error {
        Some(e) => Err(e),
        None => Ok((s.events, s.checkpoints, s.torn_bytes)),
    }
}
