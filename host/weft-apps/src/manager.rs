//! [`AppManager`]: installs, starts, stops, upgrades and removes apps by
//! carrying out their plans. Each operation runs inside an action of the
//! apps unit ([`crate::actions`]), so it is gated and its lifecycle events
//! are recorded through that action; each step that touches the kernel is
//! itself an action of the app (`app:<name>`). The registry
//! (`<state>/apps/registry.json`) and the installed bundles
//! (`<state>/apps/<name>/<version>/`) survive a kernel restart; what was
//! running is started again at boot.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::json;
use weft_kernel::{ActCx, ClearReason, Kernel, Principal, ProcessState};
use weft_model::plan::{InstallPlan, Step};

use crate::app_error::AppError;
use crate::bundle::{open_bundle, Bundle};
use crate::checker::AppsChecker;
use crate::intent::{self, Intent};
use crate::lock::{digest_hex, MANIFEST_FILE};
use crate::registry::{AgentRef, AppInfo, AppState, Progress, Registry};
use crate::steps::{copy_bundle, unsupported, Started, Version};
use crate::trust::TrustStore;
use crate::verify::{inspect, EnvChoice, Verified};

/// Reports install progress (`weaver app install` shows it).
pub type ProgressFn<'a> = &'a (dyn Fn(Progress) + Send + Sync);

/// A bundle checked and verified for install or upgrade, nothing changed
/// yet: what the gate is asked about.
pub struct Prepared {
    bundle: Bundle,
    /// Its plan.
    pub plan: InstallPlan,
    /// Its digests and signer.
    pub verified: Verified,
}

impl Prepared {
    /// The app's name.
    pub fn name(&self) -> &str {
        &self.plan.manifest.app.name
    }

    /// The bundle's version.
    pub fn version(&self) -> &str {
        &self.plan.manifest.app.version
    }

    /// What the gate and the chain see of it.
    pub fn facts(&self) -> serde_json::Value {
        json!({ "name": self.name(), "version": self.version(),
                "manifest": self.verified.manifest_digest, "digests": self.verified.digests,
                "signer": self.verified.signer_name })
    }
}

/// The installed apps and their lifecycle.
pub struct AppManager {
    kernel: Kernel,
    checker: AppsChecker,
    apps_dir: PathBuf,
    registry: Mutex<Registry>,
    /// What each running app holds, to undo at stop.
    running: Mutex<HashMap<String, Started>>,
    /// Serializes lifecycle operations.
    op: tokio::sync::Mutex<()>,
    /// What boot recovery did to an operation a crash cut off (for the chain).
    recovered: Mutex<Option<serde_json::Value>>,
}

impl AppManager {
    /// Load the registry under `<state>/apps`, finishing or undoing an
    /// operation a crash cut off (see [`crate::intent`]); nothing is
    /// started: see [`AppManager::to_resume`].
    pub fn open(kernel: Kernel, checker: AppsChecker) -> Result<Self, AppError> {
        let apps_dir = kernel.state_dir().join("apps");
        std::fs::create_dir_all(&apps_dir).map_err(|e| AppError::io(&apps_dir, e))?;
        clean_temp_dirs(&apps_dir)?;
        let mut registry = Registry::load(&apps_dir)?;
        let recovered = intent::recover(&kernel, &apps_dir, &mut registry)?;
        let checker = checker.with_policy(kernel.check_policy());
        Ok(AppManager {
            kernel,
            checker,
            apps_dir,
            registry: Mutex::new(registry),
            running: Mutex::default(),
            op: tokio::sync::Mutex::new(()),
            recovered: Mutex::new(recovered),
        })
    }

