//! Boot-time calibration: a short measured run of the operations a cognitive tick does
//! (HNSW insert and search, causal edge creation, BLAKE3 hashing) on this machine, with the
//! real [`VectorIndex`] and [`CausalGraph`] code, and the tick budget derived from it.
//!
//! The run is bounded: each phase stops at its share of `time_budget_ms` (inserts 40 %,
//! searches 20 %, edges 20 %, hashing 20 %) even if it has not done its count, and says so
//! in [`CalibrationReport::truncated`]. Every phase does at least one operation.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::causal::{CausalGraph, CausalNode, EdgeKind};
use crate::error::{EccError, Result};
use crate::names::{Key, Namespace};
use crate::tick::TickConfig;
use crate::vector::{Distance, IndexConfig, VectorEntry, VectorIndex};

/// What to measure.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationConfig {
    /// Vector dimension.
    pub dimension: usize,
    /// Vectors to insert.
    pub vectors: usize,
    /// Searches to run.
    pub queries: usize,
    /// `k` per search.
    pub k: usize,
    /// `ef` per search.
    pub ef: usize,
    /// Causal edges to add (over `vectors` nodes).
    pub edges: usize,
    /// Hashes to compute.
    pub hashes: usize,
    /// Bytes per hash input.
    pub hash_bytes: usize,
    /// Upper bound on the whole run, in milliseconds.
    pub time_budget_ms: u64,
    /// Seed for the generated data.
    pub seed: u64,
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        CalibrationConfig {
            dimension: 64,
            vectors: 300,
            queries: 100,
            k: 10,
            ef: 32,
            edges: 2000,
            hashes: 2000,
            hash_bytes: 256,
            time_budget_ms: 50,
            seed: 0x5eed,
        }
    }
}

/// Measured costs (mean nanoseconds per operation) and counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationReport {
    /// Vector dimension used.
    pub dimension: usize,
    /// Inserts done.
    pub inserts: usize,
    /// Mean insert cost.
    pub insert_ns: u64,
    /// Searches done.
    pub searches: usize,
    /// Mean search cost.
    pub search_ns: u64,
    /// Edges added.
    pub edges: usize,
    /// Mean edge cost (cycle check included).
    pub edge_ns: u64,
    /// Hashes done.
    pub hashes: usize,
    /// Bytes per hash.
    pub hash_bytes: usize,
    /// Mean hash cost.
    pub hash_ns: u64,
    /// Wall time of the whole run.
    pub total_ns: u64,
    /// Whether any phase stopped at its time share before its count.
    pub truncated: bool,
}

/// The work one tick is expected to do, for [`tick_budget`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TickWorkload {
    /// Searches per tick.
    pub searches: u32,
    /// Inserts per tick.
    pub inserts: u32,
    /// Edges per tick.
    pub edges: u32,
    /// Hashes per tick.
    pub hashes: u32,
    /// Safety multiplier on the measured cost (at least 1).
    pub headroom: f64,
}

impl Default for TickWorkload {
    fn default() -> Self {
        TickWorkload {
            searches: 16,
            inserts: 16,
            edges: 64,
            hashes: 64,
            headroom: 2.0,
        }
    }
}

/// Smallest budget [`tick_budget`] returns: below this, timer and scheduling noise
/// dominate.
pub const MIN_TICK_BUDGET_NS: u64 = 100_000;
/// Largest budget [`tick_budget`] returns.
pub const MAX_TICK_BUDGET_NS: u64 = 1_000_000_000;

/// The tick budget for `workload` on the measured machine: its measured cost times the
/// headroom, clamped to [`MIN_TICK_BUDGET_NS`]..=[`MAX_TICK_BUDGET_NS`].
pub fn tick_budget(report: &CalibrationReport, workload: &TickWorkload) -> u64 {
    let cost = f64::from(workload.searches) * report.search_ns as f64
        + f64::from(workload.inserts) * report.insert_ns as f64
        + f64::from(workload.edges) * report.edge_ns as f64
        + f64::from(workload.hashes) * report.hash_ns as f64;
    let budget = cost * workload.headroom.max(1.0);
    // The float-to-int cast saturates; NaN cannot arise from finite non-negative inputs.
    (budget as u64).clamp(MIN_TICK_BUDGET_NS, MAX_TICK_BUDGET_NS)
}

