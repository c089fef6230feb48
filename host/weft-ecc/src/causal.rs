//! The causal graph: a DAG of keyed nodes and typed, weighted edges.
//!
//! Stored in a petgraph `StableDiGraph` (indices survive removals). Acyclicity is kept with
//! the Pearce–Kelly dynamic topological order ("A Dynamic Topological Sort Algorithm for
//! Directed Acyclic Graphs", JEA 2004): every node has a position, every edge goes from a
//! lower to a higher position, and a new edge `a -> b` against the order only reorders the
//! nodes between `b` and `a`, so the common case (linking a cause to a newer effect) is
//! O(1). petgraph's own `Acyclic` wrapper does the same but keeps its scratch space in a
//! `RefCell`, which would make the whole ECC state `!Sync` and force readers to queue.
//!
//! Listings and traversals sort neighbours by key, so results do not depend on insertion
//! history (a graph rebuilt from a snapshot answers exactly like the original).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::{self, Write as _};

use petgraph::stable_graph::{EdgeIndex, NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences, NodeIndexable};
use petgraph::Direction as PgDirection;
use serde::{Deserialize, Serialize};

use crate::error::{EccError, Result};
use crate::names::{validate_label, Key, Namespace};

/// Longest node label, in bytes.
pub const MAX_NODE_LABEL: usize = 1024;
/// Most attributes per node.
pub const MAX_ATTRS: usize = 64;
/// Longest attribute value, in bytes.
pub const MAX_ATTR_VALUE: usize = 4096;

/// The type of a causal edge.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// The source brings about the target.
    Causes,
    /// The source makes the target possible.
    Enables,
    /// The source works against the target.
    Inhibits,
    /// The source happened before the target (ordering only).
    Precedes,
    /// The target was derived from the source.
    DerivedFrom,
    /// An application-defined kind (a label, see [`validate_label`]).
    Custom(String),
}

impl EdgeKind {
    /// Checks a custom kind's label.
    pub fn validate(&self) -> Result<()> {
        match self {
            EdgeKind::Custom(s) => validate_label("edge kind", s),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for EdgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EdgeKind::Causes => "causes",
            EdgeKind::Enables => "enables",
            EdgeKind::Inhibits => "inhibits",
            EdgeKind::Precedes => "precedes",
            EdgeKind::DerivedFrom => "derived_from",
            EdgeKind::Custom(s) => s,
        })
    }
}

/// A node: its key, a free-text label and string attributes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CausalNode {
    /// The caller-chosen key.
    pub key: Key,
    /// Free text, at most [`MAX_NODE_LABEL`] bytes.
    pub label: String,
    /// At most [`MAX_ATTRS`] attributes; names are labels, values at most
    /// [`MAX_ATTR_VALUE`] bytes.
    pub attrs: BTreeMap<String, String>,
}

impl CausalNode {
    /// Checks key, label and attributes.
    pub fn validate(&self) -> Result<()> {
        self.key.validate()?;
        let bad = |reason: String| {
            Err(EccError::InvalidParameter {
                what: "causal node",
                reason,
            })
        };
        if self.label.len() > MAX_NODE_LABEL {
            return bad(format!("label longer than {MAX_NODE_LABEL} bytes"));
        }
        if self.attrs.len() > MAX_ATTRS {
            return bad(format!("more than {MAX_ATTRS} attributes"));
        }
        for (k, v) in &self.attrs {
            validate_label("attribute name", k)?;
            if v.len() > MAX_ATTR_VALUE {
                return bad(format!("attribute {k} longer than {MAX_ATTR_VALUE} bytes"));
            }
        }
        Ok(())
    }
}

/// An edge as seen by callers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CausalEdge {
    /// Source node.
    pub from: Key,
    /// Target node.
    pub to: Key,
    /// Edge type.
    pub kind: EdgeKind,
    /// Weight (any finite value; its meaning is the caller's, e.g. strength or confidence).
    pub weight: f32,
}

/// Which way to follow edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From cause to effect.
    Forward,
    /// From effect to cause.
    Reverse,
}

/// A node reached by a traversal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    /// The node.
    pub key: Key,
    /// Hops from the start (0 for the start itself).
    pub depth: usize,
}

