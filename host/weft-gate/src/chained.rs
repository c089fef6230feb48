//! `ChainedGate`: records every decision of an inner gate on the ExoChain.
//!
//! A decision is one `gate.*` event; nothing is signed per decision. The
//! chain signs a tree head at each group commit, and the decision's
//! receipt (its event, inclusion proof and that durable head) comes from
//! [`crate::decision_receipt`] once the head is durable.

use std::sync::Arc;

use serde_json::Value;
use weft_chain::{ChainEvent, ChainManager, Durability};

use crate::receipt::{GateRecord, Receipt, RECORD_VERSION};
use crate::{canonical_json, DecisionKind, GateBackend, GateDecision, GateError};

/// Chain `source` of gate events.
pub const SOURCE: &str = "gate";

/// Audit wrapper: decision from `inner`, then one `gate.*` chain event. If
/// the chain cannot record the decision the action is denied (fail closed).
pub struct ChainedGate {
    inner: Arc<dyn GateBackend>,
    chain: Arc<ChainManager>,
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
    pub fn new(inner: Arc<dyn GateBackend>, chain: Arc<ChainManager>) -> Self {
        ChainedGate {
            inner,
            chain,
            durability: Durability::Buffered,
        }
    }

    /// Sets whether recording a decision waits for fdatasync.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Decides and records; returns the decision (with where it is recorded)
    /// and the chain event. Errors only if the chain refused the append.
    pub fn check_recorded(
        &self,
        agent: &str,
        action: &str,
        context: &Value,
    ) -> Result<(GateDecision, Arc<ChainEvent>), GateError> {
        let decision = self.inner.check(agent, action, context);
        self.record(decision, agent, action, context)
    }

    /// Records a refusal decided before the inner gate was asked (the
    /// kernel's own capability and ownership checks), like any other
    /// decision. Errors only if the chain refused the append.
    pub fn refuse(
        &self,
        agent: &str,
        action: &str,
        context: &Value,
        reason: String,
    ) -> Result<(GateDecision, Arc<ChainEvent>), GateError> {
        let decision = GateDecision::deny(agent, action, context, reason);
        self.record(decision, agent, action, context)
    }

    fn record(
        &self,
        decision: GateDecision,
        agent: &str,
        action: &str,
        context: &Value,
    ) -> Result<(GateDecision, Arc<ChainEvent>), GateError> {
        let kind = decision.kind();
        let canonical = canonical_json(context);
        let context_hash = weft_chain::shake256(canonical.as_bytes());
        let record = GateRecord {
            v: RECORD_VERSION,
            decision: kind,
            agent: agent.to_owned(),
            action: action.to_owned(),
            reason: decision.reason(),
            context: canonical,
        };
        let ev = match self.durability {
            Durability::Buffered => self.chain.append(SOURCE, kind.chain_kind(), &record)?,
            Durability::Durable => self
                .chain
                .append_durable(SOURCE, kind.chain_kind(), &record)?,
        };
        let receipt = Receipt {
            decision: kind,
            agent: record.agent,
            action: record.action,
            context_hash,
            chain_id: self.chain.chain_id(),
            chain_seq: Some(ev.seq),
        };
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
                    receipt: Receipt::unrecorded(DecisionKind::Deny, agent, action, context),
                }
            }
        }
    }
}
