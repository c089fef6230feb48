//! ChainedGate end to end: decisions land on the chain with signed receipts
//! that verify offline from the chain file with only the public key.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::json;
use weft_chain::{ChainConfig, ChainManager, Durability, SigningKey, CHAIN_FILE};
use weft_gate::{
    context_hash, verify_chain_receipts, verify_receipts, CapabilityGate, CapabilityRule,
    ChainedGate, DecisionKind, FiredRule, GateBackend, GateDecision, GateRecord, GovernanceBackend,
    GovernanceDecision, GovernanceError, GovernanceGate, GovernanceRequest, GovernanceVerdict,
    Receipt, RuleSeverity,
};

fn key() -> SigningKey {
    SigningKey::from_bytes(&[11; 32])
}

fn open(dir: &std::path::Path) -> Arc<ChainManager> {
    let cfg = ChainConfig {
        chain_id: 3,
        signing_key: Some(key()),
        ..ChainConfig::default()
    };
    Arc::new(ChainManager::open(dir, cfg).unwrap().0)
}

fn capability() -> Arc<CapabilityGate> {
    Arc::new(
        CapabilityGate::with_rules(vec![CapabilityRule {
            agent: "worker".into(),
            allow: vec!["tool.exec.*".into()],
            deny: vec!["tool.exec.rm".into()],
        }])
        .unwrap(),
    )
}

/// Escalates anything with risk above 0.5, denies "forbidden.*".
struct Escalator;
impl GovernanceBackend for Escalator {
    fn evaluate(&self, req: &GovernanceRequest) -> Result<GovernanceVerdict, GovernanceError> {
        if req.action.starts_with("forbidden.") {
            return Ok(GovernanceVerdict {
                decision: GovernanceDecision::Deny,
                fired_rules: vec![FiredRule {
                    id: "no-forbidden".into(),
                    severity: RuleSeverity::Blocking,
                    reason: "forbidden namespace".into(),
                }],
                reason: "forbidden namespace".into(),
            });
        }
        let decision = if req.effect["risk"] > 0.5 {
            GovernanceDecision::EscalateToHuman
        } else {
            GovernanceDecision::Permit
        };
        Ok(GovernanceVerdict {
            decision,
            fired_rules: vec![],
            reason: "risk review".into(),
        })
    }
}

#[test]
fn every_decision_is_recorded_with_the_right_kind() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open(dir.path());
    let gate = ChainedGate::new(capability(), chain.clone(), key());
    let ctx = json!({"cmd": "ls", "args": ["-l"]});

    let (d, ev) = gate.check_recorded("worker", "tool.exec.ls", &ctx).unwrap();
    assert!(d.is_permit());
    assert_eq!(ev.kind, "gate.permit");
    assert_eq!(ev.source, "gate");
    let GateDecision::Permit { token } = d else {
        unreachable!()
    };
    let r = token.receipt.expect("chained permit carries a receipt");
    assert_eq!(r.chain_seq, Some(ev.seq));
    assert_eq!(r.context_hash, context_hash(&ctx));
    r.verify(&key().verifying_key()).unwrap();

    let d = gate.check("worker", "tool.exec.rm", &ctx);
    let GateDecision::Deny { reason, receipt } = d else {
        panic!()
    };
    assert!(reason.contains("tool.exec.rm"));
    let ev = chain.get(receipt.chain_seq.unwrap()).unwrap();
    assert_eq!(ev.kind, "gate.deny");
    receipt.verify(&key().verifying_key()).unwrap();
    let rec: GateRecord = ev.decode_payload().unwrap();
    assert_eq!(rec.reason, reason);
    assert_eq!(rec.context, r#"{"args":["-l"],"cmd":"ls"}"#);

    let gov = ChainedGate::new(
        Arc::new(GovernanceGate::new(Arc::new(Escalator), "prod")),
        chain.clone(),
        key(),
    );
    let d = gov.check("worker", "deploy", &json!({"effect": {"risk": 0.9}}));
    assert_eq!(d.kind(), DecisionKind::Defer);
    assert_eq!(chain.tail(1)[0].kind, "gate.defer");
    let d = gov.check("worker", "forbidden.x", &json!({}));
    assert_eq!(d.kind(), DecisionKind::Deny);
    assert_eq!(chain.tail(1)[0].kind, "gate.deny");
    let kinds: Vec<String> = chain.range(1..).iter().map(|e| e.kind.clone()).collect();
    assert_eq!(
        kinds,
        ["gate.permit", "gate.deny", "gate.defer", "gate.deny"]
    );
}