/// A tick configuration for `workload` on the measured machine
/// ([`TickConfig::from_budget`] of [`tick_budget`]).
pub fn tick_config(report: &CalibrationReport, workload: &TickWorkload) -> TickConfig {
    TickConfig::from_budget(tick_budget(report, workload))
}

/// SplitMix64: small, seedable, good enough for test data.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mean_ns(d: Duration, n: usize) -> u64 {
    u64::try_from(d.as_nanos() / n.max(1) as u128).unwrap_or(u64::MAX)
}

/// Runs the calibration.
pub fn run_calibration(config: &CalibrationConfig) -> Result<CalibrationReport> {
    let c = config;
    if c.vectors < 2 || c.queries == 0 || c.edges == 0 || c.hashes == 0 || c.k == 0 {
        return Err(EccError::InvalidParameter {
            what: "calibration config",
            reason: "vectors >= 2 and queries, edges, hashes, k >= 1".into(),
        });
    }
    let budget = Duration::from_millis(c.time_budget_ms.max(1));
    let share = |pct: u32| budget * pct / 100;
    let start = Instant::now();
    let mut rng = SplitMix(c.seed);
    let mut truncated = false;
    let ns = Namespace::new("calibration")?;

    // Data generated before timing starts, so only the operations are measured.
    let data: Vec<Vec<f32>> = (0..c.vectors)
        .map(|_| (0..c.dimension).map(|_| rng.unit()).collect())
        .collect();
    let mut cfg = IndexConfig::new(c.dimension, Distance::Cosine);
    cfg.max_elements = c.vectors;
    cfg.ef_construction = 64;
    let mut index = VectorIndex::new(ns.clone(), cfg)?;
    let t = Instant::now();
    let mut inserts = 0;
    for (i, v) in data.iter().enumerate() {
        if inserts > 0 && t.elapsed() >= share(40) {
            truncated = true;
            break;
        }
        index.insert(&[VectorEntry::new(i as u64, v.clone())])?;
        inserts += 1;
    }
    let insert_ns = mean_ns(t.elapsed(), inserts);

    let queries: Vec<Vec<f32>> = (0..c.queries)
        .map(|_| (0..c.dimension).map(|_| rng.unit()).collect())
        .collect();
    let t = Instant::now();
    let mut searches = 0;
    for q in &queries {
        if searches > 0 && t.elapsed() >= share(20) {
            truncated = true;
            break;
        }
        index.search(q, c.k, c.ef)?;
        searches += 1;
    }
    let search_ns = mean_ns(t.elapsed(), searches);

    let mut graph = CausalGraph::new(ns);
    for i in 0..c.vectors {
        graph.add_node(CausalNode {
            key: Key::Num(i as u64),
            label: String::new(),
            attrs: BTreeMap::new(),
        })?;
    }
    let pairs: Vec<(u64, u64)> = (0..c.edges)
        .map(|_| {
            let a = rng.below(c.vectors - 1);
            let b = a + 1 + rng.below(c.vectors - a - 1);
            (a as u64, b as u64)
        })
        .collect();
    let t = Instant::now();
    let mut edges = 0;
    for (a, b) in pairs {
        if edges > 0 && t.elapsed() >= share(20) {
            truncated = true;
            break;
        }
        // Lower to higher index never closes a cycle.
        graph.link(&Key::Num(a), &Key::Num(b), &EdgeKind::Causes, 1.0)?;
        edges += 1;
    }
    let edge_ns = mean_ns(t.elapsed(), edges);

    let buf: Vec<u8> = (0..c.hash_bytes).map(|_| rng.next() as u8).collect();
    let t = Instant::now();
    let mut hashes = 0;
    let mut acc = 0u8;
    for i in 0..c.hashes {
        if hashes > 0 && t.elapsed() >= share(20) {
            truncated = true;
            break;
        }
        let mut h = blake3::Hasher::new();
        h.update(&(i as u64).to_le_bytes());
        h.update(&buf);
        // Folded into a value that is returned, so the hash cannot be optimised away.
        acc ^= h.finalize().as_bytes()[0];
        hashes += 1;
    }
    let hash_ns = mean_ns(t.elapsed(), hashes);
    std::hint::black_box(acc);

    Ok(CalibrationReport {
        dimension: c.dimension,
        inserts,
        insert_ns,
        searches,
        search_ns,
        edges,
        edge_ns,
        hashes,
        hash_bytes: c.hash_bytes,
        hash_ns,
        total_ns: u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX),
        truncated,
    })
}
