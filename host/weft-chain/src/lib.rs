//! ExoChain: the Weft kernel's append-only event log, a verifiable log in
//! the manner of Certificate Transparency (RFC 9162): events are the leaves
//! of a Merkle tree, the chain's Ed25519 key signs a tree head at every
//! group commit, and a receipt (event + inclusion proof + signed head)
//! proves an event offline.
//!
//! * [`ChainManager`] is the live chain: `append` (buffered),
//!   `append_durable` (group-committed fdatasync under a signed head),
//!   reads through a bounded window and the on-disk index, `prove`,
//!   `consistency`, retention.
//! * [`verify_dir`] checks a chain directory offline, streaming, with only
//!   the public key; [`Receipt::verify`] and [`ConsistencyProof::verify`]
//!   check proofs with nothing else.
//! * The on-disk format is specified in `docs/chain-format.md`.

mod boot;
mod error;
mod event;
mod head;
mod keccak;
#[cfg(target_arch = "x86_64")]
mod keccak_x4;
mod keys;
pub mod layout;
mod lineage;
mod manager;
pub mod merkle;
mod proof;
pub mod record;
mod retention;
mod store;
mod types;
mod verify;
mod writer;

pub use error::{ChainError, Result};
pub use event::{
    cbor_to_json, leaf_hash, leaf_input_into, shake256, to_cbor, ChainEvent, GENESIS_KIND,
    MAX_LABEL, MAX_PAYLOAD,
};
pub use head::{SignedHead, HEAD_DOMAIN};
pub use keccak::{keccak_backend, shake256_x4};
pub use keys::{parse_public_key_hex, public_key_hex, SigningKeyFile};
pub use layout::FORMAT_VERSION;
pub use lineage::{LineageLink, LineageRecord, LINEAGE_KIND};
pub use manager::{now_ns, segment_file_for, ChainManager, GenesisPayload, KEY_FILE};
pub use proof::{
    parse_hash, ConsistencyProof, Receipt, ReceiptEvent, CONSISTENCY_FORMAT, RECEIPT_FORMAT,
};
pub use retention::{Keep, RetentionReport};
pub use types::{ChainConfig, ChainStatus, Durability, OpenReport};
pub use verify::{
    read_dir, verify_dir, verify_dir_opts, EventRef, OnEvent, VerifyOptions, VerifyReport,
};

// Re-exported so dependents use the same key types without a direct dependency.
pub use ed25519_dalek::{Signature, SigningKey, VerifyingKey};

impl AsRef<ChainEvent> for ChainEvent {
    fn as_ref(&self) -> &ChainEvent {
        self
    }
}
