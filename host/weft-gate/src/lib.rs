//! The Weft gate: every agent action passes a [`GateBackend`] that answers
//! permit, defer or deny.
//!
//! * [`CapabilityGate`]: deny-by-default allow/deny glob rules (fast path).
//! * [`GovernanceGate`]: delegates to a [`GovernanceBackend`] (a WebAssembly
//!   component in production) and fails closed on backend errors.
//! * [`ChainedGate`]: wraps any backend and records each decision on the
//!   ExoChain as `gate.permit` / `gate.defer` / `gate.deny`; the chain's
//!   receipt for that event ([`decision_receipt`]: event, inclusion proof,
//!   signed tree head) proves the decision offline.

mod canonical;
pub mod capability;
pub mod chained;
/// The one pattern language of Weft (see [`weft_model::glob`]).
pub use weft_model::glob;
pub mod governance;
pub mod receipt;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use canonical::canonical_json;
pub use capability::{CapabilityGate, CapabilityRule};
pub use chained::ChainedGate;
pub use governance::{
    FiredRule, GovernanceBackend, GovernanceDecision, GovernanceError, GovernanceGate,
    GovernanceRequest, GovernanceVerdict, RuleSeverity, DEFAULT_DIMENSIONS,
};
pub use receipt::{
    check_gate_event, context_hash, decision_receipt, verify_chain_receipts,
    verify_decision_receipt, verify_receipts, GateRecord, Receipt, ReceiptReport, RECORD_VERSION,
};

/// The three possible outcomes, without their data. Used for chain kinds and
/// the receipt signing layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionKind {
    /// The action may go ahead.
    Permit,
    /// Not now: needs a human or a later decision.
    Defer,
    /// Refused.
    Deny,
}

impl DecisionKind {
    /// Numeric code of the decision (1 permit, 2 defer, 3 deny).
    pub fn code(self) -> u8 {
        match self {
            DecisionKind::Permit => 1,
            DecisionKind::Defer => 2,
            DecisionKind::Deny => 3,
        }
    }

    /// Lower-case name, as in the serialized form (`permit`, `defer`, `deny`).
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Permit => "permit",
            DecisionKind::Defer => "defer",
            DecisionKind::Deny => "deny",
        }
    }

    /// Chain event kind recording this decision.
    pub fn chain_kind(self) -> &'static str {
        match self {
            DecisionKind::Permit => "gate.permit",
            DecisionKind::Defer => "gate.defer",
            DecisionKind::Deny => "gate.deny",
        }
    }

    /// Inverse of [`DecisionKind::chain_kind`]; `None` for a non-gate event kind.
    pub fn from_chain_kind(kind: &str) -> Option<Self> {
        match kind {
            "gate.permit" => Some(DecisionKind::Permit),
            "gate.defer" => Some(DecisionKind::Defer),
            "gate.deny" => Some(DecisionKind::Deny),
            _ => None,
        }
    }

    /// Inverse of [`DecisionKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "permit" => Some(DecisionKind::Permit),
            "defer" => Some(DecisionKind::Defer),
            "deny" => Some(DecisionKind::Deny),
            _ => None,
        }
    }
}

/// Proof handed to the caller that an action was permitted; the agent loop
/// carries it into the action so the permit can be traced back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermitToken {
    /// The agent that was permitted.
    pub agent: String,
    /// The action it was permitted.
    pub action: String,
    /// When, nanoseconds since the UNIX epoch.
    pub issued_ns: u64,
    /// Non-fatal governance warnings (PermitWithWarning).
    pub warnings: Vec<String>,
    /// Set by `ChainedGate`: what was decided and the seq recording it.
    pub receipt: Option<Receipt>,
}

/// A gate's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateDecision {
    /// The action may go ahead.
    Permit {
        /// Evidence of the permit, to carry into the action.
        token: PermitToken,
    },
    /// Needs a human (or later re-evaluation); treat as "not now".
    Defer {
        /// Why it was deferred.
        reason: String,
    },
    /// Refused, with the statement of the refusal (`ChainedGate` records
    /// it and fills in its seq).
    Deny {
        /// Why it was refused.
        reason: String,
        /// What was refused, and where it is recorded.
        receipt: Receipt,
    },
}

impl GateDecision {
    /// The outcome without its data.
    pub fn kind(&self) -> DecisionKind {
        match self {
            GateDecision::Permit { .. } => DecisionKind::Permit,
            GateDecision::Defer { .. } => DecisionKind::Defer,
            GateDecision::Deny { .. } => DecisionKind::Deny,
        }
    }

    /// True for [`GateDecision::Permit`].
    pub fn is_permit(&self) -> bool {
        matches!(self, GateDecision::Permit { .. })
    }

    /// Defer/deny reason, or the joined warnings of a permit.
    pub fn reason(&self) -> String {
        match self {
            GateDecision::Permit { token } => token.warnings.join("; "),
            GateDecision::Defer { reason } | GateDecision::Deny { reason, .. } => reason.clone(),
        }
    }

    pub(crate) fn permit(agent: &str, action: &str, warnings: Vec<String>) -> Self {
        GateDecision::Permit {
            token: PermitToken {
                agent: agent.to_owned(),
                action: action.to_owned(),
                issued_ns: weft_chain::now_ns(),
                warnings,
                receipt: None,
            },
        }
    }

    pub(crate) fn deny(
        agent: &str,
        action: &str,
        context: &serde_json::Value,
        reason: String,
    ) -> Self {
        GateDecision::Deny {
            receipt: Receipt::unrecorded(DecisionKind::Deny, agent, action, context),
            reason,
        }
    }
}

/// Anything that can decide whether `agent` may perform `action`.
/// Synchronous and object-safe: the kernel holds `Arc<dyn GateBackend>`.
pub trait GateBackend: Send + Sync {
    /// Decides whether `agent` may perform `action`; `context` carries the request's details
    /// (e.g. its `effect` vector for governance).
    fn check(&self, agent: &str, action: &str, context: &serde_json::Value) -> GateDecision;

    /// Changes whenever the same question might get a different answer
    /// (policy reloaded, component swapped) and never goes back to an
    /// earlier value. Callers that remember permits drop them when it moves.
    fn policy_epoch(&self) -> u64 {
        0
    }
}

impl<T: GateBackend + ?Sized> GateBackend for Arc<T> {
    fn check(&self, agent: &str, action: &str, context: &serde_json::Value) -> GateDecision {
        (**self).check(agent, action, context)
    }

    fn policy_epoch(&self) -> u64 {
        (**self).policy_epoch()
    }
}

/// Configuration and verification errors of the gate crate.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// A rule's agent or action pattern does not parse.
    #[error("invalid pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A receipt or gate record is malformed or does not verify.
    #[error("receipt invalid: {0}")]
    InvalidReceipt(String),
    /// The chain failed while recording or reading.
    #[error("chain: {0}")]
    Chain(#[from] weft_chain::ChainError),
}

impl From<weft_model::glob::PatternError> for GateError {
    fn from(e: weft_model::glob::PatternError) -> Self {
        GateError::InvalidPattern {
            pattern: e.pattern,
            reason: e.reason,
        }
    }
}
