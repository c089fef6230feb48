//! Vector indexes: one HNSW graph (`hnsw_rs`) per namespace, with caller-chosen keys,
//! tombstone deletes and compaction.
//!
//! Entries live in *slots* numbered in insertion order; the slot number is the id
//! `hnsw_rs` knows. A delete marks the slot dead (a tombstone): the point stays in the graph
//! (so searches still route through it) but is filtered out of results. When dead slots
//! exceed `compact_fraction` of all slots, the index is rebuilt from the live entries in
//! slot order. Inserting an existing key replaces it: the old slot dies, a new one is added.
//!
//! Everything is deterministic: `hnsw_rs` draws layers from a generator with a fixed seed
//! and we insert one point at a time, so the same inserts in the same order give the same
//! graph, and the same search results. Snapshot load and op replay rely on that.

use std::collections::{HashMap, HashSet};
use std::fmt;

use hnsw_rs::anndists::dist::Distance as HnswDistance;
use hnsw_rs::hnsw::Hnsw;
use serde::{Deserialize, Serialize};

use crate::error::{EccError, Result};
use crate::names::{Key, Namespace};

/// Largest accepted dimension.
pub const MAX_DIMENSION: usize = 16_384;
/// Largest `k` a search may ask for.
pub const MAX_K: usize = 10_000;
/// Largest `ef` a search may use.
pub const MAX_EF: usize = 100_000;
/// `hnsw_rs` exits the process for `M` above 256 and keeps it in a `u8`, so 256 would
/// wrap to 0: the largest safe value is 255.
pub const MAX_M: usize = 255;
/// Number of HNSW layers (the `hnsw_rs` maximum).
const MAX_LAYERS: usize = 16;
/// Allocation hint cap: `hnsw_rs` reserves per-layer tables for `max_elements` up front,
/// which would cost megabytes for every empty namespace.
const ALLOC_HINT_CAP: usize = 65_536;

/// How distance between two vectors is measured. Smaller is closer for all three.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distance {
    /// `1 - cos(a, b)`, in `[0, 2]`. Vectors are normalised for the graph; a zero vector
    /// is refused.
    Cosine,
    /// Euclidean distance `|a - b|`.
    L2,
    /// Negative inner product `-<a, b>` (maximum inner product search). Vectors are used
    /// as given, so magnitude counts; for unit vectors this ranks like cosine.
    Dot,
}

impl fmt::Display for Distance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Distance::Cosine => "cosine",
            Distance::L2 => "l2",
            Distance::Dot => "dot",
        })
    }
}

/// Parameters of one index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexConfig {
    /// Vector length, 1 to [`MAX_DIMENSION`].
    pub dimension: usize,
    /// The distance.
    pub distance: Distance,
    /// HNSW `M`: links per node per layer (layer 0 keeps `2M`), 2 to [`MAX_M`].
    pub m: usize,
    /// Candidate list size while inserting, 1 to [`MAX_EF`].
    pub ef_construction: usize,
    /// Most live entries the index will hold; an insert beyond it fails with
    /// [`EccError::IndexFull`].
    pub max_elements: usize,
    /// Rebuild when dead slots exceed this fraction of all slots, in `(0, 1]`.
    pub compact_fraction: f32,
}

impl IndexConfig {
    /// Defaults for everything but dimension and distance: `M` 16, `ef_construction`
    /// 100, one million elements, compaction past 25 % tombstones. (`ef_construction` is
    /// most of the insert cost; see `docs/ecc.md` for the measured trade-off.)
    pub fn new(dimension: usize, distance: Distance) -> Self {
        IndexConfig {
            dimension,
            distance,
            m: 16,
            ef_construction: 100,
            max_elements: 1_000_000,
            compact_fraction: 0.25,
        }
    }

