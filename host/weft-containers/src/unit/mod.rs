//! The containers subsystem (K4): container services of apps, run on a
//! Docker-compatible engine.
//!
//! `[containers]` in `weft.toml` turns it on (without it, manifests with
//! container services are refused at install). At install it makes each
//! service's image present (`prepare-image`: loads the bundle's archive or
//! pulls the reference); at start it creates, starts and watches the
//! container (`register-service`), waits for its first healthy probe and
//! registers it with the kernel's service registry, so agents reach it with
//! `Service`/`ServiceMethod` messages ([`service::ContainerEndpoint`]). A
//! container left running by a crashed kernel is adopted when its app
//! starts again; one no running app owns is removed at boot. Every engine
//! operation that changes what runs is an action ([`actions`]) on the chain.

pub mod actions;
pub mod config;
pub mod control;
mod images;
mod lifecycle;
pub mod service;
pub mod supervisor;

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};
use weft_kernel::control::{ControlCx, ControlReply};
use weft_kernel::{
    AppClearCx, AppStepCx, BoxFuture, ClearReason, InitCx, Kernel, KernelError, KernelResult,
    Subsystem, SubsystemError,
};
use weft_model::plan::Step;
use weft_model::policy::{CheckPolicy, ContainerEngine};
use weft_subsystems::health::ComponentHealth;

pub use config::{ContainersConfig, ContainersSection};
pub use images::{ImageStore, PreparedImage};

use crate::{ContainerSummary, Engine};
use service::Service;

/// The containers unit. Register it after the health and before the apps
/// unit (apps resume at boot and need it; it sweeps after they did).
#[derive(Default)]
pub struct ContainersUnit {
    inner: Arc<Inner>,
}

/// The unit's state, shared with its supervisors.
#[derive(Default)]
pub(crate) struct Inner {
    cfg: OnceLock<ContainersConfig>,
    images: OnceLock<ImageStore>,
    /// Connected on first use (and again after a failure).
    engine: tokio::sync::Mutex<Option<Engine>>,
    /// The `weft.kernel` label: this kernel's chain key, shortened.
    kernel_id: OnceLock<String>,
    /// Running services by (app, service).
    services: Mutex<BTreeMap<(String, String), Arc<Service>>>,
    /// Containers found when an app started, that the start may adopt.
    adoptable: Mutex<BTreeMap<String, Vec<ContainerSummary>>>,
    health: OnceLock<ComponentHealth>,
    /// The last engine failure, for `weaver kernel status`.
    engine_problem: Mutex<Option<String>>,
}

