//! Signed gate receipts and their offline verification.

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use weft_chain::ChainEvent;

use crate::{canonical_json, DecisionKind, GateError};

/// Domain tag of the receipt signing message (docs/chain-format.md).
pub const RECEIPT_DOMAIN: &[u8] = b"weft-gate-receipt-v1";

/// Evidence of one gate decision. Signed receipts bind the decision to the
/// chain seq of the event recording it, so a receipt cannot be replayed
/// onto another event or chain.
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
    /// Ed25519 signature over [`signing_message`]; `None` until signed (and for a citing record).
    pub signature: Option<[u8; 64]>,
    /// The key that signed it.
    pub public_key: Option<[u8; 32]>,
}

/// SHAKE-256 of the canonical JSON of `context`.
pub fn context_hash(context: &serde_json::Value) -> [u8; 32] {
    weft_chain::shake256(canonical_json(context).as_bytes())
}

/// The exact bytes a receipt signature covers.
pub fn signing_message(
    decision: DecisionKind,
    agent: &str,
    action: &str,
    context_hash: &[u8; 32],
    chain_id: u32,
    chain_seq: u64,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(RECEIPT_DOMAIN.len() + 57 + agent.len() + action.len());
    m.extend_from_slice(RECEIPT_DOMAIN);
    m.push(decision.code());
    m.extend_from_slice(&chain_id.to_le_bytes());
    m.extend_from_slice(&chain_seq.to_le_bytes());
    m.extend_from_slice(context_hash);
    m.extend_from_slice(&(agent.len() as u32).to_le_bytes());
    m.extend_from_slice(agent.as_bytes());
    m.extend_from_slice(&(action.len() as u32).to_le_bytes());
    m.extend_from_slice(action.as_bytes());
    m
}

impl Receipt {
    /// A receipt not yet recorded or signed (from a bare backend).
    pub fn unsigned(
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
            signature: None,
            public_key: None,
        }
    }

    /// Signs a receipt for the event at `chain_seq`.
    pub fn sign(
        key: &SigningKey,
        decision: DecisionKind,
        agent: &str,
        action: &str,
        context_hash: [u8; 32],
        chain_id: u32,
        chain_seq: u64,
    ) -> Self {
        let msg = signing_message(decision, agent, action, &context_hash, chain_id, chain_seq);
        let signature = key.sign(&msg).to_bytes();
        Receipt {
            decision,
            agent: agent.to_owned(),
            action: action.to_owned(),
            context_hash,
            chain_id,
            chain_seq: Some(chain_seq),
            signature: Some(signature),
            public_key: Some(key.verifying_key().to_bytes()),
        }
    }

    /// Checks the signature with `key`. Needs nothing but the receipt.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), GateError> {
        let bad = |s: &str| GateError::InvalidReceipt(s.to_string());
        let (Some(seq), Some(sig), Some(pk)) = (self.chain_seq, self.signature, self.public_key)
        else {
            return Err(bad("unsigned receipt"));
        };
        if pk != key.to_bytes() {
            return Err(bad("signed by a different key"));
        }
        let msg = signing_message(
            self.decision,
            &self.agent,
            &self.action,
            &self.context_hash,
            self.chain_id,
            seq,
        );
        key.verify_strict(&msg, &Signature::from_bytes(&sig))
            .map_err(|_| bad("signature does not verify"))
    }

    /// Rebuilds the receipt recorded by a `gate.*` chain event and checks it
    /// is consistent with that event (kind, seq, chain id, context hash).
    /// Call `verify` afterwards to check the signature.
    /// A record that cites an earlier receipt has no signature of its own;
    /// see [`verify_receipts`].
    pub fn from_event(ev: &ChainEvent) -> Result<Self, GateError> {
        let bad = |s: String| GateError::InvalidReceipt(format!("event {}: {s}", ev.seq));
        let rec: GateRecord = ev.decode_payload().map_err(|e| bad(e.to_string()))?;
        Self::from_record(ev, &rec)
    }

    fn from_record(ev: &ChainEvent, rec: &GateRecord) -> Result<Self, GateError> {
        let bad = |s: String| GateError::InvalidReceipt(format!("event {}: {s}", ev.seq));
        let kind = DecisionKind::from_chain_kind(&ev.kind)
            .ok_or_else(|| bad(format!("kind {} is not a gate decision", ev.kind)))?;
        let r = rec.to_receipt().map_err(|e| bad(e.to_string()))?;
        if r.decision != kind {
            return Err(bad("decision differs from event kind".into()));
        }
        if r.chain_seq != Some(ev.seq) {
            return Err(bad(format!("receipt names seq {:?}", r.chain_seq)));
        }
        if r.chain_id != ev.chain_id {
            return Err(bad("receipt names another chain".into()));
        }
        if weft_chain::shake256(rec.context.as_bytes()) != r.context_hash {
            return Err(bad("recorded context does not match context hash".into()));
        }
        Ok(r)
    }

    /// Digest of what the receipt states (decision, agent, action, context,
    /// chain), leaving out where it is recorded: equal for a signed receipt
    /// and the records that cite it.
    fn statement(&self) -> [u8; 32] {
        weft_chain::shake256(&signing_message(
            self.decision,
            &self.agent,
            &self.action,
            &self.context_hash,
            self.chain_id,
            0,
        ))
    }
}

