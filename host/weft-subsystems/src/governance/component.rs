//! [`ComponentGovernance`]: the gate's governance backend, answered by a
//! governance component. It appends nothing to the chain itself: its
//! decisions are recorded by the gate, and its swaps by the actions that
//! make them.
//!
//! Instances are long-lived (the policy is parsed once, inside the
//! component) and pooled: a check takes a free instance, or waits for one.
//! A *generation* is one component plus one policy with its own pool; hot
//! swaps build a new generation, check it works, and publish it atomically.
//! Checks in flight keep the generation they started with, so a swap never
//! drops or fails a check.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde::Serialize;
use weft_gate::{
    FiredRule, GovernanceBackend, GovernanceDecision, GovernanceError, GovernanceRequest,
    GovernanceVerdict, RuleSeverity,
};
use weft_runtime::{Limits, LoadedComponent, RunError, Runtime};

use crate::bindings::governance::weft::kernel::governance_types as wit;
use crate::bindings::governance::{Governance, GovernancePre};
use crate::exec::{lock, world, Guest, Instance};
use crate::ComponentError;

world!(Governance, GovernancePre, "governance");

pub use wit::{Branch, PolicySummary, RuleInfo, Severity};

/// Per-check limits: a policy evaluation is small; anything near these
/// bounds is a broken component.
pub fn default_limits() -> Limits {
    Limits {
        fuel: 50_000_000,
        timeout: std::time::Duration::from_millis(500),
        max_memory_bytes: 64 << 20,
        max_output_bytes: 64 << 10,
        ..Limits::default()
    }
}

/// One component with one policy and its pool of instances.
struct Generation {
    guest: Guest<Governance>,
    /// `None`: the policy built into the component.
    policy: Option<Arc<str>>,
    summary: PolicySummary,
    slots: Vec<Mutex<Option<Instance<Governance>>>>,
    next: AtomicUsize,
}

impl Generation {
    fn new(
        runtime: &Runtime,
        component: LoadedComponent,
        policy: Option<Arc<str>>,
        limits: Limits,
        pool: usize,
    ) -> Result<Self, ComponentError> {
        let guest = Guest::new(runtime, component, limits)?;
        // A generation is published only once one instance has accepted the
        // policy, so a bad component or policy never replaces a good one.
        let mut first = guest.instantiate()?;
        let summary = load(&guest, &mut first, policy.as_deref())?;
        let mut slots: Vec<_> = (1..pool.max(1)).map(|_| Mutex::new(None)).collect();
        slots.insert(0, Mutex::new(Some(first)));
        Ok(Generation {
            guest,
            policy,
            summary,
            slots,
            next: AtomicUsize::new(0),
        })
    }

    /// Run `f` on a free instance (creating it if needed). An instance that
    /// fails is dropped; the next call on that slot gets a fresh one.
    fn with_instance<R>(
        &self,
        f: impl FnOnce(&Guest<Governance>, &mut Instance<Governance>) -> Result<R, RunError>,
    ) -> Result<R, ComponentError> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut slot = (0..n)
            .find_map(|i| self.slots[(start + i) % n].try_lock().ok())
            .unwrap_or_else(|| lock(&self.slots[start]));
        let inst = match slot.take() {
            Some(i) => i,
            None => {
                let mut i = self.guest.instantiate()?;
                load(&self.guest, &mut i, self.policy.as_deref())?;
                i
            }
        };
        let mut inst = inst;
        let r = f(&self.guest, &mut inst)?;
        *slot = Some(inst);
        Ok(r)
    }
}

/// Hand `policy` to a fresh instance (the built-in one needs nothing).
fn load(
    guest: &Guest<Governance>,
    inst: &mut Instance<Governance>,
    policy: Option<&str>,
) -> Result<PolicySummary, ComponentError> {
    match policy {
        Some(text) => guest
            .call(inst, async |w, s| w.call_load_policy(s, text).await)?
            .map_err(ComponentError::Policy),
        None => {
            // Summarise the built-in policy from its rules.
            let rules = guest.call(inst, async |w, s| w.call_rules(s).await)?;
            Ok(PolicySummary {
                name: "built-in".into(),
                rules: rules.len() as u32,
                active_rules: rules.iter().filter(|r| r.active).count() as u32,
                environments: Vec::new(),
                dimensions: Vec::new(),
            })
        }
    }
}

