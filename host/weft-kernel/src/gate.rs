//! The kernel's gate stack: a deny-by-default capability gate, then (once
//! one is installed) governance, wrapped in a [`ChainedGate`] so every
//! decision is recorded with a receipt. [`GateStack::permit`] is what
//! [`crate::act`] asks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use dashmap::DashMap;
use serde_json::Value;
use weft_gate::{CapabilityGate, ChainedGate, GateBackend, GateDecision};

use crate::act::{PermitCache, Principal};
use crate::error::{KernelError, KernelResult};

/// Capability rules first; if they permit, governance has the last word,
/// except for the kernel's own bookkeeping (governance would be judging
/// the records of its own failures).
pub struct LayeredGate {
    /// The deny-by-default rules: per agent, from its capabilities; for
    /// `operator` from `[operator]`; for `app:*` the app lifecycle actions.
    pub capability: CapabilityGate,
    governance: RwLock<Option<Arc<dyn GateBackend>>>,
}

impl LayeredGate {
    /// A gate with `capability` rules and no governance yet.
    pub fn new(capability: CapabilityGate) -> Self {
        LayeredGate {
            capability,
            governance: RwLock::new(None),
        }
    }

    /// Install or replace the governance backend. In-flight checks keep the
    /// backend they started with.
    pub fn set_governance(&self, gov: Option<Arc<dyn GateBackend>>) {
        *self.governance.write().unwrap_or_else(|p| p.into_inner()) = gov;
    }

    /// The governance backend in force.
    pub fn governance(&self) -> Option<Arc<dyn GateBackend>> {
        self.governance
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl GateBackend for LayeredGate {
    fn check(&self, agent: &str, action: &str, context: &Value) -> GateDecision {
        let d = self.capability.check(agent, action, context);
        if !d.is_permit() || agent == "kernel" {
            return d;
        }
        match self.governance() {
            Some(g) => g.check(agent, action, context),
            None => d,
        }
    }

    fn policy_epoch(&self) -> u64 {
        self.governance().map_or(0, |g| g.policy_epoch())
    }
}

/// The gate as the kernel uses it: decisions, their records, and the
/// permits that may be reused.
pub(crate) struct GateStack {
    pub layered: Arc<LayeredGate>,
    pub chained: ChainedGate,
    /// Bumped whenever the kernel changes policy (governance installed or
    /// replaced), invalidating remembered permits.
    epoch: AtomicU64,
    /// Permits of principals without a cache of their own, keyed by
    /// principal (with the pid, so a reused agent name never inherits),
    /// action and object.
    shared: DashMap<(String, u64, String, String), (u64, u64)>,
}

impl GateStack {
    pub fn new(layered: Arc<LayeredGate>, chained: ChainedGate) -> Self {
        GateStack {
            layered,
            chained,
            epoch: AtomicU64::new(0),
            shared: DashMap::new(),
        }
    }

    pub fn policy_epoch(&self) -> (u64, u64) {
        (
            self.epoch.load(Ordering::Acquire),
            self.layered.policy_epoch(),
        )
    }

    /// Install or replace governance; remembered permits are dropped.
    pub fn set_governance(&self, gov: Option<Arc<dyn GateBackend>>) {
        self.layered.set_governance(gov);
        self.epoch.fetch_add(1, Ordering::Release);
        self.shared.clear();
    }

    /// Ask the gate (or reuse a permit) for `who` doing `action`. Every
    /// decision asked is recorded by the chained gate; a decision that
    /// cannot be recorded is a denial.
    pub fn permit(
        &self,
        who: &Principal,
        action: &str,
        context: impl FnOnce() -> Value,
        reuse: Option<&str>,
        cache: Option<&mut PermitCache>,
    ) -> KernelResult<()> {
        let epoch = self.policy_epoch();
        let agent = who.gate_name();
        let key = |object: &str| {
            (
                agent.to_string(),
                who.pid(),
                action.to_string(),
                object.to_string(),
            )
        };
        if let Some(object) = reuse {
            let hit = match &cache {
                Some(c) => c.holds(action, object, epoch),
                None => self.shared.get(&key(object)).is_some_and(|e| *e == epoch),
            };
            if hit {
                return Ok(());
            }
        }
        match self.chained.check(agent, action, &context()) {
            GateDecision::Permit { .. } => {
                if let Some(object) = reuse {
                    match cache {
                        Some(c) => c.insert(action, object, epoch),
                        None => {
                            self.shared.insert(key(object), epoch);
                        }
                    }
                }
                Ok(())
            }
            GateDecision::Defer { reason } => {
                who.count_denial();
                Err(KernelError::Deferred(format!("{action}: {reason}")))
            }
            GateDecision::Deny { reason, .. } => {
                who.count_denial();
                Err(KernelError::Denied(format!("{action}: {reason}")))
            }
        }
    }

    /// Record a refusal the kernel decided itself (capabilities, ownership,
    /// ceiling) as a `gate.deny` with a receipt.
    pub fn refuse(
        &self,
        who: &Principal,
        action: &str,
        context: &Value,
        reason: &str,
    ) -> KernelResult<()> {
        self.chained
            .refuse(who.gate_name(), action, context, reason.to_string())
            .map(|_| ())
            .map_err(|e| KernelError::Failed(format!("cannot record a refusal: {e}")))
    }
}
