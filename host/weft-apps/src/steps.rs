//! The plan's steps, carried out literally: staging a verified bundle into
//! `<state>/apps/<name>/<version>/` (the install steps), and bringing an
//! installed version up (the start steps) and down (undoing them, then the
//! stop steps). Every step that touches the kernel is an action of the app
//! principal `app:<name>` through the chokepoint; steps of another
//! subsystem (`add-cron`, ...) go to the subsystem that claims them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use weft_kernel::ipc::service::{AuditLevel, ServiceEndpoint};
use weft_kernel::ipc::{RegisterService, UnregisterService};
use weft_kernel::tools::{RegisterTool, ToolEntry, UnregisterTool};
use weft_kernel::{
    AppClearCx, AppStepCx, ClearReason, Kernel, KernelError, Principal, Spawn, SpawnRequest, Stop,
};
use weft_model::plan::{AgentSpec, HookRun, InstallPlan, ServiceSource, Step};
use weft_runtime::{Limits, LoadedComponent};

use crate::actions::RunHook;
use crate::app_error::AppError;
use crate::bundle::Bundle;
use crate::convert;
use crate::error::BundleError;
use crate::lock::{digest_hex, LOCK_FILE, MANIFEST_FILE, SIG_FILE};
use crate::registry::{sync_dir, AgentRef};
use crate::verify::Verified;

/// What a running app version holds in the kernel, in the order it was
/// started (undone in reverse).
#[derive(Debug, Default, Clone)]
pub(crate) struct Started {
    pub agents: Vec<AgentRef>,
    pub tools: Vec<String>,
    pub services: Vec<String>,
    /// Everything started, in order.
    pub undo: Vec<Undo>,
    /// The plan it was started from, for its supervisors' `spawn`
    /// (`None` when only the registry knew what ran).
    pub plan: Option<Arc<InstallPlan>>,
}

/// How to take back one start step.
#[derive(Debug, Clone)]
pub(crate) enum Undo {
    Agent(String),
    Tool(String),
    Service(String),
}

/// Copy the manifest, lock, signature and every locked component into a
/// temp dir under `apps_dir`, re-checking each component's digest against
/// what was verified, then rename it to `dest`.
pub(crate) fn copy_bundle(
    bundle: &Bundle,
    verified: &Verified,
    apps_dir: &Path,
    dest: &Path,
) -> Result<(), AppError> {
    let stamp = weft_chain::now_ns();
    let tmp = apps_dir.join(format!(".tmp-{stamp}"));
    let result = (|| {
        write_file(&tmp.join(MANIFEST_FILE), bundle.manifest_bytes())?;
        write_file(&tmp.join(LOCK_FILE), &bundle.read(LOCK_FILE)?)?;
        if bundle.signature().is_some() {
            write_file(&tmp.join(SIG_FILE), &bundle.read(SIG_FILE)?)?;
        }
        for (path, expected) in &verified.digests {
            let bytes = bundle.read(path)?;
            let actual = digest_hex(&bytes);
            if &actual != expected {
                return Err(AppError::Bundle(BundleError::DigestMismatch {
                    bundle: bundle.name().to_string(),
                    path: path.clone(),
                    expected: expected.clone(),
                    actual,
                }));
            }
            write_file(&tmp.join(path), &bytes)?;
        }
        let parent = dest.parent().unwrap_or(apps_dir);
        std::fs::create_dir_all(parent).map_err(|e| AppError::io(parent, e))?;
        if dest.exists() {
            std::fs::remove_dir_all(dest).map_err(|e| AppError::io(dest, e))?;
        }
        std::fs::rename(&tmp, dest).map_err(|e| AppError::io(dest, e))?;
        sync_dir(parent)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| AppError::io(dir, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| AppError::io(path, e))?;
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| AppError::io(path, e))
}

/// One installed version of an app, on disk, with its checked plan, and
/// the principal it acts as.
pub(crate) struct Version<'a> {
    pub kernel: &'a Kernel,
    pub app: Principal,
    pub name: &'a str,
    pub version: &'a str,
    pub dir: PathBuf,
    pub data_dir: PathBuf,
    pub plan: &'a InstallPlan,
    pub digests: &'a BTreeMap<String, String>,
}

fn kernel_err(name: &str, what: String) -> impl FnOnce(KernelError) -> AppError + '_ {
    move |e| AppError::kernel(name, what, e)
}

