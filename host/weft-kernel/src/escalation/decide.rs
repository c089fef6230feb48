//! [`Decide`]: a person approves or denies an escalation.

use std::borrow::Cow;

use serde_json::{json, Value};

use super::{Decided, EscalationState};
use crate::act::{ActCx, Action, KernelView, Principal};
use crate::error::{KernelError, KernelResult};

/// Approve or deny escalation `id` (gate actions `gov.approve`,
/// `gov.deny`), with the reason recorded beside the decider.
pub struct Decide {
    id: u64,
    approve: bool,
    reason: String,
}

impl Decide {
    /// Let escalation `id` through (once).
    pub fn approve(id: u64, reason: impl Into<String>) -> Self {
        Decide {
            id,
            approve: true,
            reason: reason.into(),
        }
    }

    /// Refuse escalation `id`.
    pub fn deny(id: u64, reason: impl Into<String>) -> Self {
        Decide {
            id,
            approve: false,
            reason: reason.into(),
        }
    }
}

impl Action for Decide {
    type Output = u64;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed(if self.approve {
            "gov.approve"
        } else {
            "gov.deny"
        })
    }

    fn gate_context(&self) -> Value {
        json!({ "escalation": self.id })
    }

    fn authorize(&mut self, who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        if self.reason.trim().is_empty() {
            return Err(KernelError::Invalid(
                "a decision needs a reason (`--reason ..`)".into(),
            ));
        }
        let e = k
            .shared()
            .escalations
            .get(self.id)
            .ok_or_else(|| KernelError::NotFound(format!("no escalation #{}", self.id)))?;
        // The operator is the person this queue waits for (its own
        // escalations included); anyone else granted `gov.*` may not judge
        // its own request.
        if e.principal == who.gate_name() && !matches!(who, Principal::Operator) {
            return Err(KernelError::Denied(format!(
                "`{}` cannot decide its own escalation #{}",
                e.principal, self.id
            )));
        }
        match e.state {
            EscalationState::Pending => Ok(()),
            s => Err(KernelError::Invalid(format!(
                "escalation #{} is {}, not pending",
                self.id,
                serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ))),
        }
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<u64> {
        let by = cx.who().gate_name().to_string();
        // One decision at a time, so two people cannot both decide one
        // escalation (the second is told it is no longer pending).
        let q = &cx.shared.escalations;
        let _one = q.deciding.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = q
            .get(self.id)
            .filter(|e| e.state != EscalationState::Pending)
        {
            return Err(KernelError::Invalid(format!(
                "escalation #{} was decided meanwhile ({:?})",
                e.id, e.state
            )));
        }
        let kind = if self.approve {
            "escalation.approve"
        } else {
            "escalation.deny"
        };
        let seq = cx.record_durable(
            kind,
            &Decided {
                id: self.id,
                by: Some(by.clone()),
                reason: Some(self.reason.clone()),
            },
        )?;
        q.decide(self.id, self.approve, &by, &self.reason);
        Ok(seq)
    }
}
