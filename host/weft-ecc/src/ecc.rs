//! [`Ecc`]: the whole substrate state, mutated only through [`Ecc::apply`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::causal::{CausalEdge, CausalGraph, CausalNode, EdgeKind};
use crate::crossref::{CrossRef, CrossRefStore, NodeRef};
use crate::error::{EccError, Result};
use crate::hlc::{ClockState, Hlc, HlcConfig, HlcTimestamp, PhysicalClock, SystemClock};
use crate::impulse::{validate_impulse, Impulse, ImpulseQueue, DEFAULT_QUEUE_CAP};
use crate::names::{Key, Namespace};
use crate::ops::{EccOp, OpOutcome};
use crate::snapshot::{self, SnapshotBody, SnapshotInfo, SpaceSnapshot};
use crate::vector::{IndexConfig, IndexStats, Inserted, SearchHit, VectorEntry, VectorIndex};

/// Settings of an [`Ecc`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EccConfig {
    /// Clock settings.
    pub hlc: HlcConfig,
    /// Impulse queue capacity per namespace.
    pub queue_cap: usize,
}

impl Default for EccConfig {
    fn default() -> Self {
        EccConfig {
            hlc: HlcConfig::default(),
            queue_cap: DEFAULT_QUEUE_CAP,
        }
    }
}

/// The result of [`Ecc::insert`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsertOutcome {
    /// Per entry, in order.
    pub entries: Vec<Inserted>,
    /// Whether the index was rebuilt afterwards.
    pub compacted: bool,
}

/// The result of [`Ecc::replay`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayReport {
    /// Ops that applied.
    pub applied: usize,
    /// Ops that failed (and, as live, changed nothing): position in the input and error.
    pub failed: Vec<(usize, String)>,
}

/// One namespace's structures.
#[derive(Debug)]
struct Space {
    index: Option<VectorIndex>,
    graph: CausalGraph,
    refs: CrossRefStore,
    queue: ImpulseQueue,
}

impl Space {
    fn new(ns: &Namespace, cap: usize) -> Self {
        Space {
            index: None,
            graph: CausalGraph::new(ns.clone()),
            refs: CrossRefStore::new(ns.clone()),
            queue: ImpulseQueue::new(ns.clone(), cap),
        }
    }

    /// Holds nothing that would survive a snapshot, so it can be dropped.
    fn is_vacant(&self) -> bool {
        self.index.is_none()
            && self.graph.is_empty()
            && self.refs.is_empty()
            && self.queue.pending() == 0
            && self.queue.next_id() == 0
    }
}

/// The ECC substrate: per-namespace vector indexes, causal graphs, cross-reference stores
/// and impulse queues, and one hybrid logical clock.
///
/// Every mutation is an [`EccOp`] applied with [`Ecc::apply`]; the convenience mutators
/// (`insert`, `link`, `emit`, ...) build the op and call `apply`. A kernel that records
/// ops builds them itself (or with `prepare_*` for the clock-stamped ones), records, then
/// applies. `apply` is all-or-nothing: an op that fails leaves the state as it was.
///
/// Reads take `&self` and the type is `Send + Sync`, so an `RwLock<Ecc>` lets searches run
/// side by side.
#[derive(Debug)]
pub struct Ecc {
    spaces: BTreeMap<Namespace, Space>,
    hlc: Hlc,
    config: EccConfig,
}

macro_rules! outcome {
    ($self:ident, $op:expr, $pat:pat => $val:expr) => {{
        let op = $op;
        match $self.apply(&op)? {
            $pat => Ok($val),
            other => Err(EccError::Internal {
                reason: format!("{} produced {other:?}", op.name()),
            }),
        }
    }};
}

impl Ecc {
    /// An empty state on the given physical clock.
    pub fn new(clock: Arc<dyn PhysicalClock>, config: EccConfig) -> Self {
        Ecc {
            spaces: BTreeMap::new(),
            hlc: Hlc::new(clock, config.hlc),
            config,
        }
    }

    /// An empty state on the system clock with default settings.
    pub fn with_system_clock() -> Self {
        Ecc::new(Arc::new(SystemClock), EccConfig::default())
    }

    /// The settings.
    pub fn config(&self) -> EccConfig {
        self.config
    }