    /// Checks every field against its range.
    pub fn validate(&self) -> Result<()> {
        let bad = |what, reason: String| Err(EccError::InvalidParameter { what, reason });
        if self.dimension == 0 || self.dimension > MAX_DIMENSION {
            return bad(
                "dimension",
                format!("1 to {MAX_DIMENSION}, got {}", self.dimension),
            );
        }
        if !(2..=MAX_M).contains(&self.m) {
            return bad("m", format!("2 to {MAX_M}, got {}", self.m));
        }
        if self.ef_construction == 0 || self.ef_construction > MAX_EF {
            return bad(
                "ef_construction",
                format!("1 to {MAX_EF}, got {}", self.ef_construction),
            );
        }
        if self.max_elements == 0 || self.max_elements > u32::MAX as usize {
            return bad(
                "max_elements",
                format!("1 to {}, got {}", u32::MAX, self.max_elements),
            );
        }
        if !(self.compact_fraction > 0.0 && self.compact_fraction <= 1.0) {
            return bad(
                "compact_fraction",
                format!("in (0, 1], got {}", self.compact_fraction),
            );
        }
        Ok(())
    }
}

/// One entry to insert: a key and its vector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VectorEntry {
    /// The caller-chosen key; inserting an existing key replaces its vector.
    pub key: Key,
    /// The vector, `dimension` finite values.
    pub vector: Vec<f32>,
}

impl VectorEntry {
    /// An entry.
    pub fn new(key: impl Into<Key>, vector: Vec<f32>) -> Self {
        VectorEntry {
            key: key.into(),
            vector,
        }
    }
}

/// One search result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The entry's key.
    pub key: Key,
    /// Its distance to the query (see [`Distance`] for the meaning per kind).
    pub distance: f32,
}

/// What an insert did to one entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inserted {
    /// The key.
    pub key: Key,
    /// The slot it now occupies.
    pub slot: u32,
    /// Whether it replaced a live entry with the same key.
    pub replaced: bool,
}

/// Counters and parameters of an index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexStats {
    /// Live entries.
    pub count: usize,
    /// Dead slots not yet compacted away.
    pub tombstones: usize,
    /// All slots (live + dead) in the graph.
    pub slots: usize,
    /// Vector length.
    pub dimension: usize,
    /// The distance.
    pub distance: Distance,
    /// HNSW `M`.
    pub m: usize,
    /// HNSW `ef_construction`.
    pub ef_construction: usize,
    /// Capacity in live entries.
    pub max_elements: usize,
    /// Tombstone fraction that triggers compaction.
    pub compact_fraction: f32,
    /// Rebuilds so far.
    pub compactions: u64,
}

/// The distance `hnsw_rs` evaluates. It needs a non-negative value where smaller is
/// closer (it asserts this), so each kind is mapped onto that.
#[derive(Clone, Copy, Debug)]
struct Metric(Distance);

impl HnswDistance<f32> for Metric {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        match self.0 {
            // Squared: same order as the distance, and one sqrt less per call.
            Distance::L2 => l2_squared(a, b),
            // Vectors are unit length here; rounding can push 1 - dot just below zero.
            Distance::Cosine => (1.0 - dot(a, b)).max(0.0),
            Distance::Dot => dot_to_positive(dot(a, b)),
        }
    }
}

/// A positive, strictly decreasing map of the inner product, continuous at 0.
fn dot_to_positive(d: f32) -> f32 {
    if d >= 0.0 {
        1.0 / (1.0 + d)
    } else {
        1.0 - d
    }
}

/// Inner product with eight independent accumulators so the compiler vectorises it.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]);
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Squared Euclidean distance, vectorisable like [`dot`].
#[inline]
pub(crate) fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    let mut s = (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]);
    for (x, y) in ra.iter().zip(rb) {
        let d = x - y;
        s += d * d;
    }
    s
}

/// The exact distance reported to callers (also what brute force ranks by).
pub fn exact_distance(distance: Distance, a: &[f32], b: &[f32]) -> f32 {
    match distance {
        Distance::L2 => l2_squared(a, b).sqrt(),
        Distance::Cosine => {
            let na = dot(a, a).sqrt();
            let nb = dot(b, b).sqrt();
            if na == 0.0 || nb == 0.0 {
                1.0
            } else {
                1.0 - dot(a, b) / (na * nb)
            }
        }
        Distance::Dot => -dot(a, b),
    }
}

