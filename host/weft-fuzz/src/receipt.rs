//! `receipt`: gate records and chain receipts, as `weaver chain verify`
//! and `weaver chain verify-receipt` read them from files they did not
//! write.
//!
//! Since chain format 2 a receipt is the chain's: an event, its Merkle
//! inclusion proof and a signed tree head. Everything this target asks of
//! the API goes through [`api`]. The first input byte picks a mode:
//!
//! 0. a CBOR gate record (the payload of a `gate.*` event);
//! 1. raw events (length-prefixed kind selector + payload) for the record
//!    checker;
//! 2. a recipe of honest decisions on a real chain, each proven: every
//!    receipt must verify, and one changed byte of one receipt's file must
//!    not;
//! 3. arbitrary receipt fields, proof hashes and signature bytes: must
//!    never verify (nobody can forge the harness key's signature).

use weft_chain::{ChainConfig, ChainEvent, ChainManager, Receipt, SignedHead};
use weft_gate::{DecisionKind, GateRecord};

use crate::support::{key, scratch, Cursor};

/// The receipt API under test, in one place.
pub mod api {
    use weft_chain::{ChainEvent, Receipt, VerifyingKey};
    use weft_gate::{verify_decision_receipt, verify_receipts, GateRecord};

    /// Decode a `gate.*` event's payload.
    pub fn decode_record(payload: &[u8]) -> Option<GateRecord> {
        ciborium::from_reader(payload).ok()
    }

    /// Check one event's gate record.
    pub fn check_event(ev: &ChainEvent) -> Result<(), String> {
        weft_gate::Receipt::from_event(ev)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Check every gate event of a chain; `(ok, records)`.
    pub fn check_events(events: &[ChainEvent]) -> (bool, u64) {
        let r = verify_receipts(events);
        (r.ok, r.receipts)
    }

    /// Check a receipt file's text offline.
    pub fn check_receipt(text: &str, key: &VerifyingKey) -> Result<(), String> {
        let r: Receipt = serde_json::from_str(text).map_err(|e| e.to_string())?;
        verify_decision_receipt(&r, key)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// The target.
pub fn fuzz(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            let Some(rec) = api::decode_record(rest) else {
                return;
            };
            let ev = event_for(rec.decision, 1, rest.to_vec());
            let _one = api::check_event(&ev);
            let _all = api::check_events(&[ev]);
        }
        1 => {
            let mut events = Vec::new();
            let mut left = rest;
            let mut seq = 0;
            while left.len() >= 3 {
                let n = usize::from(u16::from_le_bytes([left[0], left[1]]));
                let d = decision(left[2]);
                let (chunk, tail) = left[3..].split_at(n.min(left.len() - 3));
                events.push(event_for(d, seq, chunk.to_vec()));
                seq += 1;
                left = tail;
            }
            let _all = api::check_events(&events);
        }
        2 => honest(&mut Cursor::new(rest)),
        _ => forged(&mut Cursor::new(rest)),
    }
}

fn decision(b: u8) -> DecisionKind {
    match b % 3 {
        0 => DecisionKind::Permit,
        1 => DecisionKind::Defer,
        _ => DecisionKind::Deny,
    }
}

/// A `gate.*` event carrying `payload`.
fn event_for(d: DecisionKind, seq: u64, payload: Vec<u8>) -> ChainEvent {
    let mut ev = ChainEvent {
        seq,
        chain_id: 0,
        timestamp_ns: 1,
        hash: [0; 32],
        source: "gate".into(),
        kind: d.chain_kind().into(),
        payload,
    };
    ev.hash = ev.compute_hash();
    ev
}

/// Mode 2: decisions recorded on a real chain, each proven.
fn honest(c: &mut Cursor<'_>) {
    let dir = scratch().join("receipts");
    let _fresh = std::fs::remove_dir_all(&dir);
    let config = ChainConfig {
        signing_key: Some(key()),
        ..ChainConfig::default()
    };
    let (chain, _) = ChainManager::open(&dir, config).expect("a chain");
    let n = 1 + c.u8() % 8;
    let mut seqs = Vec::new();
    for _ in 0..n {
        let d = decision(c.u8());
        let ctx = serde_json::json!({ "target": c.string(16) });
        let rec = GateRecord {
            v: weft_gate::RECORD_VERSION,
            decision: d,
            agent: c.string(16),
            action: c.string(16),
            reason: c.string(16),
            context: weft_gate::canonical_json(&ctx),
        };
        seqs.push(
            chain
                .append("gate", d.chain_kind(), &rec)
                .expect("append")
                .seq,
        );
    }
    chain.sync().expect("sync");
    let k = key().verifying_key();
    let mut texts = Vec::new();
    for s in seqs {
        let r = chain.prove(s).expect("prove");
        let text = serde_json::to_string_pretty(&r).expect("json");
        api::check_receipt(&text, &k).expect("an honest receipt verifies");
        texts.push(text);
    }
    chain.shutdown().expect("shutdown");
    let i = usize::from(c.u8()) % texts.len();
    let original: Receipt = serde_json::from_str(&texts[i]).expect("its own JSON");
    let mut b = texts[i].clone().into_bytes();
    let at = usize::from(c.u16()) % b.len();
    b[at] ^= c.u8() | 1;
    if let Ok(text) = std::str::from_utf8(&b) {
        // A change that means nothing (whitespace between tokens, the case
        // of a hex digit) reads back as the same receipt and may verify;
        // any other must not.
        let same = serde_json::from_str::<Receipt>(text).is_ok_and(|r| r == original);
        assert!(
            same || api::check_receipt(text, &k).is_err(),
            "a receipt with byte {at} changed still verified"
        );
    }
}

/// Mode 3: arbitrary receipts never verify.
fn forged(c: &mut Cursor<'_>) {
    let k = key().verifying_key();
    let h32 = |c: &mut Cursor<'_>| {
        let mut h = [0u8; 32];
        h.iter_mut().for_each(|b| *b = c.u8());
        h
    };
    let root = h32(c);
    let mut signature = [0u8; 64];
    signature.iter_mut().for_each(|b| *b = c.u8());
    let head = SignedHead {
        chain_id: u32::from(c.u8()),
        tree_size: c.u64(),
        root,
        timestamp_ns: c.u64(),
        segment: c.u64(),
        offset: c.u64(),
        signature,
    };
    let proof = (0..c.u8() % 40).map(|_| h32(c)).collect();
    let payload = c.bytes(64).to_vec();
    let ev = ChainEvent {
        seq: c.u64(),
        chain_id: head.chain_id,
        timestamp_ns: c.u64(),
        hash: [0; 32],
        source: c.string(16),
        kind: c.string(16),
        payload,
    };
    let mut ev = ev;
    ev.hash = ev.compute_hash();
    let r = Receipt::new(&ev, proof, head, &k);
    assert!(r.verify(&k).is_err(), "a forged receipt verified");
    let text = serde_json::to_string(&r).expect("json");
    assert!(
        api::check_receipt(&text, &k).is_err(),
        "a forged receipt file verified"
    );
}
