//! Between the WIT types of `weft:kernel/ecc` and the library's, and from
//! library and kernel errors to the WIT `error`.

use weft_kernel::agent::bindings::weft::kernel::ecc as w;
use weft_kernel::KernelError;

use crate::{
    CausalEdge, CausalNode, CrossRef, Direction, Distance, EccError, EdgeKind, HlcTimestamp,
    Impulse, IndexConfig, IndexStats, Key, Namespace, NodeRef, RefKind, SearchHit, VectorEntry,
    Visit,
};

/// A library error as the guest sees it.
pub(crate) fn ecc_error(e: EccError) -> w::Error {
    let m = e.to_string();
    match e {
        EccError::NoIndex { .. }
        | EccError::VectorNotFound { .. }
        | EccError::NodeNotFound { .. }
        | EccError::EdgeNotFound { .. }
        | EccError::RefNotFound { .. } => w::Error::NotFound(m),
        EccError::IndexFull { .. } | EccError::QueueFull { .. } => w::Error::Limit(m),
        EccError::Internal { .. } | EccError::Snapshot(_) => w::Error::Failed(m),
        _ => w::Error::Invalid(m),
    }
}

/// A kernel error (a refusal, a chain failure) as the guest sees it.
pub(crate) fn kernel_error(e: KernelError) -> w::Error {
    match e {
        KernelError::Denied(m) | KernelError::Deferred(m) => w::Error::Denied(m),
        KernelError::NotFound(m) => w::Error::NotFound(m),
        KernelError::Timeout(m) => w::Error::Timeout(m),
        KernelError::Limit(m) => w::Error::Limit(m),
        KernelError::Invalid(m) => w::Error::Invalid(m),
        other => w::Error::Failed(other.to_string()),
    }
}

pub(crate) fn ns(s: &str) -> Result<Namespace, w::Error> {
    Namespace::new(s).map_err(ecc_error)
}

pub(crate) fn key(k: w::Key) -> Result<Key, w::Error> {
    match k {
        w::Key::Num(n) => Ok(Key::Num(n)),
        w::Key::Str(s) => Key::str(s).map_err(ecc_error),
    }
}

pub(crate) fn key_out(k: Key) -> w::Key {
    match k {
        Key::Num(n) => w::Key::Num(n),
        Key::Str(s) => w::Key::Str(s),
    }
}

fn distance(d: w::Distance) -> Distance {
    match d {
        w::Distance::Cosine => Distance::Cosine,
        w::Distance::L2 => Distance::L2,
        w::Distance::Dot => Distance::Dot,
    }
}

fn distance_out(d: Distance) -> w::Distance {
    match d {
        Distance::Cosine => w::Distance::Cosine,
        Distance::L2 => w::Distance::L2,
        Distance::Dot => w::Distance::Dot,
    }
}

/// `0` in a number field takes the default.
pub(crate) fn index_config(c: w::IndexConfig) -> IndexConfig {
    let mut cfg = IndexConfig::new(c.dimension as usize, distance(c.distance));
    if c.m != 0 {
        cfg.m = c.m as usize;
    }
    if c.ef_construction != 0 {
        cfg.ef_construction = c.ef_construction as usize;
    }
    if c.max_elements != 0 {
        cfg.max_elements = usize::try_from(c.max_elements).unwrap_or(usize::MAX);
    }
    cfg
}

pub(crate) fn entries(v: Vec<w::Entry>) -> Result<Vec<VectorEntry>, w::Error> {
    v.into_iter()
        .map(|e| {
            Ok(VectorEntry {
                key: key(e.key)?,
                vector: e.vector,
            })
        })
        .collect()
}

pub(crate) fn hits(v: Vec<SearchHit>) -> Vec<w::Hit> {
    v.into_iter()
        .map(|h| w::Hit {
            key: key_out(h.key),
            distance: h.distance,
        })
        .collect()
}

pub(crate) fn stats_out(s: IndexStats) -> w::IndexStats {
    w::IndexStats {
        count: s.count as u64,
        tombstones: s.tombstones as u64,
        slots: s.slots as u64,
        dimension: u32::try_from(s.dimension).unwrap_or(u32::MAX),
        distance: distance_out(s.distance),
        m: u32::try_from(s.m).unwrap_or(u32::MAX),
        ef_construction: u32::try_from(s.ef_construction).unwrap_or(u32::MAX),
        max_elements: s.max_elements as u64,
        compactions: s.compactions,
    }
}

pub(crate) fn edge_kind(k: w::EdgeKind) -> EdgeKind {
    match k {
        w::EdgeKind::Causes => EdgeKind::Causes,
        w::EdgeKind::Enables => EdgeKind::Enables,
        w::EdgeKind::Inhibits => EdgeKind::Inhibits,
        w::EdgeKind::Precedes => EdgeKind::Precedes,
        w::EdgeKind::DerivedFrom => EdgeKind::DerivedFrom,
        w::EdgeKind::Custom(s) => EdgeKind::Custom(s),
    }
}

