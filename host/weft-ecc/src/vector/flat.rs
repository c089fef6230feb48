//! The read-optimised copy of the HNSW graph that searches run on.
//!
//! `hnsw_rs` builds the graph (its insert is what we trust for graph quality), but its
//! layout is slow to search: every point is its own `Arc`, every neighbour entry another
//! `Arc` pointing to it behind a lock, and the visited set is a hash map of `Arc` clones, so
//! each neighbour examined costs about three dependent cache misses plus allocations. Here
//! the same graph is laid out flat: layer 0 as one array with a fixed stride per slot (a
//! count, then the neighbour slots), upper layers (a few percent of the points) as sorted
//! member lists with CSR neighbour lists, vectors in the index's own contiguous array, and
//! a visited set that is an array of generation marks reused across searches. A neighbour
//! then costs one load of its vector, which is prefetched while the previous one is
//! measured.
//!
//! The copy covers slots `0..covered()`. Slots added after it was built are not in it; the
//! index scans those exactly and merges the two result lists (see `VectorIndex::search`),
//! and rebuilds the copy once they are too many to scan cheaply.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use hnsw_rs::anndists::dist::Distance as HnswDistance;
use hnsw_rs::hnsw::Hnsw;

use super::metric::prefetch;

/// `f32` with the total order, for heaps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct OrdF32(pub f32);

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

/// One upper layer: its member slots (sorted) and their neighbour lists.
#[derive(Debug, Default)]
struct Layer {
    slots: Vec<u32>,
    /// `nbrs[start[i]..start[i + 1]]` are the neighbours of `slots[i]`.
    start: Vec<u32>,
    nbrs: Vec<u32>,
}

impl Layer {
    fn neighbours(&self, slot: u32) -> &[u32] {
        match self.slots.binary_search(&slot) {
            Ok(i) => &self.nbrs[self.start[i] as usize..self.start[i + 1] as usize],
            Err(_) => &[],
        }
    }
}

/// The flat graph. Empty until first built.
#[derive(Debug, Default)]
pub(crate) struct FlatGraph {
    covered: usize,
    entry: u32,
    /// Layer 0, `stride` u32 per slot: the neighbour count, then the neighbours.
    stride: usize,
    l0: Vec<u32>,
    /// Layers 1 and up.
    upper: Vec<Layer>,
}

/// Per-thread search state, reused so a search allocates nothing once warm.
#[derive(Default)]
struct Scratch {
    marks: Vec<u32>,
    generation: u32,
    candidates: BinaryHeap<Reverse<(OrdF32, u32)>>,
    best: BinaryHeap<(OrdF32, u32)>,
}