    // ----- the one mutation entry point -------------------------------------------------

    /// Applies one op. All-or-nothing; deterministic (clock-dependent ops carry their
    /// timestamps), so re-applying the same ops to the same state gives the same result.
    pub fn apply(&mut self, op: &EccOp) -> Result<OpOutcome> {
        if let EccOp::Clock { ts } = op {
            self.hlc.observe(*ts);
            return Ok(OpOutcome::ClockRaised {
                now: self.hlc.last(),
            });
        }
        let Some(ns) = op.namespace() else {
            return Err(EccError::Internal {
                reason: format!("{} has no namespace", op.name()),
            });
        };
        let cap = self.config.queue_cap;
        let space = self
            .spaces
            .entry(ns.clone())
            .or_insert_with(|| Space::new(ns, cap));
        let result = apply_to_space(space, &mut self.hlc, op);
        if space.is_vacant() {
            self.spaces.remove(ns);
        }
        result
    }

    /// Applies ops in order. Failed ops are counted and skipped: they changed nothing when
    /// they first ran, and change nothing now.
    pub fn replay<'a>(&mut self, ops: impl IntoIterator<Item = &'a EccOp>) -> ReplayReport {
        let mut report = ReplayReport::default();
        for (i, op) in ops.into_iter().enumerate() {
            match self.apply(op) {
                Ok(_) => report.applied += 1,
                Err(e) => report.failed.push((i, e.to_string())),
            }
        }
        report
    }

    // ----- vector index -----------------------------------------------------------------

    /// Creates `ns`'s vector index.
    pub fn create_index(&mut self, ns: &Namespace, config: IndexConfig) -> Result<()> {
        outcome!(self, EccOp::CreateIndex { ns: ns.clone(), config }, OpOutcome::IndexCreated => ())
    }

    /// Drops `ns`'s vector index; returns how many live entries it had.
    pub fn drop_index(&mut self, ns: &Namespace) -> Result<usize> {
        outcome!(self, EccOp::DropIndex { ns: ns.clone() }, OpOutcome::IndexDropped { entries, .. } => entries)
    }

    /// Inserts (or replaces) entries, in order, all or nothing.
    pub fn insert(&mut self, ns: &Namespace, entries: Vec<VectorEntry>) -> Result<InsertOutcome> {
        outcome!(self, EccOp::Insert { ns: ns.clone(), entries },
            OpOutcome::Inserted { entries, compacted } => InsertOutcome { entries, compacted })
    }

    /// Tombstones entries; returns how many (compaction may follow).
    pub fn delete(&mut self, ns: &Namespace, keys: Vec<Key>) -> Result<usize> {
        outcome!(self, EccOp::Delete { ns: ns.clone(), keys }, OpOutcome::Deleted { deleted, .. } => deleted)
    }

    /// Rebuilds the index without tombstones.
    pub fn compact(&mut self, ns: &Namespace) -> Result<()> {
        outcome!(self, EccOp::Compact { ns: ns.clone() }, OpOutcome::Compacted { .. } => ())
    }

    /// The index of `ns`.
    pub fn index(&self, ns: &Namespace) -> Option<&VectorIndex> {
        self.spaces.get(ns).and_then(|s| s.index.as_ref())
    }

    fn index_or_err(&self, ns: &Namespace) -> Result<&VectorIndex> {
        self.index(ns)
            .ok_or_else(|| EccError::NoIndex { ns: ns.clone() })
    }

    /// The `k` nearest live entries to `query` in `ns`, with search width `ef`.
    pub fn search(
        &self,
        ns: &Namespace,
        query: &[f32],
        k: usize,
        ef: usize,
    ) -> Result<Vec<SearchHit>> {
        self.index_or_err(ns)?.search(query, k, ef)
    }

    /// Counters and parameters of `ns`'s index.
    pub fn index_stats(&self, ns: &Namespace) -> Result<IndexStats> {
        Ok(self.index_or_err(ns)?.stats())
    }

    // ----- causal graph -----------------------------------------------------------------

    /// Adds a causal node (or updates its label and attributes); true if new.
    pub fn add_node(&mut self, ns: &Namespace, node: CausalNode) -> Result<bool> {
        outcome!(self, EccOp::AddNode { ns: ns.clone(), node }, OpOutcome::NodeAdded { created } => created)
    }

    /// Removes a node with its edges and references; returns the edges removed.
    pub fn remove_node(&mut self, ns: &Namespace, key: Key) -> Result<usize> {
        outcome!(self, EccOp::RemoveNode { ns: ns.clone(), key }, OpOutcome::NodeRemoved { edges_removed, .. } => edges_removed)
    }

    /// Links `from -> to`; refused with [`EccError::Cycle`] if that closes a cycle. True
    /// if the edge is new (false: its weight was updated).
    pub fn link(
        &mut self,
        ns: &Namespace,
        from: Key,
        to: Key,
        kind: EdgeKind,
        weight: f32,
    ) -> Result<bool> {
        outcome!(self, EccOp::Link { ns: ns.clone(), from, to, kind, weight }, OpOutcome::Linked { created } => created)
    }

    /// Removes the edge of `kind` (or all edges) `from -> to`; returns how many.
    pub fn unlink(
        &mut self,
        ns: &Namespace,
        from: Key,
        to: Key,
        kind: Option<EdgeKind>,
    ) -> Result<usize> {
        outcome!(self, EccOp::Unlink { ns: ns.clone(), from, to, kind }, OpOutcome::Unlinked { removed } => removed)
    }

    /// The causal graph of `ns` (queries: edges, traversal, paths, DOT).
    pub fn graph(&self, ns: &Namespace) -> Option<&CausalGraph> {
        self.spaces.get(ns).map(|s| &s.graph)
    }

    /// All edges of `ns`'s graph, sorted (empty if the namespace has none).
    pub fn edges(&self, ns: &Namespace) -> Vec<CausalEdge> {
        self.graph(ns).map(|g| g.edges()).unwrap_or_default()
    }

    // ----- cross-references -------------------------------------------------------------

    /// Adds a reference; true if new. Vector and causal endpoints must exist.
    pub fn add_ref(&mut self, ns: &Namespace, cross_ref: CrossRef) -> Result<bool> {
        outcome!(self, EccOp::AddRef { ns: ns.clone(), cross_ref }, OpOutcome::RefAdded { created } => created)
    }

    /// Removes a reference.
    pub fn remove_ref(&mut self, ns: &Namespace, cross_ref: CrossRef) -> Result<()> {
        outcome!(self, EccOp::RemoveRef { ns: ns.clone(), cross_ref }, OpOutcome::RefRemoved => ())
    }

    /// The reference store of `ns`.
    pub fn crossrefs(&self, ns: &Namespace) -> Option<&CrossRefStore> {
        self.spaces.get(ns).map(|s| &s.refs)
    }

    // ----- impulses and the clock -------------------------------------------------------

    fn check_impulse(
        &self,
        ns: &Namespace,
        topic: &str,
        source: Option<&NodeRef>,
        payload: &[u8],
    ) -> Result<()> {
        match self.spaces.get(ns) {
            Some(s) => s.queue.check_push(topic, source, payload),
            None => validate_impulse(topic, source, payload),
        }
    }

    /// Issues a timestamp (a local event: the clock advances now) and returns the
    /// [`EccOp::Emit`] to record and apply. Nothing is queued until it is applied.
    pub fn prepare_emit(
        &mut self,
        ns: &Namespace,
        topic: &str,
        source: Option<NodeRef>,
        payload: Vec<u8>,
    ) -> Result<EccOp> {
        self.check_impulse(ns, topic, source.as_ref(), &payload)?;
        Ok(EccOp::Emit {
            ns: ns.clone(),
            ts: self.hlc.now(),
            topic: topic.to_string(),
            source,
            payload,
        })
    }

    /// Merges a received impulse's timestamp into the clock (refusing one beyond the
    /// drift bound) and returns the [`EccOp::Receive`] to record and apply.
    pub fn prepare_receive(
        &mut self,
        ns: &Namespace,
        ts: HlcTimestamp,
        topic: &str,
        source: Option<NodeRef>,
        payload: Vec<u8>,
    ) -> Result<EccOp> {
        self.check_impulse(ns, topic, source.as_ref(), &payload)?;
        let clock = self.hlc.receive(ts)?;
        Ok(EccOp::Receive {
            ns: ns.clone(),
            ts,
            clock,
            topic: topic.to_string(),
            source,
            payload,
        })
    }

    /// Issues a timestamp for a local event of the caller's own (e.g. to stamp a message
    /// it sends) and returns the [`EccOp::Clock`] that persists it.
    pub fn prepare_tick(&mut self) -> EccOp {
        EccOp::Clock { ts: self.hlc.now() }
    }

    /// Merges a timestamp received with some message and returns the [`EccOp::Clock`]
    /// that persists the merge.
    pub fn prepare_merge(&mut self, remote: HlcTimestamp) -> Result<EccOp> {
        Ok(EccOp::Clock {
            ts: self.hlc.receive(remote)?,
        })
    }

    /// Emits an impulse now: `prepare_emit` then `apply`. Returns its id and timestamp.
    pub fn emit(
        &mut self,
        ns: &Namespace,
        topic: &str,
        source: Option<NodeRef>,
        payload: Vec<u8>,
    ) -> Result<(u64, HlcTimestamp)> {
        let op = self.prepare_emit(ns, topic, source, payload)?;
        outcome!(self, op, OpOutcome::Queued { id, ts } => (id, ts))
    }

    /// Queues a received impulse: `prepare_receive` then `apply`.
    pub fn receive(
        &mut self,
        ns: &Namespace,
        ts: HlcTimestamp,
        topic: &str,
        source: Option<NodeRef>,
        payload: Vec<u8>,
    ) -> Result<(u64, HlcTimestamp)> {
        let op = self.prepare_receive(ns, ts, topic, source, payload)?;
        outcome!(self, op, OpOutcome::Queued { id, ts } => (id, ts))
    }

    /// Removes and returns `ns`'s impulses stamped at or before `now`, in HLC order.
    pub fn drain_ready(&mut self, ns: &Namespace, now: HlcTimestamp) -> Result<Vec<Impulse>> {
        outcome!(self, EccOp::Drain { ns: ns.clone(), upto: now }, OpOutcome::Drained { impulses } => impulses)
    }

    /// A local clock event: `prepare_tick` then `apply`.
    pub fn tick(&mut self) -> Result<HlcTimestamp> {
        let op = self.prepare_tick();
        outcome!(self, op, OpOutcome::ClockRaised { now } => now)
    }

    /// A merge of a received timestamp: `prepare_merge` then `apply`.
    pub fn merge(&mut self, remote: HlcTimestamp) -> Result<HlcTimestamp> {
        let op = self.prepare_merge(remote)?;
        outcome!(self, op, OpOutcome::ClockRaised { now } => now)
    }

    /// Number of pending impulses in `ns`.
    pub fn pending(&self, ns: &Namespace) -> usize {
        self.spaces.get(ns).map_or(0, |s| s.queue.pending())
    }

    /// The impulse queue of `ns`.
    pub fn impulses(&self, ns: &Namespace) -> Option<&ImpulseQueue> {
        self.spaces.get(ns).map(|s| &s.queue)
    }

    /// The clock.
    pub fn clock(&self) -> &Hlc {
        &self.hlc
    }

    /// The clock state to save (see [`ClockState`]).
    pub fn clock_state(&self) -> ClockState {
        self.hlc.state()
    }

    /// Raises the clock to at least a separately saved state (e.g. one persisted after
    /// the last snapshot), so it never issues a timestamp at or below it.
    pub fn restore_clock(&mut self, state: ClockState) {
        self.hlc.observe(state.last);
    }

    /// Namespaces that hold any state, in order.
    pub fn namespaces(&self) -> impl Iterator<Item = &Namespace> + '_ {
        self.spaces.keys()
    }

    // ----- durability -------------------------------------------------------------------

    /// Writes the whole state to `dir` atomically: `ecc.snapshot` plus the `hnsw_rs` dump
    /// files of the index graphs (see `docs/ecc.md`). `marker` is stored as is (e.g. the
    /// sequence number of the last chain record the state includes) and handed back by
    /// [`Ecc::load_snapshot`], so the caller knows where replay resumes.
    pub fn save_snapshot(&self, dir: &Path, marker: u64) -> Result<SnapshotInfo> {
        std::fs::create_dir_all(dir).map_err(|source| crate::error::SnapshotError::Io {
            path: dir.to_path_buf(),
            op: "create directory",
            source,
        })?;
        let generation = snapshot::next_generation(dir)?;
        let mut spaces = Vec::with_capacity(self.spaces.len());
        let mut graph_bytes = 0;
        for (i, (ns, s)) in self.spaces.iter().enumerate() {
            let index = match &s.index {
                Some(ix) => {
                    let snap = ix.save(dir, &format!("ecc.g{generation}.{i}"))?;
                    if let Some(g) = &snap.graph {
                        graph_bytes += g.graph_len + g.data_len;
                    }
                    Some(snap)
                }
                None => None,
            };
            spaces.push(SpaceSnapshot {
                ns: ns.clone(),
                index,
                graph: s.graph.to_snapshot(),
                refs: s.refs.all(),
                queue: s.queue.to_snapshot(),
            });
        }
        let body = SnapshotBody {
            marker,
            clock: self.hlc.state(),
            spaces,
        };
        let (path, bytes) = snapshot::write(dir, &body)?;
        snapshot::sweep(dir, generation);
        Ok(SnapshotInfo {
            path,
            bytes,
            graph_bytes,
            marker,
            clock: body.clock,
        })
    }

    /// Loads the snapshot in `dir`. Index graphs are loaded from their dump files (checked
    /// against the sums the snapshot records). The clock continues from the saved state on
    /// the given physical clock.
    pub fn load_snapshot(
        dir: &Path,
        clock: Arc<dyn PhysicalClock>,
        config: EccConfig,
    ) -> Result<(Ecc, SnapshotInfo)> {
        let (body, path, bytes) = snapshot::read(dir)?;
        // Errors about the dump files name those files; anything else names the snapshot.
        let invalid = |e: EccError| match e {
            EccError::Snapshot(s) => s,
            other => crate::error::SnapshotError::Decode {
                path: path.clone(),
                reason: other.to_string(),
            },
        };
        let graph_bytes = body
            .spaces
            .iter()
            .filter_map(|s| s.index.as_ref()?.graph.as_ref())
            .map(|g| g.graph_len + g.data_len)
            .sum();
        let mut spaces = BTreeMap::new();
        for s in body.spaces {
            let ns = s.ns;
            let index = match s.index {
                Some(i) => Some(VectorIndex::restore(ns.clone(), i, Some(dir)).map_err(invalid)?),
                None => None,
            };
            let graph = CausalGraph::from_snapshot(ns.clone(), s.graph).map_err(invalid)?;
            let mut refs = CrossRefStore::new(ns.clone());
            for r in &s.refs {
                refs.insert(r).map_err(invalid)?;
            }
            let queue = ImpulseQueue::from_snapshot(ns.clone(), config.queue_cap, s.queue)
                .map_err(invalid)?;
            spaces.insert(
                ns,
                Space {
                    index,
                    graph,
                    refs,
                    queue,
                },
            );
        }
        let info = SnapshotInfo {
            path,
            bytes,
            graph_bytes,
            marker: body.marker,
            clock: body.clock,
        };
        Ok((
            Ecc {
                spaces,
                hlc: Hlc::restore(body.clock, clock, config.hlc),
                config,
            },
            info,
        ))
    }
}

