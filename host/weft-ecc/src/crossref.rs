//! Cross-references: typed links between entries of different structures (a vector
//! entry, a causal node, a chain event, a resource-tree path), addressed by universal
//! node ids.
//!
//! ## Universal node id
//!
//! `UniversalNodeId = BLAKE3-derive-key(context = "weft ecc universal node id v1", input)`,
//! 32 bytes, where `input` is:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | structure tag: 1 vector entry, 2 causal node, 3 chain event, 4 tree path |
//! | 4 | namespace length `n`, u32 big-endian (0 for chain events and tree paths, which are global) |
//! | n | namespace, UTF-8 |
//! | .. | local id (below) |
//!
//! Local id: for a vector entry or causal node key, one byte `0` then the u64 big-endian
//! for a numeric key, or one byte `1`, a u32 big-endian length and the UTF-8 bytes for a
//! string key; for a chain event, the sequence number as u64 big-endian; for a tree path,
//! a u32 big-endian length and the UTF-8 path. The lengths make the encoding injective, and
//! the derive-key context keeps these ids apart from every other BLAKE3 use in Weft.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{EccError, Result};
use crate::names::{validate_label, Key, Namespace};

/// BLAKE3 derive-key context for universal node ids.
pub const NODE_ID_CONTEXT: &str = "weft ecc universal node id v1";
/// Longest tree path in a reference, in bytes.
pub const MAX_TREE_PATH: usize = 1024;

/// Which structure a node lives in (the first byte hashed into its id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum StructureTag {
    /// An entry of the namespace's vector index.
    Vector = 1,
    /// A node of the namespace's causal graph.
    Causal = 2,
    /// An event on the kernel chain.
    ChainEvent = 3,
    /// A node of the resource tree.
    TreePath = 4,
}

/// A node in some structure. Vector entries and causal nodes belong to the namespace of
/// the store that names them; chain events and tree paths are global.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRef {
    /// A vector entry by key.
    Vector(Key),
    /// A causal node by key.
    Causal(Key),
    /// A chain event by sequence number.
    ChainEvent(u64),
    /// A resource-tree path such as `/apps/hello`.
    TreePath(String),
}

impl NodeRef {
    /// Its structure.
    pub fn tag(&self) -> StructureTag {
        match self {
            NodeRef::Vector(_) => StructureTag::Vector,
            NodeRef::Causal(_) => StructureTag::Causal,
            NodeRef::ChainEvent(_) => StructureTag::ChainEvent,
            NodeRef::TreePath(_) => StructureTag::TreePath,
        }
    }

    /// Checks keys and paths.
    pub fn validate(&self) -> Result<()> {
        match self {
            NodeRef::Vector(k) | NodeRef::Causal(k) => k.validate(),
            NodeRef::ChainEvent(_) => Ok(()),
            NodeRef::TreePath(p) => {
                if p.starts_with('/') && p.len() <= MAX_TREE_PATH {
                    Ok(())
                } else {
                    Err(EccError::InvalidParameter {
                        what: "tree path",
                        reason: format!("must start with '/' and be at most {MAX_TREE_PATH} bytes"),
                    })
                }
            }
        }
    }

    /// The universal id of this node as seen from namespace `ns`.
    pub fn id(&self, ns: &Namespace) -> UniversalNodeId {
        UniversalNodeId::of(ns, self)
    }
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeRef::Vector(k) => write!(f, "vector {k}"),
            NodeRef::Causal(k) => write!(f, "causal node {k}"),
            NodeRef::ChainEvent(s) => write!(f, "chain event {s}"),
            NodeRef::TreePath(p) => write!(f, "tree path {p}"),
        }
    }
}

/// A 32-byte BLAKE3 id naming one node in one structure (layout in the module docs).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UniversalNodeId(pub [u8; 32]);

impl UniversalNodeId {
    /// The id of `node` in namespace `ns`.
    pub fn of(ns: &Namespace, node: &NodeRef) -> Self {
        let mut h = blake3::Hasher::new_derive_key(NODE_ID_CONTEXT);
        h.update(&[node.tag() as u8]);
        let scoped = matches!(node, NodeRef::Vector(_) | NodeRef::Causal(_));
        let ns_bytes = if scoped { ns.as_str().as_bytes() } else { b"" };
        // Namespace names are at most 128 bytes, so the cast cannot truncate.
        h.update(&(ns_bytes.len() as u32).to_be_bytes());
        h.update(ns_bytes);
        let put_str = |h: &mut blake3::Hasher, s: &str| {
            // Keys and paths are bounded far below 4 GiB by validation.
            h.update(&(s.len() as u32).to_be_bytes());
            h.update(s.as_bytes());
        };
        match node {
            NodeRef::Vector(k) | NodeRef::Causal(k) => match k {
                Key::Num(n) => {
                    h.update(&[0]);
                    h.update(&n.to_be_bytes());
                }
                Key::Str(s) => {
                    h.update(&[1]);
                    put_str(&mut h, s);
                }
            },
            NodeRef::ChainEvent(seq) => {
                h.update(&seq.to_be_bytes());
            }
            NodeRef::TreePath(p) => put_str(&mut h, p),
        }
        UniversalNodeId(*h.finalize().as_bytes())
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for UniversalNodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UniversalNodeId({})", self.to_hex())
    }
}

