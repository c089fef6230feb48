//! The Weft resource tree: a hierarchical namespace (`/kernel/agents/x`,
//! `/apps/y`, …) whose every mutation is appended to the ExoChain, so the
//! tree's history is auditable and can be rebuilt from the chain.
//!
//! Each mutation produces a [`MutationEvent`] in an in-memory log and a chain
//! event (`tree.bootstrap`, `tree.insert`, `tree.remove`, `tree.update`);
//! nodes remember the chain seq that created and last changed them.
//!
//! Removal policy: `remove` refuses nodes with children (`HasChildren`);
//! `remove_recursive` removes a whole subtree in one chain event. The
//! bootstrap namespaces (and `/`) can never be removed (`Protected`).

pub mod path;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weft_chain::{ChainError, ChainEvent, ChainManager, Durability};

/// Namespaces created by `bootstrap`, parents first.
pub const NAMESPACES: &[&str] = &[
    "/kernel",
    "/kernel/services",
    "/kernel/agents",
    "/apps",
    "/network",
    "/network/peers",
    "/environments",
];

/// Chain `source` of tree events.
pub const SOURCE: &str = "tree";

/// Node metadata: string keys to JSON values, ordered for stable output.
pub type Metadata = BTreeMap<String, Value>;

/// Why a tree operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// No node at this path.
    #[error("no node at {0}")]
    NotFound(String),
    /// A node already exists at this path.
    #[error("node {0} already exists")]
    Exists(String),
    /// The path is not absolute and canonical (see [`path::validate`]).
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `remove` of a node with children.
    #[error("node {path} has {children} children; use remove_recursive")]
    HasChildren {
        /// The node.
        path: String,
        /// How many direct children it has.
        children: usize,
    },
    /// `/` or a bootstrap namespace, which are never removed.
    #[error("{0} is a protected namespace and cannot be removed")]
    Protected(String),
    /// Rebuilding the tree from the chain met an event it cannot apply.
    #[error("chain event {seq} cannot be replayed: {reason}")]
    Replay {
        /// Seq of the event.
        seq: u64,
        /// Why it cannot be applied.
        reason: String,
    },
    /// The chain failed while recording a mutation or replaying one.
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
}

/// Kind of tree mutation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MutationOp {
    /// Creation of the [`NAMESPACES`].
    Bootstrap,
    /// A new node.
    Insert,
    /// A node, or a whole subtree, removed.
    Remove,
    /// One metadata key set.
    Update,
}

impl MutationOp {
    /// Chain event kind for this op.
    pub fn chain_kind(self) -> &'static str {
        match self {
            MutationOp::Bootstrap => "tree.bootstrap",
            MutationOp::Insert => "tree.insert",
            MutationOp::Remove => "tree.remove",
            MutationOp::Update => "tree.update",
        }
    }
}

/// One entry of the in-memory mutation log; `chain_seq` ties it to the chain.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MutationEvent {
    /// Position in the mutation log (0-based).
    pub seq: u64,
    /// What kind of mutation.
    pub op: MutationOp,
    /// The node it concerns (`/` for bootstrap).
    pub path: String,
    /// Metadata key, for updates.
    pub key: Option<String>,
    /// Every path created or removed by this mutation (bootstrap, recursive remove).
    pub affected: Vec<String>,
    /// Seq of the chain event recording it.
    pub chain_seq: u64,
    /// That event's timestamp.
    pub timestamp_ns: u64,
}

/// Read-only copy of a node, returned by `get` and `list`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeView {
    /// Absolute path, e.g. `/kernel/agents/echo`.
    pub path: String,
    /// Last path segment.
    pub name: String,
    /// The node's metadata.
    pub metadata: Metadata,
    /// Chain seq of the event that created the node.
    pub created_seq: u64,
    /// Chain seq of the event that created or last changed the node.
    pub chain_seq: u64,
    /// Direct children.
    pub children: usize,
}

/// Counters for `weaver tree stats`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TreeStats {
    /// Nodes including the root.
    pub nodes: usize,
    /// Deepest node's segment count.
    pub depth: usize,
    /// Mutations since the tree was created (the log keeps the newest
    /// [`MUTATION_WINDOW`]).
    pub mutations: usize,
}

/// Mutation log entries kept in memory (the chain holds them all).
pub const MUTATION_WINDOW: usize = 4096;

#[derive(Clone, Debug)]
struct Node {
    metadata: Metadata,
    created_seq: u64,
    chain_seq: u64,
    children: usize,
}

