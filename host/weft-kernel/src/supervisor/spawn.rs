//! [`Spawn`]: checking a spawn request (name, ownership, the app ceiling,
//! the parent's capabilities) and starting the agent, waiting for its
//! `init` or not.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use weft_model::plan::AgentRole;
use weft_runtime::LoadedComponent;

use super::{release, SpawnRequest};
use crate::act::{
    valid_agent_name, ActCx, Action, AgentPrincipal, AppPrincipal, KernelView, Principal,
};
use crate::agent::task::{self, AgentSpec};
use crate::agent::{bindings, AgentPre};
use crate::capability::{Capabilities, IpcScope};
use crate::error::{KernelError, KernelResult};
use crate::process::{Pid, ProcessEntry, ProcessState, Usage};
use crate::shared::Shared;

/// capability checks are finer; these rules make the gate deny by default.
fn gate_actions(caps: &Capabilities, role: Option<AgentRole>) -> Vec<&'static str> {
    // Every agent may ask who it is, the time, random bytes, and log.
    let mut a = vec!["kernel.*"];
    if caps.ipc != IpcScope::None {
        a.push("ipc.*");
    }
    if !caps.tools.allow.is_empty() {
        a.push("tool.exec.**");
    }
    if caps.chain_append {
        a.push("chain.append");
    }
    if caps.spawn || role == Some(AgentRole::Supervisor) {
        a.extend(["agent.spawn", "agent.stop", "agent.restart"]);
    }
    if caps.cron {
        a.extend(["cron.add", "cron.remove"]);
    }
    if !caps.ecc.ops.is_empty() {
        // Which ops on which namespaces: checked by the `ecc` unit.
        a.push("ecc.*");
    }
    if !caps.network.outbound.is_empty() {
        // Which hosts: checked by the `net` unit against the grants.
        a.push("net.http.**");
    }
    a
}

pub(crate) fn agent_pre(shared: &Shared, c: &LoadedComponent) -> KernelResult<AgentPre> {
    let mut pres = shared.agents.pres.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = pres.get(&c.digest) {
        return Ok(p.clone());
    }
    let invalid = |e: wasmtime::Error| {
        KernelError::Run(weft_runtime::RunError::InvalidComponent {
            reason: format!("not a weft:kernel agent: {e:#}"),
        })
    };
    let pre = shared
        .agents
        .linker
        .instantiate_pre(c.component().map_err(KernelError::Run)?)
        .map_err(invalid)?;
    let pre = bindings::AgentPre::new(pre).map_err(invalid)?;
    pres.insert(c.digest, pre.clone());
    Ok(pre)
}

/// Start an agent (`agent.spawn`). [`Spawn::new`] returns its pid once its
/// `init` has succeeded, and a failing `init` fails the spawn (what app start
/// and upgrade rollback need). [`Spawn::detached`] returns it as soon as the
/// process is gated, recorded and registered; instantiation and `init` then
/// run in the agent's own task, and a failing `init` is a crash handled by
/// its restart policy, like any other.
pub struct Spawn {
    req: SpawnRequest,
    wait: bool,
    digest: String,
    pre: Option<AgentPre>,
    app: Option<Arc<AppPrincipal>>,
}

impl Spawn {
    /// Spawn what `req` describes.
    pub fn new(req: SpawnRequest) -> Self {
        let digest = req.component.digest.to_hex();
        Spawn {
            req,
            wait: true,
            digest,
            pre: None,
            app: None,
        }
    }

    /// Spawn what `req` describes without waiting for its `init` (see
    /// [`Spawn`]): messages sent to the pid meanwhile wait in its inbox.
    pub fn detached(req: SpawnRequest) -> Self {
        Spawn {
            wait: false,
            ..Spawn::new(req)
        }
    }