/// What a swap changed, as recorded in `governance.swap`.
#[derive(Clone, Debug, Serialize)]
pub struct SwapRecord {
    /// `component` (a swap) or `policy` (a reload).
    pub reason: &'static str,
    /// BLAKE3 of the component replaced.
    pub old_component: String,
    /// BLAKE3 of the component now in force.
    pub new_component: String,
    /// BLAKE3 of the policy replaced (`None`: the built-in one).
    pub old_policy: Option<String>,
    /// BLAKE3 of the policy now in force (`None`: the built-in one).
    pub new_policy: Option<String>,
}

/// The governance backend backed by a component.
pub struct ComponentGovernance {
    runtime: Runtime,
    current: ArcSwap<Generation>,
    limits: Mutex<Limits>,
    pool: usize,
    /// Serialises swaps (checks never take it).
    swapping: Mutex<()>,
    /// Bumped by every published swap, so remembered permits are dropped.
    epoch: AtomicU64,
}

fn policy_digest(p: &Option<Arc<str>>) -> Option<String> {
    p.as_ref()
        .map(|t| blake3::hash(t.as_bytes()).to_hex().to_string())
}

/// Instances a governance component keeps for parallel checks: one per
/// core, at most `max`.
pub fn pool_size(max: usize) -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(max))
}

impl ComponentGovernance {
    /// Instantiate `component`, load `policy` (or keep the built-in one),
    /// and check it answers. `pool` instances serve checks in parallel.
    pub fn new(
        runtime: &Runtime,
        component: LoadedComponent,
        policy: Option<&str>,
        limits: Limits,
        pool: usize,
    ) -> Result<Self, ComponentError> {
        let policy: Option<Arc<str>> = policy.map(Arc::from);
        let generation = Generation::new(runtime, component, policy, limits.clone(), pool)?;
        Ok(ComponentGovernance {
            runtime: runtime.clone(),
            current: ArcSwap::from_pointee(generation),
            limits: Mutex::new(limits),
            pool: pool.max(1),
            swapping: Mutex::new(()),
            epoch: AtomicU64::new(0),
        })
    }

    /// Digest of the component in force.
    pub fn component_digest(&self) -> String {
        self.current.load().guest.component.digest.to_hex()
    }

    /// The component in force (a new environment's instance starts from it).
    pub fn component(&self) -> LoadedComponent {
        self.current.load().guest.component.clone()
    }

    /// BLAKE3 of the policy text in force (`None`: the built-in one).
    pub fn policy_digest(&self) -> Option<String> {
        policy_digest(&self.current.load().policy)
    }

    /// What the component says about the policy in force: name, rule counts,
    /// environments, dimensions.
    pub fn policy_summary(&self) -> PolicySummary {
        self.current.load().summary.clone()
    }

    /// The rules in force (`weaver gov rules`).
    pub fn rules(&self) -> Result<Vec<RuleInfo>, ComponentError> {
        self.current
            .load_full()
            .with_instance(|g, i| g.call(i, async |w, s| w.call_rules(s).await))
    }

    /// Replace the component, keeping the policy. Checks in flight finish
    /// on the old one; on error nothing changes.
    pub fn swap_component(&self, component: LoadedComponent) -> Result<SwapRecord, ComponentError> {
        let _g = lock(&self.swapping);
        let old = self.current.load_full();
        let next = Generation::new(
            &self.runtime,
            component,
            old.policy.clone(),
            lock(&self.limits).clone(),
            self.pool,
        )?;
        self.publish("component", &old, next)
    }