#[derive(Debug)]
struct State {
    nodes: BTreeMap<String, Node>,
    mutations: std::collections::VecDeque<MutationEvent>,
    /// Mutations ever logged (the next entry's seq).
    total_mutations: u64,
}

/// Chain payloads (CBOR on the chain, documented in docs/chain-format.md).
#[derive(Serialize, Deserialize)]
struct BootstrapPayload {
    created: Vec<String>,
}
#[derive(Serialize, Deserialize)]
struct InsertPayload {
    path: String,
    metadata: Metadata,
}
#[derive(Serialize, Deserialize)]
struct RemovePayload {
    path: String,
    recursive: bool,
    removed: Vec<String>,
}
#[derive(Serialize, Deserialize)]
struct UpdatePayload {
    path: String,
    key: String,
    value: Value,
}

/// Facade over the tree, its mutation log and the chain. Thread-safe; the
/// tree lock is held across the chain append so both orders agree.
pub struct TreeManager {
    chain: Arc<ChainManager>,
    durability: Durability,
    state: RwLock<State>,
}

impl std::fmt::Debug for TreeManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeManager")
            .field("stats", &self.stats())
            .finish()
    }
}

impl State {
    fn new() -> Self {
        let mut nodes = BTreeMap::new();
        // The root exists from genesis.
        nodes.insert(
            "/".to_string(),
            Node {
                metadata: Metadata::new(),
                created_seq: 0,
                chain_seq: 0,
                children: 0,
            },
        );
        State {
            nodes,
            mutations: Default::default(),
            total_mutations: 0,
        }
    }

    fn check_insert(&self, p: &str) -> Result<(), TreeError> {
        path::validate(p)?;
        if self.nodes.contains_key(p) {
            return Err(TreeError::Exists(p.into()));
        }
        if p != "/" && !self.nodes.contains_key(path::parent(p)) {
            return Err(TreeError::NotFound(path::parent(p).into()));
        }
        Ok(())
    }

    fn add_node(&mut self, p: &str, metadata: Metadata, seq: u64) {
        if let Some(parent) = self.nodes.get_mut(path::parent(p)) {
            parent.children += 1;
        }
        self.nodes.insert(
            p.to_string(),
            Node {
                metadata,
                created_seq: seq,
                chain_seq: seq,
                children: 0,
            },
        );
    }

    /// Paths of `p` and all its descendants, deepest first.
    fn subtree(&self, p: &str) -> Vec<String> {
        let prefix = path::child_prefix(p);
        let mut out: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        out.push(p.to_string());
        out.sort_by_key(|k| std::cmp::Reverse(path::depth(k)));
        out
    }

    fn check_remove(&self, p: &str, recursive: bool) -> Result<Vec<String>, TreeError> {
        path::validate(p)?;
        if p == "/" || NAMESPACES.contains(&p) {
            return Err(TreeError::Protected(p.into()));
        }
        let node = self
            .nodes
            .get(p)
            .ok_or_else(|| TreeError::NotFound(p.into()))?;
        if !recursive && node.children > 0 {
            return Err(TreeError::HasChildren {
                path: p.into(),
                children: node.children,
            });
        }
        let removed = self.subtree(p);
        if let Some(ns) = removed.iter().find(|r| NAMESPACES.contains(&r.as_str())) {
            return Err(TreeError::Protected(ns.clone()));
        }
        Ok(removed)
    }

    fn remove_nodes(&mut self, removed: &[String]) {
        for r in removed {
            if self.nodes.remove(r).is_some() {
                if let Some(parent) = self.nodes.get_mut(path::parent(r)) {
                    parent.children = parent.children.saturating_sub(1);
                }
            }
        }
    }

    fn log(
        &mut self,
        op: MutationOp,
        p: &str,
        key: Option<String>,
        affected: Vec<String>,
        ev: &ChainEvent,
    ) {
        let seq = self.total_mutations;
        self.total_mutations += 1;
        if self.mutations.len() == MUTATION_WINDOW {
            self.mutations.pop_front();
        }
        self.mutations.push_back(MutationEvent {
            seq,
            op,
            path: p.to_string(),
            key,
            affected,
            chain_seq: ev.seq,
            timestamp_ns: ev.timestamp_ns,
        });
    }

    fn view(&self, p: &str, n: &Node) -> NodeView {
        NodeView {
            path: p.to_string(),
            name: path::name(p).to_string(),
            metadata: n.metadata.clone(),
            created_seq: n.created_seq,
            chain_seq: n.chain_seq,
            children: n.children,
        }
    }