/// Serialisable content of a graph.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GraphSnapshot {
    /// Nodes, by key.
    pub nodes: Vec<CausalNode>,
    /// Edges, by (from, to, kind).
    pub edges: Vec<CausalEdge>,
}

#[derive(Clone, Debug)]
struct NodeW {
    node: CausalNode,
    /// Topological position: every edge goes from a lower to a higher one.
    pos: u64,
}

#[derive(Clone, Debug)]
struct EdgeW {
    kind: EdgeKind,
    weight: f32,
}

/// One namespace's causal DAG.
#[derive(Clone, Debug)]
pub struct CausalGraph {
    ns: Namespace,
    g: StableDiGraph<NodeW, EdgeW>,
    index: HashMap<Key, NodeIndex>,
    next_pos: u64,
    /// DFS marks by generation, so each search starts clean without clearing.
    mark: Vec<u32>,
    generation: u32,
}

fn check_weight(w: f32) -> Result<()> {
    if w.is_finite() {
        Ok(())
    } else {
        Err(EccError::InvalidParameter {
            what: "edge weight",
            reason: format!("must be finite, got {w}"),
        })
    }
}

impl CausalGraph {
    /// An empty graph.
    pub fn new(ns: Namespace) -> Self {
        CausalGraph {
            ns,
            g: StableDiGraph::new(),
            index: HashMap::new(),
            next_pos: 0,
            mark: Vec::new(),
            generation: 0,
        }
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.g.node_count()
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.g.edge_count()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.g.node_count() == 0
    }

    /// Whether `key` is a node.
    pub fn contains(&self, key: &Key) -> bool {
        self.index.contains_key(key)
    }

    /// The node with `key`.
    pub fn node(&self, key: &Key) -> Option<&CausalNode> {
        self.index.get(key).map(|&i| &self.g[i].node)
    }

    fn idx(&self, key: &Key) -> Result<NodeIndex> {
        self.index
            .get(key)
            .copied()
            .ok_or_else(|| EccError::NodeNotFound {
                ns: self.ns.clone(),
                key: key.clone(),
            })
    }

    /// Adds a node, or replaces the label and attributes of an existing one (its edges
    /// stay). Returns whether it was new.
    pub(crate) fn add_node(&mut self, node: CausalNode) -> Result<bool> {
        node.validate()?;
        if let Some(&i) = self.index.get(&node.key) {
            self.g[i].node = node;
            return Ok(false);
        }
        let key = node.key.clone();
        let pos = self.next_pos;
        self.next_pos += 1;
        let i = self.g.add_node(NodeW { node, pos });
        self.index.insert(key, i);
        Ok(true)
    }

    /// Removes a node and its edges; returns how many edges went with it.
    pub(crate) fn remove_node(&mut self, key: &Key) -> Result<usize> {
        let i = self.idx(key)?;
        // Removing nodes and edges never breaks the topological order.
        let edges = self.g.edges_directed(i, PgDirection::Outgoing).count()
            + self.g.edges_directed(i, PgDirection::Incoming).count();
        self.g.remove_node(i);
        self.index.remove(key);
        Ok(edges)
    }

    fn find_edge(&self, a: NodeIndex, b: NodeIndex, kind: &EdgeKind) -> Option<EdgeIndex> {
        self.g
            .edges_connecting(a, b)
            .find(|e| &e.weight().kind == kind)
            .map(|e| e.id())
    }

    /// Adds `from -> to` of `kind`, or updates the weight of that exact edge. Refuses an
    /// edge that would close a cycle, naming the cycle. Returns whether it was new.
    pub(crate) fn link(
        &mut self,
        from: &Key,
        to: &Key,
        kind: &EdgeKind,
        weight: f32,
    ) -> Result<bool> {
        kind.validate()?;
        check_weight(weight)?;
        let a = self.idx(from)?;
        let b = self.idx(to)?;
        if let Some(e) = self.find_edge(a, b, kind) {
            self.g[e].weight = weight;
            return Ok(false);
        }
        if a == b {
            return Err(self.cycle_error(vec![a, a]));
        }
        if self.g[a].pos > self.g[b].pos {
            self.reorder(a, b)?;
        }
        self.g.add_edge(
            a,
            b,
            EdgeW {
                kind: kind.clone(),
                weight,
            },
        );
        Ok(true)
    }

