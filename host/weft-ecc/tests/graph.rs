//! Causal graph and cross-references through the `Ecc` API.

// Helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use weft_ecc::{
    CausalNode, CrossRef, Direction, Distance, Ecc, EccError, EdgeKind, IndexConfig, Key,
    Namespace, NodeRef, RefKind, UniversalNodeId, VectorEntry, Visit,
};

fn ns() -> Namespace {
    Namespace::new("agent-1/facts").unwrap()
}

fn k(s: &str) -> Key {
    Key::str(s).unwrap()
}

fn node(s: &str) -> CausalNode {
    CausalNode {
        key: k(s),
        label: s.to_uppercase(),
        attrs: BTreeMap::new(),
    }
}

/// rain -> wet -> slippery -> fall, rain -> traffic, wet -> fall (shortcut)
fn weather() -> Ecc {
    let mut ecc = Ecc::with_system_clock();
    let ns = ns();
    for n in ["rain", "wet", "slippery", "fall", "traffic", "lonely"] {
        assert!(ecc.add_node(&ns, node(n)).unwrap());
    }
    for (a, b) in [
        ("rain", "wet"),
        ("wet", "slippery"),
        ("slippery", "fall"),
        ("rain", "traffic"),
        ("wet", "fall"),
    ] {
        assert!(ecc.link(&ns, k(a), k(b), EdgeKind::Causes, 0.8).unwrap());
    }
    ecc
}

#[test]
fn cycle_is_refused_with_its_path() {
    let mut ecc = weather();
    let before = ecc.edges(&ns());
    let e = ecc
        .link(&ns(), k("fall"), k("rain"), EdgeKind::Causes, 1.0)
        .unwrap_err();
    match &e {
        EccError::Cycle { path, .. } => {
            // Shortest way back from rain to fall is rain -> wet -> fall.
            assert_eq!(path, &[k("fall"), k("rain"), k("wet"), k("fall")]);
        }
        other => panic!("expected a cycle, got {other}"),
    }
    assert_eq!(
        e.to_string(),
        "link refused in agent-1/facts: it would close the cycle \"fall\" -> \"rain\" -> \"wet\" -> \"fall\""
    );
    assert_eq!(ecc.edges(&ns()), before, "a refused link changes nothing");
    // Another kind between the same nodes is refused too: kinds do not make cycles legal.
    assert!(matches!(
        ecc.link(&ns(), k("slippery"), k("wet"), EdgeKind::Precedes, 1.0),
        Err(EccError::Cycle { .. })
    ));
    // Against the insertion order but acyclic: accepted (the order is repaired).
    ecc.add_node(&ns(), node("cloud")).unwrap();
    ecc.link(&ns(), k("cloud"), k("rain"), EdgeKind::Causes, 1.0)
        .unwrap();
    assert_eq!(
        ecc.graph(&ns())
            .unwrap()
            .find_path(&k("cloud"), &k("fall"), 10)
            .unwrap(),
        Some(vec![k("cloud"), k("rain"), k("wet"), k("fall")])
    );
}

