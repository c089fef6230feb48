//! Gate records on the chain and their receipts.
//!
//! Since chain format 2 no decision is signed on its own: each decision is
//! one `gate.*` event, a leaf of the chain's Merkle tree, and the chain's
//! key signs a tree head at every group commit. The receipt of a decision
//! is the chain's [`weft_chain::Receipt`] for its event (event, inclusion
//! proof, durable signed head): [`decision_receipt`] builds it,
//! [`verify_decision_receipt`] checks it offline.

use std::path::Path;

use serde::{Deserialize, Serialize};
use weft_chain::ChainEvent;
use weft_chain::VerifyingKey;

use crate::{canonical_json, DecisionKind, GateError};

/// Gate record format version written today.
pub const RECORD_VERSION: u32 = 2;

/// What a decision states and where it is recorded: the statement a chain
/// receipt proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The decision.
    pub decision: DecisionKind,
    /// The agent that asked.
    pub agent: String,
    /// The action it asked for.
    pub action: String,
    /// SHAKE-256 of the canonical JSON of the request context.
    pub context_hash: [u8; 32],
    /// The chain the decision is recorded on.
    pub chain_id: u32,
    /// Seq of the chain event recording this decision (None until recorded).
    pub chain_seq: Option<u64>,
}

/// SHAKE-256 of the canonical JSON of `context`.
pub fn context_hash(context: &serde_json::Value) -> [u8; 32] {
    weft_chain::shake256(canonical_json(context).as_bytes())
}

impl Receipt {
    /// A decision not yet recorded (from a bare backend).
    pub fn unrecorded(
        decision: DecisionKind,
        agent: &str,
        action: &str,
        context: &serde_json::Value,
    ) -> Self {
        Receipt {
            decision,
            agent: agent.to_owned(),
            action: action.to_owned(),
            context_hash: context_hash(context),
            chain_id: 0,
            chain_seq: None,
        }
    }

    /// The decision recorded by a `gate.*` chain event, checked against it
    /// (kind, record version, context).
    pub fn from_event(ev: &ChainEvent) -> Result<Self, GateError> {
        let bad = |s: String| GateError::InvalidReceipt(format!("event {}: {s}", ev.seq));
        let rec: GateRecord = ev.decode_payload().map_err(|e| bad(e.to_string()))?;
        let kind = DecisionKind::from_chain_kind(&ev.kind)
            .ok_or_else(|| bad(format!("kind {} is not a gate decision", ev.kind)))?;
        if rec.v != RECORD_VERSION {
            return Err(bad(format!("unknown gate record version {}", rec.v)));
        }
        if rec.decision != kind {
            return Err(bad("decision differs from event kind".into()));
        }
        let ctx: serde_json::Value = serde_json::from_str(&rec.context)
            .map_err(|e| bad(format!("context is not JSON: {e}")))?;
        if canonical_json(&ctx) != rec.context {
            return Err(bad("context is not in canonical form".into()));
        }
        Ok(Receipt {
            decision: kind,
            agent: rec.agent,
            action: rec.action,
            context_hash: weft_chain::shake256(rec.context.as_bytes()),
            chain_id: ev.chain_id,
            chain_seq: Some(ev.seq),
        })
    }
}

/// CBOR payload of `gate.*` events (format 2: no per-decision signature;
/// the chain's signed tree heads cover every record).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GateRecord {
    /// Record format version, [`RECORD_VERSION`].
    pub v: u32,
    /// The decision.
    pub decision: DecisionKind,
    /// The agent that asked.
    pub agent: String,
    /// The action it asked for.
    pub action: String,
    /// Why the gate decided so.
    pub reason: String,
    /// Canonical JSON of the request context.
    pub context: String,
}

/// Result of checking every gate record of a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReceiptReport {
    /// True when every record was well formed.
    pub ok: bool,
    /// Gate decisions found (each provable by its chain receipt).
    pub receipts: u64,
    /// Seq of the first malformed gate record, and why.
    pub first_bad: Option<(u64, String)>,
}

/// Checks the gate record of every `gate.*` event in `events`.
pub fn verify_receipts<'a>(events: impl IntoIterator<Item = &'a ChainEvent>) -> ReceiptReport {
    let mut receipts = 0;
    for ev in events {
        if DecisionKind::from_chain_kind(&ev.kind).is_none() {
            continue;
        }
        if let Err(e) = Receipt::from_event(ev) {
            return ReceiptReport {
                ok: false,
                receipts,
                first_bad: Some((ev.seq, e.to_string())),
            };
        }
        receipts += 1;
    }
    ReceiptReport {
        ok: true,
        receipts,
        first_bad: None,
    }
}

/// The check [`verify_chain_receipts`] runs on each event while streaming.
pub fn check_gate_event(e: &weft_chain::EventRef<'_>, chain_id: u32) -> Result<bool, String> {
    if DecisionKind::from_chain_kind(e.kind).is_none() {
        return Ok(false);
    }
    let ev = ChainEvent {
        seq: e.seq,
        chain_id,
        timestamp_ns: e.timestamp_ns,
        hash: [0; 32],
        source: e.source.to_owned(),
        kind: e.kind.to_owned(),
        payload: e.payload.to_vec(),
    };
    Receipt::from_event(&ev)
        .map(|_| true)
        .map_err(|e| e.to_string())
}

/// Offline check of a chain directory: streams [`weft_chain::verify_dir`]
/// and checks every gate record on the way. Returns both reports.
pub fn verify_chain_receipts(
    dir: impl AsRef<Path>,
    key: &VerifyingKey,
    opts: weft_chain::VerifyOptions<'_>,
) -> (weft_chain::VerifyReport, ReceiptReport) {
    let mut receipts = 0u64;
    let mut bad = None;
    let mut cb = |e: &weft_chain::EventRef<'_>| match check_gate_event(e, 0) {
        Ok(counted) => {
            receipts += u64::from(counted);
            Ok(())
        }
        Err(why) => {
            bad = Some((e.seq, why.clone()));
            Err(format!("gate record: {why}"))
        }
    };
    let report = weft_chain::verify_dir_opts(
        dir.as_ref(),
        key,
        weft_chain::VerifyOptions {
            on_event: Some(&mut cb),
            ..opts
        },
    );
    let rr = ReceiptReport {
        ok: bad.is_none(),
        receipts,
        first_bad: bad,
    };
    (report, rr)
}

/// The provable receipt of the decision recorded at `seq` (waits for a
/// durable head if none covers it yet).
pub fn decision_receipt(
    chain: &weft_chain::ChainManager,
    seq: u64,
) -> Result<weft_chain::Receipt, GateError> {
    let r = chain.prove_durable(seq)?;
    if DecisionKind::from_chain_kind(&r.event.kind).is_none() {
        return Err(GateError::InvalidReceipt(format!(
            "event {seq} is a {}, not a gate decision",
            r.event.kind
        )));
    }
    Ok(r)
}

/// Checks a chain receipt offline with `key` and returns the decision it
/// proves.
pub fn verify_decision_receipt(
    r: &weft_chain::Receipt,
    key: &VerifyingKey,
) -> Result<Receipt, GateError> {
    r.verify(key).map_err(GateError::InvalidReceipt)?;
    let ev = r.to_event().map_err(GateError::InvalidReceipt)?;
    Receipt::from_event(&ev)
}