fn edge_kind_out(k: EdgeKind) -> w::EdgeKind {
    match k {
        EdgeKind::Causes => w::EdgeKind::Causes,
        EdgeKind::Enables => w::EdgeKind::Enables,
        EdgeKind::Inhibits => w::EdgeKind::Inhibits,
        EdgeKind::Precedes => w::EdgeKind::Precedes,
        EdgeKind::DerivedFrom => w::EdgeKind::DerivedFrom,
        EdgeKind::Custom(s) => w::EdgeKind::Custom(s),
    }
}

pub(crate) fn node(n: w::Node) -> Result<CausalNode, w::Error> {
    Ok(CausalNode {
        key: key(n.key)?,
        label: n.label,
        attrs: n.attrs.into_iter().collect(),
    })
}

pub(crate) fn edges_out(v: Vec<CausalEdge>) -> Vec<w::Edge> {
    v.into_iter()
        .map(|e| w::Edge {
            from: key_out(e.from),
            to: key_out(e.to),
            kind: edge_kind_out(e.kind),
            weight: e.weight,
        })
        .collect()
}

pub(crate) fn direction(d: w::Direction) -> Direction {
    match d {
        w::Direction::Forward => Direction::Forward,
        w::Direction::Reverse => Direction::Reverse,
    }
}

pub(crate) fn visits_out(v: Vec<Visit>) -> Vec<w::Visit> {
    v.into_iter()
        .map(|v| w::Visit {
            key: key_out(v.key),
            depth: u32::try_from(v.depth).unwrap_or(u32::MAX),
        })
        .collect()
}

pub(crate) fn node_ref(r: w::NodeRef) -> Result<NodeRef, w::Error> {
    Ok(match r {
        w::NodeRef::Vector(k) => NodeRef::Vector(key(k)?),
        w::NodeRef::Causal(k) => NodeRef::Causal(key(k)?),
        w::NodeRef::ChainEvent(s) => NodeRef::ChainEvent(s),
        w::NodeRef::TreePath(p) => NodeRef::TreePath(p),
    })
}

fn node_ref_out(r: NodeRef) -> w::NodeRef {
    match r {
        NodeRef::Vector(k) => w::NodeRef::Vector(key_out(k)),
        NodeRef::Causal(k) => w::NodeRef::Causal(key_out(k)),
        NodeRef::ChainEvent(s) => w::NodeRef::ChainEvent(s),
        NodeRef::TreePath(p) => w::NodeRef::TreePath(p),
    }
}

fn ref_kind(k: w::RefKind) -> RefKind {
    match k {
        w::RefKind::EmbeddingOf => RefKind::EmbeddingOf,
        w::RefKind::RecordedIn => RefKind::RecordedIn,
        w::RefKind::Describes => RefKind::Describes,
        w::RefKind::DerivedFrom => RefKind::DerivedFrom,
        w::RefKind::Mentions => RefKind::Mentions,
        w::RefKind::Custom(s) => RefKind::Custom(s),
    }
}

fn ref_kind_out(k: RefKind) -> w::RefKind {
    match k {
        RefKind::EmbeddingOf => w::RefKind::EmbeddingOf,
        RefKind::RecordedIn => w::RefKind::RecordedIn,
        RefKind::Describes => w::RefKind::Describes,
        RefKind::DerivedFrom => w::RefKind::DerivedFrom,
        RefKind::Mentions => w::RefKind::Mentions,
        RefKind::Custom(s) => w::RefKind::Custom(s),
    }
}

pub(crate) fn cross_ref(r: w::CrossRef) -> Result<CrossRef, w::Error> {
    Ok(CrossRef {
        from: node_ref(r.from)?,
        to: node_ref(r.to)?,
        kind: ref_kind(r.kind),
    })
}

pub(crate) fn cross_refs_out(v: Vec<CrossRef>) -> Vec<w::CrossRef> {
    v.into_iter()
        .map(|r| w::CrossRef {
            from: node_ref_out(r.from),
            to: node_ref_out(r.to),
            kind: ref_kind_out(r.kind),
        })
        .collect()
}

pub(crate) fn hlc(t: w::Hlc) -> HlcTimestamp {
    HlcTimestamp::new(t.wall_ns, t.logical)
}

pub(crate) fn hlc_out(t: HlcTimestamp) -> w::Hlc {
    w::Hlc {
        wall_ns: t.wall_ns,
        logical: t.logical,
    }
}

pub(crate) fn impulses_out(v: Vec<Impulse>) -> Vec<w::Impulse> {
    v.into_iter()
        .map(|i| w::Impulse {
            id: i.id,
            ts: hlc_out(i.ts),
            topic: i.topic,
            source: i.source.map(node_ref_out),
            payload: i.payload,
        })
        .collect()
}