    /// What boot recovery did, once (the unit records it as `app.recovered`).
    pub fn take_recovered(&self) -> Option<serde_json::Value> {
        self.recovered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Run `op` under the journal entry `intent`: once it is over, the
    /// entry goes, unless its record was committed and the registry could
    /// not be updated: then it is finished now, or at the next boot.
    async fn journaled<T>(
        &self,
        intent: Intent,
        op: impl std::future::Future<Output = Result<T, AppError>>,
    ) -> Result<T, AppError> {
        intent.begin(&self.apps_dir)?;
        let r = op.await;
        match &r {
            Ok(_) => intent::end(&self.apps_dir)?,
            Err(_) => {
                let mut reg = self.lock_registry();
                intent::settle(&self.kernel, &self.apps_dir, &mut reg, &intent)?;
            }
        }
        r
    }

    /// The apps recorded as Running (or caught mid-start) by the last boot:
    /// started again at boot. Apps caught mid-stop are recorded Stopped;
    /// every stored pid belongs to the last boot and is cleared.
    pub fn to_resume(&self) -> Result<Vec<String>, AppError> {
        let mut names = Vec::new();
        self.with_registry(|r| {
            for info in r.apps.values_mut() {
                match info.state {
                    AppState::Running | AppState::Starting => names.push(info.name.clone()),
                    AppState::Stopping => info.state = AppState::Stopped,
                    _ => {}
                }
                clear_pids(info);
            }
        })?;
        Ok(names)
    }

    /// The checker (for `weaver app check`-style validation).
    pub fn checker(&self) -> &AppsChecker {
        &self.checker
    }

    /// Open, check and verify a bundle (signature, trust, digests) and make
    /// sure this kernel can carry out its plan. Changes nothing.
    pub async fn prepare(&self, path: &Path) -> Result<Prepared, AppError> {
        let bundle = open_bundle(path)?;
        let trust = TrustStore::open(self.kernel.state_dir())?;
        let (plan, verified) = inspect(
            &self.checker,
            &bundle,
            &trust,
            EnvChoice::Kernel(self.kernel.environments()),
        )
        .await?;
        if let Some(e) = unsupported(&self.kernel, &plan) {
            return Err(e);
        }
        Ok(Prepared {
            bundle,
            plan,
            verified,
        })
    }

    // --- operations (each inside its action) ---------------------------------------

    pub(crate) async fn install(
        &self,
        cx: &mut ActCx<'_>,
        p: Prepared,
        progress: ProgressFn<'_>,
    ) -> Result<AppInfo, AppError> {
        let _op = self.op.lock().await;
        let name = p.name().to_string();
        if self.stored(&name).is_some() {
            return Err(AppError::AlreadyInstalled(name));
        }
        let intent = Intent {
            kind: "app.install".into(),
            name: name.clone(),
            version: p.version().to_string(),
            from_seq: self.kernel.chain().len(),
            after: Some(self.info_for(&p, 0)),
            drop_on_commit: Vec::new(),
            drop_on_abort: vec![self.app_dir(&name)],
            restore_state: None,
        };
        self.journaled(intent, self.install_journaled(cx, p, progress))
            .await
    }

    async fn install_journaled(
        &self,
        cx: &mut ActCx<'_>,
        p: Prepared,
        progress: ProgressFn<'_>,
    ) -> Result<AppInfo, AppError> {
        let name = p.name().to_string();
        self.stage(&p, false, progress).await?;
        let recorded = self.record_install(cx, &p, "app.install", "install");
        let seq = match recorded {
            Ok(seq) => seq,
            Err(e) => {
                remove_dir(&self.app_dir(&name));
                return Err(e);
            }
        };
        let info = self.info_for(&p, seq);
        // A registry that cannot be written keeps the journal entry: the
        // install is finished from it (see `journaled`).
        self.with_registry(|r| {
            r.apps.insert(name.clone(), info.clone());
        })?;
        Ok(info)
    }

    pub(crate) async fn start(&self, cx: &mut ActCx<'_>, name: &str) -> Result<AppInfo, AppError> {
        let _op = self.op.lock().await;
        let info = self.require(name)?;
        if matches!(
            info.state,
            AppState::Running | AppState::Starting | AppState::Stopping
        ) {
            // A Degraded app says so, and how to bring it back.
            let state = match self.live(info).state {
                AppState::Degraded => {
                    "Degraded (an agent or service has stopped; stop the app first)".into()
                }
                s => s.to_string(),
            };
            return Err(AppError::BadState {
                name: name.to_string(),
                state,
                action: "start",
            });
        }
        self.start_locked(cx, name).await
    }

    /// Start what was running before the kernel stopped (boot).
    pub(crate) async fn resume(&self, cx: &mut ActCx<'_>, name: &str) -> Result<AppInfo, AppError> {
        let _op = self.op.lock().await;
        self.start_locked(cx, name).await
    }

    pub(crate) async fn stop(&self, cx: &mut ActCx<'_>, name: &str) -> Result<AppInfo, AppError> {
        let _op = self.op.lock().await;
        let info = self.require(name)?;
        if info.state != AppState::Running {
            return Err(AppError::BadState {
                name: name.to_string(),
                state: info.state.to_string(),
                action: "stop",
            });
        }
        self.stop_locked(cx, name).await
    }

    pub(crate) async fn upgrade(
        &self,
        cx: &mut ActCx<'_>,
        name: &str,
        p: Prepared,
        progress: ProgressFn<'_>,
    ) -> Result<AppInfo, AppError> {
        let _op = self.op.lock().await;
        let old = self.require(name)?;
        if p.name() != name {
            return Err(AppError::WrongApp {
                name: name.to_string(),
                found: p.name().to_string(),
            });
        }
        if p.version() == old.version {
            return Err(AppError::SameVersion {
                name: name.to_string(),
                version: old.version,
            });
        }
        let was_running = old.state == AppState::Running;
        let mut after = self.info_for(&p, 0);
        if was_running {
            // Started again at boot (see `to_resume`).
            after.state = AppState::Running;
        }
        let intent = Intent {
            kind: "app.upgrade".into(),
            name: name.to_string(),
            version: p.version().to_string(),
            from_seq: self.kernel.chain().len(),
            after: Some(after),
            drop_on_commit: vec![self.version_dir(name, &old.version)],
            drop_on_abort: vec![self.version_dir(name, p.version())],
            restore_state: was_running.then_some(AppState::Running),
        };
        self.journaled(intent, self.upgrade_journaled(cx, name, p, old, progress))
            .await
    }

    async fn upgrade_journaled(
        &self,
        cx: &mut ActCx<'_>,
        name: &str,
        p: Prepared,
        old: AppInfo,
        progress: ProgressFn<'_>,
    ) -> Result<AppInfo, AppError> {
        self.stage(&p, true, progress).await?;
        let new_dir = self.version_dir(name, p.version());
        let was_running = old.state == AppState::Running;
        if was_running {
            self.stop_locked(cx, name).await?;
        }
        let started = if was_running {
            let v = self.version(name, p.version(), &p.plan, &p.verified.digests);
            self.bring_up(&v).await
        } else {
            Ok(Started::default())
        };
        match started {
            Ok(started) => {
                let seq = self.record_install(cx, &p, "app.upgrade", "upgrade")?;
                let mut info = self.info_for(&p, seq);
                if was_running {
                    info.state = AppState::Running;
                    apply_started(&mut info, &started);
                    self.lock_running().insert(name.to_string(), started);
                }
                self.with_registry(|r| {
                    r.apps.insert(name.to_string(), info.clone());
                })?;
                remove_dir(&self.version_dir(name, &old.version));
                Ok(info)
            }
            Err(e) => {
                remove_dir(&new_dir);
                let why = e.to_string();
                cx.record_durable(
                    "app.failed",
                    &json!({ "name": name, "version": p.version(), "error": why }),
                )?;
                cx.record_durable(
                    "app.rollback",
                    &json!({ "name": name, "from": old.version, "to": p.version(), "error": why }),
                )?;
                let mut again = String::new();
                if was_running {
                    // The old version keeps its entry and runs again; if
                    // that fails too, its entry says so.
                    again = match self.start_locked(cx, name).await {
                        Ok(_) => ", running again".into(),
                        Err(e2) => {
                            tracing::warn!("app {name}: the old version did not restart: {e2}");
                            format!(" (which did not start again: {e2})")
                        }
                    };
                }
                Err(AppError::RolledBack {
                    name: name.to_string(),
                    from: old.version.clone(),
                    to: p.version().to_string(),
                    again,
                    source: Box::new(e),
                })
            }
        }
    }

    pub(crate) async fn remove(&self, cx: &mut ActCx<'_>, name: &str) -> Result<(), AppError> {
        let _op = self.op.lock().await;
        let info = self.require(name)?;
        let intent = Intent {
            kind: "app.remove".into(),
            name: name.to_string(),
            version: info.version.clone(),
            from_seq: self.kernel.chain().len(),
            after: None,
            drop_on_commit: vec![self.app_dir(name)],
            drop_on_abort: Vec::new(),
            restore_state: (info.state == AppState::Running).then_some(AppState::Running),
        };
        self.journaled(intent, self.remove_journaled(cx, name, info))
            .await
    }

    async fn remove_journaled(
        &self,
        cx: &mut ActCx<'_>,
        name: &str,
        info: AppInfo,
    ) -> Result<(), AppError> {
        if info.state == AppState::Running {
            self.stop_locked(cx, name).await?;
        }
        let hook_error = match self.plan_of(&info).await {
            Ok(plan) => {
                let v = self.version(name, &info.version, &plan, &info.components);
                v.run(&plan.remove, &mut Started::default())
                    .await
                    .err()
                    .map(|e| e.to_string())
            }
            Err(e) => Some(e.to_string()),
        };
        // Subsystems drop what outlives a stop (loaded images).
        let ceiling = None;
        let problems = crate::steps::clear_app(
            &self.kernel,
            &Principal::app(name, ceiling),
            &info.version,
            ClearReason::Remove,
        )
        .await;
        cx.record_durable(
            "app.remove",
            &json!({ "name": name, "version": info.version, "hook_error": hook_error,
                     "problems": problems }),
        )?;
        let dir = self.app_dir(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| AppError::io(&dir, e))?;
        }
        self.with_registry(|r| {
            r.apps.remove(name);
        })?;
        Ok(())
    }