#[test]
fn receipts_verify_offline_from_the_chain_file() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open(dir.path());
    let gate =
        ChainedGate::new(capability(), chain.clone(), key()).with_durability(Durability::Durable);
    for (agent, action) in [
        ("worker", "tool.exec.ls"),
        ("worker", "tool.exec.rm"),
        ("other", "ipc.send"),
    ] {
        gate.check(agent, action, &json!({"n": 1}));
    }
    chain.append("noise", "other.kind", &1).unwrap();
    chain.shutdown().unwrap();
    drop(gate);
    drop(chain);

    let path = dir.path().join(CHAIN_FILE);
    let pk = key().verifying_key();
    let report = verify_chain_receipts(&path, &pk).unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.receipts, 3);

    let other = SigningKey::from_bytes(&[12; 32]).verifying_key();
    assert!(
        verify_chain_receipts(&path, &other).is_err(),
        "wrong chain key"
    );

    // Rebuild each receipt from the parsed file and check it by hand.
    let file = weft_chain::read_file(&path, &pk).unwrap();
    let gate_events: Vec<_> = file
        .events
        .iter()
        .filter(|e| e.kind.starts_with("gate."))
        .collect();
    for ev in &gate_events {
        let r = Receipt::from_event(ev).unwrap();
        assert_eq!(r.chain_seq, Some(ev.seq));
        r.verify(&pk).unwrap();
    }
    // A receipt signed by another key fails even on an intact chain.
    assert!(!verify_receipts(gate_events.iter().copied(), &other).ok);
}

#[test]
fn tampered_receipts_fail() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open(dir.path());
    let gate = ChainedGate::new(capability(), chain.clone(), key());
    let (d, ev) = gate
        .check_recorded("worker", "tool.exec.ls", &json!({"a": 1}))
        .unwrap();
    let GateDecision::Permit { token } = d else {
        panic!()
    };
    let good = token.receipt.unwrap();
    let pk = key().verifying_key();
    good.verify(&pk).unwrap();

    let mut r = good.clone();
    r.agent = "admin".into();
    assert!(r.verify(&pk).is_err());
    let mut r = good.clone();
    r.action = "tool.exec.rm".into();
    assert!(r.verify(&pk).is_err());
    let mut r = good.clone();
    r.decision = DecisionKind::Deny;
    assert!(r.verify(&pk).is_err());
    let mut r = good.clone();
    r.chain_seq = Some(ev.seq + 1);
    assert!(r.verify(&pk).is_err(), "receipt bound to its seq");
    let mut r = good.clone();
    r.context_hash[0] ^= 1;
    assert!(r.verify(&pk).is_err());
    let mut r = good.clone();
    r.chain_id += 1;
    assert!(r.verify(&pk).is_err());
    let mut r = good.clone();
    if let Some(s) = r.signature.as_mut() {
        s[10] ^= 1;
    }
    assert!(r.verify(&pk).is_err());
    let mut r = good.clone();
    r.signature = None;
    assert!(r.verify(&pk).is_err());

    // A record whose context no longer matches its hash is rejected, as is
    // one moved to another seq.
    let mut rec: GateRecord = ev.decode_payload().unwrap();
    rec.context = r#"{"a":2}"#.into();
    let mut forged = (*ev).clone();
    forged.payload = weft_chain::to_cbor(&rec).unwrap();
    assert!(Receipt::from_event(&forged).is_err());
    let mut moved = (*ev).clone();
    moved.seq += 1;
    assert!(Receipt::from_event(&moved).is_err());
    let mut rekind = (*ev).clone();
    rekind.kind = "gate.deny".into();
    assert!(Receipt::from_event(&rekind).is_err());
}

#[test]
fn closed_chain_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open(dir.path());
    let gate = ChainedGate::new(capability(), chain.clone(), key());
    chain.shutdown().unwrap();
    let d = gate.check("worker", "tool.exec.ls", &json!({}));
    assert_eq!(d.kind(), DecisionKind::Deny);
    assert!(d.reason().contains("fail closed"), "{}", d.reason());
    assert!(gate
        .check_recorded("worker", "tool.exec.ls", &json!({}))
        .is_err());
}

