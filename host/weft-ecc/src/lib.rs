//! ECC, the cognitive substrate of Weft: the memory agents share, as a host library.
//!
//! Agents store and search embeddings, link facts causally, cross-reference them with
//! chain events and tree paths, and react to impulses in a causally consistent order.
//!
//! * [`VectorIndex`]: an HNSW index (`hnsw_rs`) per namespace, with cosine, L2 or dot
//!   distance, caller-chosen keys, tombstone deletes and compaction.
//! * [`CausalGraph`]: a DAG of typed, weighted edges; a link that would close a cycle is
//!   refused with the cycle; traversal, paths, DOT export.
//! * [`CrossRefStore`]: typed references between structures, addressed by
//!   [`UniversalNodeId`] (BLAKE3 of structure tag and local id).
//! * [`Hlc`]: a hybrid logical clock with an injectable physical clock, a drift bound and
//!   a saveable [`ClockState`]; [`ImpulseQueue`]: impulses in HLC order.
//! * [`CognitiveTick`]: the adaptive tick scheduler, driven by the caller's clock.
//! * [`run_calibration`]: a bounded measured run, and [`tick_budget`] from it.
//! * [`Ecc`]: all of the above per namespace, mutated only by [`Ecc::apply`] of an
//!   [`EccOp`]; snapshots ([`Ecc::save_snapshot`]) plus replay of later ops rebuild the
//!   same state.
//!
//! The library enforces nothing about who may use a namespace: the kernel unit
//! ([`unit::EccUnit`]) checks capabilities, records ops on the chain and recovers the
//! state at boot. See `docs/ecc.md`.

#![deny(missing_docs)]

mod calibration;
mod causal;
mod crossref;
mod ecc;
mod error;
mod hlc;
mod impulse;
mod names;
mod ops;
mod snapshot;
mod tick;
pub mod unit;
mod vector;

pub use calibration::{
    run_calibration, tick_budget, tick_config, CalibrationConfig, CalibrationReport, TickWorkload,
    MAX_TICK_BUDGET_NS, MIN_TICK_BUDGET_NS,
};
pub use causal::{
    CausalEdge, CausalGraph, CausalNode, Direction, EdgeKind, GraphSnapshot, Visit, MAX_ATTRS,
    MAX_ATTR_VALUE, MAX_NODE_LABEL,
};
pub use crossref::{
    CrossRef, CrossRefStore, NodeRef, RefKind, StructureTag, UniversalNodeId, MAX_TREE_PATH,
    NODE_ID_CONTEXT,
};
pub use ecc::{Ecc, EccConfig, InsertOutcome, ReplayReport};
pub use error::{EccError, Result, SnapshotError};
pub use hlc::{ClockState, Hlc, HlcConfig, HlcTimestamp, ManualClock, PhysicalClock, SystemClock};
pub use impulse::{Impulse, ImpulseQueue, QueueSnapshot, DEFAULT_QUEUE_CAP, MAX_PAYLOAD};
pub use names::{validate_label, Key, Namespace, MAX_KEY_LEN, MAX_LABEL_LEN, MAX_NAMESPACE_LEN};
pub use ops::{EccOp, OpOutcome};
pub use snapshot::{SnapshotInfo, FORMAT_VERSION, HEADER_LEN, MAGIC, SNAPSHOT_FILE};
pub use tick::{
    CognitiveTick, DriftEvent, IntervalChange, TickConfig, TickEnd, TickStart, TickStats,
    DRIFT_HISTORY,
};
pub use vector::{
    exact_distance, Distance, GraphFiles, IndexConfig, IndexSnapshot, IndexStats, Inserted,
    SearchHit, VectorEntry, VectorIndex, MAX_DIMENSION, MAX_EF, MAX_K, MAX_M,
};