impl Version<'_> {
    /// Load an installed component, checking its bytes against the digest
    /// recorded at install (so a file changed on disk is refused).
    pub fn load(&self, rel: &str) -> Result<LoadedComponent, AppError> {
        let path = self.dir.join(rel);
        let bytes = std::fs::read(&path).map_err(|e| AppError::io(&path, e))?;
        let actual = digest_hex(&bytes);
        let expected = self.digests.get(rel).cloned().unwrap_or_default();
        if actual != expected {
            return Err(AppError::Tampered {
                name: self.name.to_string(),
                path: rel.to_string(),
                expected,
                actual,
            });
        }
        self.kernel
            .load_component_bytes(&bytes)
            .map_err(kernel_err(self.name, format!("loading `{rel}`")))
    }

    /// What starting the app's agent `a` as `<app>.<instance>` asks the
    /// kernel for: its component (digest re-checked), capabilities,
    /// limits, restart policy, config, role and priority.
    pub fn agent_request(&self, a: &AgentSpec, instance: &str) -> Result<SpawnRequest, AppError> {
        let mut req = SpawnRequest::new(
            format!("{}.{instance}", self.name),
            self.load(&a.component)?,
        );
        req.capabilities = a.capabilities.clone();
        req.limits = a.limits.clone();
        req.restart = convert::restart(&a.restart);
        req.config = convert::config(a);
        req.role = Some(a.role);
        req.priority = a.priority;
        Ok(req)
    }

    /// Run a hook (`run-hook` step) as the app: a tool gets
    /// `{"event": <event>, "app": <name>}`, a command runs with no args.
    pub async fn run_hook(&self, h: &HookRun) -> Result<(), AppError> {
        let component = self.load(&h.component)?;
        let event = h.hook.strip_prefix("on-").unwrap_or(&h.hook).to_string();
        self.kernel
            .act(
                &self.app,
                RunHook {
                    app: self.name.to_string(),
                    hook: h.hook.clone(),
                    event,
                    path: h.component.clone(),
                    component,
                },
            )
            .await
            .map_err(|e| AppError::Hook {
                name: self.name.to_string(),
                // As the manifest spells it (`[hooks] on_install`).
                hook: h.hook.replace('-', "_"),
                component: h.component.clone(),
                reason: match e {
                    KernelError::Failed(m) => m,
                    other => other.to_string(),
                },
            })
    }

    /// Carry out `steps` (one phase of the plan) in order. With `started`,
    /// each start step's undo is recorded there as it succeeds.
    pub async fn run(&self, steps: &[Step], started: &mut Started) -> Result<(), AppError> {
        for step in steps {
            self.step(step, started).await?;
        }
        Ok(())
    }

    async fn step(&self, step: &Step, started: &mut Started) -> Result<(), AppError> {
        let k = self.kernel;
        let app = &self.app;
        match step {
            Step::RunHook(h) => self.run_hook(h).await,
            Step::RegisterTool(t) => {
                if let Some(owner) = k
                    .tools()
                    .iter()
                    .find(|l| l.name == t.name)
                    .map(|l| l.owner.clone())
                {
                    return Err(AppError::ToolTaken {
                        name: self.name.to_string(),
                        tool: t.name.clone(),
                        by: format!(" by `{owner}`"),
                    });
                }
                let mut entry = ToolEntry::new(&t.name, self.load(&t.component)?);
                entry.limits = convert::tool_limits(&t.limits, &Limits::default());
                entry.grants = convert::tool_grants(t, &self.data_dir);
                entry.network = t.network.clone();
                // The description is the tool's own `describe()` (filled in at
                // registration); the owner column already names the app.
                k.act(app, RegisterTool(entry)).await.map_err(kernel_err(
                    self.name,
                    format!("registering tool `{}`", t.name),
                ))?;
                started.tools.push(t.name.clone());
                started.undo.push(Undo::Tool(t.name.clone()));
                Ok(())
            }
            Step::RegisterService(s) => match &s.source {
                ServiceSource::Url(_) if claimant(k, step).is_some() => {
                    // The net unit serves it over HTTP.
                    self.unit_step(step).await?;
                    started.services.push(s.name.clone());
                    started.undo.push(Undo::Service(s.name.clone()));
                    Ok(())
                }
                ServiceSource::Url(url) => {
                    // No net unit: listed, but messages to it are refused.
                    let register = RegisterService {
                        name: s.name.clone(),
                        endpoint: ServiceEndpoint::External { url: url.clone() },
                        audit_level: AuditLevel::Full,
                        native: None,
                    };
                    k.act(app, register).await.map_err(kernel_err(
                        self.name,
                        format!("registering service `{}`", s.name),
                    ))?;
                    started.services.push(s.name.clone());
                    started.undo.push(Undo::Service(s.name.clone()));
                    Ok(())
                }
                ServiceSource::Component(path) => {
                    // A component service is an agent-world component run as
                    // `<app>.service.<name>`; `Service`/`ServiceMethod`
                    // messages route to it. It gets no capabilities beyond
                    // replying, and its env as init config.
                    let agent = format!("{}.service.{}", self.name, s.name);
                    let mut req = SpawnRequest::new(&agent, self.load(path)?);
                    req.restart = weft_kernel::RestartPolicy::OnFailure {
                        max_retries: 3,
                        backoff: Duration::from_millis(100),
                    };
                    req.config = json!({
                        "service": s.name,
                        "env": s.env.iter().map(|e| (e.key.clone(), e.value.clone())).collect::<BTreeMap<_, _>>(),
                    });
                    req.lineage = Some(format!("app:{}@{}", self.name, self.version));
                    let pid = k.act(app, Spawn::new(req)).await.map_err(kernel_err(
                        self.name,
                        format!("starting service `{}`", s.name),
                    ))?;
                    started.undo.push(Undo::Agent(agent.clone()));
                    let register = RegisterService {
                        name: s.name.clone(),
                        endpoint: ServiceEndpoint::AgentInbox(pid),
                        audit_level: AuditLevel::Full,
                        native: None,
                    };
                    k.act(app, register).await.map_err(kernel_err(
                        self.name,
                        format!("registering service `{}`", s.name),
                    ))?;
                    started.services.push(s.name.clone());
                    started.undo.push(Undo::Service(s.name.clone()));
                    Ok(())
                }
                ServiceSource::Image(_) | ServiceSource::ImageArchive(_) => {
                    // The containers unit registers it, and takes it down
                    // when the app stops (its `app_clear`).
                    self.unit_step(step).await?;
                    started.services.push(s.name.clone());
                    Ok(())
                }
            },
            Step::SpawnAgent(a) => {
                let mut req = self.agent_request(a, &a.id)?;
                req.lineage = Some(format!("app:{}@{}", self.name, self.version));
                let name = req.name.clone();
                let pid = k
                    .act(app, Spawn::new(req))
                    .await
                    .map_err(kernel_err(self.name, format!("spawning agent `{}`", a.id)))?;
                started.agents.push(AgentRef {
                    id: a.id.clone(),
                    pid: Some(pid),
                });
                started.undo.push(Undo::Agent(name));
                Ok(())
            }
            Step::AddCron(_) | Step::AddRoute(_) => self.unit_step(step).await,
            Step::VerifyDigests(_)
            | Step::CopyBundle
            | Step::Precompile(_)
            | Step::PrepareImage(_) => Err(AppError::kernel(
                self.name,
                "carrying out the plan",
                KernelError::Invalid(format!("{step:?} is an install step, not a start step")),
            )),
        }
    }

    /// A step another subsystem carries out (the one that claims it).
    pub async fn unit_step(&self, step: &Step) -> Result<(), AppError> {
        let k = self.kernel;
        let unit = claimant(k, step).ok_or_else(|| unclaimed(self.name, step))?;
        unit.app_step(AppStepCx {
            kernel: k,
            app: &self.app,
            version: self.version,
            dir: &self.dir,
            data_dir: &self.data_dir,
            digests: self.digests,
            step,
        })
        .await
        .map_err(kernel_err(self.name, describe(step)))
    }

    /// Ask every subsystem to let go of what it holds for the app (for
    /// `reason`); each failure is one line.
    pub async fn clear(&self, reason: ClearReason) -> Vec<String> {
        clear_app(self.kernel, &self.app, self.version, reason).await
    }

    /// Tell every subsystem the start is complete (they sweep what the
    /// start did not take over).
    pub async fn started(&self) -> Result<(), AppError> {
        for unit in self.kernel.units() {
            let cx = AppClearCx {
                kernel: self.kernel,
                app: &self.app,
                version: self.version,
                reason: ClearReason::Start,
            };
            unit.app_started(cx).await.map_err(kernel_err(
                self.name,
                format!("finishing the start ({})", unit.name()),
            ))?;
        }
        Ok(())
    }

    /// Take back what `started` holds, last first, then let every
    /// subsystem drop what it holds for the app. Best effort: what is
    /// already gone is skipped; other failures are returned, one line each.
    pub async fn undo(&self, started: &Started) -> Vec<String> {
        let k = self.kernel;
        let app = &self.app;
        let mut problems = Vec::new();
        let gone = |e: &KernelError| {
            matches!(
                e,
                KernelError::NotFound(_)
                    | KernelError::NoSuchProcess(_)
                    | KernelError::NoSuchName(_)
            )
        };
        for u in started.undo.iter().rev() {
            let r = match u {
                Undo::Agent(name) => match k.pid_of(name) {
                    Some(pid) => k.act(app, Stop::new(pid)).await,
                    None => Ok(()),
                },
                Undo::Tool(name) => k.act(app, UnregisterTool { name: name.clone() }).await,
                Undo::Service(name) => k.act(app, UnregisterService { name: name.clone() }).await,
            };
            if let Err(e) = r {
                if !gone(&e) {
                    problems.push(format!("{u:?}: {e}"));
                }
            }
        }
        problems.extend(self.clear(ClearReason::Stop).await);
        problems
    }
}