#[test]
fn forward_and_reverse_edges_and_updates() {
    let mut ecc = weather();
    let g = ecc.graph(&ns()).unwrap();
    let out: Vec<Key> = g
        .edges_from(&k("wet"))
        .unwrap()
        .into_iter()
        .map(|e| e.to)
        .collect();
    assert_eq!(out, [k("fall"), k("slippery")]);
    let inc: Vec<Key> = g
        .edges_to(&k("fall"))
        .unwrap()
        .into_iter()
        .map(|e| e.from)
        .collect();
    assert_eq!(inc, [k("slippery"), k("wet")]);
    // Same (from, to, kind) updates the weight; another kind is a second edge.
    assert!(!ecc
        .link(&ns(), k("rain"), k("wet"), EdgeKind::Causes, 0.3)
        .unwrap());
    assert!(ecc
        .link(&ns(), k("rain"), k("wet"), EdgeKind::Precedes, 1.0)
        .unwrap());
    let e = ecc.graph(&ns()).unwrap().edges_from(&k("rain")).unwrap();
    assert_eq!(e.len(), 3);
    assert_eq!(
        (e[0].to.clone(), e[0].kind.clone(), e[0].weight),
        (k("traffic"), EdgeKind::Causes, 0.8)
    );
    assert_eq!((e[1].kind.clone(), e[1].weight), (EdgeKind::Causes, 0.3));
    assert_eq!(e[2].kind, EdgeKind::Precedes);
    // Unlink one kind, then all.
    assert_eq!(
        ecc.unlink(&ns(), k("rain"), k("wet"), Some(EdgeKind::Precedes))
            .unwrap(),
        1
    );
    assert!(matches!(
        ecc.unlink(&ns(), k("rain"), k("wet"), Some(EdgeKind::Precedes)),
        Err(EccError::EdgeNotFound { .. })
    ));
    assert_eq!(ecc.unlink(&ns(), k("rain"), k("wet"), None).unwrap(), 1);
    // Removing a node removes its edges.
    // wet -> slippery and slippery -> fall.
    assert_eq!(ecc.remove_node(&ns(), k("slippery")).unwrap(), 2);
    assert!(
        ecc.graph(&ns())
            .unwrap()
            .edges_to(&k("fall"))
            .unwrap()
            .len()
            == 1
    );
    assert!(matches!(
        ecc.link(&ns(), k("nope"), k("fall"), EdgeKind::Causes, 1.0),
        Err(EccError::NodeNotFound { .. })
    ));
    assert!(matches!(
        ecc.link(&ns(), k("wet"), k("fall"), EdgeKind::Causes, f32::NAN),
        Err(EccError::InvalidParameter { .. })
    ));
}

#[test]
fn traversal_respects_depth() {
    let ecc = weather();
    let g = ecc.graph(&ns()).unwrap();
    let at = |d: usize| -> Vec<Visit> { g.traverse(&k("rain"), Direction::Forward, d).unwrap() };
    assert_eq!(
        at(0),
        vec![Visit {
            key: k("rain"),
            depth: 0
        }]
    );
    let one: Vec<(Key, usize)> = at(1).into_iter().map(|v| (v.key, v.depth)).collect();
    assert_eq!(one, [(k("rain"), 0), (k("traffic"), 1), (k("wet"), 1)]);
    let two: Vec<(Key, usize)> = at(2).into_iter().map(|v| (v.key, v.depth)).collect();
    // fall is reached at depth 2 through the shortcut, not 3 through slippery.
    assert_eq!(
        two,
        [
            (k("rain"), 0),
            (k("traffic"), 1),
            (k("wet"), 1),
            (k("fall"), 2),
            (k("slippery"), 2)
        ]
    );
    assert_eq!(at(10).len(), 5, "lonely is not reachable");
    let back: Vec<(Key, usize)> = g
        .traverse(&k("fall"), Direction::Reverse, 1)
        .unwrap()
        .into_iter()
        .map(|v| (v.key, v.depth))
        .collect();
    assert_eq!(back, [(k("fall"), 0), (k("slippery"), 1), (k("wet"), 1)]);
    // Paths: shortest, bounded by depth, none against the edges.
    assert_eq!(
        g.find_path(&k("rain"), &k("fall"), 5).unwrap(),
        Some(vec![k("rain"), k("wet"), k("fall")])
    );
    assert_eq!(g.find_path(&k("rain"), &k("fall"), 1).unwrap(), None);
    assert_eq!(g.find_path(&k("fall"), &k("rain"), 5).unwrap(), None);
    assert_eq!(g.find_path(&k("rain"), &k("lonely"), 5).unwrap(), None);
}

#[test]
fn dot_export() {
    let mut ecc = Ecc::with_system_clock();
    ecc.add_node(&ns(), node("a")).unwrap();
    ecc.add_node(
        &ns(),
        CausalNode {
            key: Key::Num(7),
            label: String::new(),
            attrs: BTreeMap::new(),
        },
    )
    .unwrap();
    ecc.link(&ns(), k("a"), Key::Num(7), EdgeKind::Enables, 0.25)
        .unwrap();
    assert_eq!(
        ecc.graph(&ns()).unwrap().to_dot(),
        "digraph \"agent-1/facts\" {\n  \"n7\" [label=\"7\"];\n  \"sa\" [label=\"A\"];\n  \"sa\" -> \"n7\" [label=\"enables 0.25\", weight=0.25];\n}\n"
    );
}

