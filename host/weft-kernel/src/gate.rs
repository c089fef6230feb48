//! The kernel's gate stack: a deny-by-default capability gate, then (once
//! one is installed) governance, all wrapped so every decision is signed and
//! recorded on the chain.

use std::sync::{Arc, RwLock};

use serde_json::Value;
use weft_gate::{CapabilityGate, GateBackend, GateDecision};

/// Capability rules first; if they permit, governance has the last word.
pub struct LayeredGate {
    pub capability: CapabilityGate,
    governance: RwLock<Option<Arc<dyn GateBackend>>>,
}

impl LayeredGate {
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
        if !d.is_permit() {
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
