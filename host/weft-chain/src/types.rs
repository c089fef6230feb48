//! Configuration and report types of the chain manager.

use std::path::PathBuf;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use serde::Serialize;

use crate::head::SignedHead;
use crate::retention::Keep;

/// Tuning and identity for `ChainManager::open`.
#[derive(Clone, Debug)]
pub struct ChainConfig {
    /// Identifies the chain; an existing chain with another id is refused.
    pub chain_id: u32,
    /// Signing key; `None` loads or creates `<dir>/chain.key`.
    pub signing_key: Option<SigningKey>,
    /// Longest time buffered appends stay in process memory before reaching
    /// the OS (each flush also writes a signed head).
    pub flush_interval: Duration,
    /// Pending events that wake the writer early.
    pub batch_events: usize,
    /// A segment is sealed and a new one started once it holds this many
    /// bytes (at the next multiple of 8 events).
    pub max_segment_bytes: u64,
    /// Recent events kept in memory for `get`/`tail` and proofs; older ones
    /// are read from disk through the index.
    pub window_events: usize,
    /// What retention keeps (`None`: everything).
    pub keep: Option<Keep>,
    /// Where retention moves removed segments (`None`: delete them).
    pub archive_dir: Option<PathBuf>,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            chain_id: 0,
            signing_key: None,
            flush_interval: Duration::from_millis(10),
            batch_events: 4096,
            max_segment_bytes: 64 << 20,
            window_events: 4096,
            keep: None,
            archive_dir: None,
        }
    }
}

/// What `open` found and did, so boot can log recovery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpenReport {
    /// Torn-tail bytes removed from the end of the open segment.
    pub truncated_bytes: u64,
    /// Why the tail was judged torn, when it was.
    pub torn_reason: Option<String>,
    /// Events in the chain (including a freshly written genesis).
    pub events: u64,
    /// Events replayed from the open segment to resume (not the log:
    /// only what follows the last durable index point).
    pub replayed_events: u64,
    /// Bytes of the log read to resume.
    pub bytes_read: u64,
    /// Segment files.
    pub segments: u64,
    /// A new chain (genesis) was created.
    pub created: bool,
    /// A new signing key was generated.
    pub key_created: bool,
    /// Size of the signed head boot resumed from.
    pub resumed_from: u64,
}

/// Snapshot for `weaver chain status` / `kernel status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainStatus {
    /// The chain's id.
    pub chain_id: u32,
    /// Events, including genesis.
    pub len: u64,
    /// Seq of the newest event.
    pub last_seq: u64,
    /// Hex key that verifies the tree heads.
    pub public_key: String,
    /// The chain directory.
    pub path: PathBuf,
    /// Signed tree heads written since open.
    pub heads: u64,
    /// The newest durable signed head.
    pub durable_head: Option<SignedHead>,
    /// Events known to be fdatasync'ed.
    pub durable_len: u64,
    /// fdatasync calls of the log since open; `durable appends / fsyncs`
    /// is the group-commit batch size.
    pub fsyncs: u64,
    /// Segment files on disk.
    pub segments: u64,
    /// First seq still on disk (older ones removed by retention).
    pub first_seq: u64,
    /// Events held in memory (the recent window).
    pub window: u64,
}

/// Whether an append waits for fdatasync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Return once the event is in memory; it reaches disk within the flush
    /// interval or at the next durable append.
    Buffered,
    /// Return only after an fdatasync (and a signed head) covering the
    /// event (group commit).
    Durable,
}