#[test]
fn concurrent_chained_checks_all_verify() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open(dir.path());
    let gate = Arc::new(ChainedGate::new(capability(), chain.clone(), key()));
    let hs: Vec<_> = (0..4)
        .map(|t| {
            let g = gate.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    g.check("worker", "tool.exec.ls", &json!({"t": t, "i": i}));
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let events: Vec<weft_chain::ChainEvent> =
        chain.range(..).iter().map(|e| (**e).clone()).collect();
    let r = verify_receipts(&events, &key().verifying_key());
    assert!(r.ok, "{r:?}");
    assert_eq!(r.receipts, 100);
}

#[test]
fn repeated_decisions_cite_the_signed_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open(dir.path());
    let gate = ChainedGate::new(capability(), chain.clone(), key());
    let ctx = json!({"tool": "ls"});
    let (first, first_ev) = gate.check_recorded("worker", "tool.exec.ls", &ctx).unwrap();
    let (again, again_ev) = gate.check_recorded("worker", "tool.exec.ls", &ctx).unwrap();
    // A different context, agent or verdict is a new statement: signed.
    let (_, other_ctx) = gate
        .check_recorded("worker", "tool.exec.ls", &json!({"tool": "ls", "n": 2}))
        .unwrap();
    let (_, denied) = gate.check_recorded("worker", "tool.exec.rm", &ctx).unwrap();
    let (_, denied_again) = gate.check_recorded("worker", "tool.exec.rm", &ctx).unwrap();

    let rec = |ev: &weft_chain::ChainEvent| ev.decode_payload::<GateRecord>().unwrap();
    assert_eq!(rec(&first_ev).repeats, None);
    assert!(!rec(&first_ev).signature.is_empty());
    assert_eq!(rec(&again_ev).repeats, Some(first_ev.seq));
    assert!(rec(&again_ev).signature.is_empty());
    assert_eq!(rec(&other_ctx).repeats, None);
    assert_eq!(rec(&denied).repeats, None);
    assert_eq!(rec(&denied_again).repeats, Some(denied.seq));
    // Both callers hold the same signed receipt.
    let receipt = |d: GateDecision| match d {
        GateDecision::Permit { token } => token.receipt.unwrap(),
        other => panic!("{other:?}"),
    };
    let (a, b) = (receipt(first), receipt(again));
    assert_eq!(a, b);
    a.verify(&key().verifying_key()).unwrap();

    let events: Vec<_> = (0..chain.len() as u64)
        .map(|s| chain.get(s).unwrap())
        .collect();
    let pk = key().verifying_key();
    let report = verify_receipts(events.iter().map(|e| &**e), &pk);
    assert!(report.ok, "{report:?}");
    assert_eq!((report.receipts, report.cited), (5, 2));

    // A citation is only as good as what it cites.
    let forge = |ev: &weft_chain::ChainEvent, cite: Option<u64>| {
        let mut r = rec(ev);
        r.repeats = cite;
        r.signature = String::new();
        let mut f = ev.clone();
        f.payload = weft_chain::to_cbor(&r).unwrap();
        let mut all: Vec<weft_chain::ChainEvent> = events.iter().map(|e| (**e).clone()).collect();
        all[ev.seq as usize] = f;
        verify_receipts(all.iter(), &pk)
    };
    // ... of a different decision (the deny), of itself, of a later seq,
    // of an event that is no receipt (seq 0 is genesis).
    for cite in [denied.seq, again_ev.seq, denied_again.seq, 0] {
        let r = forge(&again_ev, Some(cite));
        assert!(!r.ok, "citing {cite} passed");
        assert_eq!(r.first_bad.as_ref().unwrap().0, again_ev.seq);
    }
    // Dropping the signature without citing anything fails too.
    assert!(!forge(&first_ev, None).ok);

    // Opting out: every decision signed.
    let strict = ChainedGate::new(capability(), chain.clone(), key()).sign_every_decision(true);
    let (_, s1) = strict
        .check_recorded("worker", "tool.exec.ls", &ctx)
        .unwrap();
    let (_, s2) = strict
        .check_recorded("worker", "tool.exec.ls", &ctx)
        .unwrap();
    assert_eq!((rec(&s1).repeats, rec(&s2).repeats), (None, None));
}