    /// Replace the policy (TOML), keeping the component. A policy the
    /// component rejects is an error and changes nothing.
    pub fn reload_policy(&self, toml: &str) -> Result<SwapRecord, ComponentError> {
        let _g = lock(&self.swapping);
        let old = self.current.load_full();
        let next = Generation::new(
            &self.runtime,
            old.guest.component.clone(),
            Some(Arc::from(toml)),
            lock(&self.limits).clone(),
            self.pool,
        )?;
        self.publish("policy", &old, next)
    }

    fn publish(
        &self,
        reason: &'static str,
        old: &Generation,
        next: Generation,
    ) -> Result<SwapRecord, ComponentError> {
        let rec = SwapRecord {
            reason,
            old_component: old.guest.component.digest.to_hex(),
            new_component: next.guest.component.digest.to_hex(),
            old_policy: policy_digest(&old.policy),
            new_policy: policy_digest(&next.policy),
        };
        self.current.store(Arc::new(next));
        self.epoch.fetch_add(1, Ordering::Release);
        Ok(rec)
    }

    /// Change the per-check limits of new instances and calls.
    pub fn set_limits(&self, limits: Limits) {
        *lock(&self.limits) = limits.clone();
        self.current.load().guest.set_limits(limits);
    }
}

impl GovernanceBackend for ComponentGovernance {
    fn policy_epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn evaluate(&self, req: &GovernanceRequest) -> Result<GovernanceVerdict, GovernanceError> {
        let gen = self.current.load_full();
        let wreq = wit::Request {
            agent: req.agent.clone(),
            action: req.action.clone(),
            effect: req.effect.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            context: req.context.to_string(),
            environment: req.environment.clone(),
        };
        let out = gen.with_instance(|g, i| g.call(i, async |w, s| w.call_evaluate(s, &wreq).await));
        // A failure denies (the gate fails closed) and its reason, naming
        // the component, is in the recorded decision.
        out.map(verdict).map_err(|e| {
            let digest = gen.guest.component.digest.to_hex();
            let digest = &digest[..16.min(digest.len())];
            match e {
                ComponentError::Run(RunError::OutOfFuel { .. }) => GovernanceError::OutOfFuel,
                ComponentError::Run(r) => {
                    GovernanceError::Trapped(format!("{r} (component {digest})"))
                }
                other => GovernanceError::Backend(format!("{other} (component {digest})")),
            }
        })
    }
}

fn verdict(r: wit::DecisionResult) -> GovernanceVerdict {
    GovernanceVerdict {
        decision: match r.decision {
            wit::Decision::Permit => GovernanceDecision::Permit,
            wit::Decision::PermitWithWarning => GovernanceDecision::PermitWithWarning,
            wit::Decision::EscalateToHuman => GovernanceDecision::EscalateToHuman,
            wit::Decision::Deny => GovernanceDecision::Deny,
        },
        fired_rules: r
            .fired
            .into_iter()
            .map(|f| FiredRule {
                id: f.id,
                severity: match f.severity {
                    Severity::Advisory => RuleSeverity::Informational,
                    Severity::Warning => RuleSeverity::Warning,
                    Severity::Blocking | Severity::Critical => RuleSeverity::Blocking,
                },
                reason: format!("{} ({:?}): {}", branch_name(f.branch), f.severity, f.reason),
            })
            .collect(),
        reason: r.reason,
    }
}

fn branch_name(b: Branch) -> &'static str {
    match b {
        Branch::Legislative => "legislative",
        Branch::Executive => "executive",
        Branch::Judicial => "judicial",
    }
}

/// A backend that denies everything: installed when governance is enabled
/// but its component cannot be loaded (fail closed).
pub struct Unavailable(pub String);

impl GovernanceBackend for Unavailable {
    fn evaluate(&self, _req: &GovernanceRequest) -> Result<GovernanceVerdict, GovernanceError> {
        Err(GovernanceError::Backend(format!(
            "governance component unavailable: {}",
            self.0
        )))
    }
}