/// Checks length and finiteness (and non-zero for cosine).
fn check_vector(ns: &Namespace, cfg: &IndexConfig, v: &[f32]) -> Result<()> {
    if v.len() != cfg.dimension {
        return Err(EccError::DimensionMismatch {
            ns: ns.clone(),
            expected: cfg.dimension,
            got: v.len(),
        });
    }
    if let Some((position, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(EccError::NonFinite { position, value });
    }
    if cfg.distance == Distance::Cosine && v.iter().all(|&x| x == 0.0) {
        return Err(EccError::ZeroVector);
    }
    // Squares of huge components overflow to infinity inside the distance.
    if !dot(v, v).is_finite() {
        return Err(EccError::InvalidParameter {
            what: "vector",
            reason: "its squared norm overflows f32".into(),
        });
    }
    Ok(())
}

/// `f32` with the total order, for heaps.
#[derive(Clone, Copy, Debug, PartialEq)]
struct OrdF32(f32);

impl Eq for OrdF32 {}

impl PartialOrd for OrdF32 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrdF32 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The form of `v` the graph stores: unit length for cosine, as given otherwise.
fn graph_form(distance: Distance, v: &[f32]) -> Vec<f32> {
    match distance {
        Distance::Cosine => {
            let norm = dot(v, v).sqrt();
            v.iter().map(|x| x / norm).collect()
        }
        Distance::L2 | Distance::Dot => v.to_vec(),
    }
}

fn new_graph(cfg: &IndexConfig) -> Hnsw<'static, f32, Metric> {
    Hnsw::new(
        cfg.m,
        cfg.max_elements.min(ALLOC_HINT_CAP),
        MAX_LAYERS,
        cfg.ef_construction,
        Metric(cfg.distance),
    )
}

/// One namespace's vector index.
pub struct VectorIndex {
    ns: Namespace,
    config: IndexConfig,
    graph: Hnsw<'static, f32, Metric>,
    /// Original vectors, slot-major (`dimension` floats per slot, dead slots included).
    vectors: Vec<f32>,
    /// Key of each slot.
    keys: Vec<Key>,
    /// Liveness of each slot.
    live: Vec<bool>,
    /// Live key -> slot.
    by_key: HashMap<Key, u32>,
    tombstones: usize,
    compactions: u64,
}

impl fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VectorIndex")
            .field("ns", &self.ns)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Serialisable content of an index: configuration, every slot's key, liveness and
/// original vector. Loading re-inserts all slots in order, which rebuilds the same graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexSnapshot {
    /// The configuration.
    pub config: IndexConfig,
    /// Key per slot.
    pub keys: Vec<Key>,
    /// Liveness per slot.
    pub live: Vec<bool>,
    /// All slots' vectors, little-endian f32, slot-major.
    #[serde(with = "serde_bytes")]
    pub vectors: Vec<u8>,
    /// Rebuilds so far.
    pub compactions: u64,
}