/// Ask every subsystem to let go of what it holds for `app` (for
/// `reason`); each failure is one line.
pub(crate) async fn clear_app(
    kernel: &Kernel,
    app: &Principal,
    version: &str,
    reason: ClearReason,
) -> Vec<String> {
    let mut problems = Vec::new();
    for unit in kernel.units() {
        let cx = AppClearCx {
            kernel,
            app,
            version,
            reason,
        };
        if let Err(e) = unit.app_clear(cx).await {
            problems.push(format!("{}: {e}", unit.name()));
        }
    }
    problems
}

/// The subsystem that carries out `step`, if any is registered.
pub(crate) fn claimant(
    k: &Kernel,
    step: &Step,
) -> Option<std::sync::Arc<dyn weft_kernel::Subsystem>> {
    k.unit_names()
        .into_iter()
        .filter_map(|n| k.unit(n))
        .find(|u| u.claims_step(step))
}

/// What a step is, for messages.
pub(crate) fn describe(step: &Step) -> String {
    match step {
        Step::RegisterService(s) => format!("service `{}`", s.name),
        Step::PrepareImage(s) => format!("the image of service `{}`", s.name),
        Step::AddCron(c) => format!("cron job `{}` for `{}`", c.schedule, c.target),
        Step::AddRoute(r) => format!("route `{}`", r.path),
        other => format!("{other:?}"),
    }
}

