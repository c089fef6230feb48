//! Operation records: every mutation of the ECC state is one [`EccOp`], and
//! [`crate::Ecc::apply`] is the only way state changes.
//!
//! An op carries everything needed to re-apply it deterministically: inserted vectors in
//! order, and for clock-dependent ops the HLC timestamps that were issued when the op was
//! prepared (never a reading of the wall clock at apply time). So a snapshot plus the ops
//! applied after it, re-applied in order, rebuild the same state. An op that fails changes
//! nothing, and fails again the same way on replay.

use serde::{Deserialize, Serialize};

use crate::causal::{CausalNode, EdgeKind};
use crate::crossref::{CrossRef, NodeRef};
use crate::hlc::HlcTimestamp;
use crate::impulse::Impulse;
use crate::names::{Key, Namespace};
use crate::vector::{IndexConfig, Inserted, VectorEntry};

/// One mutation. Serialises (serde, internally tagged by `op`) for the kernel chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum EccOp {
    /// Create the namespace's vector index.
    CreateIndex {
        /// Namespace.
        ns: Namespace,
        /// Index parameters.
        config: IndexConfig,
    },
    /// Drop the namespace's vector index (and references to its entries).
    DropIndex {
        /// Namespace.
        ns: Namespace,
    },
    /// Insert or replace vectors, in order.
    Insert {
        /// Namespace.
        ns: Namespace,
        /// Entries, applied first to last.
        entries: Vec<VectorEntry>,
    },
    /// Tombstone vectors (and drop references to them); may compact.
    Delete {
        /// Namespace.
        ns: Namespace,
        /// Keys, all of which must be live.
        keys: Vec<Key>,
    },
    /// Rebuild the index without its tombstones.
    Compact {
        /// Namespace.
        ns: Namespace,
    },
    /// Add a causal node, or replace its label and attributes.
    AddNode {
        /// Namespace.
        ns: Namespace,
        /// The node.
        node: CausalNode,
    },
    /// Remove a causal node, its edges and references to it.
    RemoveNode {
        /// Namespace.
        ns: Namespace,
        /// The node's key.
        key: Key,
    },
    /// Add an edge (or update that exact edge's weight); refused if it closes a cycle.
    Link {
        /// Namespace.
        ns: Namespace,
        /// Source.
        from: Key,
        /// Target.
        to: Key,
        /// Edge type.
        kind: EdgeKind,
        /// Weight (finite).
        weight: f32,
    },
    /// Remove the edge of `kind`, or all edges between the two nodes if `kind` is `None`.
    Unlink {
        /// Namespace.
        ns: Namespace,
        /// Source.
        from: Key,
        /// Target.
        to: Key,
        /// Edge type, or every type.
        kind: Option<EdgeKind>,
    },
    /// Add a cross-reference. Vector and causal endpoints must exist.
    AddRef {
        /// Namespace.
        ns: Namespace,
        /// The reference.
        cross_ref: CrossRef,
    },
    /// Remove a cross-reference.
    RemoveRef {
        /// Namespace.
        ns: Namespace,
        /// The reference.
        cross_ref: CrossRef,
    },
    /// Queue a locally emitted impulse stamped `ts` (from [`crate::Ecc::prepare_emit`]);
    /// raises the clock to `ts`.
    Emit {
        /// Namespace.
        ns: Namespace,
        /// The impulse's HLC timestamp.
        ts: HlcTimestamp,
        /// Topic label.
        topic: String,
        /// The node it concerns.
        source: Option<NodeRef>,
        /// Content.
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// Queue an impulse received from elsewhere, stamped `ts` by its sender (from
    /// [`crate::Ecc::prepare_receive`]); raises the clock to `clock`, the merge result.
    Receive {
        /// Namespace.
        ns: Namespace,
        /// The sender's timestamp (orders the impulse).
        ts: HlcTimestamp,
        /// Our clock after merging `ts`; at least `ts`.
        clock: HlcTimestamp,
        /// Topic label.
        topic: String,
        /// The node it concerns.
        source: Option<NodeRef>,
        /// Content.
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// Remove and return the impulses stamped at or before `upto`.
    Drain {
        /// Namespace.
        ns: Namespace,
        /// The cut-off.
        upto: HlcTimestamp,
    },
    /// Raise the clock to `ts`: a recorded local tick or merge (from
    /// [`crate::Ecc::prepare_tick`] / [`crate::Ecc::prepare_merge`]).
    Clock {
        /// The clock value.
        ts: HlcTimestamp,
    },
}

impl EccOp {
    /// The namespace the op touches, or `None` for [`EccOp::Clock`].
    pub fn namespace(&self) -> Option<&Namespace> {
        match self {
            EccOp::CreateIndex { ns, .. }
            | EccOp::DropIndex { ns }
            | EccOp::Insert { ns, .. }
            | EccOp::Delete { ns, .. }
            | EccOp::Compact { ns }
            | EccOp::AddNode { ns, .. }
            | EccOp::RemoveNode { ns, .. }
            | EccOp::Link { ns, .. }
            | EccOp::Unlink { ns, .. }
            | EccOp::AddRef { ns, .. }
            | EccOp::RemoveRef { ns, .. }
            | EccOp::Emit { ns, .. }
            | EccOp::Receive { ns, .. }
            | EccOp::Drain { ns, .. } => Some(ns),
            EccOp::Clock { .. } => None,
        }
    }

    /// A short name (`insert`, `link`, ...), e.g. for the chain event kind.
    pub fn name(&self) -> &'static str {
        match self {
            EccOp::CreateIndex { .. } => "create_index",
            EccOp::DropIndex { .. } => "drop_index",
            EccOp::Insert { .. } => "insert",
            EccOp::Delete { .. } => "delete",
            EccOp::Compact { .. } => "compact",
            EccOp::AddNode { .. } => "add_node",
            EccOp::RemoveNode { .. } => "remove_node",
            EccOp::Link { .. } => "link",
            EccOp::Unlink { .. } => "unlink",
            EccOp::AddRef { .. } => "add_ref",
            EccOp::RemoveRef { .. } => "remove_ref",
            EccOp::Emit { .. } => "emit",
            EccOp::Receive { .. } => "receive",
            EccOp::Drain { .. } => "drain",
            EccOp::Clock { .. } => "clock",
        }
    }
}