impl Scratch {
    /// A fresh generation for `n` slots: every mark from earlier searches reads unvisited.
    fn begin(&mut self, n: usize) -> u32 {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.generation = 1;
        }
        self.candidates.clear();
        self.best.clear();
        self.generation
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl FlatGraph {
    /// Copies the graph `hnsw_rs` holds for slots `0..slots` (its data ids are our slots).
    pub(crate) fn build<D: HnswDistance<f32> + Send + Sync>(
        graph: &Hnsw<'_, f32, D>,
        slots: usize,
    ) -> Result<FlatGraph, String> {
        if slots == 0 {
            return Ok(FlatGraph::default());
        }
        // (level, neighbours per layer) per slot.
        let mut per: Vec<Option<(usize, Vec<Vec<u32>>)>> = vec![None; slots];
        let mut top: Option<(usize, u32)> = None;
        for p in graph.get_point_indexation() {
            let slot = p.get_origin_id();
            let level = usize::from(p.get_point_id().0);
            let Some(cell) = per.get_mut(slot) else {
                return Err(format!("graph holds data id {slot}, past {slots} slots"));
            };
            if cell.is_some() {
                return Err(format!("graph holds data id {slot} twice"));
            }
            let hood = p.get_neighborhood_id();
            let mut layers = Vec::with_capacity(level + 1);
            for l in 0..=level {
                let ids = hood.get(l).map(Vec::as_slice).unwrap_or_default();
                let mut list = Vec::with_capacity(ids.len());
                for n in ids {
                    let id = u32::try_from(n.d_id)
                        .ok()
                        .filter(|&id| (id as usize) < slots)
                        .ok_or_else(|| format!("slot {slot} links to data id {}", n.d_id))?;
                    list.push(id);
                }
                layers.push(list);
            }
            *cell = Some((level, layers));
            let slot = slot as u32;
            // The entry point is the first point to reach the top level, as in hnsw_rs.
            if top.is_none_or(|(l, s)| level > l || (level == l && slot < s)) {
                top = Some((level, slot));
            }
        }
        let (max_level, entry) = top.ok_or("graph is empty")?;
        let mut degree = 0;
        for (slot, cell) in per.iter().enumerate() {
            match cell {
                Some((_, layers)) => degree = degree.max(layers[0].len()),
                None => return Err(format!("slot {slot} is missing from the graph")),
            }
        }
        let stride = degree + 1;
        let mut l0 = vec![0u32; slots * stride];
        let mut upper: Vec<Layer> = (0..max_level).map(|_| Layer::default()).collect();
        for (slot, cell) in per.into_iter().enumerate() {
            let Some((level, layers)) = cell else {
                continue;
            };
            let row = &mut l0[slot * stride..(slot + 1) * stride];
            row[0] = layers[0].len() as u32;
            row[1..=layers[0].len()].copy_from_slice(&layers[0]);
            for (l, list) in layers.iter().enumerate().take(level + 1).skip(1) {
                let layer = &mut upper[l - 1];
                if layer.start.is_empty() {
                    layer.start.push(0);
                }
                layer.slots.push(slot as u32);
                layer.nbrs.extend_from_slice(list);
                let end = u32::try_from(layer.nbrs.len())
                    .map_err(|_| "upper layer too large".to_string())?;
                layer.start.push(end);
            }
        }
        Ok(FlatGraph {
            covered: slots,
            entry,
            stride,
            l0,
            upper,
        })
    }

    /// Slots `0..covered()` are in the graph.
    pub(crate) fn covered(&self) -> usize {
        self.covered
    }

    fn l0_neighbours(&self, slot: u32) -> &[u32] {
        let row = &self.l0[slot as usize * self.stride..(slot as usize + 1) * self.stride];
        &row[1..=row[0] as usize]
    }

    /// The best `ef` live slots found from the entry point, as `(distance, slot)` sorted
    /// ascending, appended to `out`. `dist(slot)` measures the query against a slot;
    /// `addr(slot)` is where that slot's vector starts (for prefetching only).
    pub(crate) fn search<F, A>(
        &self,
        dist: F,
        addr: A,
        ef: usize,
        live: &[bool],
        out: &mut Vec<(f32, u32)>,
    ) where
        F: Fn(u32) -> f32,
        A: Fn(u32) -> *const f32,
    {
        if self.covered == 0 {
            return;
        }
        let mut cur = self.entry;
        let mut d = dist(cur);
        // Upper layers: greedy descent to the closest point.
        for layer in self.upper.iter().rev() {
            loop {
                let mut moved = false;
                for &n in layer.neighbours(cur) {
                    let dn = dist(n);
                    if dn < d {
                        d = dn;
                        cur = n;
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let s = &mut *s;
            let gen = s.begin(self.covered);
            let is_live = |slot: u32| live.get(slot as usize).copied().unwrap_or(false);
            s.marks[cur as usize] = gen;
            s.candidates.push(Reverse((OrdF32(d), cur)));
            if is_live(cur) {
                s.best.push((OrdF32(d), cur));
            }
            // Layer 0: best-first search with `ef` results. Dead slots are walked through
            // (they still connect the graph) but never enter the results.
            while let Some(Reverse((OrdF32(dc), c))) = s.candidates.pop() {
                if s.best.len() >= ef && s.best.peek().is_some_and(|w| dc > w.0 .0) {
                    break;
                }
                let nbrs = self.l0_neighbours(c);
                for (i, &n) in nbrs.iter().enumerate() {
                    if let Some(&next) = nbrs.get(i + 1) {
                        prefetch(addr(next));
                    }
                    let mark = &mut s.marks[n as usize];
                    if *mark == gen {
                        continue;
                    }
                    *mark = gen;
                    let dn = dist(n);
                    let worst = s.best.peek().map(|w| w.0 .0);
                    if s.best.len() < ef || worst.is_some_and(|w| dn < w) {
                        s.candidates.push(Reverse((OrdF32(dn), n)));
                        if is_live(n) {
                            s.best.push((OrdF32(dn), n));
                            if s.best.len() > ef {
                                s.best.pop();
                            }
                        }
                    }
                }
            }
            let start = out.len();
            out.extend(s.best.drain().map(|(OrdF32(d), n)| (d, n)));
            out[start..].sort_unstable_by(|a, b| OrdF32(a.0).cmp(&OrdF32(b.0)).then(a.1.cmp(&b.1)));
        });
    }
}
