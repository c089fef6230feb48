//! The apps subsystem: the `apps` component checks manifests, the
//! [`AppManager`] carries out their plans. `[apps]` in `weft.toml` names a
//! replacement checker component; `weaver app ...` and `weaver trust ...`
//! are [`crate::control`]. At boot, what was running is started again (as
//! the kernel, `app.resume`).
//!
//! Failure policy: a checker that cannot be loaded leaves the kernel
//! running without apps (recorded as `apps.failure`); every `app` command
//! then says why.

use std::any::Any;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use serde_json::{json, Value};
use weft_kernel::components::component_source;
use weft_kernel::console::LogLevel;
use weft_kernel::control::{ControlCx, ControlReply};
use weft_kernel::{BoxFuture, InitCx, Kernel, KernelError, Principal, Subsystem, SubsystemError};

use crate::actions::{Lifecycle, Op};
use crate::checker::AppsChecker;
use crate::manager::AppManager;
use crate::registry::AppState;

/// `[apps]` in `weft.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppsSection {
    /// A replacement `apps` (manifest checker) component.
    pub component: Option<PathBuf>,
}

/// The apps subsystem.
#[derive(Default)]
pub struct AppsUnit {
    checker: OnceLock<AppsChecker>,
    manager: OnceLock<Arc<AppManager>>,
    problem: OnceLock<String>,
}

impl AppsUnit {
    /// The app manager, once the kernel runs (`None` without a checker).
    pub fn manager(&self) -> Option<Arc<AppManager>> {
        self.manager.get().cloned()
    }

    /// Why apps are unavailable, if they are.
    pub fn problem(&self) -> Option<&str> {
        self.problem.get().map(String::as_str)
    }
}

/// Carry out the trust changes queued while no kernel ran, as the
/// operator who asked for them (gated, recorded); a refused one is logged
/// and noted, and the queue is cleared either way.
async fn apply_pending(kernel: &Kernel) -> Result<(), crate::AppError> {
    let state = kernel.state_dir();
    let queued = crate::pending::pending(state)?;
    for op in queued {
        let action = match &op {
            crate::pending::PendingTrust::Add { name, key } => {
                crate::actions::Trust::add(name, key)
            }
            crate::pending::PendingTrust::Remove { name } => crate::actions::Trust::remove(name),
        };
        if let Err(e) = kernel.act(&Principal::Operator, action).await {
            kernel.log(
                LogLevel::Error,
                format!("apps: queued trust change {op:?} refused: {e}"),
            );
            let note = weft_kernel::Note::new(
                "apps",
                "trust.queued.refused",
                json!({ "change": op, "error": e.to_string() }),
            );
            kernel.act(&Principal::Kernel, note).await?;
        }
    }
    crate::pending::clear(state)?;
    Ok(())
}

impl Subsystem for AppsUnit {
    fn name(&self) -> &'static str {
        "apps"
    }

    fn link(&self, linker: &mut weft_kernel::agent::AgentLinker) -> weft_kernel::KernelResult<()> {
        crate::supervisor::link(linker)
    }

    fn init(&self, cx: &InitCx<'_>) -> Result<(), SubsystemError> {
        let err = |e: KernelError| SubsystemError::new("apps", e);
        let section: AppsSection = cx.section().map_err(err)?;
        let path = component_source(section.component.as_deref(), cx.config_path(), "apps.wasm");
        match path
            .bytes()
            .map_err(crate::checker::CheckError::Load)
            .and_then(|b| AppsChecker::new(cx.runtime(), &b))
        {
            Ok(c) => {
                // init runs once per kernel.
                let _first = self.checker.set(c);
            }
            Err(e) => {
                cx.note(
                    "apps.failure",
                    &json!({ "phase": "install", "error": e.to_string() }),
                )
                .map_err(err)?;
                cx.log(LogLevel::Error, format!("unavailable: {e}"));
                let _first = self.problem.set(format!("{}: {e}", path.display()));
            }
        }
        Ok(())
    }

    fn start<'a>(&'a self, kernel: &'a Kernel) -> BoxFuture<'a, Result<(), SubsystemError>> {
        Box::pin(async move {
            let Some(checker) = self.checker.get() else {
                return Ok(());
            };
            let err = |e: crate::AppError| SubsystemError::new("apps", e);
            let m = Arc::new(AppManager::open(kernel.clone(), checker.clone()).map_err(err)?);
            if let Some(what) = m.take_recovered() {
                kernel.log(
                    LogLevel::Warn,
                    format!("apps: an operation cut off by a crash was recovered: {what}"),
                );
                let note = weft_kernel::Note::new("apps", "app.recovered", what).durable();
                kernel
                    .act(&Principal::Kernel, note)
                    .await
                    .map_err(|e| SubsystemError::new("apps", e))?;
            }
            let resume = m.to_resume().map_err(err)?;
            if let Err(e) = kernel
                .act(&Principal::Kernel, crate::tree::Sync::new(m.clone()))
                .await
            {
                kernel.log(LogLevel::Warn, format!("apps: {e}"));
            }
            // Set once: start runs once per kernel.
            let _first = self.manager.set(m);
            apply_pending(kernel).await.map_err(err)?;
            for name in resume {
                // A failure is recorded in the app's entry (Failed) and on
                // the chain (`app.failed`); the kernel goes on.
                if let Err(e) = kernel
                    .act(&Principal::Kernel, Lifecycle::new(Op::Resume, &name))
                    .await
                {
                    kernel.log(LogLevel::Warn, format!("apps: {name} did not resume: {e}"));
                }
            }
            Ok(())
        })
    }

    fn actions(&self) -> &'static [&'static str] {
        &[
            "app.install",
            "app.upgrade",
            "app.start",
            "app.stop",
            "app.remove",
            "app.resume",
            "app.sync",
            "app.list",
            "trust.add",
            "trust.remove",
            "trust.list",
            "hook.run",
        ]
    }

    fn control_ops(&self) -> &'static [&'static str] {
        &[
            "ls",
            "install",
            "upgrade",
            "start",
            "stop",
            "rm",
            "trust-ls",
            "trust-add",
            "trust-rm",
        ]
    }

    fn app_actions(&self) -> &'static [&'static str] {
        &["hook.run"]
    }

    fn status(&self) -> Value {
        match (self.manager.get(), self.problem.get()) {
            (Some(m), _) => {
                let apps = m.list();
                let running = apps.iter().filter(|a| a.state == AppState::Running).count();
                json!(format!("{} installed, {running} running", apps.len()))
            }
            (None, Some(p)) => json!(format!("UNAVAILABLE: {p}")),
            (None, None) => Value::Null,
        }
    }

    fn control<'a>(&'a self, cx: ControlCx<'a>) -> BoxFuture<'a, ControlReply> {
        Box::pin(crate::control::serve(self, cx))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