impl VectorIndex {
    /// An empty index (the configuration is validated).
    pub fn new(ns: Namespace, config: IndexConfig) -> Result<Self> {
        config.validate()?;
        Ok(VectorIndex {
            ns,
            graph: new_graph(&config),
            config,
            vectors: Vec::new(),
            keys: Vec::new(),
            live: Vec::new(),
            by_key: HashMap::new(),
            tombstones: 0,
            compactions: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether there are no live entries.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Whether `key` is live.
    pub fn contains(&self, key: &Key) -> bool {
        self.by_key.contains_key(key)
    }

    /// The vector stored under `key`, as inserted.
    pub fn get(&self, key: &Key) -> Option<&[f32]> {
        let slot = *self.by_key.get(key)? as usize;
        let d = self.config.dimension;
        self.vectors.get(slot * d..(slot + 1) * d)
    }

    /// Live keys in slot (insertion) order.
    pub fn keys(&self) -> impl Iterator<Item = &Key> + '_ {
        self.keys
            .iter()
            .zip(&self.live)
            .filter(|(_, live)| **live)
            .map(|(k, _)| k)
    }

    /// Counters and parameters.
    pub fn stats(&self) -> IndexStats {
        IndexStats {
            count: self.by_key.len(),
            tombstones: self.tombstones,
            slots: self.keys.len(),
            dimension: self.config.dimension,
            distance: self.config.distance,
            m: self.config.m,
            ef_construction: self.config.ef_construction,
            max_elements: self.config.max_elements,
            compact_fraction: self.config.compact_fraction,
            compactions: self.compactions,
        }
    }

    /// Checks an insert batch without changing anything.
    pub(crate) fn check_insert(&self, entries: &[VectorEntry]) -> Result<()> {
        if entries.is_empty() {
            return Err(EccError::InvalidParameter {
                what: "insert",
                reason: "no entries".into(),
            });
        }
        let mut new_keys = HashSet::new();
        for VectorEntry { key, vector } in entries {
            key.validate()?;
            check_vector(&self.ns, &self.config, vector)?;
            if !self.by_key.contains_key(key) {
                new_keys.insert(key);
            }
        }
        if self.by_key.len() + new_keys.len() > self.config.max_elements {
            return Err(EccError::IndexFull {
                ns: self.ns.clone(),
                max: self.config.max_elements,
            });
        }
        if self.keys.len() + entries.len() > u32::MAX as usize {
            return Err(EccError::IndexFull {
                ns: self.ns.clone(),
                max: u32::MAX as usize,
            });
        }
        Ok(())
    }

    /// Inserts (or replaces) entries in order; all-or-nothing. Returns what happened to
    /// each, and whether a compaction ran (replacements leave tombstones).
    pub(crate) fn insert(&mut self, entries: &[VectorEntry]) -> Result<(Vec<Inserted>, bool)> {
        self.check_insert(entries)?;
        let mut out = Vec::with_capacity(entries.len());
        for VectorEntry { key, vector } in entries {
            let replaced = self.kill(key);
            let slot = self.push_slot(key.clone(), vector);
            out.push(Inserted {
                key: key.clone(),
                slot,
                replaced,
            });
        }
        let compacted = self.maybe_compact();
        Ok((out, compacted))
    }

    /// Appends a live slot and inserts it into the graph. Caller has validated `v` and
    /// killed any live slot with the same key.
    fn push_slot(&mut self, key: Key, v: &[f32]) -> u32 {
        let slot = self.append(key.clone(), v, true);
        self.by_key.insert(key, slot);
        slot
    }

    /// Appends a slot to the graph and the slot tables, leaving `by_key` alone.
    fn append(&mut self, key: Key, v: &[f32], live: bool) -> u32 {
        // Checked against u32::MAX in check_insert / from_snapshot.
        let slot = self.keys.len() as u32;
        self.graph
            .insert_slice((&graph_form(self.config.distance, v), slot as usize));
        self.vectors.extend_from_slice(v);
        self.keys.push(key);
        self.live.push(live);
        if !live {
            self.tombstones += 1;
        }
        slot
    }

    /// Marks `key`'s slot dead; returns whether it was live.
    fn kill(&mut self, key: &Key) -> bool {
        match self.by_key.remove(key) {
            Some(slot) => {
                self.live[slot as usize] = false;
                self.tombstones += 1;
                true
            }
            None => false,
        }
    }

    /// Checks a delete without changing anything.
    pub(crate) fn check_delete(&self, keys: &[Key]) -> Result<()> {
        if keys.is_empty() {
            return Err(EccError::InvalidParameter {
                what: "delete",
                reason: "no keys".into(),
            });
        }
        for key in keys {
            if !self.by_key.contains_key(key) {
                return Err(EccError::VectorNotFound {
                    ns: self.ns.clone(),
                    key: key.clone(),
                });
            }
        }
        Ok(())
    }

    /// Tombstones `keys` (all must be live; repeats count once); compacts if the
    /// tombstones now exceed the threshold. Returns (deleted, compacted).
    pub(crate) fn delete(&mut self, keys: &[Key]) -> Result<(usize, bool)> {
        self.check_delete(keys)?;
        let deleted = keys.iter().filter(|k| self.kill(k)).count();
        Ok((deleted, self.maybe_compact()))
    }

    fn maybe_compact(&mut self) -> bool {
        let slots = self.keys.len();
        if self.tombstones > 0
            && self.tombstones as f64 > f64::from(self.config.compact_fraction) * slots as f64
        {
            self.compact();
            true
        } else {
            false
        }
    }

    /// Rebuilds the graph from the live entries, in slot order.
    pub(crate) fn compact(&mut self) {
        let d = self.config.dimension;
        let old_vectors = std::mem::take(&mut self.vectors);
        let old_keys = std::mem::take(&mut self.keys);
        let old_live = std::mem::take(&mut self.live);
        self.graph = new_graph(&self.config);
        self.by_key.clear();
        self.tombstones = 0;
        self.vectors.reserve(old_vectors.len());
        for (slot, (key, live)) in old_keys.into_iter().zip(old_live).enumerate() {
            if live {
                self.push_slot(key, &old_vectors[slot * d..(slot + 1) * d]);
            }
        }
        self.compactions += 1;
    }

    /// The `k` nearest live entries to `query`, searching with candidate list `ef`
    /// (raised to `k` if smaller). Tombstoned entries are never returned.
    pub fn search(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<SearchHit>> {
        if k == 0 || k > MAX_K {
            return Err(EccError::InvalidParameter {
                what: "k",
                reason: format!("1 to {MAX_K}, got {k}"),
            });
        }
        if ef == 0 || ef > MAX_EF {
            return Err(EccError::InvalidParameter {
                what: "ef",
                reason: format!("1 to {MAX_EF}, got {ef}"),
            });
        }
        check_vector(&self.ns, &self.config, query)?;
        if self.by_key.is_empty() {
            return Ok(Vec::new());
        }
        let q = graph_form(self.config.distance, query);
        let neighbours = if self.tombstones == 0 {
            self.graph.search(&q, k, ef.max(k))
        } else {
            let live = |id: &usize| self.live.get(*id).copied().unwrap_or(false);
            // One extra: hnsw_rs seeds its result set with the entry point unfiltered,
            // and drops it only at the end, which can leave k - 1 live results.
            self.graph
                .search_filter(&q, k + 1, ef.max(k + 1), Some(&live))
        };
        let d = self.config.dimension;
        let hits = neighbours
            .into_iter()
            .filter(|n| self.live.get(n.d_id).copied().unwrap_or(false))
            .take(k)
            .map(|n| {
                let distance = match self.config.distance {
                    Distance::L2 => n.distance.sqrt(),
                    Distance::Cosine => n.distance,
                    // Recomputed: inverting the positive mapping would lose precision.
                    Distance::Dot => -dot(query, &self.vectors[n.d_id * d..(n.d_id + 1) * d]),
                };
                SearchHit {
                    key: self.keys[n.d_id].clone(),
                    distance,
                }
            })
            .collect();
        Ok(hits)
    }

    /// Exact k-nearest live entries by a linear scan (for tests, calibration and
    /// measuring recall). Ties are broken by slot order.
    pub fn brute_force(&self, query: &[f32], k: usize) -> Result<Vec<SearchHit>> {
        check_vector(&self.ns, &self.config, query)?;
        let d = self.config.dimension;
        let qn = dot(query, query).sqrt();
        let dist = |v: &[f32]| match self.config.distance {
            Distance::Cosine => {
                let vn = dot(v, v).sqrt();
                1.0 - dot(query, v) / (qn * vn)
            }
            other => exact_distance(other, query, v),
        };
        // Max-heap of the k best so far, by (distance, slot).
        let mut best: std::collections::BinaryHeap<(OrdF32, usize)> =
            std::collections::BinaryHeap::with_capacity(k + 1);
        for (slot, v) in self.vectors.chunks_exact(d).enumerate() {
            if !self.live[slot] {
                continue;
            }
            let e = (OrdF32(dist(v)), slot);
            if best.len() < k {
                best.push(e);
            } else if best.peek().is_some_and(|top| e < *top) {
                best.pop();
                best.push(e);
            }
        }
        Ok(best
            .into_sorted_vec()
            .into_iter()
            .map(|(OrdF32(distance), slot)| SearchHit {
                key: self.keys[slot].clone(),
                distance,
            })
            .collect())
    }

    /// The serialisable content.
    pub fn to_snapshot(&self) -> IndexSnapshot {
        let mut bytes = Vec::with_capacity(self.vectors.len() * 4);
        for x in &self.vectors {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        IndexSnapshot {
            config: self.config.clone(),
            keys: self.keys.clone(),
            live: self.live.clone(),
            vectors: bytes,
            compactions: self.compactions,
        }
    }

    /// Rebuilds an index from its snapshot content (inserting every slot, dead ones
    /// too, in slot order, so the graph is the one that was saved).
    pub fn from_snapshot(ns: Namespace, snap: IndexSnapshot) -> Result<Self> {
        let bad = |reason: String| EccError::InvalidParameter {
            what: "index snapshot",
            reason,
        };
        let mut index = VectorIndex::new(ns, snap.config)?;
        let d = index.config.dimension;
        let slots = snap.keys.len();
        if snap.live.len() != slots || snap.vectors.len() != slots * d * 4 {
            return Err(bad(format!(
                "{} keys, {} liveness flags, {} vector bytes (dimension {d})",
                slots,
                snap.live.len(),
                snap.vectors.len()
            )));
        }
        if slots > u32::MAX as usize {
            return Err(bad(format!("{slots} slots")));
        }
        let floats: Vec<f32> = snap
            .vectors
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let mut live_count = 0usize;
        for (slot, (key, live)) in snap.keys.into_iter().zip(snap.live).enumerate() {
            let v = &floats[slot * d..(slot + 1) * d];
            check_vector(&index.ns, &index.config, v)?;
            key.validate()?;
            if live && index.by_key.contains_key(&key) {
                return Err(bad(format!("key {key} is live in two slots")));
            }
            if live {
                index.push_slot(key, v);
                live_count += 1;
            } else {
                // Dead slots go into the graph too: the saved graph had them.
                index.append(key, v, false);
            }
        }
        if live_count > index.config.max_elements {
            return Err(bad(format!(
                "{live_count} live entries exceed max_elements {}",
                index.config.max_elements
            )));
        }
        index.compactions = snap.compactions;
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns() -> Namespace {
        Namespace::new("t").unwrap()
    }

    #[test]
    fn kernels_match_naive() {
        let a: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let naive_dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let naive_l2: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        assert!((dot(&a, &b) - naive_dot).abs() < 1e-4);
        assert!((l2_squared(&a, &b) - naive_l2).abs() < 1e-4);
    }

    #[test]
    fn dot_mapping_is_positive_and_decreasing() {
        let xs = [-1e6f32, -10.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 10.0, 1e6];
        for w in xs.windows(2) {
            assert!(dot_to_positive(w[0]) > dot_to_positive(w[1]), "{w:?}");
        }
        assert!(xs.iter().all(|&x| dot_to_positive(x) > 0.0));
    }

    #[test]
    fn config_ranges() {
        let mut c = IndexConfig::new(8, Distance::L2);
        assert!(c.validate().is_ok());
        c.m = 256;
        assert!(matches!(
            c.validate(),
            Err(EccError::InvalidParameter { what: "m", .. })
        ));
        c.m = 16;
        c.dimension = 0;
        assert!(c.validate().is_err());
        c.dimension = 8;
        c.compact_fraction = 0.0;
        assert!(c.validate().is_err());
        c.compact_fraction = f32::NAN;
        assert!(c.validate().is_err());
    }

    #[test]
    fn validation_errors_are_typed() {
        let mut idx = VectorIndex::new(ns(), IndexConfig::new(3, Distance::Cosine)).unwrap();
        let e = idx
            .insert(&[VectorEntry::new(1, vec![1.0, 2.0])])
            .unwrap_err();
        assert!(matches!(
            e,
            EccError::DimensionMismatch {
                expected: 3,
                got: 2,
                ..
            }
        ));
        let e = idx
            .insert(&[VectorEntry::new(1, vec![1.0, f32::NAN, 0.0])])
            .unwrap_err();
        assert!(matches!(e, EccError::NonFinite { position: 1, .. }));
        let e = idx
            .insert(&[VectorEntry::new(1, vec![0.0; 3])])
            .unwrap_err();
        assert!(matches!(e, EccError::ZeroVector));
        let e = idx
            .insert(&[VectorEntry::new(1, vec![1e30; 3])])
            .unwrap_err();
        assert!(matches!(e, EccError::InvalidParameter { .. }));
        // A bad entry anywhere in a batch leaves the index untouched.
        let e = idx
            .insert(&[
                VectorEntry::new(1, vec![1.0, 0.0, 0.0]),
                VectorEntry::new(2, vec![1.0, 0.0]),
            ])
            .unwrap_err();
        assert!(matches!(e, EccError::DimensionMismatch { .. }));
        assert_eq!(idx.len(), 0);
        assert_eq!(idx.stats().slots, 0);
        let e = idx.search(&[1.0, 0.0, 0.0], 0, 10).unwrap_err();
        assert!(matches!(e, EccError::InvalidParameter { what: "k", .. }));
    }

    #[test]
    fn replace_and_capacity() {
        let mut cfg = IndexConfig::new(2, Distance::L2);
        cfg.max_elements = 2;
        cfg.compact_fraction = 1.0;
        let mut idx = VectorIndex::new(ns(), cfg).unwrap();
        idx.insert(&[
            VectorEntry::new(1, vec![0.0, 0.0]),
            VectorEntry::new(2, vec![1.0, 0.0]),
        ])
        .unwrap();
        // Replacing does not need room.
        let (ins, _) = idx.insert(&[VectorEntry::new(1, vec![5.0, 5.0])]).unwrap();
        assert!(ins[0].replaced);
        assert_eq!(idx.get(&Key::Num(1)), Some(&[5.0f32, 5.0][..]));
        assert_eq!(idx.stats().tombstones, 1);
        let e = idx
            .insert(&[VectorEntry::new(3, vec![0.0, 0.0])])
            .unwrap_err();
        assert!(matches!(e, EccError::IndexFull { max: 2, .. }));
        let hits = idx.search(&[0.0, 0.0], 2, 10).unwrap();
        assert_eq!(hits[0].key, Key::Num(2));
        assert_eq!(hits[1].key, Key::Num(1));
        assert!((hits[1].distance - 50f32.sqrt()).abs() < 1e-5);
    }

    #[test]
    fn snapshot_keeps_dead_slots_and_replacements() {
        let mut cfg = IndexConfig::new(2, Distance::L2);
        cfg.compact_fraction = 1.0;
        let mut idx = VectorIndex::new(ns(), cfg).unwrap();
        let entries: Vec<_> = (0..50u64)
            .map(|i| VectorEntry::new(i, vec![i as f32, (i * i % 7) as f32]))
            .collect();
        idx.insert(&entries).unwrap();
        idx.insert(&[VectorEntry::new(3, vec![100.0, 100.0])])
            .unwrap();
        idx.delete(&[Key::Num(4), Key::Num(5)]).unwrap();
        let snap = idx.to_snapshot();
        assert_eq!(snap.keys.len(), 51);
        let back = VectorIndex::from_snapshot(ns(), snap.clone()).unwrap();
        assert_eq!(back.stats(), idx.stats());
        assert_eq!(back.get(&Key::Num(3)), Some(&[100.0f32, 100.0][..]));
        assert_eq!(back.to_snapshot(), snap);
        for q in [[0.0, 0.0], [25.0, 3.0], [99.0, 99.0]] {
            assert_eq!(
                back.search(&q, 5, 16).unwrap(),
                idx.search(&q, 5, 16).unwrap()
            );
        }
        // A key live in two slots is refused.
        let mut bad = snap;
        bad.live[3] = true;
        assert!(VectorIndex::from_snapshot(ns(), bad).is_err());
    }

    #[test]
    fn compaction_keeps_live_entries() {
        let mut cfg = IndexConfig::new(2, Distance::L2);
        cfg.compact_fraction = 0.5;
        let mut idx = VectorIndex::new(ns(), cfg).unwrap();
        let entries: Vec<_> = (0..10u64)
            .map(|i| VectorEntry::new(i, vec![i as f32, 0.0]))
            .collect();
        idx.insert(&entries).unwrap();
        let (n, compacted) = idx.delete(&[Key::Num(0), Key::Num(1)]).unwrap();
        assert_eq!((n, compacted), (2, false));
        let keys: Vec<Key> = (2..7u64).map(Key::Num).collect();
        let (n, compacted) = idx.delete(&keys).unwrap();
        assert_eq!((n, compacted), (5, true));
        let s = idx.stats();
        assert_eq!(
            (s.count, s.tombstones, s.slots, s.compactions),
            (3, 0, 3, 1)
        );
        let hits = idx.search(&[0.0, 0.0], 3, 10).unwrap();
        let keys: Vec<_> = hits.iter().map(|h| h.key.clone()).collect();
        assert_eq!(keys, vec![Key::Num(7), Key::Num(8), Key::Num(9)]);
        let e = idx.delete(&[Key::Num(0)]).unwrap_err();
        assert!(matches!(e, EccError::VectorNotFound { .. }));
    }
}
