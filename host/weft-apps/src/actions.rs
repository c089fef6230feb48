//! The apps unit's actions: the operator's `app.install`, `app.upgrade`,
//! `app.start`, `app.stop`, `app.remove`, `trust.add`, `trust.remove`, and
//! the app's own `hook.run`. Each is gated and recorded by the kernel's
//! chokepoint; lifecycle events are recorded durably, so nothing `weaver`
//! reported as done is lost to a `kill -9` right after.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{json, Value};
use weft_kernel::{ActCx, Action, KernelError, KernelResult, KernelView, Principal};
use weft_runtime::{ComponentKind, Grants, Limits, LoadedComponent};

use crate::app_error::AppError;
use crate::manager::{AppManager, Prepared, ProgressFn};
use crate::registry::{AppInfo, Progress};
use crate::unit::AppsUnit;

/// The manager of the registered apps unit.
fn manager(k: &KernelView<'_>) -> KernelResult<Arc<AppManager>> {
    k.subsystem::<AppsUnit>()
        .and_then(AppsUnit::manager)
        .ok_or_else(|| KernelError::NotFound("apps are not available in this kernel".into()))
}

/// An app error as the kernel reports it: its kind kept, so the control
/// API and callers can tell `already-installed` from `manifest`.
pub(crate) fn to_kernel(e: AppError) -> KernelError {
    match e {
        AppError::NotFound(_) => KernelError::NotFound(e.to_string()),
        AppError::Denied { .. } => KernelError::Denied(e.to_string()),
        AppError::Kernel { ref source, .. } if matches!(**source, KernelError::Denied(_)) => {
            KernelError::Denied(e.to_string())
        }
        other => KernelError::Subsystem {
            kind: other.kind(),
            internal: matches!(other.kind(), "kernel" | "chain" | "io" | "registry"),
            message: other.to_string(),
        },
    }
}

/// Progress is best effort: a client that went away changes nothing.
pub type Report = Arc<dyn Fn(Progress) + Send + Sync>;

fn no_report() -> Report {
    Arc::new(|_| {})
}

/// Install a prepared (checked, verified) bundle (`app.install`).
pub struct Install {
    prepared: Prepared,
    report: Report,
    manager: Option<Arc<AppManager>>,
}

impl Install {
    /// Install `prepared`, reporting progress to `report`.
    pub fn new(prepared: Prepared, report: Option<Report>) -> Self {
        Install {
            prepared,
            report: report.unwrap_or_else(no_report),
            manager: None,
        }
    }
}

impl Action for Install {
    type Output = AppInfo;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("app.install")
    }

    fn gate_context(&self) -> Value {
        self.prepared.facts()
    }

    fn authorize(&mut self, _who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        self.manager = Some(manager(k)?);
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<AppInfo> {
        let m = self.manager.ok_or_else(unauthorized)?;
        let report: ProgressFn<'_> = &*self.report;
        let name = self.prepared.name().to_string();
        let r = m
            .install(cx, self.prepared, report)
            .await
            .map_err(to_kernel);
        synced(cx, &m, &name, r)
    }
}

/// Replace an installed app's version with a prepared bundle's
/// (`app.upgrade`), rolling back if the new one does not start.
pub struct Upgrade {
    name: String,
    prepared: Prepared,
    report: Report,
    manager: Option<Arc<AppManager>>,
}

impl Upgrade {
    /// Upgrade `name` to `prepared`.
    pub fn new(name: &str, prepared: Prepared, report: Option<Report>) -> Self {
        Upgrade {
            name: name.to_string(),
            prepared,
            report: report.unwrap_or_else(no_report),
            manager: None,
        }
    }
}

impl Action for Upgrade {
    type Output = AppInfo;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("app.upgrade")
    }

    fn gate_context(&self) -> Value {
        self.prepared.facts()
    }

    fn authorize(&mut self, _who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        self.manager = Some(manager(k)?);
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<AppInfo> {
        let m = self.manager.ok_or_else(unauthorized)?;
        let report: ProgressFn<'_> = &*self.report;
        let r = m
            .upgrade(cx, &self.name, self.prepared, report)
            .await
            .map_err(to_kernel);
        synced(cx, &m, &self.name, r)
    }
}

/// `r`, once the app's tree node and environment follow what it did (a
/// failed operation may have changed the state too). The operation's own
/// error wins over the sync's.
fn synced<T>(
    cx: &mut ActCx<'_>,
    m: &AppManager,
    name: &str,
    r: KernelResult<T>,
) -> KernelResult<T> {
    let s = crate::tree::sync(cx, m, name);
    let out = r?;
    s?;
    Ok(out)
}

/// `app.sync`, which boot performs as the kernel: every installed app's
/// environment and `/apps` tree node brought in line with the registry.
pub fn sync(manager: Arc<AppManager>) -> impl Action<Output = ()> {
    crate::tree::Sync::new(manager)
}

fn unauthorized() -> KernelError {
    KernelError::Failed("the action was not authorized".into())
}

/// Which lifecycle operation a [`Lifecycle`] action is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `app.start`.
    Start,
    /// `app.stop`.
    Stop,
    /// `app.remove` (stopping it first).
    Remove,
    /// `app.resume`: the kernel starting again, at boot, what was running.
    Resume,
}

/// Start, stop or remove an installed app.
pub struct Lifecycle {
    op: Op,
    name: String,
    manager: Option<Arc<AppManager>>,
}

impl Lifecycle {
    /// `op` on app `name`.
    pub fn new(op: Op, name: &str) -> Self {
        Lifecycle {
            op,
            name: name.to_string(),
            manager: None,
        }
    }
}

