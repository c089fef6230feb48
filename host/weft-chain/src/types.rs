//! Configuration and report types of the chain manager.

use std::path::PathBuf;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use serde::Serialize;

/// Tuning and identity for `ChainManager::open`.
#[derive(Clone, Debug)]
pub struct ChainConfig {
    /// Identifies the chain; an existing file with another id is refused.
    pub chain_id: u32,
    /// Write a signed checkpoint after every this many events (0 = only at shutdown).
    pub checkpoint_every: u64,
    /// Signing key; `None` loads or creates `<dir>/chain.key`.
    pub signing_key: Option<SigningKey>,
    /// Longest time buffered appends stay in process memory before reaching the OS.
    pub flush_interval: Duration,
    /// Pending events that wake the writer early.
    pub batch_events: usize,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            chain_id: 0,
            checkpoint_every: 1000,
            signing_key: None,
            flush_interval: Duration::from_millis(10),
            batch_events: 4096,
        }
    }
}

/// What `open` found and did, so boot can log recovery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpenReport {
    /// Torn-tail bytes removed from the end of the file.
    pub truncated_bytes: u64,
    /// Why the tail was judged torn, when it was.
    pub torn_reason: Option<String>,
    /// Events loaded (including a freshly written genesis).
    pub events: u64,
    /// Checkpoints loaded.
    pub checkpoints: u64,
    /// A new chain (genesis) was created.
    pub created: bool,
    /// A new signing key was generated.
    pub key_created: bool,
}

/// Snapshot for `weaver chain status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainStatus {
    /// The chain's id.
    pub chain_id: u32,
    /// Events, including genesis.
    pub len: u64,
    /// Seq of the newest event.
    pub last_seq: u64,
    /// Hex hash of the newest event: the chain's head.
    pub last_hash: String,
    /// Hex key that verifies the checkpoints.
    pub public_key: String,
    /// Path of `chain.log`.
    pub path: PathBuf,
    /// Checkpoints written, loaded ones included.
    pub checkpoints: u64,
    /// Seq covered by the newest checkpoint.
    pub last_checkpoint_seq: Option<u64>,
    /// Events known to be fdatasync'ed.
    pub durable_len: u64,
    /// fdatasync calls since open; `durable appends / fsyncs` is the
    /// group-commit batch size.
    pub fsyncs: u64,
}

/// Whether an append waits for fdatasync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Return once the event is in memory; it reaches disk within the flush
    /// interval or at the next durable append.
    Buffered,
    /// Return only after an fdatasync covering the event (group commit).
    Durable,
}
