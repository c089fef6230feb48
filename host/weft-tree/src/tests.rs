use super::*;
use serde_json::json;
use weft_chain::{ChainConfig, SigningKey};

fn setup() -> (tempfile::TempDir, Arc<ChainManager>, TreeManager) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ChainConfig {
        signing_key: Some(SigningKey::from_bytes(&[4; 32])),
        ..ChainConfig::default()
    };
    let (chain, _) = ChainManager::open(dir.path(), cfg).unwrap();
    let chain = Arc::new(chain);
    let tree = TreeManager::new(chain.clone());
    (dir, chain, tree)
}

fn meta(pairs: &[(&str, Value)]) -> Metadata {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[test]
fn bootstrap_creates_namespaces_in_one_chain_event() {
    let (_d, chain, tree) = setup();
    let created = tree.bootstrap().unwrap();
    assert_eq!(created.len(), NAMESPACES.len());
    for ns in NAMESPACES {
        let n = tree.get(ns).unwrap();
        assert_eq!(n.chain_seq, 1);
    }
    let ev = chain.get(1).unwrap();
    assert_eq!(ev.kind, "tree.bootstrap");
    assert_eq!(ev.source, "tree");
    assert_eq!(
        ev.payload_json().unwrap()["created"]
            .as_array()
            .unwrap()
            .len(),
        NAMESPACES.len()
    );
    // Idempotent: nothing new, no chain event.
    assert!(tree.bootstrap().unwrap().is_empty());
    assert_eq!(chain.len(), 2);
    assert_eq!(tree.get("/kernel").unwrap().children, 2);
    assert_eq!(tree.get("/").unwrap().children, 4);
}

#[test]
fn insert_records_chain_event_and_seq() {
    let (_d, chain, tree) = setup();
    tree.bootstrap().unwrap();
    let seq = tree
        .insert("/kernel/agents/a1", meta(&[("pid", json!(7))]))
        .unwrap();
    let ev = chain.get(seq).unwrap();
    assert_eq!(ev.kind, "tree.insert");
    let p = ev.payload_json().unwrap();
    assert_eq!(p["path"], "/kernel/agents/a1");
    assert_eq!(p["metadata"]["pid"], 7);
    let n = tree.get("/kernel/agents/a1").unwrap();
    assert_eq!((n.created_seq, n.chain_seq), (seq, seq));
    assert_eq!(n.name, "a1");
    assert_eq!(n.metadata["pid"], json!(7));
    let m = tree.mutations();
    let last = m.last().unwrap();
    assert_eq!(last.op, MutationOp::Insert);
    assert_eq!(last.chain_seq, seq);
    assert_eq!(last.seq, m.len() as u64 - 1);
}

#[test]
fn insert_validates() {
    let (_d, chain, tree) = setup();
    tree.bootstrap().unwrap();
    let len = chain.len();
    assert!(matches!(
        tree.insert("kernel/x", Metadata::new()),
        Err(TreeError::InvalidPath { .. })
    ));
    assert!(matches!(
        tree.insert("/kernel/../x", Metadata::new()),
        Err(TreeError::InvalidPath { .. })
    ));
    assert!(matches!(
        tree.insert("/nope/x", Metadata::new()),
        Err(TreeError::NotFound(p)) if p == "/nope"
    ));
    assert!(matches!(
        tree.insert("/kernel", Metadata::new()),
        Err(TreeError::Exists(_))
    ));
    assert!(matches!(
        tree.insert("/", Metadata::new()),
        Err(TreeError::Exists(_))
    ));
    // Refused operations leave no trace on the chain or in the log.
    assert_eq!(chain.len(), len);
    assert_eq!(tree.stats().mutations, 1);
}

#[test]
fn update_meta_changes_chain_seq_not_created_seq() {
    let (_d, chain, tree) = setup();
    tree.bootstrap().unwrap();
    let created = tree.insert("/apps/web", Metadata::new()).unwrap();
    let seq = tree
        .update_meta("/apps/web", "state", json!("running"))
        .unwrap();
    assert!(seq > created);
    let n = tree.get("/apps/web").unwrap();
    assert_eq!((n.created_seq, n.chain_seq), (created, seq));
    assert_eq!(n.metadata["state"], "running");
    let ev = chain.get(seq).unwrap();
    assert_eq!(ev.kind, "tree.update");
    assert_eq!(ev.payload_json().unwrap()["key"], "state");
    assert_eq!(
        tree.mutations().last().unwrap().key.as_deref(),
        Some("state")
    );
    assert!(matches!(
        tree.update_meta("/apps/none", "k", json!(1)),
        Err(TreeError::NotFound(_))
    ));
}

#[test]
fn remove_policies() {
    let (_d, chain, tree) = setup();
    tree.bootstrap().unwrap();
    tree.insert("/apps/a", Metadata::new()).unwrap();
    tree.insert("/apps/a/b", Metadata::new()).unwrap();
    tree.insert("/apps/a/b/c", Metadata::new()).unwrap();
    assert!(matches!(
        tree.remove("/apps/a"),
        Err(TreeError::HasChildren { children: 1, .. })
    ));
    assert!(matches!(tree.remove("/apps"), Err(TreeError::Protected(_))));
    assert!(matches!(
        tree.remove_recursive("/kernel"),
        Err(TreeError::Protected(_))
    ));
    assert!(matches!(tree.remove("/"), Err(TreeError::Protected(_))));
    assert!(matches!(
        tree.remove("/apps/zz"),
        Err(TreeError::NotFound(_))
    ));
    let seq = tree.remove_recursive("/apps/a").unwrap();
    let ev = chain.get(seq).unwrap();
    assert_eq!(ev.kind, "tree.remove");
    let p = ev.payload_json().unwrap();
    assert_eq!(p["recursive"], true);
    assert_eq!(p["removed"], json!(["/apps/a/b/c", "/apps/a/b", "/apps/a"]));
    assert!(tree.get("/apps/a/b").is_none());
    assert_eq!(tree.get("/apps").unwrap().children, 0);
    tree.insert("/apps/leaf", Metadata::new()).unwrap();
    tree.remove("/apps/leaf").unwrap();
    assert!(tree.get("/apps/leaf").is_none());
}

#[test]
fn list_is_sorted_subtree_and_stats() {
    let (_d, _chain, tree) = setup();
    tree.bootstrap().unwrap();
    tree.insert("/network/peers/b", Metadata::new()).unwrap();
    tree.insert("/network/peers/a", Metadata::new()).unwrap();
    tree.insert("/network/peers/a/x", Metadata::new()).unwrap();
    let paths: Vec<String> = tree
        .list("/network")
        .unwrap()
        .into_iter()
        .map(|n| n.path)
        .collect();
    assert_eq!(
        paths,
        vec![
            "/network",
            "/network/peers",
            "/network/peers/a",
            "/network/peers/a/x",
            "/network/peers/b"
        ]
    );
    assert_eq!(tree.list("/").unwrap().len(), tree.stats().nodes);
    assert!(matches!(tree.list("/nope"), Err(TreeError::NotFound(_))));
    let s = tree.stats();
    assert_eq!(s.nodes, 1 + NAMESPACES.len() + 3);
    assert_eq!(s.depth, 4);
    assert_eq!(s.mutations, 4);
}

#[test]
fn restore_replays_the_chain() {
    let (dir, chain, tree) = setup();
    tree.bootstrap().unwrap();
    tree.insert(
        "/apps/a",
        meta(&[("v", json!(1.5)), ("tags", json!(["x"]))]),
    )
    .unwrap();
    tree.insert("/apps/a/b", Metadata::new()).unwrap();
    tree.update_meta("/apps/a", "v", json!(2)).unwrap();
    tree.insert("/apps/gone", Metadata::new()).unwrap();
    tree.remove("/apps/gone").unwrap();
    let before = tree.list("/").unwrap();
    let log = tree.mutations();
    drop(tree);
    chain.shutdown().unwrap();
    drop(chain);
    let cfg = ChainConfig {
        signing_key: Some(SigningKey::from_bytes(&[4; 32])),
        ..ChainConfig::default()
    };
    let (chain, _) = ChainManager::open(dir.path(), cfg).unwrap();
    let restored = TreeManager::restore(Arc::new(chain)).unwrap();
    assert_eq!(restored.list("/").unwrap(), before);
    assert_eq!(restored.mutations(), log);
    assert!(restored.bootstrap().unwrap().is_empty());
}

#[test]
fn durable_mode_syncs_each_mutation() {
    let (_d, chain, _) = setup();
    let tree = TreeManager::with_durability(chain.clone(), Durability::Durable);
    tree.bootstrap().unwrap();
    let seq = tree.insert("/apps/d", Metadata::new()).unwrap();
    assert!(chain.status().durable_len > seq);
}

#[test]
fn concurrent_inserts_keep_tree_and_chain_in_step() {
    let (_d, chain, tree) = setup();
    tree.bootstrap().unwrap();
    let tree = Arc::new(tree);
    let hs: Vec<_> = (0..4)
        .map(|t| {
            let tree = tree.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    tree.insert(&format!("/apps/t{t}-{i}"), Metadata::new())
                        .unwrap();
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let log = tree.mutations();
    assert_eq!(log.len(), 201);
    // Mutation log order equals chain order.
    assert!(log.windows(2).all(|w| w[0].chain_seq < w[1].chain_seq));
    for m in &log[1..] {
        assert_eq!(
            chain.get(m.chain_seq).unwrap().payload_json().unwrap()["path"],
            m.path
        );
    }
}

#[test]
fn upsert_inserts_then_records_only_what_changed() {
    let (_d, chain, tree) = setup();
    tree.bootstrap().unwrap();
    let m = meta(&[("a", json!(1)), ("b", json!("x"))]);
    assert_eq!(tree.upsert("/apps/h", m.clone()).unwrap(), 1);
    let len = chain.len();
    assert_eq!(tree.upsert("/apps/h", m).unwrap(), 0);
    assert_eq!(chain.len(), len, "no change, no event");
    let m = meta(&[("a", json!(2)), ("b", json!("x"))]);
    assert_eq!(tree.upsert("/apps/h", m).unwrap(), 1);
    assert_eq!(chain.len(), len + 1);
    assert_eq!(tree.get("/apps/h").unwrap().metadata["a"], json!(2));
}