    /// Applies a recorded chain event (used by `restore`).
    fn replay(&mut self, ev: &ChainEvent) -> Result<(), String> {
        let op = match ev.kind.as_str() {
            "tree.bootstrap" => MutationOp::Bootstrap,
            "tree.insert" => MutationOp::Insert,
            "tree.remove" => MutationOp::Remove,
            "tree.update" => MutationOp::Update,
            _ => return Ok(()),
        };
        // Decode through JSON so metadata values come back as JSON values.
        let json = ev.payload_json().map_err(|e| e.to_string())?;
        let de = |e: serde_json::Error| e.to_string();
        match op {
            MutationOp::Bootstrap => {
                let p: BootstrapPayload = serde_json::from_value(json).map_err(de)?;
                for c in &p.created {
                    self.check_insert(c).map_err(|e| e.to_string())?;
                    self.add_node(c, Metadata::new(), ev.seq);
                }
                self.log(op, "/", None, p.created, ev);
            }
            MutationOp::Insert => {
                let p: InsertPayload = serde_json::from_value(json).map_err(de)?;
                self.check_insert(&p.path).map_err(|e| e.to_string())?;
                self.add_node(&p.path, p.metadata, ev.seq);
                self.log(op, &p.path, None, vec![p.path.clone()], ev);
            }
            MutationOp::Remove => {
                let p: RemovePayload = serde_json::from_value(json).map_err(de)?;
                let removed = self
                    .check_remove(&p.path, p.recursive)
                    .map_err(|e| e.to_string())?;
                if removed != p.removed {
                    return Err("removed set differs from the tree".into());
                }
                self.remove_nodes(&removed);
                self.log(op, &p.path, None, removed, ev);
            }
            MutationOp::Update => {
                let p: UpdatePayload = serde_json::from_value(json).map_err(de)?;
                let node = self
                    .nodes
                    .get_mut(&p.path)
                    .ok_or("update of missing node")?;
                node.metadata.insert(p.key.clone(), p.value);
                node.chain_seq = ev.seq;
                self.log(op, &p.path, Some(p.key), vec![p.path.clone()], ev);
            }
        }
        Ok(())
    }
}

impl TreeManager {
    /// An empty tree (root only) recording buffered chain events.
    pub fn new(chain: Arc<ChainManager>) -> Self {
        Self::with_durability(chain, Durability::Buffered)
    }

    /// Like `new`, choosing whether each mutation waits for fdatasync.
    pub fn with_durability(chain: Arc<ChainManager>, durability: Durability) -> Self {
        TreeManager {
            chain,
            durability,
            state: RwLock::new(State::new()),
        }
    }