#[test]
fn crossrefs_forward_reverse_by_type_and_cascade() {
    let mut ecc = weather();
    let ns = ns();
    ecc.create_index(&ns, IndexConfig::new(2, Distance::L2))
        .unwrap();
    ecc.insert(
        &ns,
        vec![
            VectorEntry::new(k("emb-rain"), vec![1.0, 0.0]),
            VectorEntry::new(5, vec![0.0, 1.0]),
        ],
    )
    .unwrap();
    let refs = [
        CrossRef {
            from: NodeRef::Vector(k("emb-rain")),
            to: NodeRef::Causal(k("rain")),
            kind: RefKind::EmbeddingOf,
        },
        CrossRef {
            from: NodeRef::Causal(k("rain")),
            to: NodeRef::ChainEvent(42),
            kind: RefKind::RecordedIn,
        },
        CrossRef {
            from: NodeRef::Causal(k("wet")),
            to: NodeRef::ChainEvent(42),
            kind: RefKind::RecordedIn,
        },
        CrossRef {
            from: NodeRef::TreePath("/apps/weather".into()),
            to: NodeRef::Causal(k("rain")),
            kind: RefKind::Describes,
        },
        CrossRef {
            from: NodeRef::Vector(Key::Num(5)),
            to: NodeRef::Causal(k("wet")),
            kind: RefKind::Custom("similar:to".into()),
        },
    ];
    for r in &refs {
        assert!(ecc.add_ref(&ns, r.clone()).unwrap());
    }
    assert!(!ecc.add_ref(&ns, refs[0].clone()).unwrap(), "duplicate");
    let store = ecc.crossrefs(&ns).unwrap();
    assert_eq!(store.len(), 5);
    assert_eq!(
        store.forward(&NodeRef::Causal(k("rain"))),
        vec![refs[1].clone()]
    );
    let mut rev = store.reverse(&NodeRef::Causal(k("rain")));
    rev.sort();
    let mut expect = vec![refs[0].clone(), refs[3].clone()];
    expect.sort();
    assert_eq!(rev, expect);
    let mut recorded = store.by_kind(&RefKind::RecordedIn);
    recorded.sort();
    assert_eq!(recorded, vec![refs[1].clone(), refs[2].clone()]);
    assert_eq!(store.reverse(&NodeRef::ChainEvent(42)).len(), 2);
    // Lookup by id gives the same answer, and ids resolve back to nodes.
    let id = UniversalNodeId::of(&ns, &NodeRef::Causal(k("rain")));
    assert_eq!(
        store.forward_id(&id),
        store.forward(&NodeRef::Causal(k("rain")))
    );
    assert_eq!(store.resolve(&id), Some(&NodeRef::Causal(k("rain"))));

    // Endpoints in this namespace must exist.
    let e = ecc
        .add_ref(
            &ns,
            CrossRef {
                from: NodeRef::Causal(k("ghost")),
                to: NodeRef::ChainEvent(1),
                kind: RefKind::Mentions,
            },
        )
        .unwrap_err();
    assert!(matches!(e, EccError::RefEndpointMissing { .. }), "{e}");
    assert!(matches!(
        ecc.add_ref(
            &ns,
            CrossRef {
                from: NodeRef::TreePath("apps".into()),
                to: NodeRef::ChainEvent(1),
                kind: RefKind::Mentions
            }
        ),
        Err(EccError::InvalidParameter { .. })
    ));

    // Removing a node or deleting a vector removes the references that name it.
    ecc.remove_node(&ns, k("rain")).unwrap();
    let store = ecc.crossrefs(&ns).unwrap();
    assert_eq!(store.len(), 2);
    assert!(store.reverse(&NodeRef::Causal(k("rain"))).is_empty());
    ecc.delete(&ns, vec![Key::Num(5)]).unwrap();
    assert_eq!(ecc.crossrefs(&ns).unwrap().all(), vec![refs[2].clone()]);
    ecc.remove_ref(&ns, refs[2].clone()).unwrap();
    assert!(matches!(
        ecc.remove_ref(&ns, refs[2].clone()),
        Err(EccError::RefNotFound { .. })
    ));
    assert!(ecc.crossrefs(&ns).unwrap().is_empty());
}
