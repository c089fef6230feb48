//! The governance subsystem: a governance component as the gate's last
//! word. `[governance]` in `weft.toml` names its component and policy;
//! policy reloads and component swaps are actions (`governance.reload`,
//! `governance.swap`) on the chain; `weaver gov ...` is [`control`].
//!
//! Failure policy: governance fails closed. A component that cannot be
//! loaded installs a gate that denies every action the capabilities allow
//! (recorded as `governance.failure`, logged).

mod component;
pub mod control;
mod env_control;
mod envs;
mod escalations;

use std::any::Any;
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use serde_json::{json, Value};
use weft_gate::GovernanceBackend;
use weft_kernel::console::LogLevel;
use weft_kernel::control::{ControlCx, ControlReply};
use weft_kernel::{
    ActCx, Action, BoxFuture, InitCx, KernelError, KernelResult, KernelView, Principal, Subsystem,
    SubsystemError,
};
use weft_runtime::{LoadedComponent, Runtime};

pub use component::{
    default_limits, Branch, ComponentGovernance, PolicySummary, RuleInfo, Severity, SwapRecord,
    Unavailable,
};
pub use control::cli;
pub use env_control::cli as env_cli;
pub use envs::{EnvGovernance, SetEnvPolicy};

use weft_kernel::components::{component_source, resolve};

/// `[governance]` in `weft.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GovernanceSection {
    /// `false` leaves the gate with capability rules only.
    pub enabled: Option<bool>,
    /// A replacement governance component.
    pub component: Option<PathBuf>,
    /// Policy file handed to the component; default its built-in policy.
    pub policy: Option<PathBuf>,
}

/// What the unit holds once booted.
struct Installed {
    runtime: Runtime,
    /// `None`: the component could not be loaded (the gate denies).
    governance: Option<Arc<ComponentGovernance>>,
    problem: Option<String>,
    /// The layer the gate asks: per-environment routing and learning mode.
    envs: Arc<EnvGovernance>,
}

/// The governance subsystem.
#[derive(Default)]
pub struct GovernanceUnit {
    installed: OnceLock<Installed>,
}

impl GovernanceUnit {
    /// The component governance in force (`None` when disabled or failed).
    pub fn governance(&self) -> Option<Arc<ComponentGovernance>> {
        self.installed.get().and_then(|i| i.governance.clone())
    }

    fn require(&self) -> KernelResult<Arc<ComponentGovernance>> {
        match self.installed.get() {
            Some(Installed {
                governance: Some(g),
                ..
            }) => Ok(g.clone()),
            Some(Installed {
                problem: Some(p), ..
            }) => Err(KernelError::Failed(format!(
                "governance is unavailable (denying every action): {p}"
            ))),
            _ => Err(KernelError::NotFound(
                "the governance subsystem is disabled".into(),
            )),
        }
    }

    fn envs(&self) -> KernelResult<Arc<EnvGovernance>> {
        self.installed
            .get()
            .map(|i| i.envs.clone())
            .ok_or_else(|| KernelError::NotFound("the governance subsystem is disabled".into()))
    }

    fn runtime(&self) -> KernelResult<Runtime> {
        self.installed
            .get()
            .map(|i| i.runtime.clone())
            .ok_or_else(|| KernelError::NotFound("the governance subsystem is disabled".into()))
    }
}

