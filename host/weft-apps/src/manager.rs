//! [`AppManager`]: installs, starts, stops, upgrades and removes apps
//! through the kernel. Every lifecycle event is recorded on the chain; the
//! registry (`<state>/apps/registry.json`) and the installed bundles
//! (`<state>/apps/<name>/<version>/`) survive a kernel restart, and
//! [`AppManager::open`] starts again what was running.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::json;
use weft_kernel::{Kernel, ProcessState};

use crate::app_error::AppError;
use crate::bundle::open_bundle;
use crate::checker::types::InstallPlan;
use crate::checker::AppsChecker;
use crate::lock::MANIFEST_FILE;
use crate::ops::{container_service, copy_bundle, Started, Version};
use crate::registry::{AgentRef, AppInfo, AppState, Progress, Registry};
use crate::trust::TrustStore;
use crate::verify::{inspect, Environment, Verified};

/// Chain source of lifecycle events.
const SOURCE: &str = "apps";

type ProgressFn<'a> = &'a (dyn Fn(Progress) + Send + Sync);

pub struct AppManager {
    kernel: Kernel,
    checker: AppsChecker,
    environment: Environment,
    apps_dir: PathBuf,
    registry: Mutex<Registry>,
    /// Serializes lifecycle operations.
    op: tokio::sync::Mutex<()>,
}

/// A verified bundle copied into place and precompiled, not yet recorded.
struct Staged {
    plan: InstallPlan,
    verified: Verified,
    version: String,
}

impl AppManager {
    /// Load the registry; apps recorded as Running (or caught mid-start)
    /// are started again, and one that fails is marked Failed.
    pub async fn open(
        kernel: Kernel,
        checker: AppsChecker,
        environment: Environment,
    ) -> Result<Self, AppError> {
        let apps_dir = kernel.state_dir().join("apps");
        std::fs::create_dir_all(&apps_dir).map_err(|e| AppError::io(&apps_dir, e))?;
        clean_temp_dirs(&apps_dir);
        let registry = Registry::load(&apps_dir)?;
        let m = AppManager {
            kernel,
            checker,
            environment,
            apps_dir,
            registry: Mutex::new(registry),
            op: tokio::sync::Mutex::new(()),
        };
        m.resume().await?;
        Ok(m)
    }

    async fn resume(&self) -> Result<(), AppError> {
        let m = self;
        let _op = m.op.lock().await;
        // The stored states: the pids in them belong to the last boot.
        for info in m.stored_all() {
            match info.state {
                AppState::Running | AppState::Starting => {
                    // A failure is recorded in the app's entry.
                    let _ = m.start_locked(&info.name).await;
                }
                AppState::Stopping => m.update(&info.name, |i| {
                    i.state = AppState::Stopped;
                    clear_pids(i);
                })?,
                _ => m.update(&info.name, clear_pids)?,
            }
        }
        Ok(())
    }

