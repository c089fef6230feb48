//! The kernel-facing steps of the app lifecycle: staging a verified bundle
//! into `<state>/apps/<name>/<version>/`, running hooks, and bringing an
//! installed version up (tools, services, agents) or down again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;
use weft_kernel::service::{AuditLevel, ServiceEndpoint};
use weft_kernel::tools::ToolEntry;
use weft_kernel::{Kernel, SpawnRequest};
use weft_runtime::{ComponentKind, Grants, Limits, LoadedComponent};

use crate::app_error::AppError;
use crate::bundle::Bundle;
use crate::checker::types::{InstallPlan, ServiceSource, Step};
use crate::convert;
use crate::error::BundleError;
use crate::lock::{digest_hex, LOCK_FILE, MANIFEST_FILE, SIG_FILE};
use crate::registry::{sync_dir, AgentRef};
use crate::verify::Verified;

/// What a running app version holds in the kernel.
#[derive(Debug, Default, Clone)]
pub(crate) struct Started {
    pub agents: Vec<AgentRef>,
    pub tools: Vec<String>,
    pub services: Vec<String>,
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

/// One installed version of an app, on disk, with its checked plan.
pub(crate) struct Version<'a> {
    pub kernel: &'a Kernel,
    pub name: &'a str,
    pub version: &'a str,
    pub dir: PathBuf,
    pub data_dir: PathBuf,
    pub plan: &'a InstallPlan,
    pub digests: &'a BTreeMap<String, String>,
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
            .runtime()
            .load(&bytes)
            .map_err(|e| AppError::kernel(self.name, format!("loading `{rel}`"), e.into()))
    }

    /// Run a hook component once: a tool gets
    /// `{"event": <event>, "app": <name>}`, a command runs with no args.
    pub async fn run_hook(&self, hook: &'static str, event: &str) -> Result<(), AppError> {
        let h = &self.plan.manifest.hooks;
        let rel = match hook {
            "on_install" => &h.on_install,
            "on_start" => &h.on_start,
            "on_stop" => &h.on_stop,
            _ => &h.on_remove,
        };
        let Some(rel) = rel else { return Ok(()) };
        let fail = |reason: String| AppError::Hook {
            name: self.name.to_string(),
            hook,
            component: rel.clone(),
            reason,
        };
        let c = self.load(rel)?;
        let rt = self.kernel.runtime();
        let limits = Limits::default();
        match c.kind {
            ComponentKind::Tool => {
                let input = json!({ "event": event, "app": self.name }).to_string();
                let out = rt
                    .run_tool(&c, &input, &limits, &Grants::default())
                    .await
                    .map_err(|f| fail(f.error.to_string()))?;
                out.result.map(|_| ()).map_err(|e| fail(e.to_string()))
            }
            ComponentKind::Command => {
                let out = rt
                    .run_command(&c, &limits, &Grants::default())
                    .await
                    .map_err(|f| fail(f.error.to_string()))?;
                if out.exit_code == 0 {
                    Ok(())
                } else {
                    Err(fail(format!(
                        "exited with code {}: {}",
                        out.exit_code,
                        String::from_utf8_lossy(&out.stderr).trim()
                    )))
                }
            }
            ComponentKind::Other => Err(fail(
                "neither a tool nor a WASI command component".to_string(),
            )),
        }
    }

    /// `on_start`, then tools, services and `auto_start` agents in plan
    /// order. On failure everything started is undone before returning.
    pub async fn start(&self) -> Result<Started, AppError> {
        let mut started = Started::default();
        match self.start_inner(&mut started).await {
            Ok(()) => Ok(started),
            Err(e) => {
                self.teardown(&started).await;
                Err(e)
            }
        }
    }

    async fn start_inner(&self, started: &mut Started) -> Result<(), AppError> {
        self.run_hook("on_start", "start").await?;
        let m = &self.plan.manifest;
        for t in &m.tools {
            if self.kernel.tools().iter().any(|l| l.name == t.name) {
                return Err(AppError::ToolTaken {
                    name: self.name.to_string(),
                    tool: t.name.clone(),
                    by: " (by another app or the kernel)".into(),
                });
            }
            let entry = ToolEntry {
                name: t.name.clone(),
                component: self.load(&t.component)?,
                limits: convert::tool_limits(&t.limits, &Limits::default()),
                grants: convert::tool_grants(t, &self.data_dir),
                description: format!("{} (app {}@{})", m.app.description, self.name, self.version),
            };
            self.kernel.register_tool(entry).map_err(|e| {
                AppError::kernel(self.name, format!("registering tool `{}`", t.name), e)
            })?;
            started.tools.push(t.name.clone());
        }
        for s in &m.services {
            match &s.source {
                ServiceSource::Url(url) => {
                    let endpoint = ServiceEndpoint::External { url: url.clone() };
                    self.kernel
                        .register_service(&s.name, endpoint, AuditLevel::Full, None)
                        .map_err(|e| {
                            AppError::kernel(
                                self.name,
                                format!("registering service `{}`", s.name),
                                e,
                            )
                        })?;
                    started.services.push(s.name.clone());
                }
                ServiceSource::Image(image) => {
                    return Err(AppError::NoContainerEngine {
                        name: self.name.to_string(),
                        service: s.name.clone(),
                        image: image.clone(),
                    })
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
                        backoff: std::time::Duration::from_millis(100),
                    };
                    req.config = json!({
                        "service": s.name,
                        "env": s.env.iter().map(|e| (e.key.clone(), e.value.clone())).collect::<std::collections::BTreeMap<_, _>>(),
                    });
                    req.lineage = Some(format!("app:{}@{}", self.name, self.version));
                    let pid = self.kernel.spawn(req).await.map_err(|e| {
                        AppError::kernel(self.name, format!("starting service `{}`", s.name), e)
                    })?;
                    started.services.push(s.name.clone());
                    self.kernel
                        .register_service(
                            &s.name,
                            ServiceEndpoint::AgentInbox(pid),
                            AuditLevel::Full,
                            None,
                        )
                        .map_err(|e| {
                            AppError::kernel(
                                self.name,
                                format!("registering service `{}`", s.name),
                                e,
                            )
                        })?;
                }
            }
        }
        for id in spawn_order(self.plan) {
            let Some(a) = m.agents.iter().find(|a| a.id == id) else {
                continue;
            };
            let mut req =
                SpawnRequest::new(format!("{}.{}", self.name, a.id), self.load(&a.component)?);
            req.capabilities = convert::capabilities(&a.capabilities);
            req.limits = a.limits.as_ref().map(convert::agent_limits);
            req.restart = convert::restart(&a.restart);
            req.config = convert::config(a);
            req.lineage = Some(format!("app:{}@{}", self.name, self.version));
            let pid = self.kernel.spawn(req).await.map_err(|e| {
                AppError::kernel(self.name, format!("spawning agent `{}`", a.id), e)
            })?;
            started.agents.push(AgentRef {
                id: a.id.clone(),
                pid: Some(pid),
            });
        }
        self.schedule_cron()
    }

    /// `[[cron]]`: each job goes to the kernel's cron service, owned by and
    /// sent to `<app>.<target>`. Jobs left by an earlier run (the job table
    /// outlives restarts) are dropped first, so a restart does not double them.
    fn schedule_cron(&self) -> Result<(), AppError> {
        let jobs = &self.plan.manifest.cron;
        if jobs.is_empty() {
            return Ok(());
        }
        let fail = |what: String, e: String| {
            AppError::kernel(self.name, what, weft_kernel::KernelError::Failed(e))
        };
        let cron = self.kernel.cron_service().ok_or_else(|| {
            fail(
                "scheduling cron jobs".into(),
                "no cron service is installed".into(),
            )
        })?;
        self.drop_cron(cron.as_ref());
        for job in jobs {
            let agent = format!("{}.{}", self.name, job.target);
            let decision = self.kernel.check(
                "kernel",
                "service.cron.add",
                &json!({ "app": self.name, "target": agent, "schedule": job.schedule }),
            );
            if !decision.is_permit() {
                return Err(fail(
                    format!("cron job for `{}`", job.target),
                    decision.reason(),
                ));
            }
            let payload = serde_json::from_str(&job.payload).unwrap_or(serde_json::Value::Null);
            cron.add(
                &agent,
                weft_kernel::cron::CronJobSpec {
                    schedule: job.schedule.clone(),
                    target: agent.clone(),
                    payload,
                },
            )
            .map_err(|e| {
                fail(
                    format!("cron job `{}` for `{}`", job.schedule, job.target),
                    e,
                )
            })?;
        }
        Ok(())
    }

    /// Remove every cron job owned by this app's agents.
    fn drop_cron(&self, cron: &dyn weft_kernel::cron::CronService) {
        let prefix = format!("{}.", self.name);
        for job in cron.list() {
            if job.owner.starts_with(&prefix) {
                let _ = cron.remove(&job.owner, &job.id);
            }
        }
    }

    /// Stop agents (last spawned first), unregister tools and services.
    /// Best effort: what is already gone is skipped.
    pub async fn teardown(&self, started: &Started) {
        if let Some(cron) = self.kernel.cron_service() {
            self.drop_cron(cron.as_ref());
        }
        for a in started.agents.iter().rev() {
            let name = format!("{}.{}", self.name, a.id);
            let pid = self.kernel.pid_of(&name).or(a.pid);
            if let Some(pid) = pid {
                let _ = self.kernel.stop(pid).await;
            }
        }
        for t in &started.tools {
            self.kernel.unregister_tool(t);
        }
        for s in &started.services {
            // A component service's agent goes with it (stopping the agent
            // also drops its registration).
            let owner = self
                .kernel
                .services()
                .into_iter()
                .find(|e| &e.name == s)
                .and_then(|e| e.owner_pid);
            if let Some(pid) = owner {
                let _ = self.kernel.stop(pid).await;
            } else if let Some(pid) = self.kernel.pid_of(&format!("{}.service.{s}", self.name)) {
                let _ = self.kernel.stop(pid).await;
            }
            let _ = self.kernel.unregister_service(s);
        }
    }
}

/// `spawn-agent` steps in plan order (the `auto_start` agents).
fn spawn_order(plan: &InstallPlan) -> Vec<String> {
    plan.steps
        .iter()
        .filter_map(|s| match s {
            Step::SpawnAgent(id) => Some(id.clone()),
            _ => None,
        })
        .collect()
}

/// The first container service, refused before anything is copied.
pub(crate) fn container_service(plan: &InstallPlan) -> Option<(String, String)> {
    plan.manifest.services.iter().find_map(|s| match &s.source {
        ServiceSource::Image(i) => Some((s.name.clone(), i.clone())),
        _ => None,
    })
}
