//! Snapshot + replay rebuild the same state; damaged snapshot files are named in errors.

// Helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use weft_ecc::{
    CausalNode, CrossRef, Distance, Ecc, EccConfig, EccError, EccOp, EdgeKind, HlcTimestamp,
    IndexConfig, Key, ManualClock, Namespace, NodeRef, PhysicalClock, RefKind, SnapshotError,
    VectorEntry, SNAPSHOT_FILE,
};

const DIM: usize = 16;

fn ns(s: &str) -> Namespace {
    Namespace::new(s).unwrap()
}

fn vectors(rng: &mut StdRng, from: u64, n: u64) -> Vec<VectorEntry> {
    (from..from + n)
        .map(|i| VectorEntry::new(i, (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect()))
        .collect()
}

fn node(n: u64) -> CausalNode {
    CausalNode {
        key: Key::Num(n),
        label: format!("fact {n}"),
        attrs: BTreeMap::from([("source".to_string(), "test".to_string())]),
    }
}

/// A live system: applies each op and keeps the log, as the kernel would (record, then
/// apply). Failing ops are logged too, like a kernel that records before applying.
struct Live {
    ecc: Ecc,
    clock: ManualClock,
    log: Vec<EccOp>,
    failures: usize,
}

impl Live {
    fn run(&mut self, op: EccOp) {
        self.clock.advance(1_000);
        self.log.push(op.clone());
        if self.ecc.apply(&op).is_err() {
            self.failures += 1;
        }
    }
    fn emit(&mut self, space: &Namespace, topic: &str, payload: &[u8]) {
        let op = self
            .ecc
            .prepare_emit(
                space,
                topic,
                Some(NodeRef::Causal(Key::Num(1))),
                payload.to_vec(),
            )
            .unwrap();
        self.run(op);
    }
}

fn phase_one(live: &mut Live, rng: &mut StdRng) {
    let a = ns("agent-a/memory");
    let b = ns("agent-b/memory");
    let mut cfg = IndexConfig::new(DIM, Distance::L2);
    cfg.compact_fraction = 0.3;
    live.run(EccOp::CreateIndex {
        ns: a.clone(),
        config: cfg,
    });
    live.run(EccOp::CreateIndex {
        ns: b.clone(),
        config: IndexConfig::new(DIM, Distance::Cosine),
    });
    for batch in 0..4 {
        live.run(EccOp::Insert {
            ns: a.clone(),
            entries: vectors(rng, batch * 100, 100),
        });
    }
    live.run(EccOp::Insert {
        ns: b.clone(),
        entries: vectors(rng, 0, 150),
    });
    for n in 0..40 {
        live.run(EccOp::AddNode {
            ns: a.clone(),
            node: node(n),
        });
    }
    for _ in 0..120 {
        let x = rng.gen_range(0..40u64);
        let y = rng.gen_range(0..40u64);
        // Random directions: some of these close cycles and are refused (and logged).
        live.run(EccOp::Link {
            ns: a.clone(),
            from: Key::Num(x),
            to: Key::Num(y),
            kind: if x % 2 == 0 {
                EdgeKind::Causes
            } else {
                EdgeKind::Custom("supports".into())
            },
            weight: rng.gen_range(0.0..1.0),
        });
    }
    for n in 0..20 {
        live.run(EccOp::AddRef {
            ns: a.clone(),
            cross_ref: CrossRef {
                from: NodeRef::Vector(Key::Num(n)),
                to: NodeRef::Causal(Key::Num(n)),
                kind: RefKind::EmbeddingOf,
            },
        });
        live.run(EccOp::AddRef {
            ns: a.clone(),
            cross_ref: CrossRef {
                from: NodeRef::Causal(Key::Num(n)),
                to: NodeRef::ChainEvent(1000 + n),
                kind: RefKind::RecordedIn,
            },
        });
    }
    live.run(EccOp::Delete {
        ns: a.clone(),
        keys: (0..60).map(Key::Num).collect(),
    });
    for i in 0..10u8 {
        live.emit(&a, "memory.updated", &[i]);
    }
    let remote = HlcTimestamp::new(live.clock.now_ns() + 50_000, 3);
    let op = live
        .ecc
        .prepare_receive(&b, remote, "peer.fact", None, b"hi".to_vec())
        .unwrap();
    live.run(op);
}

fn phase_two(live: &mut Live, rng: &mut StdRng) {
    let a = ns("agent-a/memory");
    let b = ns("agent-b/memory");
    live.run(EccOp::Insert {
        ns: a.clone(),
        entries: vectors(rng, 400, 100),
    });
    // Replaces 50 live keys (tombstones), then deletes enough to cross 30 %: compaction.
    live.run(EccOp::Insert {
        ns: a.clone(),
        entries: vectors(rng, 100, 50),
    });
    live.run(EccOp::Delete {
        ns: a.clone(),
        keys: (150..260).map(Key::Num).collect(),
    });
    live.run(EccOp::Delete {
        ns: a.clone(),
        keys: vec![Key::Num(5)],
    }); // already gone: fails
    live.run(EccOp::Insert {
        ns: b.clone(),
        entries: vectors(rng, 150, 80),
    });
    live.run(EccOp::RemoveNode {
        ns: a.clone(),
        key: Key::Num(3),
    });
    live.run(EccOp::Unlink {
        ns: a.clone(),
        from: Key::Num(0),
        to: Key::Num(1),
        kind: None,
    });
    live.run(EccOp::AddNode {
        ns: a.clone(),
        node: node(100),
    });
    live.run(EccOp::Link {
        ns: a.clone(),
        from: Key::Num(100),
        to: Key::Num(7),
        kind: EdgeKind::Enables,
        weight: 0.5,
    });
    live.run(EccOp::AddRef {
        ns: a.clone(),
        cross_ref: CrossRef {
            from: NodeRef::TreePath("/apps/memo".into()),
            to: NodeRef::Causal(Key::Num(100)),
            kind: RefKind::Describes,
        },
    });
    let upto = live.ecc.clock().last();
    live.run(EccOp::Drain {
        ns: a.clone(),
        upto,
    });
    for i in 0..5u8 {
        live.emit(&a, "memory.compacted", &[i]);
    }
    let op = live.ecc.prepare_tick();
    live.run(op);
    live.run(EccOp::DropIndex { ns: b.clone() });
    live.run(EccOp::CreateIndex {
        ns: ns("agent-c/empty"),
        config: IndexConfig::new(4, Distance::Dot),
    });
}

/// Everything observable must match. With `same_graph`, the two index graphs were built
/// by the same inserts from empty, so approximate searches answer identically too.
/// Otherwise (a snapshot loaded: its search copy covers every slot where the live one may
/// lag, and inserts replayed after it draw HNSW layers afresh) the entries are the same and
/// exhaustive searches agree; `vector::tests` checks a dump answers like its original.
fn assert_same(x: &Ecc, y: &Ecc, queries: &[Vec<f32>], same_graph: bool) {
    let xs: Vec<_> = x.namespaces().cloned().collect();
    let ys: Vec<_> = y.namespaces().cloned().collect();
    assert_eq!(xs, ys, "namespaces");
    for n in &xs {
        match (x.index(n), y.index(n)) {
            (Some(ix), Some(iy)) => {
                assert_eq!(ix.stats(), iy.stats(), "{n}: index stats");
                assert_eq!(
                    ix.keys().collect::<Vec<_>>(),
                    iy.keys().collect::<Vec<_>>(),
                    "{n}: keys"
                );
                for k in ix.keys() {
                    assert_eq!(ix.get(k), iy.get(k), "{n}: vector {k}");
                }
                for q in queries {
                    let q = &q[..ix.config().dimension];
                    if same_graph {
                        for (k, ef) in [(10, 32), (50, 100)] {
                            let hx = ix.search(q, k, ef).unwrap();
                            let hy = iy.search(q, k, ef).unwrap();
                            // Same graph, same answers: keys and distances bit for bit.
                            assert_eq!(hx, hy, "{n}: search results");
                        }
                    }
                    let keys = |h: Vec<weft_ecc::SearchHit>| -> Vec<Key> {
                        h.into_iter().map(|h| h.key).collect()
                    };
                    let ex = keys(ix.search(q, 10, 4096).unwrap());
                    assert_eq!(
                        ex,
                        keys(iy.search(q, 10, 4096).unwrap()),
                        "{n}: exhaustive search"
                    );
                    assert_eq!(
                        ex,
                        keys(ix.brute_force(q, 10).unwrap()),
                        "{n}: exact answers"
                    );
                }
            }
            (None, None) => {}
            _ => panic!("{n}: index present on one side only"),
        }
        let (gx, gy) = (x.graph(n).unwrap(), y.graph(n).unwrap());
        assert_eq!(gx.nodes(), gy.nodes(), "{n}: nodes");
        assert_eq!(gx.edges(), gy.edges(), "{n}: edges");
        assert_eq!(gx.to_dot(), gy.to_dot());
        assert_eq!(
            x.crossrefs(n).unwrap().all(),
            y.crossrefs(n).unwrap().all(),
            "{n}: crossrefs"
        );
        let (qx, qy) = (x.impulses(n).unwrap(), y.impulses(n).unwrap());
        assert_eq!(
            qx.peek().collect::<Vec<_>>(),
            qy.peek().collect::<Vec<_>>(),
            "{n}: impulses"
        );
        assert_eq!(qx.next_id(), qy.next_id());
    }
    assert_eq!(x.clock_state(), y.clock_state(), "clock");
}

#[test]
fn snapshot_plus_replay_equals_the_state_built_directly() {
    let mut rng = StdRng::seed_from_u64(11);
    let clock = ManualClock::new(1_700_000_000_000_000_000);
    let mut live = Live {
        ecc: Ecc::new(Arc::new(clock.clone()), EccConfig::default()),
        clock,
        log: Vec::new(),
        failures: 0,
    };
    phase_one(&mut live, &mut rng);
    let dir = tempfile::tempdir().unwrap();
    let marker = live.log.len() as u64;
    let info = live.ecc.save_snapshot(dir.path(), marker).unwrap();
    assert_eq!(info.marker, marker);
    assert!(info.path.ends_with(SNAPSHOT_FILE));
    phase_two(&mut live, &mut rng);
    assert!(
        live.failures >= 2,
        "the log holds refused ops too ({})",
        live.failures
    );
    let queries: Vec<Vec<f32>> = (0..20)
        .map(|_| (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect())
        .collect();

    // The ops travel as records: through CBOR and JSON.
    let records: Vec<Vec<u8>> = live
        .log
        .iter()
        .map(|op| {
            let mut b = Vec::new();
            ciborium::into_writer(op, &mut b).unwrap();
            b
        })
        .collect();
    let decoded: Vec<EccOp> = records
        .iter()
        .map(|b| ciborium::from_reader(&b[..]).unwrap())
        .collect();
    assert_eq!(decoded, live.log);
    let json: Vec<EccOp> = live
        .log
        .iter()
        .map(|op| serde_json::from_str(&serde_json::to_string(op).unwrap()).unwrap())
        .collect();
    assert_eq!(json, live.log);

    // Restart: the wall clock is now an hour behind the saved clock.
    let restart_clock = ManualClock::new(1_700_000_000_000_000_000 - 3_600_000_000_000);
    let (mut restored, loaded) = Ecc::load_snapshot(
        dir.path(),
        Arc::new(restart_clock.clone()),
        EccConfig::default(),
    )
    .unwrap();
    assert_eq!(loaded.marker, marker);
    assert_eq!(loaded.clock, info.clock);
    let report = restored.replay(&decoded[marker as usize..]);
    assert_eq!(
        report.applied + report.failed.len(),
        live.log.len() - marker as usize
    );
    assert!(!report.failed.is_empty(), "the refused delete fails again");
    assert_same(&live.ecc, &restored, &queries, false);

    // The whole log from an empty state gives the same state too.
    let mut fresh = Ecc::new(Arc::new(ManualClock::new(0)), EccConfig::default());
    let report = fresh.replay(&json);
    assert_eq!(report.failed.len(), live.failures);
    assert_same(&live.ecc, &fresh, &queries, true);

    // After the restart the clock continues above everything it issued before.
    let before = restored.clock_state().last;
    let (_, ts) = restored
        .emit(&ns("agent-a/memory"), "after.restart", None, vec![])
        .unwrap();
    assert!(ts > before && ts > info.clock.last);
    assert!(
        ts.wall_ns > restart_clock.now_ns(),
        "held up by the saved clock, not the wall"
    );
}

#[test]
fn snapshot_round_trip_of_the_saved_state() {
    let mut rng = StdRng::seed_from_u64(5);
    let clock = ManualClock::new(1_000_000_000);
    let mut live = Live {
        ecc: Ecc::new(Arc::new(clock.clone()), EccConfig::default()),
        clock,
        log: Vec::new(),
        failures: 0,
    };
    phase_one(&mut live, &mut rng);
    let dir = tempfile::tempdir().unwrap();
    live.ecc.save_snapshot(dir.path(), 7).unwrap();
    // Saving again replaces the snapshot atomically and leaves no temporary and no graph
    // file of the previous generation behind.
    let info = live.ecc.save_snapshot(dir.path(), 8).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // Two indexes: agent-a/memory (0) and agent-b/memory (1), generation 1.
    assert_eq!(
        names,
        [
            "ecc.g1.0.hnsw.data",
            "ecc.g1.0.hnsw.graph",
            "ecc.g1.1.hnsw.data",
            "ecc.g1.1.hnsw.graph",
            SNAPSHOT_FILE
        ]
    );
    assert!(info.graph_bytes > 0);
    let (loaded, i2) = Ecc::load_snapshot(
        dir.path(),
        Arc::new(ManualClock::new(0)),
        EccConfig::default(),
    )
    .unwrap();
    assert_eq!(i2, info);
    let queries: Vec<Vec<f32>> = (0..10)
        .map(|_| (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect())
        .collect();
    assert_same(&live.ecc, &loaded, &queries, false);
}

#[test]
fn damaged_snapshots_give_errors_naming_the_file() {
    let mut ecc = Ecc::new(Arc::new(ManualClock::new(1_000)), EccConfig::default());
    let n = ns("x");
    ecc.create_index(&n, IndexConfig::new(4, Distance::L2))
        .unwrap();
    ecc.insert(&n, vec![VectorEntry::new(1, vec![1.0, 2.0, 3.0, 4.0])])
        .unwrap();
    ecc.add_node(&n, node(1)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let info = ecc.save_snapshot(dir.path(), 0).unwrap();
    let good = std::fs::read(&info.path).unwrap();
    let path_text = info.path.display().to_string();
    let load = || {
        Ecc::load_snapshot(
            dir.path(),
            Arc::new(ManualClock::new(0)),
            EccConfig::default(),
        )
    };

    // Torn: the tail is missing.
    std::fs::write(&info.path, &good[..good.len() - 10]).unwrap();
    let e = load().unwrap_err();
    assert!(
        matches!(e, EccError::Snapshot(SnapshotError::Torn { .. })),
        "{e}"
    );
    assert!(
        e.to_string().contains(&path_text) && e.to_string().contains("torn"),
        "{e}"
    );
    // Torn inside the header.
    std::fs::write(&info.path, &good[..20]).unwrap();
    assert!(matches!(
        load().unwrap_err(),
        EccError::Snapshot(SnapshotError::Torn { .. })
    ));
    // Corrupt: one bit flipped in the body.
    let mut bad = good.clone();
    let last = bad.len() - 3;
    bad[last] ^= 0x10;
    std::fs::write(&info.path, &bad).unwrap();
    let e = load().unwrap_err();
    assert!(
        matches!(e, EccError::Snapshot(SnapshotError::Checksum { .. })),
        "{e}"
    );
    assert!(
        e.to_string().contains(&path_text) && e.to_string().contains("corrupt"),
        "{e}"
    );
    // Not a snapshot at all.
    std::fs::write(
        &info.path,
        b"hello, this is not a snapshot file at all, honestly; not at all",
    )
    .unwrap();
    let e = load().unwrap_err();
    assert!(
        matches!(e, EccError::Snapshot(SnapshotError::BadMagic { .. })),
        "{e}"
    );
    // A future version.
    let mut v2 = good.clone();
    v2[8] = 9;
    std::fs::write(&info.path, &v2).unwrap();
    assert!(matches!(
        load().unwrap_err(),
        EccError::Snapshot(SnapshotError::Version { found: 9, .. })
    ));
    // Missing.
    std::fs::remove_file(&info.path).unwrap();
    let e = load().unwrap_err();
    assert!(
        matches!(e, EccError::Snapshot(SnapshotError::Io { .. })),
        "{e}"
    );
    assert!(e.to_string().contains(&path_text), "{e}");
    // And the good bytes load.
    std::fs::write(&info.path, &good).unwrap();
    assert!(load().is_ok());
}