/// CBOR payload of `gate.*` events. Hex strings keep `export_jsonl` readable.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GateRecord {
    /// Record format version, 1.
    pub v: u32,
    /// See [`Receipt::decision`].
    pub decision: DecisionKind,
    /// See [`Receipt::agent`].
    pub agent: String,
    /// See [`Receipt::action`].
    pub action: String,
    /// Why the gate decided so; not signed.
    pub reason: String,
    /// Canonical JSON of the context (what `context_hash` hashes).
    pub context: String,
    /// Hex [`Receipt::context_hash`].
    pub context_hash: String,
    /// See [`Receipt::chain_id`].
    pub chain_id: u32,
    /// Seq of the event carrying this record.
    pub chain_seq: u64,
    /// Hex key that signed the receipt.
    pub public_key: String,
    /// Empty when `repeats` is set.
    pub signature: String,
    /// Seq of the event whose signed receipt states exactly this decision
    /// (same verdict, agent, action, context hash and chain); this record
    /// cites it instead of carrying its own signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<u64>,
}

impl GateRecord {
    /// The record of a signed receipt `r`.
    pub fn new(r: &Receipt, reason: String, context: String) -> Self {
        GateRecord {
            v: 1,
            decision: r.decision,
            agent: r.agent.clone(),
            action: r.action.clone(),
            reason,
            context,
            context_hash: hex::encode(r.context_hash),
            chain_id: r.chain_id,
            chain_seq: r.chain_seq.unwrap_or_default(),
            public_key: r.public_key.map(hex::encode).unwrap_or_default(),
            signature: r.signature.map(hex::encode).unwrap_or_default(),
            repeats: None,
        }
    }

    /// The record, at `chain_seq`, of a decision identical to the one
    /// `signed` states: it cites `signed` rather than re-signing.
    pub fn citing(signed: &Receipt, reason: String, context: String, chain_seq: u64) -> Self {
        let mut rec = GateRecord::new(signed, reason, context);
        rec.repeats = signed.chain_seq;
        rec.chain_seq = chain_seq;
        rec.signature = String::new();
        rec
    }

    /// The receipt this record states; fails on a malformed field or unknown version.
    pub fn to_receipt(&self) -> Result<Receipt, GateError> {
        fn arr<const N: usize>(what: &str, s: &str) -> Result<[u8; N], GateError> {
            hex::decode(s)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| GateError::InvalidReceipt(format!("malformed {what}")))
        }
        if self.v != 1 {
            return Err(GateError::InvalidReceipt(format!(
                "unknown record version {}",
                self.v
            )));
        }
        Ok(Receipt {
            decision: self.decision,
            agent: self.agent.clone(),
            action: self.action.clone(),
            context_hash: arr("context_hash", &self.context_hash)?,
            chain_id: self.chain_id,
            chain_seq: Some(self.chain_seq),
            signature: match self.repeats {
                Some(_) => None,
                None => Some(arr("signature", &self.signature)?),
            },
            public_key: Some(arr("public_key", &self.public_key)?),
        })
    }
}

/// Result of checking every gate receipt in a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReceiptReport {
    /// True when every receipt verified.
    pub ok: bool,
    /// Gate events whose receipt verified (signed or citing).
    pub receipts: u64,
    /// Of those, records that cite an earlier signed receipt.
    pub cited: u64,
    /// Seq of the first gate event whose receipt failed, and why.
    pub first_bad: Option<(u64, String)>,
}

/// Verifies the receipt of every `gate.*` event in `events` with `key`.
pub fn verify_receipts<'a>(
    events: impl IntoIterator<Item = &'a ChainEvent>,
    key: &VerifyingKey,
) -> ReceiptReport {
    let (mut receipts, mut cited) = (0, 0);
    // Statement digest of every receipt verified so far, by seq, for the
    // records that cite them.
    let mut verified: std::collections::HashMap<u64, [u8; 32]> = Default::default();
    for ev in events {
        if DecisionKind::from_chain_kind(&ev.kind).is_none() {
            continue;
        }
        match verify_event(ev, key, &mut verified) {
            Ok(citing) => {
                receipts += 1;
                cited += u64::from(citing);
            }
            Err(e) => {
                return ReceiptReport {
                    ok: false,
                    receipts,
                    cited,
                    first_bad: Some((ev.seq, e.to_string())),
                }
            }
        }
    }
    ReceiptReport {
        ok: true,
        receipts,
        cited,
        first_bad: None,
    }
}

/// One gate event: its own signature, or a citation of a verified receipt
/// of the identical statement recorded earlier (then `Ok(true)`).
fn verify_event(
    ev: &ChainEvent,
    key: &VerifyingKey,
    verified: &mut std::collections::HashMap<u64, [u8; 32]>,
) -> Result<bool, GateError> {
    let rec: GateRecord = ev
        .decode_payload()
        .map_err(|e| GateError::InvalidReceipt(format!("event {}: {e}", ev.seq)))?;
    let r = Receipt::from_record(ev, &rec)?;
    match rec.repeats {
        None => {
            r.verify(key)?;
            verified.insert(ev.seq, r.statement());
            Ok(false)
        }
        Some(cited) => {
            if rec.public_key != hex::encode(key.to_bytes()) {
                return Err(GateError::InvalidReceipt(
                    "signed by a different key".into(),
                ));
            }
            match verified.get(&cited) {
                Some(s) if cited < ev.seq && *s == r.statement() => Ok(true),
                Some(_) => Err(GateError::InvalidReceipt(format!(
                    "cites the receipt at seq {cited}, which states a different decision"
                ))),
                None => Err(GateError::InvalidReceipt(format!(
                    "cites seq {cited}, which holds no verified receipt before it"
                ))),
            }
        }
    }
}

/// Offline check of a chain file: verifies the chain with `key` and then
/// every gate receipt in it (receipts signed with the same key).
pub fn verify_chain_receipts(
    path: impl AsRef<Path>,
    key: &VerifyingKey,
) -> Result<ReceiptReport, GateError> {
    let file = weft_chain::read_file(path, key)?;
    Ok(verify_receipts(&file.events, key))
}