    pub async fn install(
        &self,
        bundle: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<AppInfo, AppError> {
        let _op = self.op.lock().await;
        let staged = self.stage(bundle, None, progress).await?;
        let name = staged.plan.manifest.app.name.clone();
        let vdir = self.version_dir(&name, &staged.version);
        let recorded = self.record_install(&staged, "app.install", "install");
        let seq = match recorded {
            Ok(seq) => seq,
            Err(e) => {
                let _ = std::fs::remove_dir_all(self.app_dir(&name));
                return Err(e);
            }
        };
        let info = self.info_for(&staged, seq);
        self.with_registry(|r| {
            r.apps.insert(name.clone(), info.clone());
        })
        .inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&vdir);
        })?;
        Ok(info)
    }

    pub async fn start(&self, name: &str) -> Result<AppInfo, AppError> {
        let _op = self.op.lock().await;
        let info = self.require(name)?;
        if matches!(
            info.state,
            AppState::Running | AppState::Starting | AppState::Stopping
        ) {
            // A Degraded app says so, and how to bring it back.
            let state = match self.live(info).state {
                AppState::Degraded => "Degraded (an agent has stopped; stop the app first)".into(),
                s => s.to_string(),
            };
            return Err(AppError::BadState {
                name: name.to_string(),
                state,
                action: "start",
            });
        }
        self.start_locked(name).await
    }

    pub async fn stop(&self, name: &str) -> Result<AppInfo, AppError> {
        let _op = self.op.lock().await;
        let info = self.require(name)?;
        if info.state != AppState::Running {
            return Err(AppError::BadState {
                name: name.to_string(),
                state: info.state.to_string(),
                action: "stop",
            });
        }
        self.stop_locked(name).await
    }

    pub async fn upgrade(
        &self,
        name: &str,
        bundle: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<AppInfo, AppError> {
        let _op = self.op.lock().await;
        let old = self.require(name)?;
        let staged = self.stage(bundle, Some(&old), progress).await?;
        let new_dir = self.version_dir(name, &staged.version);
        let was_running = old.state == AppState::Running;
        if was_running {
            self.stop_locked(name).await?;
        }
        let started = if was_running {
            let v = self.version(
                name,
                &staged.version,
                &staged.plan,
                &staged.verified.digests,
            );
            v.start().await
        } else {
            Ok(Started::default())
        };
        match started {
            Ok(started) => {
                let seq = self.record_install(&staged, "app.upgrade", "upgrade")?;
                let mut info = self.info_for(&staged, seq);
                if was_running {
                    info.state = AppState::Running;
                    apply_started(&mut info, &started);
                }
                self.with_registry(|r| {
                    r.apps.insert(name.to_string(), info.clone());
                })?;
                let old_dir = self.version_dir(name, &old.version);
                let _ = std::fs::remove_dir_all(old_dir);
                Ok(info)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&new_dir);
                let _ = self.record(
                    "app.failed",
                    &json!({ "name": name, "version": staged.version, "error": e.to_string() }),
                );
                let _ = self.record(
                    "app.rollback",
                    &json!({ "name": name, "from": old.version, "to": staged.version, "error": e.to_string() }),
                );
                if was_running {
                    // The old version keeps its entry and runs again.
                    let _ = self.start_locked(name).await;
                }
                Err(e)
            }
        }
    }

    pub async fn remove(&self, name: &str) -> Result<(), AppError> {
        let _op = self.op.lock().await;
        let info = self.require(name)?;
        if info.state == AppState::Running {
            self.stop_locked(name).await?;
        }
        let hook_error = match self.plan_of(&info).await {
            Ok(plan) => {
                let v = self.version(name, &info.version, &plan, &info.components);
                v.run_hook("on_remove", "remove")
                    .await
                    .err()
                    .map(|e| e.to_string())
            }
            Err(e) => Some(e.to_string()),
        };
        let dir = self.app_dir(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| AppError::io(&dir, e))?;
        }
        self.with_registry(|r| {
            r.apps.remove(name);
        })?;
        self.record(
            "app.remove",
            &json!({ "name": name, "version": info.version, "hook_error": hook_error }),
        )?;
        Ok(())
    }

    /// Every installed app, as it is now (see [`AppState::Degraded`]).
    pub fn list(&self) -> Vec<AppInfo> {
        self.stored_all()
            .into_iter()
            .map(|i| self.live(i))
            .collect()
    }

    fn stored_all(&self) -> Vec<AppInfo> {
        self.lock_registry().apps.values().cloned().collect()
    }

    /// One app, as it is now.
    pub fn get(&self, name: &str) -> Option<AppInfo> {
        self.stored(name).map(|i| self.live(i))
    }

    fn stored(&self, name: &str) -> Option<AppInfo> {
        self.lock_registry().apps.get(name).cloned()
    }

    /// The registry's entry corrected by the process table: a Running app
    /// with an agent that has stopped since is Degraded, naming the agent
    /// and why it stopped.
    fn live(&self, mut info: AppInfo) -> AppInfo {
        if info.state != AppState::Running {
            return info;
        }
        let down: Vec<String> = info
            .agents
            .iter()
            .filter_map(|a| {
                let pid = a.pid?;
                match self.kernel.inspect(pid) {
                    Some(p) if p.state != ProcessState::Stopped => None,
                    Some(p) => Some(format!(
                        "agent `{}` (pid {pid}) stopped: {}",
                        a.id,
                        p.last_failure.as_deref().unwrap_or("stopped by request")
                    )),
                    None => Some(format!("agent `{}` (pid {pid}) is no longer running", a.id)),
                }
            })
            .collect();
        if !down.is_empty() {
            info.state = AppState::Degraded;
            info.error = Some(down.join("; "));
        }
        info
    }

    /// The trust store as it is on disk now (a malformed `trust.json` is an
    /// error naming it, not an empty store).
    pub fn trust_store(&self) -> Result<TrustStore, AppError> {
        Ok(TrustStore::open(self.kernel.state_dir())?)
    }

    // --- steps ------------------------------------------------------------------

    /// Check, verify, gate, copy, precompile and run `on_install`. On any
    /// failure nothing is left behind. `old` is the installed entry for an
    /// upgrade (the name must match and the version differ).
    async fn stage(
        &self,
        path: &Path,
        old: Option<&AppInfo>,
        progress: ProgressFn<'_>,
    ) -> Result<Staged, AppError> {
        let bundle = open_bundle(path)?;
        let trust = TrustStore::open(self.kernel.state_dir())?;
        let (plan, verified) = inspect(&self.checker, &bundle, &trust, self.environment).await?;
        let name = plan.manifest.app.name.clone();
        let version = plan.manifest.app.version.clone();
        let components: Vec<String> = verified.digests.keys().cloned().collect();
        let total = 4 + components.len();
        let step = |done: usize, s: String| {
            progress(Progress {
                step: s,
                done,
                total,
            })
        };
        step(1, "checked and verified".into());
        match old {
            None if self.get(&name).is_some() => return Err(AppError::AlreadyInstalled(name)),
            Some(o) if o.name != name => {
                return Err(AppError::WrongApp {
                    name: o.name.clone(),
                    found: name,
                })
            }
            Some(o) if o.version == version => return Err(AppError::SameVersion { name, version }),
            _ => {}
        }
        if let Some((service, image)) = container_service(&plan) {
            return Err(AppError::NoContainerEngine {
                name,
                service,
                image,
            });
        }
        let action = if old.is_some() {
            "app.upgrade"
        } else {
            "app.install"
        };
        let decision = self.kernel.check(
            "kernel",
            action,
            &json!({ "name": name, "version": version, "digests": verified.digests,
                     "manifest": verified.manifest_digest, "signer": verified.signer_name }),
        );
        if !decision.is_permit() {
            return Err(AppError::Denied {
                name,
                action,
                reason: decision.reason(),
            });
        }
        step(2, "gate permitted".into());
        let dest = self.version_dir(&name, &version);
        copy_bundle(&bundle, &verified, &self.apps_dir, &dest)?;
        let data = self.app_dir(&name).join("data");
        let staged = Staged {
            plan,
            verified,
            version,
        };
        let result = async {
            std::fs::create_dir_all(&data).map_err(|e| AppError::io(&data, e))?;
            step(3, "copied".into());
            let v = self.version(
                &name,
                &staged.version,
                &staged.plan,
                &staged.verified.digests,
            );
            for (i, c) in components.iter().enumerate() {
                v.load(c)?;
                step(4 + i, format!("precompiled {c}"));
            }
            v.run_hook("on_install", "install").await?;
            step(total, "on_install done".into());
            Ok::<(), AppError>(())
        }
        .await;
        if let Err(e) = result {
            if old.is_some() {
                let _ = std::fs::remove_dir_all(&dest);
            } else {
                let _ = std::fs::remove_dir_all(self.app_dir(&name));
            }
            return Err(e);
        }
        Ok(staged)
    }

    fn record_install(&self, s: &Staged, kind: &str, derivation: &str) -> Result<u64, AppError> {
        let m = &s.plan.manifest.app;
        // Both records, then one fsync covering them.
        let ev = self.kernel.chain().append(
            SOURCE,
            kind,
            &json!({ "name": m.name, "version": m.version, "manifest": s.verified.manifest_digest,
                     "digests": s.verified.digests, "signer": s.verified.signer_name,
                     "environment": self.environment.to_string() }),
        )?;
        self.kernel.chain().record_lineage(
            &format!("bundle:{}", s.verified.manifest_digest),
            &format!("app:{}@{}", m.name, m.version),
            derivation,
        )?;
        self.kernel.chain().sync()?;
        Ok(ev.seq)
    }

    /// Start the installed version of `name` (op lock held). On failure the
    /// app is Failed with the error recorded, and `app.failed` is on the chain.
    async fn start_locked(&self, name: &str) -> Result<AppInfo, AppError> {
        let info = self.require(name)?;
        self.update(name, |i| {
            i.state = AppState::Starting;
            clear_pids(i);
        })?;
        let result = match self.plan_of(&info).await {
            Ok(plan) => {
                self.version(name, &info.version, &plan, &info.components)
                    .start()
                    .await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(started) => {
                self.update(name, |i| {
                    i.state = AppState::Running;
                    i.error = None;
                    apply_started(i, &started);
                })?;
                self.record(
                    "app.start",
                    &json!({ "name": name, "version": info.version, "agents": started.agents }),
                )?;
                self.require(name)
            }
            Err(e) => {
                let reason = e.to_string();
                self.update(name, |i| {
                    i.state = AppState::Failed;
                    i.error = Some(reason.clone());
                    clear_pids(i);
                })?;
                self.record(
                    "app.failed",
                    &json!({ "name": name, "version": info.version, "error": reason }),
                )?;
                Err(e)
            }
        }
    }

    async fn stop_locked(&self, name: &str) -> Result<AppInfo, AppError> {
        let info = self.require(name)?;
        self.update(name, |i| i.state = AppState::Stopping)?;
        let started = Started {
            agents: info.agents.clone(),
            tools: info.tools.clone(),
            services: info.services.clone(),
        };
        let plan = self.plan_of(&info).await;
        let hook = match &plan {
            Ok(plan) => {
                let v = self.version(name, &info.version, plan, &info.components);
                v.teardown(&started).await;
                v.run_hook("on_stop", "stop")
                    .await
                    .err()
                    .map(|e| e.to_string())
            }
            Err(e) => Some(e.to_string()),
        };
        self.update(name, |i| {
            i.state = AppState::Stopped;
            i.tools.clear();
            i.services.clear();
            clear_pids(i);
        })?;
        self.record(
            "app.stop",
            &json!({ "name": name, "version": info.version, "hook_error": hook }),
        )?;
        self.require(name)
    }

    /// The plan of an installed version, from its copied manifest.
    async fn plan_of(&self, info: &AppInfo) -> Result<InstallPlan, AppError> {
        let path = self
            .version_dir(&info.name, &info.version)
            .join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| AppError::io(&path, e))?;
        let file = path.display().to_string();
        self.checker
            .check(&text, &file)
            .await
            .map_err(|e| AppError::Bundle(e.into()))
    }

    // --- helpers ----------------------------------------------------------------

    fn version<'a>(
        &'a self,
        name: &'a str,
        version: &'a str,
        plan: &'a InstallPlan,
        digests: &'a std::collections::BTreeMap<String, String>,
    ) -> Version<'a> {
        Version {
            kernel: &self.kernel,
            name,
            version,
            dir: self.version_dir(name, version),
            data_dir: self.app_dir(name).join("data"),
            plan,
            digests,
        }
    }

    fn info_for(&self, s: &Staged, install_seq: u64) -> AppInfo {
        let m = &s.plan.manifest;
        AppInfo {
            name: m.app.name.clone(),
            version: s.version.clone(),
            description: m.app.description.clone(),
            state: AppState::Installed,
            environment: self.environment.to_string(),
            signer: s.verified.signer_name.clone(),
            components: s.verified.digests.clone(),
            agents: m
                .agents
                .iter()
                .map(|a| AgentRef {
                    id: a.id.clone(),
                    pid: None,
                })
                .collect(),
            tools: Vec::new(),
            services: Vec::new(),
            install_seq,
            error: None,
        }
    }

    fn app_dir(&self, name: &str) -> PathBuf {
        self.apps_dir.join(name)
    }

    fn version_dir(&self, name: &str, version: &str) -> PathBuf {
        self.app_dir(name).join(version)
    }

    fn require(&self, name: &str) -> Result<AppInfo, AppError> {
        self.stored(name)
            .ok_or_else(|| AppError::NotFound(name.to_string()))
    }

    /// Records an app lifecycle event and waits for its fsync: the caller
    /// is told "done" only once the chain can no longer lose it, even to
    /// `kill -9` right after (the registry file is fsync'ed too).
    fn record(
        &self,
        kind: &str,
        payload: &serde_json::Value,
    ) -> Result<std::sync::Arc<weft_chain::ChainEvent>, weft_chain::ChainError> {
        self.kernel.chain().append_durable(SOURCE, kind, payload)
    }

    fn lock_registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Change the registry and persist it.
    fn with_registry(&self, f: impl FnOnce(&mut Registry)) -> Result<(), AppError> {
        let mut r = self.lock_registry();
        f(&mut r);
        r.save(&self.apps_dir)
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut AppInfo)) -> Result<(), AppError> {
        self.with_registry(|r| {
            if let Some(i) = r.apps.get_mut(name) {
                f(i);
            }
        })
    }
}

fn clear_pids(i: &mut AppInfo) {
    for a in &mut i.agents {
        a.pid = None;
    }
}

/// Record what a start brought up; agents not auto-started keep no pid.
fn apply_started(i: &mut AppInfo, s: &Started) {
    for a in &mut i.agents {
        a.pid = s.agents.iter().find(|r| r.id == a.id).and_then(|r| r.pid);
    }
    i.tools = s.tools.clone();
    i.services = s.services.clone();
}

/// Remove `.tmp-*` staging dirs a crash left behind.
fn clean_temp_dirs(apps_dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(apps_dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}
