//! Receipts (an event, its inclusion proof and the durable signed head that
//! covers it) and consistency proofs, built by the live chain and checked
//! offline with nothing but the chain's public key.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::error::{ChainError, Result};
use crate::event::{cbor_to_json, leaf_hash, ChainEvent};
use crate::head::{hex32, hex32_vec, strict_hex, SignedHead};
use crate::keys::public_key_hex;
use crate::layout::CHUNK;
use crate::manager::{lock, read, read_any, ChainManager, Inner};
use crate::merkle::{
    consistency_proof, inclusion_proof, range_hash, verify_consistency, verify_inclusion, Hash,
};
use crate::store::Nodes;

/// Format tag of a receipt file.
pub const RECEIPT_FORMAT: &str = "weft-chain-receipt-v1";
/// Format tag of a consistency proof file.
pub const CONSISTENCY_FORMAT: &str = "weft-chain-consistency-v1";

/// The event a receipt proves, with its payload as stored (CBOR, hex) and,
/// for reading, decoded to JSON (checked against the CBOR).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptEvent {
    /// Leaf index.
    pub seq: u64,
    /// Timestamp, ns since the UNIX epoch.
    pub timestamp_ns: u64,
    /// Who appended it.
    pub source: String,
    /// What happened.
    pub kind: String,
    /// The CBOR payload, lower-case hex.
    pub payload_cbor: String,
    /// The payload decoded (must equal the CBOR's decoding).
    pub payload: serde_json::Value,
}

/// Proof that an event is in the chain: the event, its RFC 9162 inclusion
/// proof, and a durable signed tree head covering it. Verifies offline
/// with only the chain's public key ([`Receipt::verify`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// [`RECEIPT_FORMAT`].
    pub format: String,
    /// Hex public key of the chain (must equal the verifier's key).
    pub public_key: String,
    /// The event.
    pub event: ReceiptEvent,
    /// Its leaf hash (recomputed by the verifier).
    #[serde(with = "hex32")]
    pub leaf_hash: Hash,
    /// Audit path, deepest sibling first.
    #[serde(with = "hex32_vec")]
    pub proof: Vec<Hash>,
    /// The signed head the proof leads to.
    pub head: SignedHead,
}

impl Receipt {
    /// Builds a receipt (no checks) for `ev` under `head`.
    pub fn new(ev: &ChainEvent, proof: Vec<Hash>, head: SignedHead, key: &VerifyingKey) -> Self {
        let payload = ev
            .payload_json()
            .unwrap_or_else(|_| serde_json::json!({ "undecodable": true }));
        Receipt {
            format: RECEIPT_FORMAT.into(),
            public_key: public_key_hex(key),
            event: ReceiptEvent {
                seq: ev.seq,
                timestamp_ns: ev.timestamp_ns,
                source: ev.source.clone(),
                kind: ev.kind.clone(),
                payload_cbor: hex::encode(&ev.payload),
                payload,
            },
            leaf_hash: ev.hash,
            proof,
            head,
        }
    }

    /// Checks everything with `key` alone: the format, the key, the head's
    /// signature, the payload's two forms, the leaf hash and the inclusion
    /// proof against the signed root.
    pub fn verify(&self, key: &VerifyingKey) -> std::result::Result<(), String> {
        if self.format != RECEIPT_FORMAT {
            return Err(format!("unknown receipt format {:?}", self.format));
        }
        if self.public_key != public_key_hex(key) {
            return Err("receipt names a different public key".into());
        }
        self.head.verify(key)?;
        let e = &self.event;
        let cbor = decode_hex(&e.payload_cbor).ok_or("payload_cbor is not lower-case hex")?;
        let value: ciborium::Value = ciborium::from_reader(cbor.as_slice())
            .map_err(|err| format!("payload_cbor is not CBOR: {err}"))?;
        if cbor_to_json(&value) != e.payload {
            return Err("payload differs from payload_cbor".into());
        }
        let leaf = leaf_hash(e.timestamp_ns, &e.source, &e.kind, &cbor);
        if leaf != self.leaf_hash {
            return Err("leaf_hash does not match the event".into());
        }
        verify_inclusion(
            &leaf,
            e.seq,
            self.head.tree_size,
            &self.proof,
            &self.head.root,
        )
        .map_err(|err| format!("inclusion proof: {err}"))
    }

