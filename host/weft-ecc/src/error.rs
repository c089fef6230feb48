//! Typed errors. Every failing call leaves the state unchanged.

use std::path::PathBuf;

use crate::hlc::HlcTimestamp;
use crate::names::{Key, Namespace};

/// Result alias for this crate.
pub type Result<T, E = EccError> = std::result::Result<T, E>;

/// Everything an ECC call can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum EccError {
    /// A namespace name is malformed.
    #[error("invalid namespace {name:?}: {reason}")]
    InvalidNamespace {
        /// The offending name (truncated).
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A caller-chosen key is malformed.
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// What is wrong with it.
        reason: String,
    },
    /// A label (custom kind, topic) is malformed.
    #[error("invalid {what} {label:?}: 1 to 64 bytes of A-Z a-z 0-9 . _ : / -")]
    InvalidLabel {
        /// Which kind of label.
        what: &'static str,
        /// The offending label (truncated).
        label: String,
    },
    /// An index configuration or call parameter is out of range.
    #[error("invalid {what}: {reason}")]
    InvalidParameter {
        /// Which parameter.
        what: &'static str,
        /// The accepted range or rule.
        reason: String,
    },
    /// A vector's length differs from the index dimension.
    #[error(
        "dimension mismatch in {ns}: the index has dimension {expected}, the vector has {got}"
    )]
    DimensionMismatch {
        /// Namespace of the index.
        ns: Namespace,
        /// The index dimension.
        expected: usize,
        /// The vector length.
        got: usize,
    },
    /// A vector holds NaN or an infinity.
    #[error("vector component {position} is not finite ({value})")]
    NonFinite {
        /// Index of the first bad component.
        position: usize,
        /// Its value.
        value: f32,
    },
    /// A zero vector under the cosine distance, whose direction is undefined.
    #[error("zero vector: cosine distance needs a non-zero vector")]
    ZeroVector,
    /// The namespace has no vector index yet.
    #[error("namespace {ns} has no vector index (create one first)")]
    NoIndex {
        /// The namespace.
        ns: Namespace,
    },
    /// `create_index` on a namespace that already has one.
    #[error("namespace {ns} already has a vector index")]
    IndexExists {
        /// The namespace.
        ns: Namespace,
    },
    /// An insert would exceed the index's `max_elements` live entries.
    #[error("vector index {ns} is full: {max} live entries")]
    IndexFull {
        /// The namespace.
        ns: Namespace,
        /// Its `max_elements`.
        max: usize,
    },
    /// A vector key that is not (or no longer) in the index.
    #[error("no vector {key} in {ns}")]
    VectorNotFound {
        /// The namespace.
        ns: Namespace,
        /// The missing key.
        key: Key,
    },
    /// A causal node that does not exist.
    #[error("no causal node {key} in {ns}")]
    NodeNotFound {
        /// The namespace.
        ns: Namespace,
        /// The missing key.
        key: Key,
    },
    /// `unlink` found no matching edge.
    #[error("no edge {from} -> {to}{} in {ns}", kind.as_ref().map(|k| format!(" of kind {k}")).unwrap_or_default())]
    EdgeNotFound {
        /// The namespace.
        ns: Namespace,
        /// Source node.
        from: Key,
        /// Target node.
        to: Key,
        /// The kind asked for, if any.
        kind: Option<String>,
    },
    /// A link that would close a cycle; `path` runs from the new edge's source through
    /// the new edge and existing edges back to the source.
    #[error("link refused in {ns}: it would close the cycle {}", fmt_path(path))]
    Cycle {
        /// The namespace.
        ns: Namespace,
        /// The cycle, first and last element equal.
        path: Vec<Key>,
    },
    /// A cross-reference endpoint (vector entry or causal node) that does not exist.
    #[error("cross-reference endpoint {what} does not exist in {ns}")]
    RefEndpointMissing {
        /// The namespace.
        ns: Namespace,
        /// The endpoint, described.
        what: String,
    },
    /// `remove_ref` found no such reference.
    #[error("no such cross-reference in {ns}")]
    RefNotFound {
        /// The namespace.
        ns: Namespace,
    },
    /// A received timestamp is further ahead of our physical clock than allowed.
    #[error(
        "timestamp {remote} is {ahead_ns} ns ahead of the local physical clock (max drift {max_drift_ns} ns)"
    )]
    ClockDrift {
        /// The received timestamp.
        remote: HlcTimestamp,
        /// How far ahead it is.
        ahead_ns: u64,
        /// The configured bound.
        max_drift_ns: u64,
    },
    /// The namespace's impulse queue is at capacity.
    #[error("impulse queue of {ns} is full ({cap} pending)")]
    QueueFull {
        /// The namespace.
        ns: Namespace,
        /// The capacity.
        cap: usize,
    },
    /// `begin` while a tick is still running.
    #[error("tick {seq} is still in progress")]
    TickInProgress {
        /// The running tick.
        seq: u64,
    },
    /// `end` without a running tick.
    #[error("no tick is in progress")]
    NoTickInProgress,
    /// A bug: `apply` returned an outcome that does not belong to the op.
    #[error("internal error: {reason}")]
    Internal {
        /// What went wrong.
        reason: String,
    },
    /// A snapshot could not be written or read.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

fn fmt_path(path: &[Key]) -> String {
    path.iter()
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// Snapshot write/read failures; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// An I/O call failed.
    #[error("snapshot {}: {op}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file does not start with the snapshot magic.
    #[error("snapshot {}: not an ECC snapshot (bad magic)", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
    },
    /// A format version this build cannot read.
    #[error("snapshot {}: format version {found} is not supported (this build reads {supported})", path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The file is shorter (or longer) than its header says: a torn write.
    #[error("snapshot {}: torn file: header says {expected} bytes, found {found}", path.display())]
    Torn {
        /// The file.
        path: PathBuf,
        /// Bytes the header promises.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// The body does not match its BLAKE3 checksum.
    #[error("snapshot {}: checksum mismatch (the file is corrupt)", path.display())]
    Checksum {
        /// The file.
        path: PathBuf,
    },
    /// The body is not a valid snapshot.
    #[error("snapshot {}: cannot decode: {reason}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// Decoder message.
        reason: String,
    },
    /// The state could not be encoded.
    #[error("snapshot encode: {0}")]
    Encode(String),
}