    // --- reading ---------------------------------------------------------------------

    /// Every installed app, as it is now (see [`AppState::Degraded`]).
    pub fn list(&self) -> Vec<AppInfo> {
        let stored: Vec<AppInfo> = self.lock_registry().apps.values().cloned().collect();
        stored.into_iter().map(|i| self.live(i)).collect()
    }

    /// One app, as it is now.
    pub fn get(&self, name: &str) -> Option<AppInfo> {
        self.stored(name).map(|i| self.live(i))
    }

    fn stored(&self, name: &str) -> Option<AppInfo> {
        self.lock_registry().apps.get(name).cloned()
    }

    /// The registry's entry corrected by the process table and the
    /// subsystems: a Running app with an agent that has stopped since, or a
    /// container service that gave up restarting, is Degraded, naming it
    /// and why.
    fn live(&self, mut info: AppInfo) -> AppInfo {
        if info.state != AppState::Running {
            return info;
        }
        let mut down: Vec<String> = info
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
        down.extend(self.kernel.app_problems(&info.name));
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

    // --- steps -------------------------------------------------------------------------

    /// The install steps: copy (each digest checked again), precompile,
    /// `on-install`. On any failure nothing is left behind.
    async fn stage(
        &self,
        p: &Prepared,
        upgrade: bool,
        progress: ProgressFn<'_>,
    ) -> Result<(), AppError> {
        let name = p.name();
        let version = p.version();
        let total = 1 + p.plan.install.len();
        let mut done = 1;
        progress(Progress {
            step: "checked, verified and permitted".into(),
            done,
            total,
        });
        let dest = self.version_dir(name, version);
        let v = self.version(name, version, &p.plan, &p.verified.digests);
        let result = async {
            for step in &p.plan.install {
                let what = match step {
                    Step::VerifyDigests(paths) => {
                        p.verified.require(&p.bundle, paths)?;
                        "digests verified".to_string()
                    }
                    Step::CopyBundle => {
                        copy_bundle(&p.bundle, &p.verified, &self.apps_dir, &dest)?;
                        let data = self.app_dir(name).join("data");
                        std::fs::create_dir_all(&data).map_err(|e| AppError::io(&data, e))?;
                        "copied".to_string()
                    }
                    Step::Precompile(c) => {
                        // Compiling a big guest (CPython, SpiderMonkey) takes seconds.
                        progress(Progress {
                            step: format!("compiling {c}"),
                            done,
                            total,
                        });
                        v.load(c)?;
                        format!("precompiled {c}")
                    }
                    Step::RunHook(h) => {
                        v.run_hook(h).await?;
                        format!("{} done", h.hook)
                    }
                    Step::PrepareImage(s) => {
                        v.unit_step(step).await?;
                        format!("image of service `{}` ready", s.name)
                    }
                    other => {
                        return Err(AppError::Unsupported {
                            name: name.to_string(),
                            what: format!("{other:?} as an install step"),
                        })
                    }
                };
                done += 1;
                progress(Progress {
                    step: what,
                    done,
                    total,
                });
            }
            Ok::<(), AppError>(())
        }
        .await;
        if let Err(e) = result {
            if upgrade {
                remove_dir(&dest);
            } else {
                remove_dir(&self.app_dir(name));
            }
            return Err(e);
        }
        Ok(())
    }

    /// Record the install (or upgrade) and its lineage, durably.
    fn record_install(
        &self,
        cx: &mut ActCx<'_>,
        p: &Prepared,
        kind: &str,
        derivation: &str,
    ) -> Result<u64, AppError> {
        let m = &p.plan.manifest.app;
        let seq = cx.record(
            kind,
            &json!({ "name": m.name, "version": m.version, "manifest": p.verified.manifest_digest,
                     "digests": p.verified.digests, "signer": p.verified.signer_name,
                     "environment": p.verified.environment.name }),
        )?;
        cx.record_lineage(
            &format!("bundle:{}", p.verified.manifest_digest),
            &format!("app:{}@{}", m.name, m.version),
            derivation,
        )?;
        self.kernel.chain().sync()?;
        Ok(seq)
    }

    /// The start steps of `v`; on failure, what was started is undone.
    async fn bring_up(&self, v: &Version<'_>) -> Result<Started, AppError> {
        // A crash may have left the subsystems holding things for the app
        // (a unit may keep what this start takes over: running containers).
        let problems = v.clear(ClearReason::Start).await;
        if !problems.is_empty() {
            return Err(AppError::kernel(
                v.name,
                "clearing what an earlier run left",
                weft_kernel::KernelError::Failed(problems.join("; ")),
            ));
        }
        let mut started = Started::default();
        let result = match v.run(&v.plan.start, &mut started).await {
            Ok(()) => v.started().await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                started.plan = Some(Arc::new(v.plan.clone()));
                Ok(started)
            }
            Err(e) => {
                for p in v.undo(&started).await {
                    tracing::warn!("app {}: undoing a failed start: {p}", v.name);
                }
                Err(e)
            }
        }
    }