impl Subsystem for GovernanceUnit {
    fn name(&self) -> &'static str {
        "governance"
    }

    fn init(&self, cx: &InitCx<'_>) -> Result<(), SubsystemError> {
        let err = |e: KernelError| SubsystemError::new("governance", e);
        let section: GovernanceSection = cx.section().map_err(err)?;
        if section.enabled == Some(false) {
            cx.log(
                LogLevel::Warn,
                "disabled: the gate has capability rules only",
            );
            return Ok(());
        }
        let env = cx.environment().to_string();
        let config = cx.config_path();
        let built = (|| {
            let source = component_source(section.component.as_deref(), config, "governance.wasm");
            let c = source
                .load(cx.runtime())
                .map_err(crate::ComponentError::from)?;
            let policy = match &section.policy {
                Some(p) => {
                    let p = resolve(p, config);
                    Some(
                        std::fs::read_to_string(&p).map_err(|e| crate::ComponentError::Io {
                            context: format!("cannot read {}", p.display()),
                            source: e,
                        })?,
                    )
                }
                None => None,
            };
            let pool = component::pool_size(4);
            ComponentGovernance::new(cx.runtime(), c, policy.as_deref(), default_limits(), pool)
        })();
        let learning = cx
            .environments()
            .list()
            .iter()
            .filter(|e| e.learning)
            .map(|e| e.name.clone())
            .collect();
        let (backend, installed): (Arc<dyn GovernanceBackend>, (Option<_>, Option<String>)) =
            match built {
                Ok(g) => {
                    let g = Arc::new(g);
                    cx.note(
                        "governance.install",
                        &json!({ "component": g.component_digest(), "policy": g.policy_digest(),
                             "environment": env }),
                    )
                    .map_err(err)?;
                    cx.log(LogLevel::Info, format!("component installed ({env})"));
                    (g.clone(), (Some(g), None))
                }
                Err(e) => {
                    cx.note(
                        "governance.failure",
                        &json!({ "phase": "install", "kind": e.kind(), "error": e.to_string() }),
                    )
                    .map_err(err)?;
                    cx.log(
                        LogLevel::Error,
                        format!("unavailable, denying every action (fail closed): {e}"),
                    );
                    (
                        Arc::new(Unavailable(e.to_string())),
                        (None, Some(e.to_string())),
                    )
                }
            };
        let envs = Arc::new(EnvGovernance::new(backend, &env, learning));
        if let Some(g) = &installed.0 {
            env_control::install_own(cx, g, &envs)?;
        }
        cx.set_governance(envs.clone());
        // Set once: init runs once per kernel.
        let _first = self.installed.set(Installed {
            runtime: cx.runtime().clone(),
            governance: installed.0,
            problem: installed.1,
            envs,
        });
        Ok(())
    }

    fn actions(&self) -> &'static [&'static str] {
        &[
            "governance.reload",
            "governance.swap",
            "governance.rules",
            "governance.check",
            "gov.pending",
            "gov.approve",
            "gov.deny",
            "env.list",
            "env.set-policy",
        ]
    }

    fn control_ops(&self) -> &'static [&'static str] {
        &[
            "rules",
            "check",
            "reload",
            "swap",
            "pending",
            "approve",
            "deny",
            "env-ls",
            "env-show",
            "env-set-policy",
        ]
    }

    fn status(&self) -> Value {
        match self.installed.get() {
            None => json!("disabled"),
            Some(Installed {
                governance: Some(g),
                ..
            }) => {
                let p = g.policy_summary();
                json!(format!(
                    "{} ({} rules, {} active)",
                    p.name, p.rules, p.active_rules
                ))
            }
            Some(Installed { problem, .. }) => json!(format!(
                "UNAVAILABLE, denying: {}",
                problem.as_deref().unwrap_or("?")
            )),
        }
    }

    fn control<'a>(&'a self, cx: ControlCx<'a>) -> BoxFuture<'a, ControlReply> {
        Box::pin(control::serve(self, cx))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Replace the policy in force (`governance.reload`): the component
/// checks it first; a policy it rejects changes nothing.
pub struct Reload {
    /// The policy's TOML text.
    pub policy: String,
    governance: Option<Arc<ComponentGovernance>>,
}

impl Reload {
    /// Reload with `policy` (TOML).
    pub fn new(policy: String) -> Self {
        Reload {
            policy,
            governance: None,
        }
    }
}

impl Action for Reload {
    type Output = SwapRecord;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("governance.reload")
    }

    fn gate_context(&self) -> Value {
        json!({ "policy": blake3::hash(self.policy.as_bytes()).to_hex().to_string() })
    }

    fn authorize(&mut self, _who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        self.governance = Some(unit(k)?.require()?);
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<SwapRecord> {
        let g = self
            .governance
            .ok_or_else(|| KernelError::Failed("reload was not authorized".into()))?;
        let policy = self.policy;
        let rec = tokio::task::spawn_blocking(move || g.reload_policy(&policy))
            .await
            .map_err(|e| KernelError::Failed(format!("policy reload: {e}")))?
            .map_err(|e| KernelError::Invalid(format!("policy rejected: {e}")))?;
        cx.record("governance.swap", &rec)?;
        Ok(rec)
    }
}

/// Replace the governance component, keeping the policy
/// (`governance.swap`): checks in flight finish on the old one.
pub struct Swap {
    /// The new component.
    pub component: LoadedComponent,
    governance: Option<Arc<ComponentGovernance>>,
    envs: Option<Arc<EnvGovernance>>,
}

impl Swap {
    /// Swap in `component`.
    pub fn new(component: LoadedComponent) -> Self {
        Swap {
            component,
            governance: None,
            envs: None,
        }
    }
}

impl Action for Swap {
    type Output = SwapRecord;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("governance.swap")
    }

    fn gate_context(&self) -> Value {
        json!({ "component": self.component.digest.to_hex() })
    }

    fn authorize(&mut self, _who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        let u = unit(k)?;
        self.governance = Some(u.require()?);
        self.envs = Some(u.envs()?);
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<SwapRecord> {
        let (Some(g), Some(envs)) = (self.governance, self.envs) else {
            return Err(KernelError::Failed("swap was not authorized".into()));
        };
        let c = self.component;
        // Every environment with its own instance swaps too, keeping its
        // policy: one component judges everywhere.
        let (rec, own) = tokio::task::spawn_blocking(move || {
            let rec = g.swap_component(c.clone())?;
            let mut own = Vec::new();
            for (env, o) in envs.owned() {
                own.push(json!({ "environment": env, "swap": o.swap_component(c.clone())? }));
            }
            Ok::<_, crate::ComponentError>((rec, own))
        })
        .await
        .map_err(|e| KernelError::Failed(format!("component swap: {e}")))?
        .map_err(|e| KernelError::Invalid(format!("component refused: {e}")))?;
        cx.record("governance.swap", &rec)?;
        for o in &own {
            cx.record("env.policy", o)?;
        }
        Ok(rec)
    }
}

fn unit<'k>(k: &'k KernelView<'_>) -> KernelResult<&'k GovernanceUnit> {
    k.subsystem::<GovernanceUnit>()
        .ok_or_else(|| KernelError::NotFound("the governance subsystem is not registered".into()))
}
