//! ChainedGate end to end: decisions land on the chain, and each one's
//! receipt (event, inclusion proof, durable signed head) verifies offline
//! with only the public key.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::json;
use weft_chain::{ChainConfig, ChainManager, Durability, SigningKey};
use weft_gate::{
    context_hash, decision_receipt, verify_chain_receipts, verify_decision_receipt,
    verify_receipts, CapabilityGate, CapabilityRule, ChainedGate, DecisionKind, FiredRule,
    GateBackend, GateDecision, GateRecord, GovernanceBackend, GovernanceDecision, GovernanceError,
    GovernanceGate, GovernanceRequest, GovernanceVerdict, Receipt, RuleSeverity,
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
    let gate = ChainedGate::new(capability(), chain.clone());
    let ctx = json!({"cmd": "ls", "args": ["-l"]});

    let (d, ev) = gate.check_recorded("worker", "tool.exec.ls", &ctx).unwrap();
    assert!(d.is_permit());
    assert_eq!(ev.kind, "gate.permit");
    assert_eq!(ev.source, "gate");
    let GateDecision::Permit { token } = d else {
        unreachable!()
    };
    let r = token.receipt.expect("chained permit names its record");
    assert_eq!(r.chain_seq, Some(ev.seq));
    assert_eq!(r.context_hash, context_hash(&ctx));
    let proof = decision_receipt(&chain, ev.seq).unwrap();
    assert_eq!(
        verify_decision_receipt(&proof, &key().verifying_key()).unwrap(),
        r
    );

    let d = gate.check("worker", "tool.exec.rm", &ctx);
    let GateDecision::Deny { reason, receipt } = d else {
        panic!()
    };
    assert!(reason.contains("tool.exec.rm"));
    let ev = chain.get(receipt.chain_seq.unwrap()).unwrap();
    assert_eq!(ev.kind, "gate.deny");
    let proof = decision_receipt(&chain, ev.seq).unwrap();
    assert_eq!(
        verify_decision_receipt(&proof, &key().verifying_key()).unwrap(),
        receipt
    );
    let rec: GateRecord = ev.decode_payload().unwrap();
    assert_eq!(rec.reason, reason);
    assert_eq!(rec.context, r#"{"args":["-l"],"cmd":"ls"}"#);

    let gov = ChainedGate::new(
        Arc::new(GovernanceGate::new(Arc::new(Escalator), "prod")),
        chain.clone(),
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
    let gate = ChainedGate::new(capability(), chain.clone()).with_durability(Durability::Durable);
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

    let pk = key().verifying_key();
    let (chain_report, report) = verify_chain_receipts(dir.path(), &pk, Default::default());
    assert!(chain_report.ok && report.ok, "{chain_report:?} {report:?}");
    assert_eq!(report.receipts, 3);

    let other = SigningKey::from_bytes(&[12; 32]).verifying_key();
    let (bad, _) = verify_chain_receipts(dir.path(), &other, Default::default());
    assert!(!bad.ok, "wrong chain key");

    // Rebuild each decision from the parsed directory.
    let (events, _) = weft_chain::read_dir(dir.path(), &pk).unwrap();
    let gate_events: Vec<_> = events
        .iter()
        .filter(|e| e.kind.starts_with("gate."))
        .collect();
    assert_eq!(gate_events.len(), 3);
    for ev in &gate_events {
        let r = Receipt::from_event(ev).unwrap();
        assert_eq!(r.chain_seq, Some(ev.seq));
    }
    assert!(verify_receipts(gate_events.iter().copied()).ok);
}

#[test]
fn tampered_receipts_fail() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open(dir.path());
    let gate = ChainedGate::new(capability(), chain.clone());
    let (_, ev) = gate
        .check_recorded("worker", "tool.exec.ls", &json!({"a": 1}))
        .unwrap();
    let good = decision_receipt(&chain, ev.seq).unwrap();
    let pk = key().verifying_key();
    verify_decision_receipt(&good, &pk).unwrap();

    // Any change to what the decision states breaks the proof.
    let edit = |f: &dyn Fn(&mut GateRecord)| {
        let mut r = good.clone();
        let mut rec: GateRecord = r.to_event().unwrap().decode_payload().unwrap();
        f(&mut rec);
        let cbor = weft_chain::to_cbor(&rec).unwrap();
        r.event.payload_cbor = hex::encode(&cbor);
        r.event.payload = r.to_event().unwrap().payload_json().unwrap();
        verify_decision_receipt(&r, &pk)
    };
    assert!(edit(&|r| r.agent = "admin".into()).is_err());
    assert!(edit(&|r| r.action = "tool.exec.rm".into()).is_err());
    assert!(edit(&|r| r.decision = DecisionKind::Deny).is_err());
    assert!(edit(&|r| r.context = r#"{"a":2}"#.into()).is_err());
    assert!(edit(&|r| r.reason = "other".into()).is_err());
    let mut r = good.clone();
    r.event.seq += 1;
    assert!(
        verify_decision_receipt(&r, &pk).is_err(),
        "bound to its seq"
    );
    let mut r = good.clone();
    r.event.kind = "gate.deny".into();
    assert!(verify_decision_receipt(&r, &pk).is_err());
    let mut r = good.clone();
    r.head.chain_id += 1;
    assert!(verify_decision_receipt(&r, &pk).is_err());
    let other = SigningKey::from_bytes(&[12; 32]).verifying_key();
    assert!(verify_decision_receipt(&good, &other).is_err());

    // A record whose kind disagrees with its decision, or whose context is
    // not canonical, is no valid decision even on an intact chain.
    let mut rekind = (*ev).clone();
    rekind.kind = "gate.deny".into();
    assert!(Receipt::from_event(&rekind).is_err());
    let mut rec: GateRecord = ev.decode_payload().unwrap();
    rec.context = r#"{ "a": 1 }"#.into();
    let mut forged = (*ev).clone();
    forged.payload = weft_chain::to_cbor(&rec).unwrap();
    assert!(Receipt::from_event(&forged).is_err());
    // A chain event that is not a decision is no decision receipt.
    let noise = chain.append_durable("noise", "other.kind", &1).unwrap();
    assert!(decision_receipt(&chain, noise.seq).is_err());
}

#[test]
fn closed_chain_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open(dir.path());
    let gate = ChainedGate::new(capability(), chain.clone());
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
    let gate = Arc::new(ChainedGate::new(capability(), chain.clone()));
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
    let r = verify_receipts(&events);
    assert!(r.ok, "{r:?}");
    assert_eq!(r.receipts, 100);
    // Every decision is individually provable.
    let pk = key().verifying_key();
    chain.sync().unwrap();
    for ev in events.iter().filter(|e| e.kind.starts_with("gate.")) {
        verify_decision_receipt(&chain.prove(ev.seq).unwrap(), &pk).unwrap();
    }
}

#[test]
fn repeated_decisions_are_recorded_and_proven_each_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open(dir.path());
    let gate = ChainedGate::new(capability(), chain.clone());
    let ctx = json!({"tool": "ls"});
    let (_, first) = gate.check_recorded("worker", "tool.exec.ls", &ctx).unwrap();
    let (_, again) = gate.check_recorded("worker", "tool.exec.ls", &ctx).unwrap();
    assert_ne!(first.seq, again.seq);
    // The same statement, two leaves: each has its own receipt.
    let pk = key().verifying_key();
    let a = verify_decision_receipt(&decision_receipt(&chain, first.seq).unwrap(), &pk).unwrap();
    let b = verify_decision_receipt(&decision_receipt(&chain, again.seq).unwrap(), &pk).unwrap();
    assert_eq!(
        (a.chain_seq, b.chain_seq),
        (Some(first.seq), Some(again.seq))
    );
    assert_eq!(a.context_hash, b.context_hash);
    // Records carry no signature and no citation any more.
    let rec: ciborium::Value = first.decode_payload().unwrap();
    let keys: Vec<String> = rec
        .as_map()
        .unwrap()
        .iter()
        .map(|(k, _)| k.as_text().unwrap().to_string())
        .collect();
    assert_eq!(
        keys,
        ["v", "decision", "agent", "action", "reason", "context"]
    );
}