    /// Rebuilds the tree by replaying the `tree.*` events of the chain,
    /// found through the chain's kind index (not by reading the log), so
    /// the tree survives restarts without a separate snapshot.
    pub fn restore(chain: Arc<ChainManager>) -> Result<Self, TreeError> {
        let mut state = State::new();
        for seq in chain.indexed_seqs("tree.")? {
            let ev = chain.read(seq)?.ok_or_else(|| TreeError::Replay {
                seq,
                reason: "event is gone (removed by retention?)".into(),
            })?;
            state.replay(&ev).map_err(|reason| TreeError::Replay {
                seq: ev.seq,
                reason,
            })?;
        }
        Ok(TreeManager {
            chain,
            durability: Durability::Buffered,
            state: RwLock::new(state),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    fn record<T: Serialize>(
        &self,
        op: MutationOp,
        payload: &T,
    ) -> Result<Arc<ChainEvent>, TreeError> {
        let kind = op.chain_kind();
        Ok(match self.durability {
            Durability::Buffered => self.chain.append(SOURCE, kind, payload)?,
            Durability::Durable => self.chain.append_durable(SOURCE, kind, payload)?,
        })
    }

    /// Creates the standard namespaces that do not exist yet, in one
    /// `tree.bootstrap` event. Returns the paths created (empty: no event).
    pub fn bootstrap(&self) -> Result<Vec<String>, TreeError> {
        let mut st = self.write();
        let created: Vec<String> = NAMESPACES
            .iter()
            .filter(|p| !st.nodes.contains_key(**p))
            .map(|p| p.to_string())
            .collect();
        if created.is_empty() {
            return Ok(created);
        }
        let ev = self.record(
            MutationOp::Bootstrap,
            &BootstrapPayload {
                created: created.clone(),
            },
        )?;
        for p in &created {
            st.add_node(p, Metadata::new(), ev.seq);
        }
        st.log(MutationOp::Bootstrap, "/", None, created.clone(), &ev);
        Ok(created)
    }

    /// Inserts a node under an existing parent; returns its chain seq.
    pub fn insert(&self, path: &str, metadata: Metadata) -> Result<u64, TreeError> {
        let mut st = self.write();
        st.check_insert(path)?;
        let payload = InsertPayload {
            path: path.to_string(),
            metadata,
        };
        let ev = self.record(MutationOp::Insert, &payload)?;
        st.add_node(path, payload.metadata, ev.seq);
        st.log(MutationOp::Insert, path, None, vec![path.to_string()], &ev);
        Ok(ev.seq)
    }

    /// Removes a leaf node; refuses nodes with children and namespaces.
    pub fn remove(&self, path: &str) -> Result<u64, TreeError> {
        self.remove_inner(path, false)
    }

    /// Removes a node and its whole subtree in one `tree.remove` event.
    pub fn remove_recursive(&self, path: &str) -> Result<u64, TreeError> {
        self.remove_inner(path, true)
    }

    fn remove_inner(&self, path: &str, recursive: bool) -> Result<u64, TreeError> {
        let mut st = self.write();
        let removed = st.check_remove(path, recursive)?;
        let payload = RemovePayload {
            path: path.to_string(),
            recursive,
            removed,
        };
        let ev = self.record(MutationOp::Remove, &payload)?;
        st.remove_nodes(&payload.removed);
        st.log(MutationOp::Remove, path, None, payload.removed, &ev);
        Ok(ev.seq)
    }

    /// Sets one metadata key on an existing node; returns the chain seq.
    pub fn update_meta(&self, path: &str, key: &str, value: Value) -> Result<u64, TreeError> {
        path::validate(path)?;
        let mut st = self.write();
        if !st.nodes.contains_key(path) {
            return Err(TreeError::NotFound(path.into()));
        }
        let payload = UpdatePayload {
            path: path.to_string(),
            key: key.to_string(),
            value,
        };
        let ev = self.record(MutationOp::Update, &payload)?;
        if let Some(node) = st.nodes.get_mut(path) {
            node.metadata.insert(payload.key, payload.value);
            node.chain_seq = ev.seq;
        }
        st.log(
            MutationOp::Update,
            path,
            Some(key.to_string()),
            vec![path.to_string()],
            &ev,
        );
        Ok(ev.seq)
    }

    /// Make the node at `path` carry `metadata`: inserted if missing, else
    /// each key whose value differs updated (one event per change, none if
    /// nothing changed; keys not in `metadata` stay). Returns the changes.
    pub fn upsert(&self, path: &str, metadata: Metadata) -> Result<usize, TreeError> {
        let Some(have) = self.get(path) else {
            self.insert(path, metadata)?;
            return Ok(1);
        };
        let mut changes = 0;
        for (k, v) in metadata {
            if have.metadata.get(&k) != Some(&v) {
                self.update_meta(path, &k, v)?;
                changes += 1;
            }
        }
        Ok(changes)
    }

    /// The node at `path`, if any.
    pub fn get(&self, path: &str) -> Option<NodeView> {
        let st = self.read();
        st.nodes.get(path).map(|n| st.view(path, n))
    }

    /// `prefix` and all its descendants, sorted by path.
    pub fn list(&self, prefix: &str) -> Result<Vec<NodeView>, TreeError> {
        path::validate(prefix)?;
        let st = self.read();
        let node = st
            .nodes
            .get(prefix)
            .ok_or_else(|| TreeError::NotFound(prefix.into()))?;
        let mut out = vec![st.view(prefix, node)];
        let cp = path::child_prefix(prefix);
        out.extend(
            st.nodes
                .range(cp.clone()..)
                .take_while(|(k, _)| k.starts_with(&cp))
                .filter(|(k, _)| k.as_str() != prefix)
                .map(|(k, n)| st.view(k, n)),
        );
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Node count, depth and mutation count.
    pub fn stats(&self) -> TreeStats {
        let st = self.read();
        TreeStats {
            nodes: st.nodes.len(),
            depth: st.nodes.keys().map(|k| path::depth(k)).max().unwrap_or(0),
            mutations: st.total_mutations as usize,
        }
    }

    /// The newest [`MUTATION_WINDOW`] mutations, oldest first.
    pub fn mutations(&self) -> Vec<MutationEvent> {
        self.read().mutations.iter().cloned().collect()
    }

    /// The chain this tree records to.
    pub fn chain(&self) -> &Arc<ChainManager> {
        &self.chain
    }
}

#[cfg(test)]
mod tests;
