//! Unit tests of the index: validation, replacement, capacity, compaction, the flat
//! search copy and the graph dump.

use super::*;

fn ns() -> Namespace {
    Namespace::new("t").unwrap()
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

/// Deterministic pseudo-random vectors (SplitMix64).
fn data(seed: u64, n: usize, d: usize) -> Vec<Vec<f32>> {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    (0..n).map(|_| (0..d).map(|_| next()).collect()).collect()
}

fn filled(distance: Distance, n: usize, batch: usize) -> (VectorIndex, Vec<Vec<f32>>) {
    let mut cfg = IndexConfig::new(8, distance);
    cfg.compact_fraction = 1.0;
    let mut idx = VectorIndex::new(ns(), cfg).unwrap();
    let vs = data(7, n, 8);
    for (c, chunk) in vs.chunks(batch).enumerate() {
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| VectorEntry::new((c * batch + i) as u64, v.clone()))
            .collect();
        idx.insert(&entries).unwrap();
    }
    (idx, vs)
}

#[test]
fn flat_copy_lags_by_at_most_the_stale_limit_and_is_rebuilt() {
    // One at a time: the copy is rebuilt whenever more than the limit sit outside it.
    let (idx, _) = filled(Distance::L2, 3000, 1);
    let covered = idx.graph_covered();
    assert!(covered > 0 && covered <= 3000);
    assert!(3000 - covered <= stale_limit(covered, 8), "{covered}");
    // One batch: rebuilt at the end of it.
    let (idx, _) = filled(Distance::L2, 3000, 3000);
    assert_eq!(idx.graph_covered(), 3000);
    // A small index never needs the graph: everything is scanned exactly.
    let (idx, _) = filled(Distance::L2, 60, 1);
    assert_eq!(idx.graph_covered(), 0);
}

#[test]
fn graph_and_scan_together_find_the_exact_answers_at_large_ef() {
    for distance in [Distance::L2, Distance::Cosine, Distance::Dot] {
        // 3000 one at a time leaves a stale tail: both parts of the search are exercised.
        let (mut idx, _) = filled(distance, 3000, 1);
        assert!(idx.graph_covered() < 3000);
        idx.delete(&(0..300u64).map(Key::Num).collect::<Vec<_>>())
            .unwrap();
        for q in data(99, 20, 8) {
            let got = idx.search(&q, 10, 400).unwrap();
            let want = idx.brute_force(&q, 10).unwrap();
            let got_keys: Vec<_> = got.iter().map(|h| &h.key).collect();
            let want_keys: Vec<_> = want.iter().map(|h| &h.key).collect();
            assert_eq!(got_keys, want_keys, "{distance}");
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g.distance - w.distance).abs() < 1e-4,
                    "{distance}: {g:?} {w:?}"
                );
                assert!(
                    !matches!(g.key, Key::Num(n) if n < 300),
                    "tombstone returned"
                );
            }
        }
    }
}

#[test]
fn a_dumped_graph_loads_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    for (i, distance) in [Distance::L2, Distance::Cosine, Distance::Dot]
        .into_iter()
        .enumerate()
    {
        let (mut idx, _) = filled(distance, 1500, 500);
        idx.delete(&[Key::Num(3), Key::Num(700)]).unwrap();
        let base = format!("t{i}");
        let snap = idx.save(dir.path(), &base).unwrap();
        let files = snap.graph.clone().unwrap();
        let back = VectorIndex::restore(ns(), snap.clone(), Some(dir.path())).unwrap();
        assert_eq!(back.stats(), idx.stats());
        assert_eq!(back.graph_covered(), 1500);
        assert_eq!(
            back.keys().collect::<Vec<_>>(),
            idx.keys().collect::<Vec<_>>()
        );
        for q in data(5, 10, 8) {
            assert_eq!(
                back.search(&q, 10, 32).unwrap(),
                idx.search(&q, 10, 32).unwrap()
            );
        }
        // It keeps accepting inserts.
        let mut back = back;
        back.insert(&[VectorEntry::new(5000, vec![0.5; 8])])
            .unwrap();
        assert!(back.contains(&Key::Num(5000)));
        let got = back.search(&[0.5; 8], 3, 200).unwrap();
        let want = back.brute_force(&[0.5; 8], 3).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.key, w.key);
            assert!((g.distance - w.distance).abs() < 1e-5);
        }

        // A damaged dump is refused before hnsw_rs reads it, naming the file.
        let [graph, data_file] = files.paths(dir.path());
        let good = std::fs::read(&graph).unwrap();
        let mut bad = good.clone();
        let at = bad.len() / 2;
        bad[at] ^= 1;
        std::fs::write(&graph, &bad).unwrap();
        let e = VectorIndex::restore(ns(), snap.clone(), Some(dir.path())).unwrap_err();
        assert!(
            e.to_string().contains("checksum")
                && e.to_string().contains(&graph.display().to_string()),
            "{e}"
        );
        std::fs::write(&graph, &good[..good.len() - 1]).unwrap();
        let e = VectorIndex::restore(ns(), snap.clone(), Some(dir.path())).unwrap_err();
        assert!(e.to_string().contains("torn"), "{e}");
        std::fs::write(&graph, &good).unwrap();
        std::fs::remove_file(&data_file).unwrap();
        let e = VectorIndex::restore(ns(), snap, Some(dir.path())).unwrap_err();
        assert!(
            e.to_string().contains(&data_file.display().to_string()),
            "{e}"
        );
    }
}