/// What an applied op did. Serialisable, so a record can carry it too.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum OpOutcome {
    /// [`EccOp::CreateIndex`].
    IndexCreated,
    /// [`EccOp::DropIndex`].
    IndexDropped {
        /// Live entries dropped.
        entries: usize,
        /// References removed with them.
        refs_removed: usize,
    },
    /// [`EccOp::Insert`].
    Inserted {
        /// Per entry, in op order.
        entries: Vec<Inserted>,
        /// Whether replacements pushed the tombstones over the threshold and the index
        /// was rebuilt.
        compacted: bool,
    },
    /// [`EccOp::Delete`].
    Deleted {
        /// Entries tombstoned.
        deleted: usize,
        /// Whether the index was rebuilt.
        compacted: bool,
        /// References removed.
        refs_removed: usize,
    },
    /// [`EccOp::Compact`].
    Compacted {
        /// Live entries after the rebuild.
        entries: usize,
    },
    /// [`EccOp::AddNode`].
    NodeAdded {
        /// False if an existing node was updated.
        created: bool,
    },
    /// [`EccOp::RemoveNode`].
    NodeRemoved {
        /// Edges removed with it.
        edges_removed: usize,
        /// References removed.
        refs_removed: usize,
    },
    /// [`EccOp::Link`].
    Linked {
        /// False if an existing edge's weight was updated.
        created: bool,
    },
    /// [`EccOp::Unlink`].
    Unlinked {
        /// Edges removed.
        removed: usize,
    },
    /// [`EccOp::AddRef`].
    RefAdded {
        /// False if the reference already existed.
        created: bool,
    },
    /// [`EccOp::RemoveRef`].
    RefRemoved,
    /// [`EccOp::Emit`] and [`EccOp::Receive`].
    Queued {
        /// The impulse's id in its queue.
        id: u64,
        /// Its timestamp.
        ts: HlcTimestamp,
    },
    /// [`EccOp::Drain`].
    Drained {
        /// The impulses, in delivery order.
        impulses: Vec<Impulse>,
    },
    /// [`EccOp::Clock`].
    ClockRaised {
        /// The clock's value afterwards.
        now: HlcTimestamp,
    },
}