    fn cycle_error(&self, path: Vec<NodeIndex>) -> EccError {
        EccError::Cycle {
            ns: self.ns.clone(),
            path: path
                .into_iter()
                .map(|i| self.g[i].node.key.clone())
                .collect(),
        }
    }

    fn next_generation(&mut self) -> u32 {
        let bound = self.g.node_bound();
        if self.mark.len() < bound {
            self.mark.resize(bound, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.mark.iter_mut().for_each(|m| *m = 0);
            self.generation = 1;
        }
        self.generation
    }

    /// Nodes reachable from `b` with positions below `a`'s (the Pearce–Kelly forward
    /// set), breadth first. Reaching `a` means `a -> b` closes a cycle: returns the
    /// cycle `[a, b, .., a]` as the error.
    fn forward_cone(
        &mut self,
        b: NodeIndex,
        a: NodeIndex,
    ) -> std::result::Result<Vec<NodeIndex>, Vec<NodeIndex>> {
        let ub = self.g[a].pos;
        let gen = self.next_generation();
        let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut cone = vec![b];
        let mut queue = VecDeque::from([b]);
        self.mark[b.index()] = gen;
        while let Some(n) = queue.pop_front() {
            // Sorted so the reported cycle is the same whatever the insertion history.
            let mut next: Vec<NodeIndex> = self
                .g
                .neighbors_directed(n, PgDirection::Outgoing)
                .collect();
            next.sort_by(|x, y| self.g[*x].node.key.cmp(&self.g[*y].node.key));
            for m in next {
                if m == a {
                    let mut path = vec![a];
                    let mut cur = n;
                    path.push(cur);
                    while let Some(&p) = parent.get(&cur) {
                        path.push(p);
                        cur = p;
                    }
                    // path is [a, n, .., b]: reverse the tail to walk b .. n, then back to a.
                    path[1..].reverse();
                    path.push(a);
                    return Err(path);
                }
                if self.mark[m.index()] != gen && self.g[m].pos < ub {
                    self.mark[m.index()] = gen;
                    parent.insert(m, n);
                    cone.push(m);
                    queue.push_back(m);
                }
            }
        }
        Ok(cone)
    }

    /// Nodes that reach `a` with positions above `b`'s (the backward set).
    fn backward_cone(&mut self, a: NodeIndex, lb: u64) -> Vec<NodeIndex> {
        let gen = self.next_generation();
        let mut cone = vec![a];
        let mut stack = vec![a];
        self.mark[a.index()] = gen;
        while let Some(n) = stack.pop() {
            for m in self.g.neighbors_directed(n, PgDirection::Incoming) {
                if self.mark[m.index()] != gen && self.g[m].pos > lb {
                    self.mark[m.index()] = gen;
                    cone.push(m);
                    stack.push(m);
                }
            }
        }
        cone
    }

    /// Makes room for `a -> b` when `pos(a) > pos(b)`: the backward set of `a` moves
    /// before the forward set of `b`, reusing the same positions.
    fn reorder(&mut self, a: NodeIndex, b: NodeIndex) -> Result<()> {
        let lb = self.g[b].pos;
        let forward = self
            .forward_cone(b, a)
            .map_err(|path| self.cycle_error(path))?;
        let backward = self.backward_cone(a, lb);
        let mut backward: Vec<(u64, NodeIndex)> =
            backward.into_iter().map(|n| (self.g[n].pos, n)).collect();
        let mut forward: Vec<(u64, NodeIndex)> =
            forward.into_iter().map(|n| (self.g[n].pos, n)).collect();
        backward.sort_unstable();
        forward.sort_unstable();
        let mut positions: Vec<u64> = backward.iter().chain(&forward).map(|(p, _)| *p).collect();
        positions.sort_unstable();
        for ((_, n), p) in backward.iter().chain(&forward).zip(positions) {
            self.g[*n].pos = p;
        }
        Ok(())
    }

    /// Checks an unlink without changing anything.
    pub(crate) fn check_unlink(&self, from: &Key, to: &Key, kind: Option<&EdgeKind>) -> Result<()> {
        let a = self.idx(from)?;
        let b = self.idx(to)?;
        let found = self
            .g
            .edges_connecting(a, b)
            .any(|e| kind.is_none_or(|k| &e.weight().kind == k));
        if found {
            Ok(())
        } else {
            Err(EccError::EdgeNotFound {
                ns: self.ns.clone(),
                from: from.clone(),
                to: to.clone(),
                kind: kind.map(|k| k.to_string()),
            })
        }
    }

    /// Removes the edge `from -> to` of `kind`, or every edge between them when `kind`
    /// is `None`. Returns how many were removed (an error if none).
    pub(crate) fn unlink(
        &mut self,
        from: &Key,
        to: &Key,
        kind: Option<&EdgeKind>,
    ) -> Result<usize> {
        self.check_unlink(from, to, kind)?;
        let a = self.idx(from)?;
        let b = self.idx(to)?;
        let doomed: Vec<EdgeIndex> = self
            .g
            .edges_connecting(a, b)
            .filter(|e| kind.is_none_or(|k| &e.weight().kind == k))
            .map(|e| e.id())
            .collect();
        for e in &doomed {
            self.g.remove_edge(*e);
        }
        Ok(doomed.len())
    }

    fn edge_of(&self, e: petgraph::stable_graph::EdgeReference<'_, EdgeW>) -> CausalEdge {
        CausalEdge {
            from: self.g[e.source()].node.key.clone(),
            to: self.g[e.target()].node.key.clone(),
            kind: e.weight().kind.clone(),
            weight: e.weight().weight,
        }
    }

    fn edges_dir(&self, key: &Key, dir: PgDirection) -> Result<Vec<CausalEdge>> {
        let i = self.idx(key)?;
        let mut out: Vec<CausalEdge> = self
            .g
            .edges_directed(i, dir)
            .map(|e| self.edge_of(e))
            .collect();
        out.sort_by(|x, y| (&x.from, &x.to, &x.kind).cmp(&(&y.from, &y.to, &y.kind)));
        Ok(out)
    }

    /// Edges leaving `key`, sorted by target then kind.
    pub fn edges_from(&self, key: &Key) -> Result<Vec<CausalEdge>> {
        self.edges_dir(key, PgDirection::Outgoing)
    }

    /// Edges entering `key`, sorted by source then kind.
    pub fn edges_to(&self, key: &Key) -> Result<Vec<CausalEdge>> {
        self.edges_dir(key, PgDirection::Incoming)
    }

    fn sorted_neighbours(&self, n: NodeIndex, dir: PgDirection) -> Vec<NodeIndex> {
        let mut v: Vec<NodeIndex> = self.g.neighbors_directed(n, dir).collect();
        v.sort_by(|x, y| self.g[*x].node.key.cmp(&self.g[*y].node.key));
        v.dedup();
        v
    }

    /// Breadth-first traversal from `start` (included at depth 0) following edges in
    /// `direction`, no deeper than `max_depth` hops. Each node appears once, at its
    /// smallest depth; nodes at one depth come in key order of discovery.
    pub fn traverse(
        &self,
        start: &Key,
        direction: Direction,
        max_depth: usize,
    ) -> Result<Vec<Visit>> {
        let s = self.idx(start)?;
        let dir = match direction {
            Direction::Forward => PgDirection::Outgoing,
            Direction::Reverse => PgDirection::Incoming,
        };
        let mut seen: HashMap<NodeIndex, ()> = HashMap::from([(s, ())]);
        let mut out = vec![Visit {
            key: start.clone(),
            depth: 0,
        }];
        let mut frontier = vec![s];
        for depth in 1..=max_depth {
            let mut next = Vec::new();
            for &n in &frontier {
                for m in self.sorted_neighbours(n, dir) {
                    if seen.insert(m, ()).is_none() {
                        out.push(Visit {
                            key: self.g[m].node.key.clone(),
                            depth,
                        });
                        next.push(m);
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        Ok(out)
    }

    /// A shortest (fewest hops) forward path `from ..= to`, at most `max_depth` hops, or
    /// `None`. Ties are broken by key order, so the answer is deterministic.
    pub fn find_path(&self, from: &Key, to: &Key, max_depth: usize) -> Result<Option<Vec<Key>>> {
        let a = self.idx(from)?;
        let b = self.idx(to)?;
        if a == b {
            return Ok(Some(vec![from.clone()]));
        }
        let target_pos = self.g[b].pos;
        let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut frontier = vec![a];
        for _ in 0..max_depth {
            let mut next = Vec::new();
            for &n in &frontier {
                for m in self.sorted_neighbours(n, PgDirection::Outgoing) {
                    // Nodes after `to` in topological order cannot reach it.
                    if m == a || parent.contains_key(&m) || self.g[m].pos > target_pos {
                        continue;
                    }
                    parent.insert(m, n);
                    if m == b {
                        let mut path = vec![b];
                        let mut cur = b;
                        while let Some(&p) = parent.get(&cur) {
                            path.push(p);
                            cur = p;
                        }
                        path.reverse();
                        return Ok(Some(
                            path.into_iter()
                                .map(|i| self.g[i].node.key.clone())
                                .collect(),
                        ));
                    }
                    next.push(m);
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        Ok(None)
    }

    /// All nodes in key order.
    pub fn nodes(&self) -> Vec<&CausalNode> {
        let mut v: Vec<&CausalNode> = self.g.node_weights().map(|w| &w.node).collect();
        v.sort_by(|x, y| x.key.cmp(&y.key));
        v
    }

    /// All edges sorted by (from, to, kind).
    pub fn edges(&self) -> Vec<CausalEdge> {
        let mut v: Vec<CausalEdge> = self.g.edge_references().map(|e| self.edge_of(e)).collect();
        v.sort_by(|x, y| (&x.from, &x.to, &x.kind).cmp(&(&y.from, &y.to, &y.kind)));
        v
    }

    /// Graphviz DOT text of the whole graph, nodes and edges in key order. Node ids are
    /// `n<number>` for numeric keys and `s<string>` for string keys.
    pub fn to_dot(&self) -> String {
        fn id(k: &Key) -> String {
            match k {
                Key::Num(n) => format!("\"n{n}\""),
                Key::Str(s) => format!("\"s{}\"", escape(s)),
            }
        }
        fn escape(s: &str) -> String {
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        }
        let mut out = format!("digraph \"{}\" {{\n", escape(self.ns.as_str()));
        for n in self.nodes() {
            let label = if n.label.is_empty() {
                n.key.to_string()
            } else {
                n.label.clone()
            };
            let _ = writeln!(out, "  {} [label=\"{}\"];", id(&n.key), escape(&label));
        }
        for e in self.edges() {
            let _ = writeln!(
                out,
                "  {} -> {} [label=\"{} {}\", weight={}];",
                id(&e.from),
                id(&e.to),
                escape(&e.kind.to_string()),
                e.weight,
                e.weight
            );
        }
        out.push_str("}\n");
        out
    }

    /// The serialisable content.
    pub fn to_snapshot(&self) -> GraphSnapshot {
        GraphSnapshot {
            nodes: self.nodes().into_iter().cloned().collect(),
            edges: self.edges(),
        }
    }

    /// Rebuilds a graph from snapshot content.
    pub fn from_snapshot(ns: Namespace, snap: GraphSnapshot) -> Result<Self> {
        let mut g = CausalGraph::new(ns);
        for n in snap.nodes {
            if !g.add_node(n)? {
                return Err(EccError::InvalidParameter {
                    what: "graph snapshot",
                    reason: "a node key appears twice".into(),
                });
            }
        }
        for e in snap.edges {
            if !g.link(&e.from, &e.to, &e.kind, e.weight)? {
                return Err(EccError::InvalidParameter {
                    what: "graph snapshot",
                    reason: "an edge appears twice".into(),
                });
            }
        }
        Ok(g)
    }

    /// Whether every edge goes from a lower to a higher position (test aid).
    #[cfg(test)]
    fn order_is_topological(&self) -> bool {
        self.g
            .edge_references()
            .all(|e| self.g[e.source()].pos < self.g[e.target()].pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(n: u64) -> CausalNode {
        CausalNode {
            key: Key::Num(n),
            label: String::new(),
            attrs: BTreeMap::new(),
        }
    }

    /// Naive reachability for the model.
    fn reaches(adj: &[Vec<usize>], from: usize, to: usize) -> bool {
        let mut seen = vec![false; adj.len()];
        let mut stack = vec![from];
        while let Some(n) = stack.pop() {
            if n == to {
                return true;
            }
            if !std::mem::replace(&mut seen[n], true) {
                stack.extend(&adj[n]);
            }
        }
        false
    }

    proptest! {
        /// Random links on 12 nodes: a link is accepted exactly when the target does not
        /// already reach the source, refused cycles are real paths, and the maintained
        /// order stays topological.
        #[test]
        fn links_match_a_naive_reachability_model(
            ops in prop::collection::vec((0usize..12, 0usize..12, any::<bool>()), 1..120)
        ) {
            let mut g = CausalGraph::new(Namespace::new("p").unwrap());
            for n in 0..12 {
                g.add_node(node(n)).unwrap();
            }
            let mut adj: Vec<Vec<usize>> = vec![Vec::new(); 12];
            for (a, b, unlink) in ops {
                let (ka, kb) = (Key::Num(a as u64), Key::Num(b as u64));
                if unlink {
                    let had = adj[a].contains(&b);
                    let r = g.unlink(&ka, &kb, None);
                    prop_assert_eq!(r.is_ok(), had);
                    adj[a].retain(|&x| x != b);
                    continue;
                }
                let expect_ok = adj[a].contains(&b) || !reaches(&adj, b, a);
                match g.link(&ka, &kb, &EdgeKind::Causes, 1.0) {
                    Ok(_) => {
                        prop_assert!(expect_ok);
                        if !adj[a].contains(&b) { adj[a].push(b); }
                    }
                    Err(EccError::Cycle { path, .. }) => {
                        prop_assert!(!expect_ok);
                        prop_assert_eq!(path.first(), Some(&ka));
                        prop_assert_eq!(path.last(), Some(&ka));
                        prop_assert_eq!(path.get(1), Some(&kb));
                        // every later hop is an existing edge
                        for w in path[1..].windows(2) {
                            let (Key::Num(x), Key::Num(y)) = (&w[0], &w[1]) else { unreachable!() };
                            prop_assert!(adj[*x as usize].contains(&(*y as usize)));
                        }
                    }
                    Err(e) => prop_assert!(false, "unexpected {e}"),
                }
                prop_assert!(g.order_is_topological());
            }
        }
    }

    #[test]
    fn self_loop_is_a_cycle() {
        let mut g = CausalGraph::new(Namespace::new("p").unwrap());
        g.add_node(node(1)).unwrap();
        let e = g
            .link(&Key::Num(1), &Key::Num(1), &EdgeKind::Causes, 1.0)
            .unwrap_err();
        assert!(
            matches!(e, EccError::Cycle { ref path, .. } if path == &[Key::Num(1), Key::Num(1)])
        );
    }

    #[test]
    fn dot_escapes() {
        let mut g = CausalGraph::new(Namespace::new("p").unwrap());
        let mut n = node(1);
        n.label = "say \"hi\"".into();
        g.add_node(n).unwrap();
        g.add_node(CausalNode {
            key: Key::str("b").unwrap(),
            label: String::new(),
            attrs: BTreeMap::new(),
        })
        .unwrap();
        g.link(
            &Key::Num(1),
            &Key::str("b").unwrap(),
            &EdgeKind::Custom("x:y".into()),
            0.5,
        )
        .unwrap();
        let dot = g.to_dot();
        assert_eq!(
            dot,
            "digraph \"p\" {\n  \"n1\" [label=\"say \\\"hi\\\"\"];\n  \"sb\" [label=\"\\\"b\\\"\"];\n  \"n1\" -> \"sb\" [label=\"x:y 0.5\", weight=0.5];\n}\n"
        );
    }
}
