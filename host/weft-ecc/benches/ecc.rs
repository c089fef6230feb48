//! ECC benchmark (plain main, one run, single-threaded). Prints a markdown table:
//! HNSW insert rate and search QPS at recall@10 >= 0.95 on 100,000 random 128-d vectors,
//! causal edges/s, snapshot save/load, calibration. Run it pinned to one core:
//! `taskset -c 0 cargo bench -p weft-ecc --bench ecc`.
//!
//! Two data sets of random 128-d vectors: `uniform` (every component uniform in [-1, 1]:
//! intrinsic dimension 128, the hardest case for any graph index) and `lowdim` (a random
//! 16-d Gaussian mapped linearly to 128-d plus 1 % noise, closer to real embeddings).
//! Environment knobs for experiments: `ECC_BENCH_N`, `ECC_BENCH_DATA` (uniform, lowdim,
//! both), `ECC_BENCH_M`, `ECC_BENCH_EFC`, `ECC_BENCH_PARTS` (hnsw,snapshot,causal,calibration).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use weft_ecc::{
    run_calibration, tick_budget, CalibrationConfig, CausalNode, Distance, Ecc, EccConfig,
    EccError, EdgeKind, IndexConfig, Key, Namespace, SystemClock, TickWorkload, VectorEntry,
};