impl ContainersUnit {
    /// The unit, configured at boot from `[containers]`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The configuration, when `[containers]` is present.
    pub fn config(&self) -> Option<&ContainersConfig> {
        self.inner.cfg.get()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Subsystem for ContainersUnit {
    fn name(&self) -> &'static str {
        "containers"
    }

    fn init(&self, cx: &InitCx<'_>) -> Result<(), SubsystemError> {
        let err = |e: &dyn std::fmt::Display| SubsystemError::new("containers", e);
        let section: Option<ContainersSection> = cx.section().map_err(|e| err(&e))?;
        let Some(section) = section else {
            cx.log(
                weft_kernel::console::LogLevel::Info,
                "no [containers] section: container services are refused",
            );
            return Ok(());
        };
        let cfg = section
            .check(cx.config_path().and_then(|p| p.parent()))
            .map_err(|e| err(&e))?;
        let images = ImageStore::open(&cx.state_dir().join("containers")).map_err(|e| err(&e))?;
        let _ = self.inner.images.set(images);
        let _ = self.inner.cfg.set(cfg);
        Ok(())
    }

    fn start<'a>(&'a self, kernel: &'a Kernel) -> BoxFuture<'a, Result<(), SubsystemError>> {
        Box::pin(async move {
            if self.inner.cfg.get().is_none() {
                return Ok(());
            }
            let key = weft_chain::public_key_hex(&kernel.chain().public_key());
            let _ = self.inner.kernel_id.set(key.chars().take(16).collect());
            if let Some(h) = kernel
                .subsystem::<weft_subsystems::health::HealthUnit>()
                .and_then(|u| u.health())
            {
                let _ = self.inner.health.set(h.clone());
                h.watch(lifecycle::health_watcher(
                    kernel.clone(),
                    self.inner.clone(),
                ));
            }
            // An engine that is down now is reported, not fatal: apps with
            // container services fail to start, saying why.
            match self.inner.engine().await {
                Ok(e) => kernel.log(
                    weft_kernel::console::LogLevel::Info,
                    format!(
                        "containers: engine {} (API {}) at {}",
                        e.info().version,
                        e.info().api_version,
                        e.info().socket.display()
                    ),
                ),
                Err(e) => kernel.log(
                    weft_kernel::console::LogLevel::Error,
                    format!("containers: {e}"),
                ),
            }
            Ok(())
        })
    }

    fn booted<'a>(&'a self, kernel: &'a Kernel) -> BoxFuture<'a, Result<(), SubsystemError>> {
        Box::pin(async move {
            if self.inner.cfg.get().is_none() {
                return Ok(());
            }
            if let Err(e) = self.inner.sweep(kernel).await {
                kernel.log(
                    weft_kernel::console::LogLevel::Error,
                    format!("containers: sweeping orphans: {e}"),
                );
            }
            Ok(())
        })
    }

    fn shutdown<'a>(&'a self, kernel: &'a Kernel) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let all: Vec<Arc<Service>> = lock(&self.inner.services).values().cloned().collect();
            for s in all {
                if let Err(e) = self.inner.stop_service(kernel, &s, "kernel-shutdown").await {
                    kernel.log(
                        weft_kernel::console::LogLevel::Error,
                        format!("containers: stopping {}/{}: {e}", s.app, s.name),
                    );
                }
            }
        })
    }

    fn actions(&self) -> &'static [&'static str] {
        actions::ACTIONS
    }

    fn app_actions(&self) -> &'static [&'static str] {
        actions::APP_ACTIONS
    }

    fn control_ops(&self) -> &'static [&'static str] {
        &["logs"]
    }

    fn check_policy(&self, policy: &mut CheckPolicy) {
        if let Some(cfg) = self.inner.cfg.get() {
            policy.containers = ContainerEngine::Policy(cfg.check_policy());
        }
    }

    fn claims_step(&self, step: &Step) -> bool {
        self.inner.cfg.get().is_some()
            && match step {
                Step::PrepareImage(_) => true,
                Step::RegisterService(s) => s.source.is_container(),
                _ => false,
            }
    }

    fn app_step<'a>(&'a self, cx: AppStepCx<'a>) -> BoxFuture<'a, KernelResult<()>> {
        Box::pin(async move {
            match cx.step {
                Step::PrepareImage(s) => self.inner.prepare_image(&cx, s).await.map(|_| ()),
                Step::RegisterService(s) if s.source.is_container() => {
                    self.inner.start_service(&cx, s).await
                }
                other => Err(KernelError::Invalid(format!(
                    "containers does not carry out {other:?}"
                ))),
            }
        })
    }

    fn app_clear<'a>(&'a self, cx: AppClearCx<'a>) -> BoxFuture<'a, KernelResult<()>> {
        Box::pin(async move {
            if self.inner.cfg.get().is_none() {
                return Ok(());
            }
            match cx.reason {
                ClearReason::Start => self.inner.before_start(&cx).await,
                ClearReason::Stop => self.inner.stop_app(&cx).await,
                ClearReason::Remove => self.inner.remove_app(&cx).await,
            }
        })
    }

    fn app_started<'a>(&'a self, cx: AppClearCx<'a>) -> BoxFuture<'a, KernelResult<()>> {
        Box::pin(async move {
            if self.inner.cfg.get().is_none() {
                return Ok(());
            }
            self.inner.after_start(&cx).await
        })
    }

    fn app_problems(&self, app: &str) -> Vec<String> {
        lock(&self.inner.services)
            .values()
            .filter(|s| s.app == app)
            .filter_map(|s| s.problem())
            .collect()
    }

    fn ps_rows(&self) -> Vec<Value> {
        lock(&self.inner.services)
            .values()
            .map(|s| s.ps_row())
            .collect()
    }

    fn control<'a>(&'a self, cx: ControlCx<'a>) -> BoxFuture<'a, ControlReply> {
        Box::pin(control::serve(self.inner.clone(), cx))
    }

    fn status(&self) -> Value {
        let Some(cfg) = self.inner.cfg.get() else {
            return json!("off (no [containers] in weft.toml)");
        };
        let running = lock(&self.inner.services).len();
        match lock(&self.inner.engine_problem).clone() {
            Some(p) => json!(format!("ENGINE UNAVAILABLE: {p}")),
            None => json!(format!(
                "{running} services; host ports {}-{} on {}",
                cfg.host_ports.0, cfg.host_ports.1, cfg.host_ip
            )),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Inner {
    /// The engine, connecting if need be.
    pub(crate) async fn engine(&self) -> KernelResult<Engine> {
        let cfg = self.cfg.get().ok_or_else(|| {
            KernelError::Invalid(weft_model::policy::NO_CONTAINER_ENGINE.to_string())
        })?;
        let mut slot = self.engine.lock().await;
        if let Some(e) = slot.as_ref() {
            return Ok(e.clone());
        }
        match Engine::connect(cfg.engine.clone()).await {
            Ok(e) => {
                *slot = Some(e.clone());
                *lock(&self.engine_problem) = None;
                Ok(e)
            }
            Err(e) => {
                let msg = format!("container engine unavailable: {e}");
                *lock(&self.engine_problem) = Some(e.to_string());
                Err(KernelError::Failed(msg))
            }
        }
    }

    pub(crate) fn config(&self) -> KernelResult<&ContainersConfig> {
        self.cfg.get().ok_or_else(|| {
            KernelError::Invalid(weft_model::policy::NO_CONTAINER_ENGINE.to_string())
        })
    }

    pub(crate) fn kernel_id(&self) -> &str {
        self.kernel_id
            .get()
            .map(String::as_str)
            .unwrap_or("unknown")
    }

    pub(crate) fn service(&self, app: &str, name: &str) -> Option<Arc<Service>> {
        lock(&self.services)
            .get(&(app.to_string(), name.to_string()))
            .cloned()
    }
}