    /// Start the installed version of `name` (op lock held). On failure the
    /// app is Failed with the error recorded, and `app.failed` is on the chain.
    async fn start_locked(&self, cx: &mut ActCx<'_>, name: &str) -> Result<AppInfo, AppError> {
        let info = self.require(name)?;
        self.update(name, |i| {
            i.state = AppState::Starting;
            clear_pids(i);
        })?;
        let result = match self.plan_of(&info).await {
            Ok(plan) => {
                let v = self.version(name, &info.version, &plan, &info.components);
                self.bring_up(&v).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(started) => {
                cx.record_durable(
                    "app.start",
                    &json!({ "name": name, "version": info.version, "agents": started.agents }),
                )?;
                self.update(name, |i| {
                    i.state = AppState::Running;
                    i.error = None;
                    apply_started(i, &started);
                })?;
                self.lock_running().insert(name.to_string(), started);
                self.require(name)
            }
            Err(e) => {
                let reason = e.to_string();
                cx.record_durable(
                    "app.failed",
                    &json!({ "name": name, "version": info.version, "error": reason }),
                )?;
                self.update(name, |i| {
                    i.state = AppState::Failed;
                    i.error = Some(reason.clone());
                    clear_pids(i);
                })?;
                Err(e)
            }
        }
    }

    async fn stop_locked(&self, cx: &mut ActCx<'_>, name: &str) -> Result<AppInfo, AppError> {
        let info = self.require(name)?;
        self.update(name, |i| i.state = AppState::Stopping)?;
        let started = self.lock_running().remove(name).unwrap_or_else(|| Started {
            // Nothing in memory (started by an earlier boot): take back
            // what the registry says it holds.
            undo: info
                .agents
                .iter()
                .map(|a| crate::steps::Undo::Agent(format!("{name}.{}", a.id)))
                .chain(
                    info.tools
                        .iter()
                        .map(|t| crate::steps::Undo::Tool(t.clone())),
                )
                .chain(
                    info.services
                        .iter()
                        .map(|s| crate::steps::Undo::Service(s.clone())),
                )
                .collect(),
            ..Started::default()
        });
        let plan = self.plan_of(&info).await;
        let (problems, hook) = match &plan {
            Ok(plan) => {
                let v = self.version(name, &info.version, plan, &info.components);
                let problems = v.undo(&started).await;
                let hook = v
                    .run(&plan.stop, &mut Started::default())
                    .await
                    .err()
                    .map(|e| e.to_string());
                (problems, hook)
            }
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        cx.record_durable(
            "app.stop",
            &json!({ "name": name, "version": info.version, "hook_error": hook,
                     "problems": problems }),
        )?;
        self.update(name, |i| {
            i.state = AppState::Stopped;
            i.tools.clear();
            i.services.clear();
            clear_pids(i);
        })?;
        self.require(name)
    }

    /// The plan of an installed version, from its copied manifest, whose
    /// digest must still be the one installed.
    async fn plan_of(&self, info: &AppInfo) -> Result<InstallPlan, AppError> {
        let path = self
            .version_dir(&info.name, &info.version)
            .join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| AppError::io(&path, e))?;
        if !info.manifest.is_empty() {
            let actual = digest_hex(text.as_bytes());
            if actual != info.manifest {
                return Err(AppError::Tampered {
                    name: info.name.clone(),
                    path: MANIFEST_FILE.to_string(),
                    expected: info.manifest.clone(),
                    actual,
                });
            }
        }
        let file = path.display().to_string();
        self.checker
            .check(&text, &file)
            .await
            .map_err(|e| AppError::Bundle(e.into()))
    }

    /// What a supervisor of running app `app` asks for when it starts the
    /// app's `[[agents]]` entry `agent` as `<app>.<instance>`, and the app
    /// principal whose ceiling bounds it.
    pub(crate) fn agent_request(
        &self,
        app: &str,
        agent: &str,
        instance: &str,
    ) -> Result<(weft_kernel::SpawnRequest, Arc<weft_kernel::AppPrincipal>), AppError> {
        let plan = self
            .lock_running()
            .get(app)
            .and_then(|s| s.plan.clone())
            .ok_or_else(|| AppError::BadState {
                name: app.to_string(),
                state: "not running".into(),
                action: "start its agents",
            })?;
        let Some(spec) = plan.manifest.agents.iter().find(|a| a.id == agent) else {
            let ids = plan.manifest.agents.iter().map(|a| a.id.as_str());
            return Err(AppError::NoSuchAgent {
                app: app.to_string(),
                agent: agent.to_string(),
                hint: weft_kernel::suggest::hint(agent, ids),
            });
        };
        let info = self.require(app)?;
        let v = self.version(app, &info.version, &plan, &info.components);
        let req = v.agent_request(spec, instance)?;
        let principal = Arc::new(weft_kernel::AppPrincipal::new(
            app,
            plan.manifest.ceiling.clone(),
        ));
        Ok((req, principal))
    }

    // --- helpers -------------------------------------------------------------------------

    fn version<'a>(
        &'a self,
        name: &'a str,
        version: &'a str,
        plan: &'a InstallPlan,
        digests: &'a std::collections::BTreeMap<String, String>,
    ) -> Version<'a> {
        Version {
            kernel: &self.kernel,
            app: Principal::app(name, plan.manifest.ceiling.clone()),
            name,
            version,
            dir: self.version_dir(name, version),
            data_dir: self.app_dir(name).join("data"),
            plan,
            digests,
        }
    }

    fn info_for(&self, p: &Prepared, install_seq: u64) -> AppInfo {
        let m = &p.plan.manifest;
        AppInfo {
            name: m.app.name.clone(),
            version: m.app.version.clone(),
            description: m.app.description.clone(),
            state: AppState::Installed,
            environment: p.verified.environment.name.clone(),
            signer: p.verified.signer_name.clone(),
            manifest: p.verified.manifest_digest.clone(),
            components: p.verified.digests.clone(),
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

    fn lock_registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Started>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
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

/// Remove a staging or version dir nothing refers to; failing to is only
/// worth a warning (the next boot's clean-up retries staging dirs).
fn remove_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("cannot remove {}: {e}", dir.display());
        }
    }
}

/// Remove `.tmp-*` staging dirs and `*.json.tmp` files (of an atomic
/// write) a crash left behind.
fn clean_temp_dirs(apps_dir: &Path) -> Result<(), AppError> {
    let rd = std::fs::read_dir(apps_dir).map_err(|e| AppError::io(apps_dir, e))?;
    for e in rd {
        let e = e.map_err(|e| AppError::io(apps_dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".tmp-") {
            std::fs::remove_dir_all(e.path()).map_err(|err| AppError::io(e.path(), err))?;
        } else if name.ends_with(".json.tmp") {
            std::fs::remove_file(e.path()).map_err(|err| AppError::io(e.path(), err))?;
        }
    }
    Ok(())
}