    /// Spawn an agent `app` declares, asked by one of that app's
    /// supervisors (`weft:kernel/supervisor`): the child is bounded by the
    /// app's ceiling rather than by the supervisor's own capabilities, and
    /// becomes the supervisor's child. Anyone else asking is refused.
    /// Detached: the supervisor learns of a failing `init` as it learns of
    /// any crash of its children.
    pub fn for_app(req: SpawnRequest, app: Arc<AppPrincipal>) -> Self {
        Spawn {
            app: Some(app),
            ..Spawn::detached(req)
        }
    }
}

/// Keep `req` within `app`'s ceiling: asking for more is refused, and what
/// the agent gets is bounded by it (an app's own spawns and its
/// supervisors' alike).
fn bound_by_ceiling(req: &mut SpawnRequest, app: &AppPrincipal) -> KernelResult<()> {
    let Some(ceiling) = &app.ceiling else {
        return Ok(());
    };
    req.capabilities.within(ceiling).map_err(|x| {
        KernelError::Denied(format!(
            "agent `{}` exceeds the ceiling of app `{}`: {}",
            req.name,
            app.name(),
            excess_text(&x)
        ))
    })?;
    req.capabilities = std::mem::take(&mut req.capabilities).bounded_by(ceiling);
    Ok(())
}