impl Action for Lifecycle {
    type Output = Option<AppInfo>;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self.op {
            Op::Start => "app.start",
            Op::Stop => "app.stop",
            Op::Remove => "app.remove",
            Op::Resume => "app.resume",
        })
    }

    fn gate_context(&self) -> Value {
        json!({ "name": self.name })
    }

    fn authorize(&mut self, who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        if self.op == Op::Resume && !matches!(who, Principal::Kernel) {
            return Err(KernelError::Denied(
                "only the kernel resumes apps at boot".into(),
            ));
        }
        self.manager = Some(manager(k)?);
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<Option<AppInfo>> {
        let m = self.manager.ok_or_else(unauthorized)?;
        let r = match self.op {
            Op::Start => m.start(cx, &self.name).await.map(Some),
            Op::Resume => m.resume(cx, &self.name).await.map(Some),
            Op::Stop => m.stop(cx, &self.name).await.map(Some),
            Op::Remove => m.remove(cx, &self.name).await.map(|()| None),
        };
        synced(cx, &m, &self.name, r.map_err(to_kernel))
    }
}

/// Trust a signer key (`trust.add`) or stop trusting one (`trust.remove`).
pub struct Trust {
    name: String,
    /// `Some(hex key)` adds, `None` removes.
    key: Option<String>,
    manager: Option<Arc<AppManager>>,
}

impl Trust {
    /// Trust `key` (hex Ed25519 public key) under `name`.
    pub fn add(name: &str, key: &str) -> Self {
        Trust {
            name: name.to_string(),
            key: Some(key.to_string()),
            manager: None,
        }
    }

    /// Stop trusting `name`.
    pub fn remove(name: &str) -> Self {
        Trust {
            name: name.to_string(),
            key: None,
            manager: None,
        }
    }
}

impl Action for Trust {
    type Output = ();

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed(if self.key.is_some() {
            "trust.add"
        } else {
            "trust.remove"
        })
    }

    fn gate_context(&self) -> Value {
        json!({ "name": self.name, "key": self.key })
    }

    fn authorize(&mut self, _who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        self.manager = Some(manager(k)?);
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<()> {
        let m = self.manager.ok_or_else(unauthorized)?;
        let mut store = m.trust_store().map_err(to_kernel)?;
        let refused = |e: crate::TrustError| match e {
            crate::TrustError::BadName(_)
            | crate::TrustError::BadKey { .. }
            | crate::TrustError::NameTaken { .. } => KernelError::Subsystem {
                kind: "trust",
                message: e.to_string(),
                internal: false,
            },
            crate::TrustError::NotFound(_) => KernelError::NotFound(e.to_string()),
            other => KernelError::Failed(other.to_string()),
        };
        match &self.key {
            Some(key) => {
                store.add(&self.name, key).map_err(refused)?;
                cx.record_durable("trust.add", &json!({ "name": self.name, "key": key }))?;
            }
            None => {
                store.remove(&self.name).map_err(refused)?;
                cx.record_durable("trust.remove", &json!({ "name": self.name }))?;
            }
        }
        Ok(())
    }
}

/// Run one of an app's hooks (`hook.run`), as the app: a tool gets
/// `{"event": EVENT, "app": NAME}`; a WASI command runs with no arguments
/// and must exit 0. No grants; default limits.
pub struct RunHook {
    /// The app.
    pub app: String,
    /// `on-install`, `on-start`, `on-stop` or `on-remove`.
    pub hook: String,
    /// `install`, `start`, `stop` or `remove`.
    pub event: String,
    /// The component's path in the bundle.
    pub path: String,
    /// The component, digest-checked.
    pub component: LoadedComponent,
}

impl Action for RunHook {
    type Output = ();

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("hook.run")
    }

    fn gate_context(&self) -> Value {
        json!({ "app": self.app, "hook": self.hook, "component": self.component.digest.to_hex() })
    }

    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        match who {
            Principal::App(a) if a.name() == self.app => Ok(()),
            Principal::Kernel | Principal::Operator => Ok(()),
            other => Err(KernelError::Denied(format!(
                "`{}` may not run the hooks of app `{}`",
                other.gate_name(),
                self.app
            ))),
        }
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<()> {
        let limits = Limits::default();
        let grants = Grants::default();
        let (outcome, usage) = match self.component.kind {
            ComponentKind::Tool => {
                let input = json!({ "event": self.event, "app": self.app }).to_string();
                match cx
                    .runtime()
                    .run_tool(&self.component, &input, &limits, &grants)
                    .await
                {
                    Ok(out) => (out.result.map(|_| ()).map_err(|e| e.to_string()), out.usage),
                    Err(f) => (Err(f.to_string()), f.usage),
                }
            }
            ComponentKind::Command | ComponentKind::Preview1 => match cx
                .runtime()
                .run_command(&self.component, &limits, &grants)
                .await
            {
                Ok(out) if out.exit_code == 0 => (Ok(()), out.usage),
                Ok(out) => (
                    Err(format!(
                        "exited with code {}: {}",
                        out.exit_code,
                        String::from_utf8_lossy(&out.stderr).trim()
                    )),
                    out.usage,
                ),
                Err(f) => (Err(f.to_string()), f.usage),
            },
            ComponentKind::Other => (
                Err("neither a tool nor a WASI command component".to_string()),
                weft_runtime::Usage::default(),
            ),
        };
        cx.record(
            "hook.run",
            &json!({
                "app": self.app, "hook": self.hook, "component": self.path,
                "digest": self.component.digest.to_hex(),
                "outcome": outcome.as_ref().err().map_or("ok", |e| e.as_str()),
                "fuel_used": usage.fuel_used, "wall_us": usage.wall.as_micros() as u64,
            }),
        )?;
        outcome.map_err(KernelError::Failed)
    }
}
