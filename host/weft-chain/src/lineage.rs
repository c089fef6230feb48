//! Provenance: "child was derived from parent" records on the chain.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::{ChainError, Result};
use crate::event::ChainEvent;
use crate::manager::{read, write, ChainManager};

/// Kind of lineage events.
pub const LINEAGE_KIND: &str = "lineage";

/// Payload of a `lineage` event.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LineageRecord {
    /// What `child` was derived from.
    pub parent: String,
    /// The derived thing.
    pub child: String,
    /// How it was derived, free-form (e.g. `upgrade`).
    pub derivation: String,
}

/// One verified step of a child → root walk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineageLink {
    /// Seq of the `lineage` event recording this step.
    pub seq: u64,
    /// See [`LineageRecord::parent`].
    pub parent: String,
    /// See [`LineageRecord::child`].
    pub child: String,
    /// See [`LineageRecord::derivation`].
    pub derivation: String,
    /// Hex hash of that event.
    pub hash: String,
}

impl ChainManager {
    /// Records that `child` was derived from `parent`; returns the event seq.
    /// The latest record for a child wins.
    pub fn record_lineage(&self, parent: &str, child: &str, derivation: &str) -> Result<u64> {
        if parent.is_empty() || child.is_empty() {
            return Err(ChainError::Lineage(
                "parent and child must be non-empty".into(),
            ));
        }
        if parent == child {
            return Err(ChainError::Lineage(format!(
                "{child} cannot derive from itself"
            )));
        }
        let rec = LineageRecord {
            parent: parent.into(),
            child: child.into(),
            derivation: derivation.into(),
        };
        Ok(self.append("lineage", LINEAGE_KIND, &rec)?.seq)
    }

    pub(crate) fn index_lineage(&self, ev: &ChainEvent) {
        if let Ok(rec) = ev.decode_payload::<LineageRecord>() {
            let mut idx = write(&self.inner.lineage);
            let slot = idx.entry(rec.child).or_insert(ev.seq);
            *slot = (*slot).max(ev.seq);
        }
    }

    /// Walks child → parent → … → root (an entity with no lineage record),
    /// checking each record's event hash and its links to both neighbours.
    /// Returns the links in walk order (child first).
    pub fn verify_lineage(&self, child: &str) -> Result<Vec<LineageLink>> {
        let mut links = Vec::new();
        let mut seen = HashSet::new();
        let mut cur = child.to_string();
        seen.insert(cur.clone());
        loop {
            let Some(seq) = read(&self.inner.lineage).get(&cur).copied() else {
                break;
            };
            let ev = self.verified_event(seq)?;
            let rec: LineageRecord = ev.decode_payload()?;
            if rec.child != cur {
                return Err(ChainError::Lineage(format!(
                    "event {seq} records child {:?}, expected {cur:?}",
                    rec.child
                )));
            }
            links.push(LineageLink {
                seq,
                parent: rec.parent.clone(),
                child: rec.child,
                derivation: rec.derivation,
                hash: ev.hash_hex(),
            });
            if !seen.insert(rec.parent.clone()) {
                return Err(ChainError::Lineage(format!(
                    "cycle: {} appears twice in the lineage of {child}",
                    rec.parent
                )));
            }
            cur = rec.parent;
        }
        if links.is_empty() {
            return Err(ChainError::Lineage(format!(
                "no lineage recorded for {child}"
            )));
        }
        Ok(links)
    }

    /// Returns the event after checking it is in the chain: an inclusion
    /// proof against the durable signed head (made durable if needed).
    fn verified_event(&self, seq: u64) -> Result<std::sync::Arc<ChainEvent>> {
        let bad = |why: String| ChainError::Lineage(format!("event {seq}: {why}"));
        let receipt = self.prove_durable(seq)?;
        receipt.verify(&self.public_key()).map_err(bad)?;
        let ev = self.read(seq)?.ok_or_else(|| bad("missing".into()))?;
        if ev.hash != receipt.leaf_hash {
            return Err(bad("differs from the proven leaf".into()));
        }
        Ok(ev)
    }
}