fn excess_text(excess: &[weft_model::Excess]) -> String {
    excess
        .iter()
        .map(|e| format!("capabilities.{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Action for Spawn {
    type Output = Pid;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("agent.spawn")
    }

    fn gate_context(&self) -> Value {
        json!({ "name": self.req.name, "component": self.digest })
    }

    fn authorize(&mut self, who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        let k = k.shared();
        let req = &mut self.req;
        if !valid_agent_name(&req.name) {
            return Err(KernelError::Invalid(format!(
                "agent name `{}`: use 1-128 of [A-Za-z0-9._-], not `kernel` or `operator`",
                req.name
            )));
        }
        match who {
            Principal::Kernel | Principal::Operator => {}
            Principal::App(app) => {
                if !app.owns_name(&req.name) {
                    return Err(KernelError::Denied(format!(
                        "app `{}` may only spawn agents named `{}.*`, not `{}`",
                        app.name(),
                        app.name(),
                        req.name
                    )));
                }
                bound_by_ceiling(req, app)?;
            }
            Principal::Agent(a) if self.app.is_some() => {
                let app = self.app.as_deref().ok_or_else(|| {
                    KernelError::Failed("spawn for an app without the app".into())
                })?;
                if !a.is_supervisor() {
                    return Err(KernelError::Denied(format!(
                        "`{}` is a {}: only agents with role = \"supervisor\" may start agents of their app",
                        a.name,
                        a.role.map_or("agent outside an app", AgentRole::as_str)
                    )));
                }
                if !app.owns_name(&a.name) || !app.owns_name(&req.name) {
                    return Err(KernelError::Denied(format!(
                        "`{}` may only start agents of its own app as `{}.*`, not `{}`",
                        a.name,
                        app.name(),
                        req.name
                    )));
                }
                bound_by_ceiling(req, app)?;
                req.parent = Some(a.pid);
            }
            Principal::Agent(a) => {
                if !a.caps.spawn {
                    return Err(KernelError::Denied(format!(
                        "`{}` may not spawn agents",
                        a.name
                    )));
                }
                // A child never holds more than its parent.
                req.capabilities.within(&a.caps).map_err(|x| {
                    KernelError::Denied(format!(
                        "child `{}` would exceed the capabilities of `{}`: {}",
                        req.name,
                        a.name,
                        excess_text(&x)
                    ))
                })?;
                req.parent = Some(a.pid);
            }
        }
        if let Some(p) = req.parent {
            if k.agents.table.get(p).is_none() {
                return Err(KernelError::NoSuchProcess(p));
            }
        }
        if k.agents.table.pid_of(&req.name).is_some() {
            return Err(KernelError::NameTaken(req.name.clone()));
        }
        self.pre = Some(agent_pre(k, &self.req.component)?);
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<Pid> {
        let shared = cx.shared.clone();
        let Some(pre) = self.pre else {
            return Err(KernelError::Failed("spawn was not authorized".into()));
        };
        let req = self.req;
        let digest = self.digest;
        let caps = Arc::new(req.capabilities);
        let usage: Arc<Usage> = Arc::default();
        let name: Arc<str> = Arc::from(req.name.as_str());
        let owner: Arc<str> = Arc::from(cx.who().gate_name());
        let limits = req
            .limits
            .unwrap_or_else(|| shared.config.agent_limits.clone());
        let pid = shared.agents.table.insert(ProcessEntry {
            pid: 0,
            name: name.clone(),
            parent: req.parent,
            children: Vec::new(),
            state: ProcessState::Starting,
            capabilities: caps.clone(),
            usage: Arc::clone(&usage),
            component: digest.clone(),
            started_ns: weft_chain::now_ns(),
            last_failure: None,
            owner: owner.clone(),
            role: req.role,
            priority: req.priority,
            lineage: req.lineage.as_deref().map(Arc::from),
            limits: Arc::new(limits.clone()),
        })?;
        let me = Arc::new(AgentPrincipal {
            pid,
            name: name.clone(),
            parent: req.parent,
            caps: caps.clone(),
            usage: usage.clone(),
            max_messages: limits.max_messages,
            max_tool_calls: limits.max_tool_calls,
            owner: owner.clone(),
            role: req.role,
            app: match cx.who() {
                Principal::App(a) => Some(Arc::from(a.name())),
                Principal::Agent(a) => a.app.clone(),
                Principal::Kernel | Principal::Operator => None,
            },
        });
        shared.agents.principals.insert(pid, me.clone());
        let spec = Arc::new(AgentSpec {
            me,
            pre,
            limits,
            restart: req.restart,
            config: req.config.to_string(),
            grants: req.grants,
            priority: req.priority,
        });
        if let Err(e) = shared
            .gate
            .layered
            .capability
            .allow(&name, &gate_actions(&caps, req.role))
        {
            release(&shared, pid, &name, true);
            return Err(KernelError::Invalid(e.to_string()));
        }
        let inbox = shared.ipc.router.register(pid);
        let (ctl_tx, ctl_rx) = mpsc::channel(16);
        shared.agents.controls.insert(pid, ctl_tx);
        let live = if self.wait {
            match task::start(&shared, &spec).await {
                Ok(l) => Some(l),
                Err(f) => {
                    release(&shared, pid, &name, true);
                    return Err(KernelError::Failed(format!(
                        "agent `{name}` did not start: {f}"
                    )));
                }
            }
        } else {
            None
        };
        let recorded = (|| -> KernelResult<()> {
            let mut body = json!({ "pid": pid, "name": &*name, "parent": req.parent,
                                   "component": digest, "capabilities": &*caps, "owner": &*owner });
            if let Some(role) = req.role {
                body["role"] = json!(role);
                body["priority"] = json!(req.priority);
            }
            let seq = cx.record("agent.spawn", &body)?;
            cx.tree().insert(
                &format!("/kernel/agents/{name}"),
                [
                    ("pid".to_string(), json!(pid)),
                    ("component".to_string(), json!(digest)),
                    ("spawn_seq".to_string(), json!(seq)),
                ]
                .into_iter()
                .collect(),
            )?;
            if let Some(parent) = &req.lineage {
                cx.record_lineage(parent, &format!("agent:{name}"), "spawn")?;
            }
            Ok(())
        })();
        let guard = task::TaskGuard::new(shared.clone(), spec);
        if let Err(e) = recorded {
            // Unrecorded, it must not run: the guard releases it.
            drop(live);
            drop(guard);
            return Err(e);
        }
        let handle = tokio::spawn(task::run(guard, live, inbox, ctl_rx));
        shared.agents.tasks.insert(pid, handle);
        Ok(pid)
    }
}