impl fmt::Display for UniversalNodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The type of a cross-reference.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefKind {
    /// The source is an embedding of the target.
    EmbeddingOf,
    /// The source was recorded by the target (e.g. a chain event).
    RecordedIn,
    /// The source describes the target.
    Describes,
    /// The source was derived from the target.
    DerivedFrom,
    /// The source mentions the target.
    Mentions,
    /// An application-defined kind (a label).
    Custom(String),
}

impl RefKind {
    /// Checks a custom kind's label.
    pub fn validate(&self) -> Result<()> {
        match self {
            RefKind::Custom(s) => validate_label("reference kind", s),
            _ => Ok(()),
        }
    }
}

/// One reference.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CrossRef {
    /// Source node.
    pub from: NodeRef,
    /// Target node.
    pub to: NodeRef,
    /// Reference type.
    pub kind: RefKind,
}

/// One namespace's references, indexed both ways and by kind.
#[derive(Clone, Debug)]
pub struct CrossRefStore {
    ns: Namespace,
    /// Id -> node, for every node that appears in some reference.
    nodes: BTreeMap<UniversalNodeId, NodeRef>,
    forward: BTreeMap<UniversalNodeId, BTreeSet<(RefKind, UniversalNodeId)>>,
    reverse: BTreeMap<UniversalNodeId, BTreeSet<(RefKind, UniversalNodeId)>>,
    by_kind: BTreeMap<RefKind, BTreeSet<(UniversalNodeId, UniversalNodeId)>>,
    len: usize,
}

impl CrossRefStore {
    /// An empty store.
    pub fn new(ns: Namespace) -> Self {
        CrossRefStore {
            ns,
            nodes: BTreeMap::new(),
            forward: BTreeMap::new(),
            reverse: BTreeMap::new(),
            by_kind: BTreeMap::new(),
            len: 0,
        }
    }

    /// Number of references.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The id of `node` in this store's namespace.
    pub fn id_of(&self, node: &NodeRef) -> UniversalNodeId {
        UniversalNodeId::of(&self.ns, node)
    }

    /// The node with this id, if some reference mentions it.
    pub fn resolve(&self, id: &UniversalNodeId) -> Option<&NodeRef> {
        self.nodes.get(id)
    }

    fn make(
        &self,
        from: &UniversalNodeId,
        kind: &RefKind,
        to: &UniversalNodeId,
    ) -> Option<CrossRef> {
        Some(CrossRef {
            from: self.nodes.get(from)?.clone(),
            to: self.nodes.get(to)?.clone(),
            kind: kind.clone(),
        })
    }

    /// Adds a reference; returns false if it was already there.
    pub(crate) fn insert(&mut self, r: &CrossRef) -> Result<bool> {
        r.from.validate()?;
        r.to.validate()?;
        r.kind.validate()?;
        let f = self.id_of(&r.from);
        let t = self.id_of(&r.to);
        if !self
            .forward
            .entry(f)
            .or_default()
            .insert((r.kind.clone(), t))
        {
            return Ok(false);
        }
        self.reverse
            .entry(t)
            .or_default()
            .insert((r.kind.clone(), f));
        self.by_kind
            .entry(r.kind.clone())
            .or_default()
            .insert((f, t));
        self.nodes.insert(f, r.from.clone());
        self.nodes.insert(t, r.to.clone());
        self.len += 1;
        Ok(true)
    }

    /// Removes a reference; returns false if it was not there.
    pub(crate) fn remove(&mut self, r: &CrossRef) -> bool {
        let f = self.id_of(&r.from);
        let t = self.id_of(&r.to);
        self.remove_ids(f, &r.kind, t)
    }

