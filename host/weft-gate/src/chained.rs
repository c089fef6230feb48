//! `ChainedGate`: records every decision of an inner gate on the ExoChain
//! with a signed receipt.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use serde_json::Value;
use weft_chain::{ChainEvent, ChainManager, Durability};

use crate::receipt::{GateRecord, Receipt};
use crate::{canonical_json, DecisionKind, GateBackend, GateDecision, GateError};

/// Chain `source` of gate events.
pub const SOURCE: &str = "gate";

/// Audit wrapper: decision from `inner`, then one `gate.*` chain event whose
/// payload carries a receipt signed over the event's own seq. If the chain
/// cannot record the decision the action is denied (fail closed).
pub struct ChainedGate {
    inner: Arc<dyn GateBackend>,
    chain: Arc<ChainManager>,
    key: SigningKey,
    durability: Durability,
}

impl std::fmt::Debug for ChainedGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainedGate")
            .field("chain", &self.chain)
            .field("durability", &self.durability)
            .finish()
    }
}

impl ChainedGate {
    /// Buffered recording: the event reaches disk within the chain's flush
    /// interval. Use `with_durability(Durable)` to fsync every decision.
    pub fn new(inner: Arc<dyn GateBackend>, chain: Arc<ChainManager>, key: SigningKey) -> Self {
        ChainedGate {
            inner,
            chain,
            key,
            durability: Durability::Buffered,
        }
    }

    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Decides and records; returns the decision (with its receipt attached)
    /// and the chain event. Errors only if the chain refused the append.
    pub fn check_recorded(
        &self,
        agent: &str,
        action: &str,
        context: &Value,
    ) -> Result<(GateDecision, Arc<ChainEvent>), GateError> {
        let decision = self.inner.check(agent, action, context);
        let kind = decision.kind();
        let canonical = canonical_json(context);
        let context_hash = weft_chain::shake256(canonical.as_bytes());
        let reason = decision.reason();
        let chain_id = self.chain.chain_id();
        let mut signed = None;
        // The receipt signs the seq of the event that records it, so it is
        // built inside the chain's append lock.
        let ev = self
            .chain
            .append_with(SOURCE, kind.chain_kind(), self.durability, |seq| {
                let r = Receipt::sign(&self.key, kind, agent, action, context_hash, chain_id, seq);
                let record = GateRecord::new(&r, reason, canonical);
                signed = Some(r);
                record
            })?;
        let receipt =
            signed.ok_or_else(|| GateError::InvalidReceipt("receipt not built".into()))?;
        let decision = match decision {
            GateDecision::Permit { mut token } => {
                token.receipt = Some(receipt);
                GateDecision::Permit { token }
            }
            GateDecision::Deny { reason, .. } => GateDecision::Deny { reason, receipt },
            defer @ GateDecision::Defer { .. } => defer,
        };
        Ok((decision, ev))
    }
}

impl GateBackend for ChainedGate {
    fn check(&self, agent: &str, action: &str, context: &Value) -> GateDecision {
        match self.check_recorded(agent, action, context) {
            Ok((d, _)) => d,
            Err(e) => {
                tracing::error!(agent, action, error = %e, "gate decision could not be recorded; denying");
                GateDecision::Deny {
                    reason: format!("gate audit chain unavailable, denying (fail closed): {e}"),
                    receipt: Receipt::unsigned(DecisionKind::Deny, agent, action, context),
                }
            }
        }
    }
}