/// The body of [`Ecc::apply`] for namespaced ops. Each arm checks everything that can
/// fail before it changes anything.
fn apply_to_space(space: &mut Space, hlc: &mut Hlc, op: &EccOp) -> Result<OpOutcome> {
    match op {
        EccOp::CreateIndex { ns, config } => {
            if space.index.is_some() {
                return Err(EccError::IndexExists { ns: ns.clone() });
            }
            space.index = Some(VectorIndex::new(ns.clone(), config.clone())?);
            Ok(OpOutcome::IndexCreated)
        }
        EccOp::DropIndex { ns } => {
            let index = space
                .index
                .take()
                .ok_or_else(|| EccError::NoIndex { ns: ns.clone() })?;
            let mut refs_removed = 0;
            for key in index.keys() {
                refs_removed += space.refs.remove_node(&NodeRef::Vector(key.clone()));
            }
            Ok(OpOutcome::IndexDropped {
                entries: index.len(),
                refs_removed,
            })
        }
        EccOp::Insert { ns, entries } => {
            let index = space
                .index
                .as_mut()
                .ok_or_else(|| EccError::NoIndex { ns: ns.clone() })?;
            let (entries, compacted) = index.insert(entries)?;
            Ok(OpOutcome::Inserted { entries, compacted })
        }
        EccOp::Delete { ns, keys } => {
            let index = space
                .index
                .as_mut()
                .ok_or_else(|| EccError::NoIndex { ns: ns.clone() })?;
            let (deleted, compacted) = index.delete(keys)?;
            let mut refs_removed = 0;
            for key in keys {
                refs_removed += space.refs.remove_node(&NodeRef::Vector(key.clone()));
            }
            Ok(OpOutcome::Deleted {
                deleted,
                compacted,
                refs_removed,
            })
        }
        EccOp::Compact { ns } => {
            let index = space
                .index
                .as_mut()
                .ok_or_else(|| EccError::NoIndex { ns: ns.clone() })?;
            index.compact();
            Ok(OpOutcome::Compacted {
                entries: index.len(),
            })
        }
        EccOp::AddNode { node, .. } => {
            let created = space.graph.add_node(node.clone())?;
            Ok(OpOutcome::NodeAdded { created })
        }
        EccOp::RemoveNode { key, .. } => {
            let edges_removed = space.graph.remove_node(key)?;
            let refs_removed = space.refs.remove_node(&NodeRef::Causal(key.clone()));
            Ok(OpOutcome::NodeRemoved {
                edges_removed,
                refs_removed,
            })
        }
        EccOp::Link {
            from,
            to,
            kind,
            weight,
            ..
        } => {
            let created = space.graph.link(from, to, kind, *weight)?;
            Ok(OpOutcome::Linked { created })
        }
        EccOp::Unlink { from, to, kind, .. } => {
            let removed = space.graph.unlink(from, to, kind.as_ref())?;
            Ok(OpOutcome::Unlinked { removed })
        }
        EccOp::AddRef { ns, cross_ref } => {
            for end in [&cross_ref.from, &cross_ref.to] {
                let exists = match end {
                    NodeRef::Vector(k) => space.index.as_ref().is_some_and(|i| i.contains(k)),
                    NodeRef::Causal(k) => space.graph.contains(k),
                    NodeRef::ChainEvent(_) | NodeRef::TreePath(_) => true,
                };
                if !exists {
                    return Err(EccError::RefEndpointMissing {
                        ns: ns.clone(),
                        what: end.to_string(),
                    });
                }
            }
            let created = space.refs.insert(cross_ref)?;
            Ok(OpOutcome::RefAdded { created })
        }
        EccOp::RemoveRef { ns, cross_ref } => {
            if space.refs.remove(cross_ref) {
                Ok(OpOutcome::RefRemoved)
            } else {
                Err(EccError::RefNotFound { ns: ns.clone() })
            }
        }
        EccOp::Emit {
            ts,
            topic,
            source,
            payload,
            ..
        } => {
            let id = space.queue.push(*ts, topic, source.as_ref(), payload)?;
            hlc.observe(*ts);
            Ok(OpOutcome::Queued { id, ts: *ts })
        }
        EccOp::Receive {
            ts,
            clock,
            topic,
            source,
            payload,
            ..
        } => {
            if clock < ts {
                return Err(EccError::InvalidParameter {
                    what: "receive",
                    reason: format!("merged clock {clock} is below the received timestamp {ts}"),
                });
            }
            let id = space.queue.push(*ts, topic, source.as_ref(), payload)?;
            hlc.observe(*clock);
            Ok(OpOutcome::Queued { id, ts: *ts })
        }
        EccOp::Drain { upto, .. } => Ok(OpOutcome::Drained {
            impulses: space.queue.drain_ready(*upto),
        }),
        EccOp::Clock { ts } => {
            hlc.observe(*ts);
            Ok(OpOutcome::ClockRaised { now: hlc.last() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn ecc_is_send_and_sync() {
        assert_send_sync::<Ecc>();
    }
}
