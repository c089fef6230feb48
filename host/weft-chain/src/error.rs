//! Typed errors for the chain.

use std::path::PathBuf;

/// Every way a chain operation can fail; callers match on the variant to
/// tell recoverable conditions (closed, locked) from integrity failures.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// An OS-level I/O failure, with the path it concerned.
    #[error("i/o error on {}: {source}", path.display())]
    Io {
        /// The file or directory the operation concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A complete record fails verification. Never repaired automatically:
    /// a human must look at it.
    #[error("chain corrupt in segment {segment} (byte offset {offset}{}): {reason}", fmt_seq(.seq))]
    Corrupt {
        /// The segment file: the first seq it holds (its file name).
        segment: u64,
        /// Byte offset of the bad record in that file.
        offset: u64,
        /// Event sequence number, when the segment is (claims to be) an event.
        seq: Option<u64>,
        /// What failed to verify.
        reason: String,
    },

    /// The file was written with a different signing key than the one given.
    #[error("chain public key mismatch: expected {expected}, file has {found}")]
    KeyMismatch {
        /// Hex key the caller expects.
        expected: String,
        /// Hex key named by the file's genesis.
        found: String,
    },

    /// The file belongs to a different chain id than configured.
    #[error("chain id mismatch: configured {expected}, file has {found}")]
    ChainIdMismatch {
        /// The configured chain id.
        expected: u32,
        /// The id in the file.
        found: u32,
    },

    /// Another process (or manager) holds the chain file lock.
    #[error("chain file {} is locked by another writer", path.display())]
    Locked {
        /// The locked `chain.log`.
        path: PathBuf,
    },

    /// A key file is missing, malformed or has unsafe permissions.
    #[error("key file {}: {reason}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A hex public key could not be parsed.
    #[error("invalid public key: {0}")]
    InvalidKey(String),

    /// A payload could not be CBOR-encoded.
    #[error("payload encoding failed: {0}")]
    Encode(String),

    /// A payload could not be decoded from CBOR.
    #[error("payload decoding failed: {0}")]
    Decode(String),

    /// A field exceeds the format's size limit.
    #[error("{what} too large: {len} bytes (max {max})")]
    TooLarge {
        /// The field, e.g. `payload`.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The largest size the format allows.
        max: usize,
    },

    /// The manager was shut down; no more appends are accepted.
    #[error("chain is closed")]
    Closed,

    /// The background writer hit an I/O error; the chain refuses further
    /// appends because memory and disk may have diverged.
    #[error("chain writer failed: {0}")]
    WriterFailed(String),

    /// The directory holds a format-1 `chain.log`.
    #[error("{} is a format-1 chain log; this weft writes format 2 (a Merkle tree log in segment files, docs/chain-format.md). Verify it with the weft that wrote it, then move it out of the chain directory (or start a new state dir)", path.display())]
    FormatV1 {
        /// The old file.
        path: PathBuf,
    },

    /// No durable signed head covers the event yet.
    #[error("event {seq} is not yet covered by a durable signed head (sync first)")]
    NotDurable {
        /// The event.
        seq: u64,
    },

    /// The event lies in segments removed by retention.
    #[error("event {seq} was removed by retention (the chain now starts at seq {first})")]
    Removed {
        /// The event asked for.
        seq: u64,
        /// The oldest seq still kept.
        first: u64,
    },

    /// Sizes or seqs outside what the chain can prove.
    #[error("{reason}")]
    BadRange {
        /// What is wrong.
        reason: String,
    },

    /// Lineage lookup or verification failed.
    #[error("lineage: {0}")]
    Lineage(String),
}

fn fmt_seq(seq: &Option<u64>) -> String {
    seq.map(|s| format!(", seq {s}")).unwrap_or_default()
}

impl ChainError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ChainError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = ChainError> = std::result::Result<T, E>;