    /// The event the receipt proves (after [`Receipt::verify`]).
    pub fn to_event(&self) -> std::result::Result<ChainEvent, String> {
        Ok(ChainEvent {
            seq: self.event.seq,
            chain_id: self.head.chain_id,
            timestamp_ns: self.event.timestamp_ns,
            hash: self.leaf_hash,
            source: self.event.source.clone(),
            kind: self.event.kind.clone(),
            payload: decode_hex(&self.event.payload_cbor).ok_or("payload_cbor is not hex")?,
        })
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    hex::decode(s).ok()
}

/// Proof that the tree of `new_size` events extends the tree of `old_size`
/// (RFC 9162 §2.1.4), with both roots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// [`CONSISTENCY_FORMAT`].
    pub format: String,
    /// The chain.
    pub chain_id: u32,
    /// The older tree's size.
    pub old_size: u64,
    /// Its root.
    #[serde(with = "hex32")]
    pub old_root: Hash,
    /// The newer tree's size.
    pub new_size: u64,
    /// Its root.
    #[serde(with = "hex32")]
    pub new_root: Hash,
    /// The proof hashes.
    #[serde(with = "hex32_vec")]
    pub proof: Vec<Hash>,
}

impl ConsistencyProof {
    /// Checks the proof against its roots.
    pub fn verify(&self) -> std::result::Result<(), String> {
        if self.format != CONSISTENCY_FORMAT {
            return Err(format!("unknown proof format {:?}", self.format));
        }
        verify_consistency(
            self.old_size,
            self.new_size,
            &self.old_root,
            &self.new_root,
            &self.proof,
        )
        .map_err(|e| e.to_string())
    }

    /// Checks the proof and that its roots are the ones `old` and `new`
    /// (signed heads, checked with `key`) state.
    pub fn verify_heads(
        &self,
        old: &SignedHead,
        new: &SignedHead,
        key: &VerifyingKey,
    ) -> std::result::Result<(), String> {
        old.verify(key)?;
        new.verify(key)?;
        if (old.tree_size, old.root, new.tree_size, new.root)
            != (self.old_size, self.old_root, self.new_size, self.new_root)
        {
            return Err("the proof is for other heads".into());
        }
        if old.chain_id != self.chain_id || new.chain_id != self.chain_id {
            return Err("the heads belong to another chain".into());
        }
        self.verify()
    }
}

/// Parses a hex hash strictly (lower case, 64 characters).
pub fn parse_hash(s: &str) -> std::result::Result<Hash, String> {
    strict_hex::<32>(s)
}

/// Seconds a handed-out receipt's events are protected from retention.
pub(crate) const RECEIPT_WINDOW_NS: u64 = 3600 * 1_000_000_000;

impl ChainManager {
    /// The receipt of event `seq` under the newest durable head. Fails with
    /// [`ChainError::NotDurable`] when no durable head covers it yet (call
    /// [`ChainManager::sync`] first, or use [`ChainManager::prove_durable`]).
    pub fn prove(&self, seq: u64) -> Result<Receipt> {
        let head = self
            .durable_head()
            .filter(|h| h.tree_size > seq)
            .ok_or(ChainError::NotDurable { seq })?;
        self.prove_under(seq, head)
    }

    /// Makes `seq` durable if needed, then returns its receipt.
    pub fn prove_durable(&self, seq: u64) -> Result<Receipt> {
        if self.durable_head().is_none_or(|h| h.tree_size <= seq) {
            self.sync()?;
        }
        self.prove(seq)
    }