const DIM: usize = 128;
const LATENT: usize = 16;
const QUERIES: usize = 500;
const K: usize = 10;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Standard normal by Box-Muller.
fn gauss(rng: &mut StdRng) -> f32 {
    let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.gen_range(0.0..1.0);
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// `n` points of the named data set; `basis` is the low-dim map (shared by data and
/// queries).
fn vectors(rng: &mut StdRng, kind: &str, basis: &[Vec<f32>], n: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|_| match kind {
            "uniform" => (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect(),
            _ => {
                let z: Vec<f32> = (0..LATENT).map(|_| gauss(rng)).collect();
                basis
                    .iter()
                    .map(|row| {
                        let s: f32 = row.iter().zip(&z).map(|(a, b)| a * b).sum();
                        s + 0.1 * gauss(rng)
                    })
                    .collect()
            }
        })
        .collect()
}

fn progress(msg: &str, t0: Instant) {
    eprintln!("[{:7.1} s] {msg}", t0.elapsed().as_secs_f64());
}

fn fmt_rate(r: f64) -> String {
    let s = format!("{r:.0}");
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn main() {
    let t0 = Instant::now();
    let n = env_usize("ECC_BENCH_N", 100_000);
    let data_kinds: Vec<String> = match std::env::var("ECC_BENCH_DATA").as_deref() {
        Ok("uniform") => vec!["uniform".into()],
        Ok("lowdim") => vec!["lowdim".into()],
        _ => vec!["uniform".into(), "lowdim".into()],
    };
    let parts = std::env::var("ECC_BENCH_PARTS")
        .unwrap_or_else(|_| "hnsw,snapshot,causal,calibration".into());
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut sweeps = Vec::new();
    let mut rng = StdRng::seed_from_u64(2026);
    let basis: Vec<Vec<f32>> = (0..DIM)
        .map(|_| {
            (0..LATENT)
                .map(|_| gauss(&mut rng) / (LATENT as f32).sqrt())
                .collect()
        })
        .collect();
    let ns = Namespace::new("bench").expect("namespace");
    let mut last_built: Option<(Ecc, Vec<Vec<f32>>)> = None;

    for kind in data_kinds.iter().filter(|_| parts.contains("hnsw")) {
        let data = vectors(&mut rng, kind, &basis, n);
        let queries = vectors(&mut rng, kind, &basis, QUERIES);

        // --- HNSW insert --------------------------------------------------------------
        let mut ecc = Ecc::new(Arc::new(SystemClock), EccConfig::default());
        let mut config = IndexConfig::new(DIM, Distance::Cosine);
        config.m = env_usize("ECC_BENCH_M", config.m);
        config.ef_construction = env_usize("ECC_BENCH_EFC", config.ef_construction);
        let (m, efc) = (config.m, config.ef_construction);
        ecc.create_index(&ns, config).expect("create");
        let t = Instant::now();
        for (c, chunk) in data.chunks(1_000).enumerate() {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, v)| VectorEntry::new((c * 1_000 + i) as u64, v.clone()))
                .collect();
            ecc.insert(&ns, entries).expect("insert");
            if c % 10 == 9 {
                progress(&format!("{kind}: {} inserted", (c + 1) * 1_000), t0);
            }
        }
        let insert = t.elapsed();
        rows.push((
            format!("HNSW insert, {n} x {DIM}-d {kind}, cosine, M {m}, ef_construction {efc}"),
            format!("{} vectors/s", fmt_rate(n as f64 / insert.as_secs_f64())),
            format!("{:.1} s total, one at a time", insert.as_secs_f64()),
        ));

        // --- search: recall and QPS per ef ----------------------------------------------
        let index = ecc.index(&ns).expect("index");
        let t = Instant::now();
        let truth: Vec<HashSet<Key>> = queries
            .iter()
            .map(|q| {
                index
                    .brute_force(q, K)
                    .expect("brute force")
                    .into_iter()
                    .map(|h| h.key)
                    .collect()
            })
            .collect();
        let brute = t.elapsed();
        progress(&format!("{kind}: ground truth"), t0);
        let mut sweep = Vec::new();
        let mut chosen = None;
        for ef in [
            16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048,
        ] {
            let mut hits = 0;
            let mut results = Vec::with_capacity(QUERIES);
            // Two passes, best time: the first warms caches.
            let mut best = Duration::MAX;
            for _ in 0..2 {
                results.clear();
                let t = Instant::now();
                for q in &queries {
                    results.push(index.search(q, K, ef).expect("search"));
                }
                best = best.min(t.elapsed());
            }
            for (r, tr) in results.iter().zip(&truth) {
                hits += r.iter().filter(|h| tr.contains(&h.key)).count();
            }
            let recall = hits as f64 / (QUERIES * K) as f64;
            let qps = QUERIES as f64 / best.as_secs_f64();
            progress(
                &format!("{kind}: ef {ef} recall {recall:.3} {qps:.0} QPS"),
                t0,
            );
            sweep.push((ef, recall, qps));
            if recall >= 0.95 && chosen.is_none() {
                chosen = Some((ef, recall, qps));
            }
            if recall >= 0.99 {
                break;
            }
        }
        match chosen {
            Some((ef, recall, qps)) => {
                rows.push((
                    format!("HNSW search k={K}, {kind}, at recall@{K} >= 0.95"),
                    format!("{} QPS", fmt_rate(qps)),
                    format!(
                        "ef {ef}, recall {recall:.3} over {QUERIES} queries, flat copy covers {} of {n} slots (goal >= 5,000 QPS)",
                        index.graph_covered()
                    ),
                ));
                // The same graph searched by hnsw_rs itself, for the layout's effect.
                let mut best = Duration::MAX;
                let mut hits = 0;
                for _ in 0..2 {
                    hits = 0;
                    let t = Instant::now();
                    for (q, tr) in queries.iter().zip(&truth) {
                        let r = index.search_hnsw_rs(q, K, ef).expect("search");
                        hits += r.iter().filter(|h| tr.contains(&h.key)).count();
                    }
                    best = best.min(t.elapsed());
                }
                rows.push((
                    format!("hnsw_rs search of the same graph, {kind} (reference)"),
                    format!("{} QPS", fmt_rate(QUERIES as f64 / best.as_secs_f64())),
                    format!(
                        "ef {ef}, recall {:.3}; {:.1}x slower than the flat copy",
                        hits as f64 / (QUERIES * K) as f64,
                        qps * best.as_secs_f64() / QUERIES as f64
                    ),
                ));
            }
            None => rows.push((
                format!("HNSW search k={K}, {kind}, at recall@{K} >= 0.95"),
                "not reached".into(),
                format!(
                    "best recall {:.3} at ef {}",
                    sweep.last().map_or(0.0, |s| s.1),
                    sweep.last().map_or(0, |s| s.0)
                ),
            )),
        }
        rows.push((
            format!("exact search k={K}, {kind} (reference)"),
            format!("{} QPS", fmt_rate(QUERIES as f64 / brute.as_secs_f64())),
            "linear scan".into(),
        ));
        sweeps.push((kind.clone(), sweep));
        last_built = Some((ecc, queries));
    }

    // --- snapshot -----------------------------------------------------------------------
    if let (true, Some((ecc, queries))) = (parts.contains("snapshot"), last_built.as_ref()) {
        let dir = std::env::temp_dir().join(format!("weft-ecc-bench-{}", std::process::id()));
        let t = Instant::now();
        let info = ecc.save_snapshot(&dir, 0).expect("save");
        let save = t.elapsed();
        progress("snapshot saved", t0);
        let t = Instant::now();
        let (loaded, _) =
            Ecc::load_snapshot(&dir, Arc::new(SystemClock), EccConfig::default()).expect("load");
        let load = t.elapsed();
        progress("snapshot loaded", t0);
        let keys = |h: Vec<weft_ecc::SearchHit>| h.into_iter().map(|h| h.key).collect::<Vec<_>>();
        let same = queries[..20].iter().all(|q| {
            let index = loaded.index(&ns).expect("index");
            keys(index.search(q, K, 2048).expect("search"))
                == keys(index.brute_force(q, K).expect("exact"))
        }) && loaded.index_stats(&ns).ok() == ecc.index_stats(&ns).ok();
        let _ = std::fs::remove_dir_all(&dir);
        rows.push((
            format!(
                "snapshot save ({:.1} MB, {n} vectors)",
                info.bytes as f64 / 1e6
            ),
            format!("{:.2} s", save.as_secs_f64()),
            format!(
                "CBOR + hnsw_rs dump ({:.1} MB) + fsync + rename",
                info.graph_bytes as f64 / 1e6
            ),
        ));
        rows.push((
            "snapshot load".into(),
            format!("{:.1} s", load.as_secs_f64()),
            format!(
                "{:.1} MB of hnsw_rs dump files loaded; same exact answers: {same}",
                info.graph_bytes as f64 / 1e6
            ),
        ));
    }
    drop(last_built);

    // --- causal edges (through Ecc::link, i.e. apply) ------------------------------------
    if parts.contains("causal") {
        let nodes = 100_000u64;
        let edges = 300_000usize;
        let fresh = |n: u64| {
            let mut e = Ecc::new(Arc::new(SystemClock), EccConfig::default());
            for i in 0..n {
                e.add_node(
                    &ns,
                    CausalNode {
                        key: Key::Num(i),
                        label: String::new(),
                        attrs: BTreeMap::new(),
                    },
                )
                .expect("node");
            }
            e
        };
        let pairs: Vec<(u64, u64)> = (0..edges)
            .map(|_| {
                let a = rng.gen_range(0..nodes - 1);
                (a, rng.gen_range(a + 1..nodes))
            })
            .collect();
        let mut g = fresh(nodes);
        let t = Instant::now();
        for (a, b) in &pairs {
            g.link(&ns, Key::Num(*a), Key::Num(*b), EdgeKind::Causes, 1.0)
                .expect("link");
        }
        let fwd = t.elapsed();
        rows.push((
            format!("causal link, {edges} edges on {nodes} nodes, cause older than effect"),
            format!("{} edges/s", fmt_rate(edges as f64 / fwd.as_secs_f64())),
            "cycle check included".into(),
        ));
        // The same DAG shape with every edge's source the *newer* node: each link goes against
        // the insertion order, so the topological order is repaired each time.
        let mut g = fresh(nodes);
        let t = Instant::now();
        for (a, b) in &pairs {
            g.link(
                &ns,
                Key::Num(nodes - 1 - a),
                Key::Num(nodes - 1 - b),
                EdgeKind::Causes,
                1.0,
            )
            .expect("link");
        }
        let rev = t.elapsed();
        rows.push((
            "causal link, same DAG, every edge against insertion order".into(),
            format!("{} edges/s", fmt_rate(edges as f64 / rev.as_secs_f64())),
            "Pearce-Kelly reorder on each link".into(),
        ));
        // Random directions on a smaller graph: some links close cycles and are refused.
        let mut g = fresh(10_000);
        let random: Vec<(u64, u64)> = (0..30_000)
            .map(|_| (rng.gen_range(0..10_000), rng.gen_range(0..10_000)))
            .collect();
        let (mut ok, mut refused) = (0usize, 0usize);
        let t = Instant::now();
        for (a, b) in &random {
            match g.link(&ns, Key::Num(*a), Key::Num(*b), EdgeKind::Causes, 1.0) {
                Ok(_) => ok += 1,
                Err(EccError::Cycle { .. }) => refused += 1,
                Err(e) => panic!("{e}"),
            }
        }
        let rnd = t.elapsed();
        rows.push((
            "causal link, 30,000 random-direction links on 10,000 nodes".into(),
            format!(
                "{} links/s",
                fmt_rate(random.len() as f64 / rnd.as_secs_f64())
            ),
            format!("{ok} accepted, {refused} refused as cycles"),
        ));
        drop(g);
        progress("causal done", t0);
    }

    // --- calibration --------------------------------------------------------------------
    if parts.contains("calibration") {
        let t = Instant::now();
        let cal = run_calibration(&CalibrationConfig::default()).expect("calibration");
        let cal_wall = t.elapsed();
        rows.push((
        "calibration run".into(),
        format!("{:.1} ms", cal_wall.as_secs_f64() * 1e3),
        format!(
            "insert {:.1} us, search {:.1} us, edge {:.2} us, blake3 256 B {:.2} us; truncated: {} (target <= 50 ms)",
            cal.insert_ns as f64 / 1e3,
            cal.search_ns as f64 / 1e3,
            cal.edge_ns as f64 / 1e3,
            cal.hash_ns as f64 / 1e3,
            cal.truncated
        ),
    ));
        rows.push((
            "tick budget from calibration (default workload)".into(),
            format!(
                "{:.2} ms",
                tick_budget(&cal, &TickWorkload::default()) as f64 / 1e6
            ),
            "16 searches, 16 inserts, 64 edges, 64 hashes, x2 headroom".into(),
        ));
    }

    println!("| measurement | result | notes |");
    println!("|---|---|---|");
    for (a, b, c) in &rows {
        println!("| {a} | {b} | {c} |");
    }
    for (kind, sweep) in sweeps {
        println!();
        println!("ef sweep, {kind} (k={K}, {QUERIES} queries):");
        println!();
        println!("| ef | recall@{K} | QPS |");
        println!("|---|---|---|");
        for (ef, recall, qps) in sweep {
            println!("| {ef} | {recall:.3} | {} |", fmt_rate(qps));
        }
    }
}
