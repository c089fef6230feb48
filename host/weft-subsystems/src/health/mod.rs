//! The health subsystem: liveness and readiness probes, run by the host
//! when the health component says they are due, aggregated by it
//! ([`component`]). `[health]` in `weft.toml`; `weaver health` is
//! [`control`]. The kernel's own probes (`kernel`, `services`) are
//! configured at start.
//!
//! Failure policy: a health component that cannot be loaded leaves the
//! kernel running without health checks (recorded as `health.failure`).

mod component;
pub mod control;

use std::any::Any;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use weft_kernel::console::LogLevel;
use weft_kernel::control::{ControlCx, ControlReply};
use weft_kernel::{BoxFuture, InitCx, Kernel, KernelError, Subsystem, SubsystemError};

pub use component::{
    agent_probe, default_limits, kernel_probe, services_probe, ChangeFn, ComponentHealth,
    DegradedItem, HealthReport, Overall, ProbeFn, ProbeKind, ProbeSpec, ProbeStatus,
};
pub use control::cli;

use weft_kernel::components::component_source;

/// `[health]` in `weft.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthSection {
    /// `false`: no health checks.
    pub enabled: Option<bool>,
    /// A replacement health component.
    pub component: Option<PathBuf>,
    /// How often due probes are looked for, in ms (default 500).
    pub poll_ms: Option<u64>,
}

/// The health subsystem.
#[derive(Default)]
pub struct HealthUnit {
    health: OnceLock<ComponentHealth>,
    problem: OnceLock<String>,
    poll: OnceLock<Duration>,
    driver: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl HealthUnit {
    /// The health aggregator (`None` when disabled or failed to load).
    pub fn health(&self) -> Option<&ComponentHealth> {
        self.health.get()
    }
}

impl Subsystem for HealthUnit {
    fn name(&self) -> &'static str {
        "health"
    }

    fn init(&self, cx: &InitCx<'_>) -> Result<(), SubsystemError> {
        let err = |e: KernelError| SubsystemError::new("health", e);
        let section: HealthSection = cx.section().map_err(err)?;
        if section.enabled == Some(false) {
            cx.log(LogLevel::Info, "disabled");
            return Ok(());
        }
        let _first = self.poll.set(Duration::from_millis(
            section.poll_ms.unwrap_or(500).max(10),
        ));
        let source = component_source(
            section.component.as_deref(),
            cx.config_path(),
            "health.wasm",
        );
        let built = source
            .load(cx.runtime())
            .map_err(crate::ComponentError::from)
            .and_then(|c| ComponentHealth::new(cx.runtime(), c, default_limits()));
        match built {
            Ok(h) => {
                let _first = self.health.set(h);
            }
            Err(e) => {
                cx.note(
                    "health.failure",
                    &json!({ "phase": "install", "kind": e.kind(), "error": e.to_string() }),
                )
                .map_err(err)?;
                cx.log(LogLevel::Error, format!("unavailable: {e}"));
                let _first = self.problem.set(e.to_string());
            }
        }
        Ok(())
    }

    fn start<'a>(&'a self, kernel: &'a Kernel) -> BoxFuture<'a, Result<(), SubsystemError>> {
        Box::pin(async move {
            let Some(h) = self.health.get() else {
                return Ok(());
            };
            let spec = |name: &str, kind| ProbeSpec {
                name: name.into(),
                kind,
                failure_threshold: 3,
                success_threshold: 1,
                interval_ms: 5_000,
            };
            h.configure(vec![
                (
                    spec("kernel", ProbeKind::Liveness),
                    kernel_probe(kernel.clone()),
                ),
                (
                    spec("services", ProbeKind::Readiness),
                    services_probe(kernel.clone()),
                ),
            ])
            .map_err(|e| SubsystemError::new("health", e))?;
            let every = self
                .poll
                .get()
                .copied()
                .unwrap_or(Duration::from_millis(500));
            let task = h.start(kernel.clone(), every);
            *self.driver.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
            Ok(())
        })
    }

    fn stop(&self) {
        if let Some(t) = self.driver.lock().unwrap_or_else(|p| p.into_inner()).take() {
            t.abort();
        }
    }

    fn actions(&self) -> &'static [&'static str] {
        &["health.status"]
    }

    fn control_ops(&self) -> &'static [&'static str] {
        &["status"]
    }

    fn status(&self) -> Value {
        match (self.health.get(), self.problem.get()) {
            (Some(h), _) => match h.status() {
                Ok(r) => json!(match r.overall {
                    Overall::Healthy => "healthy".to_string(),
                    Overall::Degraded(items) => format!("degraded ({} probes)", items.len()),
                    Overall::Down(why) => format!("down: {why}"),
                }),
                Err(e) => json!(format!("failing: {e}")),
            },
            (None, Some(p)) => json!(format!("UNAVAILABLE: {p}")),
            (None, None) => json!("disabled"),
        }
    }

    fn control<'a>(&'a self, cx: ControlCx<'a>) -> BoxFuture<'a, ControlReply> {
        Box::pin(control::serve(self, cx))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