    fn prove_under(&self, seq: u64, head: SignedHead) -> Result<Receipt> {
        if seq < self.inner.store.first_seq() {
            return Err(ChainError::Removed {
                seq,
                first: self.inner.store.first_seq(),
            });
        }
        let ev = read_any(&self.inner, seq)?;
        let nodes = nodes(&self.inner, head.tree_size);
        let path =
            inclusion_proof(&nodes, seq, head.tree_size).map_err(|r| self.read_error(seq, r))?;
        note_receipt(&self.inner, seq);
        Ok(Receipt::new(&ev, path, head, &self.inner.public_key))
    }

    /// A consistency proof between the trees of `old` and `new` events
    /// (`new` at most the newest durable head's size).
    pub fn consistency(&self, old: u64, new: u64) -> Result<ConsistencyProof> {
        let durable = self.durable_head().map_or(0, |h| h.tree_size);
        if old > new || new > durable {
            return Err(ChainError::BadRange {
                reason: format!(
                    "need OLD <= NEW <= {durable} (the newest durable head); got {old} and {new}"
                ),
            });
        }
        let first = self.inner.store.first_seq();
        if old < first && old != 0 {
            return Err(ChainError::Removed { seq: old, first });
        }
        let nodes = nodes(&self.inner, new);
        let err = |r: String| ChainError::BadRange { reason: r };
        let old_root = if old < first {
            crate::merkle::empty_root()
        } else {
            root_at(&nodes, old).map_err(err)?
        };
        Ok(ConsistencyProof {
            format: CONSISTENCY_FORMAT.into(),
            chain_id: self.inner.chain_id,
            old_size: old,
            old_root,
            new_size: new,
            new_root: root_at(&nodes, new).map_err(err)?,
            proof: consistency_proof(&nodes, old, new).map_err(err)?,
        })
    }

    /// Lowest seq a receipt handed out within the last hour covers (what
    /// retention must keep), if any.
    pub fn oldest_recent_receipt(&self) -> Option<u64> {
        let now = crate::manager::now_ns();
        let q = lock(&self.inner.receipts);
        q.iter()
            .filter(|(t, _)| now.saturating_sub(*t) < RECEIPT_WINDOW_NS)
            .map(|(_, s)| *s)
            .min()
    }
}

/// Root of the first `size` leaves.
fn root_at(nodes: &dyn crate::merkle::NodeSource, size: u64) -> std::result::Result<Hash, String> {
    if size == 0 {
        return Ok(crate::merkle::empty_root());
    }
    range_hash(nodes, 0, size)
}

/// Remembers a receipt's seq per minute (bounded: one entry per minute).
fn note_receipt(inner: &Inner, seq: u64) {
    let now = crate::manager::now_ns();
    let minute = now / 60_000_000_000;
    let mut q = lock(&inner.receipts);
    match q.back_mut() {
        Some((t, s)) if *t / 60_000_000_000 == minute => *s = (*s).min(seq),
        _ => q.push_back((now, seq)),
    }
    while q
        .front()
        .is_some_and(|(t, _)| now.saturating_sub(*t) >= RECEIPT_WINDOW_NS)
    {
        q.pop_front();
    }
}

/// Node source over the live chain for a tree of `size` leaves.
fn nodes(
    inner: &Inner,
    size: u64,
) -> Nodes<'_, impl Fn(u64) -> std::result::Result<Vec<Hash>, String> + '_> {
    Nodes {
        store: &inner.store,
        leaves: move |c: u64| {
            let a = c * CHUNK;
            let b = (a + CHUNK).min(size);
            let window_first = read(&inner.window).first;
            if a < window_first && inner.flushed.load(Ordering::Acquire) >= a + CHUNK {
                return Ok(inner
                    .store
                    .read_chunk(c, (b - a) as usize)?
                    .iter()
                    .map(|e| e.hash)
                    .collect());
            }
            (a..b)
                .map(|s| read_any(inner, s).map(|e: Arc<ChainEvent>| e.hash))
                .collect::<Result<Vec<_>>>()
                .map_err(|e| e.to_string())
        },
        memo: Default::default(),
    }
}