    fn remove_ids(&mut self, f: UniversalNodeId, kind: &RefKind, t: UniversalNodeId) -> bool {
        let key = (kind.clone(), t);
        let removed = self.forward.get_mut(&f).is_some_and(|s| s.remove(&key));
        if !removed {
            return false;
        }
        if self.forward.get(&f).is_some_and(|s| s.is_empty()) {
            self.forward.remove(&f);
        }
        if let Some(s) = self.reverse.get_mut(&t) {
            s.remove(&(kind.clone(), f));
            if s.is_empty() {
                self.reverse.remove(&t);
            }
        }
        if let Some(s) = self.by_kind.get_mut(kind) {
            s.remove(&(f, t));
            if s.is_empty() {
                self.by_kind.remove(kind);
            }
        }
        for id in [f, t] {
            if !self.forward.contains_key(&id) && !self.reverse.contains_key(&id) {
                self.nodes.remove(&id);
            }
        }
        self.len -= 1;
        true
    }

    /// Removes every reference from or to `node`; returns how many.
    pub(crate) fn remove_node(&mut self, node: &NodeRef) -> usize {
        let id = self.id_of(node);
        let out: Vec<(RefKind, UniversalNodeId)> = self
            .forward
            .get(&id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        let inc: Vec<(RefKind, UniversalNodeId)> = self
            .reverse
            .get(&id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        let mut n = 0;
        for (k, t) in out {
            n += usize::from(self.remove_ids(id, &k, t));
        }
        for (k, f) in inc {
            n += usize::from(self.remove_ids(f, &k, id));
        }
        n
    }

    /// References from `node`, sorted by (kind, target id).
    pub fn forward(&self, node: &NodeRef) -> Vec<CrossRef> {
        self.forward_id(&self.id_of(node))
    }

    /// References from the node with id `id`.
    pub fn forward_id(&self, id: &UniversalNodeId) -> Vec<CrossRef> {
        self.forward
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|(k, t)| self.make(id, k, t))
            .collect()
    }

    /// References to `node`, sorted by (kind, source id).
    pub fn reverse(&self, node: &NodeRef) -> Vec<CrossRef> {
        self.reverse_id(&self.id_of(node))
    }

    /// References to the node with id `id`.
    pub fn reverse_id(&self, id: &UniversalNodeId) -> Vec<CrossRef> {
        self.reverse
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|(k, f)| self.make(f, k, id))
            .collect()
    }

    /// References of one kind, sorted by (source id, target id).
    pub fn by_kind(&self, kind: &RefKind) -> Vec<CrossRef> {
        self.by_kind
            .get(kind)
            .into_iter()
            .flatten()
            .filter_map(|(f, t)| self.make(f, kind, t))
            .collect()
    }

    /// Every reference, sorted by (source id, kind, target id).
    pub fn all(&self) -> Vec<CrossRef> {
        self.forward
            .iter()
            .flat_map(|(f, set)| set.iter().filter_map(move |(k, t)| self.make(f, k, t)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> Namespace {
        Namespace::new(s).unwrap()
    }

    #[test]
    fn id_layout_is_as_documented() {
        let n = ns("agent/mem");
        let mut input = vec![2u8];
        input.extend_from_slice(&9u32.to_be_bytes());
        input.extend_from_slice(b"agent/mem");
        input.push(1);
        input.extend_from_slice(&4u32.to_be_bytes());
        input.extend_from_slice(b"fact");
        let expect = blake3::derive_key(NODE_ID_CONTEXT, &input);
        assert_eq!(
            UniversalNodeId::of(&n, &NodeRef::Causal(Key::str("fact").unwrap())).0,
            expect
        );

        let mut input = vec![3u8];
        input.extend_from_slice(&0u32.to_be_bytes());
        input.extend_from_slice(&42u64.to_be_bytes());
        assert_eq!(
            UniversalNodeId::of(&n, &NodeRef::ChainEvent(42)).0,
            blake3::derive_key(NODE_ID_CONTEXT, &input)
        );
    }

    #[test]
    fn ids_separate_structures_namespaces_and_key_types() {
        let a = ns("a");
        let b = ns("b");
        let ids = [
            UniversalNodeId::of(&a, &NodeRef::Vector(Key::Num(1))),
            UniversalNodeId::of(&a, &NodeRef::Causal(Key::Num(1))),
            UniversalNodeId::of(&b, &NodeRef::Vector(Key::Num(1))),
            UniversalNodeId::of(&a, &NodeRef::Vector(Key::str("1").unwrap())),
            UniversalNodeId::of(&a, &NodeRef::ChainEvent(1)),
        ];
        let set: BTreeSet<_> = ids.iter().collect();
        assert_eq!(set.len(), ids.len());
        // Global structures have the same id from every namespace.
        assert_eq!(
            UniversalNodeId::of(&a, &NodeRef::TreePath("/apps".into())),
            UniversalNodeId::of(&b, &NodeRef::TreePath("/apps".into()))
        );
    }
}
