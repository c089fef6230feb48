//! Vector indexes: one HNSW graph per namespace, with caller-chosen keys, tombstone
//! deletes and compaction.
//!
//! Entries live in *slots* numbered in insertion order; the slot number is the id
//! `hnsw_rs` knows. A delete marks the slot dead (a tombstone): the point stays in the graph
//! (so searches still route through it) but is filtered out of results. When dead slots
//! exceed `compact_fraction` of all slots, the index is rebuilt from the live entries in
//! slot order. Inserting an existing key replaces it: the old slot dies, a new one is added.
//!
//! `hnsw_rs` builds the graph; searches run on a flat copy of it ([`flat`]) plus an exact
//! scan of the slots added since the copy was made. Inserts happen one at a time in op
//! order and `hnsw_rs` draws layers from a generator with a fixed seed, so the same inserts
//! from an empty index give the same graph and the same answers. A snapshot stores the
//! graph itself (`hnsw_rs`'s dump, [`dump`]); inserts after a snapshot is loaded draw
//! layers afresh, so their graph can differ from the one the live index built while the
//! entries (keys, vectors, liveness, slots) are the same. See `docs/ecc.md`.

pub(crate) mod dump;
mod flat;
mod metric;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::fmt;

use hnsw_rs::anndists::dist::Distance as HnswDistance;
use hnsw_rs::hnsw::Hnsw;
use serde::{Deserialize, Serialize};

use crate::error::{EccError, Result};
use crate::names::{Key, Namespace};

pub use dump::GraphFiles;
use flat::{FlatGraph, OrdF32};
pub(crate) use metric::dot;
use metric::{dot_to_positive, l2_squared};

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
    /// The vector, `dimension` finite values. A list of numbers in JSON; in CBOR (chain
    /// records) a byte string of little-endian f32, a fifth smaller and copied rather
    /// than parsed.
    #[serde(with = "f32s")]
    pub vector: Vec<f32>,
}

/// Serde for vectors: numbers for people, little-endian bytes for machines.
mod f32s {
    use std::fmt;

    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_seq(v)
        } else {
            let mut bytes = Vec::with_capacity(v.len() * 4);
            for x in v {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
            s.serialize_bytes(&bytes)
        }
    }

    struct F32s;

    impl<'de> Visitor<'de> for F32s {
        type Value = Vec<f32>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of numbers or a byte string of little-endian f32")
        }

        fn visit_bytes<E: Error>(self, b: &[u8]) -> Result<Vec<f32>, E> {
            if !b.len().is_multiple_of(4) {
                return Err(E::custom(format!(
                    "vector of {} bytes is not a whole number of f32",
                    b.len()
                )));
            }
            Ok(b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f32>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(x) = seq.next_element::<f32>()? {
                out.push(x);
            }
            Ok(out)
        }
    }

    /// Either shape, whatever the format: inside an internally tagged enum (`EccOp`) serde
    /// buffers the value and no longer says which format it came from.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        d.deserialize_any(F32s)
    }
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

/// The distance `hnsw_rs` evaluates while building. It needs a non-negative value where
/// smaller is closer (it asserts this), so each kind is mapped onto that.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Metric(Distance);

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

/// How many slots may sit outside the flat copy (scanned exactly by every search) before
/// it is rebuilt: a rebuild walks the whole `hnsw_rs` graph, so it is amortised over a
/// number of inserts that grows with the index, and capped at 64 Ki floats of scanning
/// (512 slots of 128-d, ~15 µs) so the scan stays a small part of a search.
fn stale_limit(covered: usize, dimension: usize) -> usize {
    let cap = (65_536 / dimension.max(1)).max(64);
    (covered / 32).clamp(64, cap)
}

/// One namespace's vector index.
pub struct VectorIndex {
    ns: Namespace,
    config: IndexConfig,
    /// The graph `hnsw_rs` builds and keeps up to date.
    graph: Hnsw<'static, f32, Metric>,
    /// The copy searches walk; covers a prefix of the slots.
    flat: FlatGraph,
    /// Original vectors, slot-major (`dimension` floats per slot, dead slots included).
    vectors: Vec<f32>,
    /// `1 / |v|` per slot under the cosine distance (empty otherwise), so searches use the
    /// original vectors instead of a normalised copy.
    inv_norm: Vec<f32>,
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
/// original vector, and (in a snapshot) the `hnsw_rs` dump files of its graph.
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
    /// The graph's dump files, next to the snapshot file; `None`: the graph is rebuilt by
    /// re-inserting every slot in order (an empty index, or [`VectorIndex::to_snapshot`]).
    #[serde(default)]
    pub graph: Option<GraphFiles>,
}

