//! [`AppsChecker`]: runs the `apps` component's `check` in a fresh, bounded
//! instance per call and turns its answer into an install plan or errors
//! rendered as `file:line:col: key: message`.

use std::path::Path;
use std::time::Duration;

use weft_model::policy::CheckPolicy;
use weft_runtime::{Grants, Limits, LoadedComponent, RunError, Runtime, StoreData};

#[allow(missing_docs)]
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "apps",
        additional_derives: [PartialEq],
        imports: { default: async },
        exports: { default: async },
    });
}

/// The plan records of `wit/apps.wit`, as the host sees them: the shared
/// model ([`weft_model::plan`]) and the capability types it uses.
pub mod types {
    pub use weft_model::plan::*;
    pub use weft_model::{AgentLimits, Capabilities, IpcScope, SandboxPolicy, ToolPermissions};
}

use types::{Diagnostic, InstallPlan};

/// Why a manifest was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The manifest is wrong; one diagnostic per problem, sorted.
    #[error("{}", render(.file, .diagnostics))]
    Invalid {
        /// The manifest's path, for messages.
        file: String,
        /// What is wrong, with line and column.
        diagnostics: Vec<Diagnostic>,
    },
    /// The checker component itself failed (trap, out of fuel, timeout...).
    #[error("the manifest checker failed on {file}: {error}")]
    Checker {
        /// The manifest's path, for messages.
        file: String,
        /// How the component failed.
        error: RunError,
    },
    /// The checker component could not be loaded or linked.
    #[error("cannot load the manifest checker: {0}")]
    Load(RunError),
}

/// `file:line:col: key: message`, one line per diagnostic.
pub fn render(file: &str, diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| render_one(file, d))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One diagnostic as `file:line:col: key: message` (no `key: ` when it has no key).
pub fn render_one(file: &str, d: &Diagnostic) -> String {
    if d.key.is_empty() {
        format!("{file}:{}:{}: {}", d.line, d.col, d.message)
    } else {
        format!("{file}:{}:{}: {}: {}", d.line, d.col, d.key, d.message)
    }
}

/// The manifest checker: the `apps` component, pre-instantiated once.
#[derive(Clone)]
pub struct AppsChecker {
    rt: Runtime,
    pre: bindings::AppsPre<StoreData<()>>,
    component: LoadedComponent,
    limits: Limits,
    policy: CheckPolicy,
}

impl AppsChecker {
    /// Default limits for one check: ample for a 1 MiB manifest, small
    /// enough that a broken checker fails fast.
    pub fn default_limits() -> Limits {
        Limits {
            fuel: 2_000_000_000,
            timeout: Duration::from_secs(5),
            max_memory_bytes: 64 << 20,
            ..Limits::default()
        }
    }

    /// Load the checker from component bytes.
    pub fn new(rt: &Runtime, wasm: &[u8]) -> Result<Self, CheckError> {
        let component = rt.load(wasm).map_err(CheckError::Load)?;
        let linker = rt.linker::<()>().map_err(CheckError::Load)?;
        let pre = linker
            .instantiate_pre(component.component().map_err(CheckError::Load)?)
            .map_err(|e| CheckError::Load(invalid(format!("{e:#}"))))?;
        let pre = bindings::AppsPre::new(pre).map_err(|e| {
            CheckError::Load(invalid(format!(
                "not the weft:kernel apps world (exports `check`): {e:#}"
            )))
        })?;
        Ok(AppsChecker {
            rt: rt.clone(),
            pre,
            component,
            limits: Self::default_limits(),
            policy: CheckPolicy::default(),
        })
    }

    /// Load the checker from a component file.
    pub fn from_file(rt: &Runtime, path: &Path) -> Result<Self, CheckError> {
        let bytes = std::fs::read(path).map_err(|e| {
            CheckError::Load(RunError::Host(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        })?;
        Self::new(rt, &bytes)
    }

    /// Replace the per-call limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Check against the kernel's `policy` too (the default checks only
    /// the manifest's own rules: `weaver app check` without a kernel).
    pub fn with_policy(mut self, policy: CheckPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The kernel policy it checks against.
    pub fn policy(&self) -> &CheckPolicy {
        &self.policy
    }

    /// The checker component.
    pub fn component(&self) -> &LoadedComponent {
        &self.component
    }

    /// Check `manifest` (the text of `file`) in a fresh instance.
    pub async fn check(&self, manifest: &str, file: &str) -> Result<InstallPlan, CheckError> {
        let failed = |error| CheckError::Checker {
            file: file.to_string(),
            error,
        };
        let mut store = self
            .rt
            .new_store(&self.limits, &Grants::default(), ())
            .map_err(failed)?;
        self.rt.arm(&mut store, &self.limits);
        let pre = self.pre.clone();
        let (text, name) = (manifest.to_string(), file.to_string());
        let policy = crate::wit::policy(&self.policy);
        let answer = self
            .rt
            .guard(&mut store, &self.limits, async |s| {
                let apps = pre.instantiate_async(&mut *s).await?;
                apps.call_check(&mut *s, &text, &name, &policy).await
            })
            .await
            .map_err(failed)?;
        answer
            .map(crate::wit::plan)
            .map_err(|diagnostics| CheckError::Invalid {
                file: file.to_string(),
                diagnostics: diagnostics
                    .into_iter()
                    .map(crate::wit::diagnostic)
                    .collect(),
            })
    }
}

fn invalid(reason: String) -> RunError {
    RunError::InvalidComponent { reason }
}
