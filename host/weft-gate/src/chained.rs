//! `ChainedGate`: records every decision of an inner gate on the ExoChain
//! with a signed receipt.
//!
//! Signing is the expensive part of a decision (an Ed25519 signature costs
//! more than the rest of a governed tool call). A decision that repeats an
//! earlier one exactly — same verdict, agent, action and context — is still
//! made afresh and recorded as its own event, but its record cites the
//! earlier signed receipt (`repeats`) instead of signing the same statement
//! again. `weaver chain verify` checks that every citation points at a
//! verified receipt of the identical statement.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ed25519_dalek::SigningKey;
use serde_json::Value;
use weft_chain::{ChainEvent, ChainManager, Durability};

use crate::receipt::{GateRecord, Receipt};
use crate::{canonical_json, DecisionKind, GateBackend, GateDecision, GateError};

/// Chain `source` of gate events.
pub const SOURCE: &str = "gate";

/// Most signed statements remembered for citation; past this the memo
/// starts over (the next decision of each kind is signed again).
const MEMO_CAPACITY: usize = 1 << 16;

/// What a receipt states, minus where it is recorded.
type Statement = (DecisionKind, String, String, [u8; 32]);

/// Audit wrapper: decision from `inner`, then one `gate.*` chain event whose
/// payload carries a receipt signed over the event's own seq (or cites the
/// signed receipt of an identical earlier decision). If the chain cannot
/// record the decision the action is denied (fail closed).
pub struct ChainedGate {
    inner: Arc<dyn GateBackend>,
    chain: Arc<ChainManager>,
    key: SigningKey,
    durability: Durability,
    /// Signed receipts by statement; `None` signs every decision.
    memo: Option<Mutex<HashMap<Statement, Receipt>>>,
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
            memo: Some(Mutex::new(HashMap::new())),
        }
    }

    /// Sets whether recording a decision waits for fdatasync.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sign every decision, even one identical to an earlier signed one.
    pub fn sign_every_decision(mut self, yes: bool) -> Self {
        self.memo = if yes {
            None
        } else {
            Some(Mutex::new(HashMap::new()))
        };
        self
    }

    fn memo(&self) -> Option<std::sync::MutexGuard<'_, HashMap<Statement, Receipt>>> {
        self.memo
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()))
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
        self.record(decision, agent, action, context)
    }

    /// Records a refusal decided before the inner gate was asked (the
    /// kernel's own capability and ownership checks), with a receipt like
    /// any other decision. Errors only if the chain refused the append.
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
        let reason = decision.reason();
        let chain_id = self.chain.chain_id();
        let statement: Statement = (kind, agent.to_owned(), action.to_owned(), context_hash);
        let earlier = self.memo().and_then(|m| m.get(&statement).cloned());
        let (receipt, ev) = match earlier {
            Some(signed) => {
                let ev =
                    self.chain
                        .append_with(SOURCE, kind.chain_kind(), self.durability, |seq| {
                            GateRecord::citing(&signed, reason, canonical, seq)
                        })?;
                (signed, ev)
            }
            None => {
                let mut signed = None;
                // The receipt signs the seq of the event that records it, so
                // it is built inside the chain's append lock.
                let ev =
                    self.chain
                        .append_with(SOURCE, kind.chain_kind(), self.durability, |seq| {
                            let r = Receipt::sign(
                                &self.key,
                                kind,
                                agent,
                                action,
                                context_hash,
                                chain_id,
                                seq,
                            );
                            let record = GateRecord::new(&r, reason, canonical);
                            signed = Some(r);
                            record
                        })?;
                let receipt =
                    signed.ok_or_else(|| GateError::InvalidReceipt("receipt not built".into()))?;
                if let Some(mut m) = self.memo() {
                    if m.len() >= MEMO_CAPACITY {
                        m.clear();
                    }
                    m.insert(statement, receipt.clone());
                }
                (receipt, ev)
            }
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
                    receipt: Receipt::unsigned(DecisionKind::Deny, agent, action, context),
                }
            }
        }
    }
}
