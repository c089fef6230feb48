//! [`install`]: load the subsystem components named by `[subsystems]` and
//! wire them into a running kernel.
//!
//! Failure policy: governance fails closed (a missing or broken governance
//! component installs a gate that denies every action the capabilities
//! allow, and the reason is logged and recorded); cron and health are
//! skipped (logged and recorded) and the kernel runs without them. Listing a
//! subsystem in `disabled` skips it deliberately.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use weft_gate::{GovernanceBackend, GovernanceGate};
use weft_kernel::console::LogLevel;
use weft_kernel::Kernel;

use crate::health::{kernel_probe, services_probe, ProbeKind, ProbeSpec};
use crate::{
    ComponentCron, ComponentGovernance, ComponentHealth, SubsystemError, SubsystemsConfig,
};

/// Where the built-in components are: `cfg.components_dir`, else
/// `$WEFT_COMPONENTS_DIR`, else this repository's guest build dir.
pub fn components_dir(cfg: &SubsystemsConfig) -> PathBuf {
    cfg.components_dir
        .clone()
        .or_else(|| std::env::var_os("WEFT_COMPONENTS_DIR").map(PathBuf::from))
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../components/target/wasm32-wasip2/release")
        })
}

/// The installed subsystems and their driver tasks.
pub struct Subsystems {
    pub governance: Option<Arc<ComponentGovernance>>,
    pub cron: Option<ComponentCron>,
    pub health: Option<ComponentHealth>,
    /// What could not be installed, one line each.
    pub problems: Vec<String>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Subsystems {
    /// Stop the drivers (they also stop by themselves when the kernel does).
    pub fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for Subsystems {
    fn drop(&mut self) {
        self.stop();
    }
}

fn load(
    kernel: &Kernel,
    explicit: &Option<PathBuf>,
    dir: &Path,
    file: &str,
) -> Result<weft_runtime::LoadedComponent, SubsystemError> {
    let path = explicit.clone().unwrap_or_else(|| dir.join(file));
    Ok(kernel.load_component(&path)?)
}

/// Load and start governance, cron and health on `kernel`.
pub async fn install(
    kernel: &Kernel,
    cfg: &SubsystemsConfig,
) -> Result<Subsystems, SubsystemError> {
    let dir = components_dir(cfg);
    let on = |name: &str| !cfg.disabled.iter().any(|d| d == name);
    let rt = kernel.runtime();
    let chain = kernel.chain().clone();
    let state_dir = Some(kernel.state_dir().to_path_buf());
    let mut s = Subsystems {
        governance: None,
        cron: None,
        health: None,
        problems: Vec::new(),
        tasks: Vec::new(),
    };
    let problem = |s: &mut Subsystems, what: &str, e: &SubsystemError| {
        let line = format!("{what}: {e}");
        kernel.log(LogLevel::Error, line.clone());
        let _ = chain.append(
            what,
            &format!("{what}.failure"),
            &json!({
            "phase": "install", "kind": e.kind(), "error": e.to_string() }),
        );
        s.problems.push(line);
    };

    if on("governance") {
        let env = cfg.environment.clone().unwrap_or_else(|| "prod".into());
        let built = (|| {
            let c = load(kernel, &cfg.governance, &dir, "governance.wasm")?;
            let policy = match &cfg.governance_policy {
                Some(p) => Some(std::fs::read_to_string(p).map_err(|e| SubsystemError::Io {
                    context: format!("cannot read {}", p.display()),
                    source: e,
                })?),
                None => None,
            };
            let pool = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
            ComponentGovernance::new(
                rt,
                chain.clone(),
                c,
                policy.as_deref(),
                crate::governance::default_limits(),
                pool,
            )
        })();
        let backend: Arc<dyn GovernanceBackend> = match built {
            Ok(g) => {
                let g = Arc::new(g);
                let _ = chain.append(
                    "governance",
                    "governance.install",
                    &json!({
                    "component": g.component_digest(), "policy": g.policy_digest(),
                    "environment": env }),
                );
                kernel.log(
                    LogLevel::Info,
                    format!("governance: component installed ({env})"),
                );
                s.governance = Some(g.clone());
                g
            }
            Err(e) => {
                problem(&mut s, "governance", &e);
                kernel.log(
                    LogLevel::Error,
                    "governance unavailable: denying every action (fail closed)",
                );
                Arc::new(crate::governance::Unavailable(e.to_string()))
            }
        };
        kernel.set_governance(Some(Arc::new(GovernanceGate::new(backend, env))));
    }

    if on("cron") {
        let built = load(kernel, &cfg.cron, &dir, "cron.wasm").and_then(|c| {
            ComponentCron::new(
                rt,
                chain.clone(),
                c,
                state_dir.as_deref(),
                crate::cron::default_limits(),
            )
        });
        match built {
            Ok(c) => {
                kernel.set_cron_service(Some(Arc::new(c.clone())));
                s.tasks.push(c.start(kernel.clone()));
                s.cron = Some(c);
            }
            Err(e) => problem(&mut s, "cron", &e),
        }
    }

    if on("health") {
        let built = load(kernel, &cfg.health, &dir, "health.wasm").and_then(|c| {
            let h = ComponentHealth::new(rt, c, crate::health::default_limits())?;
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
            ])?;
            Ok(h)
        });
        match built {
            Ok(h) => {
                s.tasks
                    .push(h.start(kernel.clone(), Duration::from_millis(500)));
                s.health = Some(h);
            }
            Err(e) => problem(&mut s, "health", &e),
        }
    }
    Ok(s)
}
