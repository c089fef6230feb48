//! Vector index: recall against brute force for each distance, tombstones, compaction.

// Helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use weft_ecc::{Distance, Ecc, EccError, IndexConfig, Key, Namespace, VectorEntry, VectorIndex};

const N: usize = 5_000;
const DIM: usize = 64;
const QUERIES: usize = 100;
const K: usize = 10;

fn data(seed: u64, n: usize) -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect())
        .collect()
}

fn build(distance: Distance) -> (Ecc, Namespace, Vec<Vec<f32>>) {
    let ns = Namespace::new(format!("recall/{distance}")).unwrap();
    let mut ecc = Ecc::with_system_clock();
    let mut cfg = IndexConfig::new(DIM, distance);
    cfg.ef_construction = 100;
    ecc.create_index(&ns, cfg).unwrap();
    let vectors = data(7, N);
    // Batches of 500 exercise the batch path; order is what matters for the graph.
    for (c, chunk) in vectors.chunks(500).enumerate() {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| VectorEntry::new((c * 500 + i) as u64, v.clone()))
            .collect();
        ecc.insert(&ns, entries).unwrap();
    }
    (ecc, ns, vectors)
}

/// Mean recall@K of `search` against the index's own brute force.
fn recall(index: &VectorIndex, queries: &[Vec<f32>], ef: usize) -> f64 {
    let mut hit = 0usize;
    for q in queries {
        let truth: HashSet<Key> = index
            .brute_force(q, K)
            .unwrap()
            .into_iter()
            .map(|h| h.key)
            .collect();
        let got = index.search(q, K, ef).unwrap();
        assert_eq!(got.len(), K);
        hit += got.iter().filter(|h| truth.contains(&h.key)).count();
    }
    hit as f64 / (queries.len() * K) as f64
}

fn check_recall(distance: Distance) {
    let (ecc, ns, _) = build(distance);
    let index = ecc.index(&ns).unwrap();
    let queries = data(99, QUERIES);
    let r = recall(index, &queries, 128);
    eprintln!("{distance}: recall@{K} = {r:.3} at ef 128");
    assert!(r >= 0.95, "{distance}: recall@{K} = {r:.3}");
    // Distances come back sorted and match the exact distance of the returned key.
    let hits = index.search(&queries[0], K, 128).unwrap();
    for w in hits.windows(2) {
        assert!(w[0].distance <= w[1].distance + 1e-6, "{w:?}");
    }
    for h in &hits {
        let exact = weft_ecc::exact_distance(distance, &queries[0], index.get(&h.key).unwrap());
        assert!(
            (exact - h.distance).abs() < 1e-4,
            "{} vs {exact}",
            h.distance
        );
    }
}

#[test]
fn recall_cosine() {
    check_recall(Distance::Cosine);
}

#[test]
fn recall_l2() {
    check_recall(Distance::L2);
}

#[test]
fn recall_dot() {
    check_recall(Distance::Dot);
}

#[test]
fn tombstoned_ids_are_never_returned() {
    let (mut ecc, ns, vectors) = build(Distance::L2);
    // 20 % deleted: under the 25 % compaction threshold, so the tombstones stay in the graph.
    let dead: Vec<Key> = (0..N as u64).filter(|i| i % 5 == 0).map(Key::Num).collect();
    assert_eq!(ecc.delete(&ns, dead.clone()).unwrap(), dead.len());
    let stats = ecc.index_stats(&ns).unwrap();
    assert_eq!(
        (stats.count, stats.tombstones, stats.compactions),
        (N - dead.len(), dead.len(), 0)
    );
    let dead: HashSet<Key> = dead.into_iter().collect();
    let index = ecc.index(&ns).unwrap();
    // Query with the deleted vectors themselves: each is its own nearest neighbour.
    for i in (0..N).step_by(5).take(200) {
        let hits = index.search(&vectors[i], 50, 64).unwrap();
        assert_eq!(hits.len(), 50);
        for h in &hits {
            assert!(!dead.contains(&h.key), "deleted {} returned", h.key);
        }
    }
    let r = recall(index, &data(99, QUERIES), 128);
    assert!(r >= 0.95, "recall with tombstones {r:.3}");

    // More deletes cross the threshold: the index is rebuilt without them.
    let more: Vec<Key> = (0..N as u64).filter(|i| i % 5 == 1).map(Key::Num).collect();
    ecc.delete(&ns, more.clone()).unwrap();
    let stats = ecc.index_stats(&ns).unwrap();
    assert_eq!(stats.compactions, 1);
    assert_eq!((stats.tombstones, stats.slots), (0, stats.count));
    let index = ecc.index(&ns).unwrap();
    for i in (1..N).step_by(5).take(100) {
        for h in index.search(&vectors[i], 20, 64).unwrap() {
            assert!(!dead.contains(&h.key) && !more.contains(&h.key));
        }
    }
    let r = recall(index, &data(99, QUERIES), 128);
    assert!(r >= 0.95, "recall after compaction {r:.3}");
    // Deleting a deleted key is an error and changes nothing.
    let e = ecc.delete(&ns, vec![Key::Num(0)]).unwrap_err();
    assert!(matches!(e, EccError::VectorNotFound { .. }));
}

#[test]
fn string_keys_and_reinsert() {
    let ns = Namespace::new("strings").unwrap();
    let mut ecc = Ecc::with_system_clock();
    ecc.create_index(&ns, IndexConfig::new(3, Distance::Cosine))
        .unwrap();
    let k = |s: &str| Key::str(s).unwrap();
    ecc.insert(
        &ns,
        vec![
            VectorEntry::new(k("north"), vec![0.0, 1.0, 0.0]),
            VectorEntry::new(k("east"), vec![1.0, 0.0, 0.0]),
            VectorEntry::new(k("up"), vec![0.0, 0.0, 1.0]),
        ],
    )
    .unwrap();
    let hits = ecc.search(&ns, &[0.1, 0.9, 0.0], 1, 16).unwrap();
    assert_eq!(hits[0].key, k("north"));
    // Re-inserting a key moves it.
    let out = ecc
        .insert(
            &ns,
            vec![VectorEntry::new(k("north"), vec![0.0, -1.0, 0.0])],
        )
        .unwrap();
    assert!(out.entries[0].replaced);
    let hits = ecc.search(&ns, &[0.1, 0.9, 0.0], 3, 16).unwrap();
    assert_eq!(hits.last().unwrap().key, k("north"));
    assert_eq!(ecc.index_stats(&ns).unwrap().count, 3);
    // Wrong dimension on search is a typed error.
    let e = ecc.search(&ns, &[1.0, 0.0], 1, 16).unwrap_err();
    assert!(matches!(
        e,
        EccError::DimensionMismatch {
            expected: 3,
            got: 2,
            ..
        }
    ));
    // No index in another namespace.
    let other = Namespace::new("other").unwrap();
    assert!(matches!(
        ecc.search(&other, &[1.0, 0.0, 0.0], 1, 16),
        Err(EccError::NoIndex { .. })
    ));
    assert!(matches!(
        ecc.create_index(&ns, IndexConfig::new(3, Distance::L2)),
        Err(EccError::IndexExists { .. })
    ));
}
