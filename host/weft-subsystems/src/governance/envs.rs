//! Governance per environment. Environments without a policy of their own
//! share the kernel's governance instance (its policy judges each one
//! under its own `[environments.NAME]` thresholds); an environment with
//! `policy = FILE` in `weft.toml`, or one given a policy by
//! `weaver env set-policy`, gets an instance of its own. In an environment
//! in learning mode a denial or escalation is recorded but not enforced.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::{json, Value};
use weft_gate::{GateBackend, GateDecision, GovernanceBackend, GovernanceGate, PermitToken};
use weft_kernel::{ActCx, Action, KernelError, KernelResult, KernelView, Principal};

use super::component::{default_limits, ComponentGovernance, SwapRecord};

/// One environment's own governance.
pub(crate) struct Own {
    pub component: Arc<ComponentGovernance>,
    gate: GovernanceGate,
}

/// The gate's governance layer: routes each decision to the governance of
/// the environment it is judged in (the context's `environment`, else the
/// kernel's default).
pub struct EnvGovernance {
    default_env: String,
    shared: GovernanceGate,
    own: RwLock<BTreeMap<String, Arc<Own>>>,
    learning: BTreeSet<String>,
    /// Bumped when an environment gets an instance of its own.
    added: AtomicU64,
}

impl EnvGovernance {
    /// Route to `shared` unless an environment has its own; `learning`
    /// names the environments whose governance only advises.
    pub fn new(
        shared: Arc<dyn GovernanceBackend>,
        default_env: &str,
        learning: BTreeSet<String>,
    ) -> Self {
        EnvGovernance {
            default_env: default_env.to_string(),
            shared: GovernanceGate::new(shared, default_env),
            own: RwLock::new(BTreeMap::new()),
            learning,
            added: AtomicU64::new(0),
        }
    }

    /// Give `env` its own instance (replacing any it had).
    pub(crate) fn set_own(&self, env: &str, component: Arc<ComponentGovernance>) {
        let gate = GovernanceGate::new(component.clone(), env);
        let own = Arc::new(Own { component, gate });
        self.own
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(env.to_string(), own);
        self.added.fetch_add(1, Ordering::Release);
    }

    /// `env`'s own instance, if it has one.
    pub(crate) fn own(&self, env: &str) -> Option<Arc<ComponentGovernance>> {
        self.own
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(env)
            .map(|o| o.component.clone())
    }

    /// Every environment's own instance.
    pub(crate) fn owned(&self) -> Vec<(String, Arc<ComponentGovernance>)> {
        self.own
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, o)| (k.clone(), o.component.clone()))
            .collect()
    }

    /// Is `env` in learning mode?
    pub fn learning(&self, env: &str) -> bool {
        self.learning.contains(env)
    }
}

impl GateBackend for EnvGovernance {
    fn check(&self, agent: &str, action: &str, context: &Value) -> GateDecision {
        let env = context
            .get("environment")
            .and_then(Value::as_str)
            .unwrap_or(&self.default_env);
        let own = self
            .own
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(env)
            .cloned();
        let d = match &own {
            Some(o) => o.gate.check(agent, action, context),
            None => self.shared.check(agent, action, context),
        };
        if d.is_permit() || !self.learning.contains(env) {
            return d;
        }
        let would = match &d {
            GateDecision::Defer { .. } => "escalate",
            _ => "deny",
        };
        GateDecision::Permit {
            token: PermitToken {
                agent: agent.to_owned(),
                action: action.to_owned(),
                issued_ns: weft_chain::now_ns(),
                warnings: vec![format!(
                    "learning mode in `{env}`: governance would {would} (not enforced): {}",
                    d.reason()
                )],
                receipt: None,
            },
        }
    }

    fn policy_epoch(&self) -> u64 {
        let own: u64 = self
            .own
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|o| o.component.policy_epoch())
            .sum();
        self.shared.policy_epoch() + own + self.added.load(Ordering::Acquire)
    }
}

/// `env.set-policy`: give environment `env` the policy `policy` (TOML).
/// The component checks it first; a policy it rejects changes nothing.
/// Lasts until the kernel stops (`policy =` under `[environments.NAME]`
/// keeps it).
pub struct SetEnvPolicy {
    /// The environment.
    pub env: String,
    /// The policy's TOML text.
    pub policy: String,
    found: Option<(Arc<EnvGovernance>, Option<Arc<ComponentGovernance>>)>,
}

impl SetEnvPolicy {
    /// Set `env`'s policy to `policy`.
    pub fn new(env: String, policy: String) -> Self {
        SetEnvPolicy {
            env,
            policy,
            found: None,
        }
    }
}

impl Action for SetEnvPolicy {
    type Output = SwapRecord;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("env.set-policy")
    }

    fn gate_context(&self) -> Value {
        json!({ "environment": self.env,
                "policy": blake3::hash(self.policy.as_bytes()).to_hex().to_string() })
    }

    fn authorize(&mut self, _who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        if k.environments().get(&self.env).is_none() {
            return Err(KernelError::NotFound(k.environments().unknown(&self.env)));
        }
        let unit = super::unit(k)?;
        let shared = unit.require()?;
        let envs = unit.envs()?;
        self.found = Some((envs, Some(shared)));
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<SwapRecord> {
        let (envs, shared) = self
            .found
            .ok_or_else(|| KernelError::Failed("set-policy was not authorized".into()))?;
        let env = self.env;
        let name = env.clone();
        let policy = self.policy;
        let runtime = cx.runtime().clone();
        let rec = tokio::task::spawn_blocking(move || -> Result<SwapRecord, String> {
            match envs.own(&env) {
                Some(g) => g.reload_policy(&policy).map_err(|e| e.to_string()),
                None => {
                    let shared = shared.ok_or("governance is unavailable")?;
                    let pool = super::component::pool_size(4);
                    let g = ComponentGovernance::new(
                        &runtime,
                        shared.component(),
                        Some(&policy),
                        default_limits(),
                        pool,
                    )
                    .map_err(|e| e.to_string())?;
                    let rec = SwapRecord {
                        reason: "policy",
                        old_component: shared.component_digest(),
                        new_component: g.component_digest(),
                        old_policy: shared.policy_digest(),
                        new_policy: g.policy_digest(),
                    };
                    envs.set_own(&env, Arc::new(g));
                    Ok(rec)
                }
            }
        })
        .await
        .map_err(|e| KernelError::Failed(format!("policy load: {e}")))?
        .map_err(|e| KernelError::Invalid(format!("policy rejected: {e}")))?;
        cx.record("env.policy", &json!({ "environment": name, "swap": &rec }))?;
        Ok(rec)
    }
}
