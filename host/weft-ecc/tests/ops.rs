//! `apply` is all-or-nothing, ops have a stable record shape, namespaces are validated.

// Helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use weft_ecc::{
    Distance, Ecc, EccConfig, EccError, EccOp, EdgeKind, HlcTimestamp, IndexConfig, Key,
    ManualClock, Namespace, OpOutcome, VectorEntry,
};

fn ns(s: &str) -> Namespace {
    Namespace::new(s).unwrap()
}

fn ecc() -> Ecc {
    Ecc::new(Arc::new(ManualClock::new(1_000)), EccConfig::default())
}

#[test]
fn failing_ops_change_nothing() {
    let mut e = ecc();
    // A failing op on an unknown namespace does not create it.
    let r = e.apply(&EccOp::Insert {
        ns: ns("ghost"),
        entries: vec![VectorEntry::new(1, vec![1.0])],
    });
    assert!(matches!(r, Err(EccError::NoIndex { .. })));
    assert_eq!(e.namespaces().count(), 0);

    let n = ns("a");
    e.create_index(&n, IndexConfig::new(2, Distance::L2))
        .unwrap();
    e.insert(
        &n,
        vec![
            VectorEntry::new(1, vec![0.0, 0.0]),
            VectorEntry::new(2, vec![1.0, 1.0]),
        ],
    )
    .unwrap();
    let before = e.index_stats(&n).unwrap();
    // One bad entry in a batch: nothing is inserted.
    let r = e.insert(
        &n,
        vec![
            VectorEntry::new(3, vec![0.5, 0.5]),
            VectorEntry::new(4, vec![f32::INFINITY, 0.0]),
        ],
    );
    assert!(matches!(r, Err(EccError::NonFinite { position: 0, .. })));
    // One missing key in a delete: nothing is deleted.
    let r = e.delete(&n, vec![Key::Num(1), Key::Num(99)]);
    assert!(matches!(r, Err(EccError::VectorNotFound { .. })));
    assert_eq!(e.index_stats(&n).unwrap(), before);
    assert_eq!(e.search(&n, &[0.0, 0.0], 2, 8).unwrap().len(), 2);

    // A receive whose merged clock is below the timestamp is not a valid record.
    let r = e.apply(&EccOp::Receive {
        ns: n.clone(),
        ts: HlcTimestamp::new(500, 0),
        clock: HlcTimestamp::new(400, 0),
        topic: "x".into(),
        source: None,
        payload: vec![],
    });
    assert!(matches!(
        r,
        Err(EccError::InvalidParameter {
            what: "receive",
            ..
        })
    ));
    assert_eq!(e.pending(&n), 0);
    // Bad labels are refused before anything changes.
    assert!(matches!(
        e.emit(&n, "no spaces", None, vec![]),
        Err(EccError::InvalidLabel { .. })
    ));
    assert!(matches!(
        e.link(
            &n,
            Key::Num(1),
            Key::Num(2),
            EdgeKind::Custom(String::new()),
            1.0
        ),
        Err(EccError::InvalidLabel { .. })
    ));
}

#[test]
fn records_have_a_stable_shape() {
    let op = EccOp::Link {
        ns: ns("agent/mem"),
        from: Key::Num(1),
        to: Key::str("b").unwrap(),
        kind: EdgeKind::Causes,
        weight: 0.5,
    };
    assert_eq!(
        serde_json::to_string(&op).unwrap(),
        r#"{"op":"link","ns":"agent/mem","from":{"num":1},"to":{"str":"b"},"kind":"causes","weight":0.5}"#
    );
    assert_eq!(op.name(), "link");
    assert_eq!(op.namespace(), Some(&ns("agent/mem")));
    let out = OpOutcome::Linked { created: true };
    assert_eq!(
        serde_json::to_string(&out).unwrap(),
        r#"{"outcome":"linked","created":true}"#
    );
    // A record naming an invalid namespace does not deserialise.
    let bad = r#"{"op":"drop_index","ns":"../etc"}"#;
    let err = serde_json::from_str::<EccOp>(bad).unwrap_err();
    assert!(err.to_string().contains("invalid namespace"), "{err}");
}

#[test]
fn reads_run_in_parallel_under_a_rwlock() {
    let mut e = ecc();
    let n = ns("shared");
    e.create_index(&n, IndexConfig::new(4, Distance::Cosine))
        .unwrap();
    let entries = (0..200u64)
        .map(|i| {
            VectorEntry::new(
                i,
                vec![(i as f32).sin(), (i as f32).cos(), 1.0, i as f32 / 200.0],
            )
        })
        .collect();
    e.insert(&n, entries).unwrap();
    let shared = Arc::new(std::sync::RwLock::new(e));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let s = Arc::clone(&shared);
            let n = n.clone();
            std::thread::spawn(move || {
                let g = s.read().unwrap();
                let q = [(t as f32).sin(), (t as f32).cos(), 1.0, t as f32 / 200.0];
                g.search(&n, &q, 1, 16).unwrap()[0].key.clone()
            })
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), Key::Num(t as u64));
    }
}

#[test]
fn vectors_are_numbers_in_json_and_bytes_in_cbor() {
    let op = EccOp::Insert {
        ns: ns("a"),
        entries: vec![VectorEntry::new(7, vec![1.5, -2.0])],
    };
    let j = serde_json::to_value(&op).unwrap();
    assert_eq!(j["entries"][0]["vector"], serde_json::json!([1.5, -2.0]));
    let mut cbor = Vec::new();
    ciborium::into_writer(&op, &mut cbor).unwrap();
    let v: ciborium::Value = ciborium::from_reader(&cbor[..]).unwrap();
    let entries = v
        .as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_text() == Some("entries"))
        .map(|(_, v)| v.clone())
        .unwrap();
    let entry = entries.as_array().unwrap()[0].as_map().unwrap().clone();
    let vector = entry
        .iter()
        .find(|(k, _)| k.as_text() == Some("vector"))
        .map(|(_, v)| v.clone())
        .unwrap();
    let mut want = 1.5f32.to_le_bytes().to_vec();
    want.extend_from_slice(&(-2.0f32).to_le_bytes());
    assert_eq!(vector.as_bytes(), Some(&want));
    let back: EccOp = ciborium::from_reader(&cbor[..]).unwrap();
    assert_eq!(back, op);
    // A byte string that is not whole f32s is refused.
    let bad = serde_json::json!({"op": "insert", "ns": "a", "entries": [{"key": {"num": 1}, "vector": "x"}]});
    assert!(serde_json::from_value::<EccOp>(bad).is_err());
}
