//! The app lifecycle as the operator drives it: each call is an action
//! through the kernel's chokepoint, as `weaver app ...` does.

use std::path::Path;
use std::sync::Arc;

use weft_apps::actions::{Install, Lifecycle, Op, Report, Upgrade};
use weft_apps::{AppInfo, AppManager, AppsUnit, TrustStore};
use weft_kernel::{Kernel, KernelConfig, KernelError, Principal};

/// An error with the kind the control API would report.
#[derive(Debug)]
pub struct Error {
    kind: String,
    message: String,
}

impl Error {
    pub fn kind(&self) -> &str {
        &self.kind
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<weft_apps::AppError> for Error {
    fn from(e: weft_apps::AppError) -> Self {
        Error {
            kind: e.kind().to_string(),
            message: e.to_string(),
        }
    }
}

impl From<KernelError> for Error {
    fn from(e: KernelError) -> Self {
        let kind = match &e {
            KernelError::Subsystem { kind, .. } => kind.to_string(),
            KernelError::NotFound(_) => "not-found".into(),
            KernelError::Denied(_) => "denied".into(),
            _ => "kernel".into(),
        };
        Error {
            kind,
            message: e.to_string(),
        }
    }
}

/// A kernel on `state` with the apps unit and the cron, health and
/// governance subsystems, in `environment`.
pub async fn boot(state: &Path, environment: &str) -> Kernel {
    let mut config = KernelConfig::default();
    config.kernel.cache_dir = Some(weft_testkit::shared_cache_dir());
    config.kernel.environment = environment.into();
    config.runtime.pool_instances = 500;
    let mut units = weft_subsystems::units();
    units.push(Arc::new(AppsUnit::default()));
    Kernel::boot_with(config, state, units).await.expect("boot")
}

/// The operator's handle on a kernel's apps.
pub struct Apps {
    k: Kernel,
    m: Arc<AppManager>,
}

impl Apps {
    pub fn new(k: &Kernel) -> Self {
        let m = k
            .subsystem::<AppsUnit>()
            .and_then(AppsUnit::manager)
            .expect("apps unit started");
        Apps { k: k.clone(), m }
    }

    pub async fn install(&self, bundle: &Path, report: Report) -> Result<AppInfo, Error> {
        let p = self.m.prepare(bundle).await?;
        Ok(self
            .k
            .act(&Principal::Operator, Install::new(p, Some(report)))
            .await?)
    }

    pub async fn upgrade(
        &self,
        name: &str,
        bundle: &Path,
        report: Report,
    ) -> Result<AppInfo, Error> {
        let p = self.m.prepare(bundle).await?;
        Ok(self
            .k
            .act(&Principal::Operator, Upgrade::new(name, p, Some(report)))
            .await?)
    }

    async fn op(&self, op: Op, name: &str) -> Result<Option<AppInfo>, Error> {
        Ok(self
            .k
            .act(&Principal::Operator, Lifecycle::new(op, name))
            .await?)
    }

    pub async fn start(&self, name: &str) -> Result<AppInfo, Error> {
        Ok(self.op(Op::Start, name).await?.expect("info"))
    }

    pub async fn stop(&self, name: &str) -> Result<AppInfo, Error> {
        Ok(self.op(Op::Stop, name).await?.expect("info"))
    }

    pub async fn remove(&self, name: &str) -> Result<(), Error> {
        self.op(Op::Remove, name).await.map(|_| ())
    }

    pub fn get(&self, name: &str) -> Option<AppInfo> {
        self.m.get(name)
    }

    pub fn list(&self) -> Vec<AppInfo> {
        self.m.list()
    }

    pub fn trust_store(&self) -> Result<TrustStore, weft_apps::AppError> {
        self.m.trust_store()
    }
}

/// Progress nobody watches.
pub fn quiet() -> Report {
    Arc::new(|_| {})
}