impl VectorIndex {
    /// An empty index (the configuration is validated).
    pub fn new(ns: Namespace, config: IndexConfig) -> Result<Self> {
        config.validate()?;
        Ok(VectorIndex {
            ns,
            graph: new_graph(&config),
            config,
            flat: FlatGraph::default(),
            vectors: Vec::new(),
            inv_norm: Vec::new(),
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

    /// Slots the search graph covers; later ones are scanned exactly until the next
    /// rebuild of the flat copy (for diagnostics and benchmarks).
    pub fn graph_covered(&self) -> usize {
        self.flat.covered()
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
        if self.keys.len() - self.flat.covered()
            > stale_limit(self.flat.covered(), self.config.dimension)
        {
            self.refresh_flat();
        }
        Ok((out, compacted))
    }

    /// Rebuilds the flat copy from the `hnsw_rs` graph.
    fn refresh_flat(&mut self) {
        // The graph holds exactly our slots, so this cannot fail; if it ever did, the old
        // copy stays and searches keep scanning the newer slots exactly: still correct.
        if let Ok(flat) = FlatGraph::build(&self.graph, self.keys.len()) {
            self.flat = flat;
        }
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
        self.append_tables(key, v, live);
        let slot = self.keys.len() - 1;
        self.graph
            .insert_slice((&graph_form(self.config.distance, v), slot));
        slot as u32
    }

    /// Appends a slot to the slot tables only (the graph already has it, or gets it next).
    fn append_tables(&mut self, key: Key, v: &[f32], live: bool) {
        self.vectors.extend_from_slice(v);
        if self.config.distance == Distance::Cosine {
            // Non-zero: check_vector refuses zero vectors under cosine.
            self.inv_norm.push(1.0 / dot(v, v).sqrt());
        }
        self.keys.push(key);
        self.live.push(live);
        if !live {
            self.tombstones += 1;
        }
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
        // The copy's slot numbers are about to change.
        self.flat = FlatGraph::default();
        self.inv_norm.clear();
        self.by_key.clear();
        self.tombstones = 0;
        self.vectors.reserve(old_vectors.len());
        for (slot, (key, live)) in old_keys.into_iter().zip(old_live).enumerate() {
            if live {
                self.push_slot(key, &old_vectors[slot * d..(slot + 1) * d]);
            }
        }
        self.compactions += 1;
        self.refresh_flat();
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
        let ef = ef.max(k);
        let d = self.config.dimension;
        let v = |s: u32| &self.vectors[s as usize * d..(s as usize + 1) * d];
        // Each distance as the graph orders it; one monomorphised search per kind.
        let mut found = match self.config.distance {
            Distance::L2 => self.candidates(|s| l2_squared(query, v(s)), ef),
            Distance::Dot => self.candidates(|s| -dot(query, v(s)), ef),
            Distance::Cosine => {
                let unit = graph_form(Distance::Cosine, query);
                let q = unit.as_slice();
                self.candidates(|s| 1.0 - dot(q, v(s)) * self.inv_norm[s as usize], ef)
            }
        };
        found.truncate(k);
        Ok(found
            .into_iter()
            .map(|(dist, slot)| SearchHit {
                key: self.keys[slot as usize].clone(),
                distance: match self.config.distance {
                    Distance::L2 => dist.max(0.0).sqrt(),
                    Distance::Cosine | Distance::Dot => dist,
                },
            })
            .collect())
    }

    /// The same query answered by `hnsw_rs`'s own search on the same graph (slots it
    /// holds that the flat copy does not are included): for comparison in benchmarks.
    pub fn search_hnsw_rs(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<SearchHit>> {
        check_vector(&self.ns, &self.config, query)?;
        let q = graph_form(self.config.distance, query);
        let live = |id: &usize| self.live.get(*id).copied().unwrap_or(false);
        // One extra: hnsw_rs seeds its result set with the entry point unfiltered.
        let found = if self.tombstones == 0 {
            self.graph.search(&q, k, ef.max(k))
        } else {
            self.graph
                .search_filter(&q, k + 1, ef.max(k + 1), Some(&live))
        };
        Ok(found
            .into_iter()
            .filter(|n| live(&n.d_id))
            .take(k)
            .map(|n| SearchHit {
                key: self.keys[n.d_id].clone(),
                distance: n.distance,
            })
            .collect())
    }

    /// The graph's best `ef` plus every live slot it does not cover yet, sorted by
    /// (distance, slot).
    fn candidates<F: Fn(u32) -> f32>(&self, dist: F, ef: usize) -> Vec<(f32, u32)> {
        let covered = self.flat.covered();
        let mut out = Vec::with_capacity(ef + (self.keys.len() - covered));
        let base = self.vectors.as_ptr();
        let d = self.config.dimension;
        self.flat.search(
            &dist,
            |s| base.wrapping_add(s as usize * d),
            ef,
            &self.live,
            &mut out,
        );
        let graph_part = out.len();
        for slot in covered..self.keys.len() {
            if self.live[slot] {
                out.push((dist(slot as u32), slot as u32));
            }
        }
        if out.len() > graph_part {
            out.sort_unstable_by(|a, b| OrdF32(a.0).cmp(&OrdF32(b.0)).then(a.1.cmp(&b.1)));
        }
        out
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

    /// The serialisable content, without the graph (loading it re-inserts every slot).
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
            graph: None,
        }
    }

    /// The serialisable content, with the graph dumped into `dir` as `basename.hnsw.*`.
    pub(crate) fn save(
        &self,
        dir: &std::path::Path,
        basename: &str,
    ) -> std::result::Result<IndexSnapshot, crate::error::SnapshotError> {
        let mut snap = self.to_snapshot();
        if !self.keys.is_empty() {
            snap.graph = Some(dump::write(&self.graph, dir, basename)?);
        }
        Ok(snap)
    }

    /// Rebuilds an index from its snapshot content without graph files: every slot, dead
    /// ones too, is inserted in slot order (as slow as the original inserts).
    pub fn from_snapshot(ns: Namespace, snap: IndexSnapshot) -> Result<Self> {
        VectorIndex::restore(ns, snap, None)
    }

    /// [`VectorIndex::from_snapshot`], loading the graph from its dump files in `dir`
    /// when the snapshot names them.
    pub(crate) fn restore(
        ns: Namespace,
        snap: IndexSnapshot,
        dir: Option<&std::path::Path>,
    ) -> Result<Self> {
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
        let graph = match (snap.graph, dir) {
            (Some(files), Some(dir)) => {
                let g = dump::read(dir, &files, Metric(index.config.distance))?;
                if g.get_nb_point() != slots {
                    return Err(bad(format!(
                        "graph {} holds {} points for {slots} slots",
                        files.basename,
                        g.get_nb_point()
                    )));
                }
                Some(g)
            }
            (Some(files), None) => {
                return Err(bad(format!(
                    "graph files {} named but no directory given",
                    files.basename
                )))
            }
            (None, _) => None,
        };
        let loaded = graph.is_some();
        if let Some(g) = graph {
            index.graph = g;
        }
        let mut live_count = 0usize;
        for (slot, (key, live)) in snap.keys.into_iter().zip(snap.live).enumerate() {
            let v = &floats[slot * d..(slot + 1) * d];
            check_vector(&index.ns, &index.config, v)?;
            key.validate()?;
            if live && index.by_key.contains_key(&key) {
                return Err(bad(format!("key {key} is live in two slots")));
            }
            if loaded {
                index.append_tables(key.clone(), v, live);
            } else {
                // Dead slots go into the graph too: the saved graph had them.
                index.append(key.clone(), v, live);
            }
            if live {
                index.by_key.insert(key, slot as u32);
                live_count += 1;
            }
        }
        if live_count > index.config.max_elements {
            return Err(bad(format!(
                "{live_count} live entries exceed max_elements {}",
                index.config.max_elements
            )));
        }
        index.compactions = snap.compactions;
        if loaded {
            // Also checks that the graph's data ids are exactly our slots.
            index.flat = FlatGraph::build(&index.graph, slots).map_err(bad)?;
        } else {
            index.refresh_flat();
        }
        Ok(index)
    }
}