/// The error for a step no subsystem of this kernel carries out.
pub(crate) fn unclaimed(app: &str, step: &Step) -> AppError {
    match step {
        Step::RegisterService(s) | Step::PrepareImage(s) => match &s.source {
            ServiceSource::Image(image) | ServiceSource::ImageArchive(image) => {
                AppError::NoContainerEngine {
                    name: app.to_string(),
                    service: s.name.clone(),
                    image: image.clone(),
                }
            }
            _ => AppError::Unsupported {
                name: app.to_string(),
                what: describe(step),
            },
        },
        Step::AddCron(_) => AppError::Unsupported {
            name: app.to_string(),
            what: format!("{} (no cron subsystem is installed)", describe(step)),
        },
        other => AppError::Unsupported {
            name: app.to_string(),
            what: describe(other),
        },
    }
}

/// The start steps this kernel cannot carry out (checked at install).
pub(crate) fn unsupported(k: &Kernel, plan: &InstallPlan) -> Option<AppError> {
    let name = &plan.manifest.app.name;
    plan.install
        .iter()
        .chain(&plan.start)
        .find_map(|s| match s {
            Step::PrepareImage(_) => claimant(k, s).is_none().then(|| unclaimed(name, s)),
            Step::RegisterService(svc) if svc.source.is_container() => {
                claimant(k, s).is_none().then(|| unclaimed(name, s))
            }
            Step::AddCron(_) | Step::AddRoute(_) => {
                claimant(k, s).is_none().then(|| unclaimed(name, s))
            }
            _ => None,
        })
}
