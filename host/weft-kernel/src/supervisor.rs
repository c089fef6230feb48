//! Spawning, stopping and restarting agents ([`Spawn`], [`Stop`],
//! [`Restart`], each an action), and the supervision tree: stopping a
//! parent stops its children first.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use weft_runtime::{Grants, LoadedComponent};

use weft_model::plan::{AgentPriority, AgentRole};

use crate::act::{
    valid_agent_name, ActCx, Action, AgentPrincipal, AppPrincipal, KernelView, Principal,
};
use crate::agent::task::{self, AgentSpec};
use crate::agent::{bindings, AgentPre};
use crate::capability::{AgentLimits, Capabilities, IpcScope};
use crate::error::{KernelError, KernelResult};
use crate::process::{Pid, ProcessEntry, ProcessState, Usage};
use crate::shared::{Control, Shared};

/// When a crashed agent is started again.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartPolicy {
    /// A crash stops the agent for good.
    #[default]
    Never,
    /// Restart up to `max_retries` times, waiting `backoff`, then twice as
    /// long each time (capped at 30 s).
    OnFailure {
        /// Restarts before giving up.
        max_retries: u32,
        /// Wait before the first restart.
        #[serde(with = "ms")]
        backoff: Duration,
    },
    /// Restart after every crash, backing off from 50 ms up to 5 s.
    Always,
}

impl RestartPolicy {
    /// The wait before restart number `attempt + 1`, or `None` to give up.
    pub fn next_delay(&self, attempt: u32) -> Option<Duration> {
        match self {
            RestartPolicy::Never => None,
            RestartPolicy::OnFailure {
                max_retries,
                backoff,
            } => (attempt < *max_retries).then(|| {
                backoff
                    .saturating_mul(1 << attempt.min(16))
                    .min(Duration::from_secs(30))
            }),
            RestartPolicy::Always => Some(
                Duration::from_millis(50)
                    .saturating_mul(1 << attempt.min(7))
                    .min(Duration::from_secs(5)),
            ),
        }
    }
}

mod ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Everything needed to start an agent.
pub struct SpawnRequest {
    /// Unique among live agents; 1-128 of `[A-Za-z0-9._-]`, not `kernel`
    /// or `operator`.
    pub name: String,
    /// An `agent`-world component.
    pub component: LoadedComponent,
    /// What it may do (within the spawner's own: an app's ceiling, a
    /// parent agent's capabilities).
    pub capabilities: Capabilities,
    /// `None` takes the kernel's `[agent_limits]`.
    pub limits: Option<AgentLimits>,
    /// When a crash is followed by a restart.
    pub restart: RestartPolicy,
    /// Its parent agent (stopping the parent stops it first).
    pub parent: Option<Pid>,
    /// Handed to the agent's `init`.
    pub config: serde_json::Value,
    /// WASI grants, applied only under `SandboxPolicy::Granted`.
    pub grants: Grants,
    /// Chain lineage parent, e.g. `app:hello@1.0.0`.
    pub lineage: Option<String>,
    /// Its manifest role (apps set it); `None` binds no role rules.
    pub role: Option<AgentRole>,
    /// Its scheduling share.
    pub priority: AgentPriority,
}

impl SpawnRequest {
    /// A request with no capabilities, default limits and no restarts.
    pub fn new(name: impl Into<String>, component: LoadedComponent) -> Self {
        SpawnRequest {
            name: name.into(),
            component,
            capabilities: Capabilities::default(),
            limits: None,
            restart: RestartPolicy::Never,
            parent: None,
            config: json!({}),
            grants: Grants::default(),
            lineage: None,
            role: None,
            priority: AgentPriority::Normal,
        }
    }
}

/// The gate actions an agent's capabilities grant it. The in-process
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

/// Undo a process's registrations; called once its task ends (or its
/// start failed). Deliberately stopped processes leave the table; failed
/// ones stay as `Stopped` with their failure until stopped again. The
/// `agent.stop` record is the effect of whatever ended it (a stop, a
/// crash it gave up on); nobody waits on this path, so a record that
/// cannot be written is logged and counted (`Shared::note_or_log`).
pub(crate) fn release(shared: &Shared, pid: Pid, name: &str, requested: bool) {
    shared.ipc.router.unregister(pid);
    shared.agents.controls.remove(&pid);
    shared.agents.principals.remove(&pid);
    shared.ipc.topics.unsubscribe_all(pid);
    let mut problems = Vec::new();
    for svc in shared.ipc.services.unregister_owner(pid) {
        let path = format!("/kernel/services/{svc}");
        if shared.tree.get(&path).is_some() {
            if let Err(e) = shared.tree.remove(&path) {
                problems.push(format!("tree {path}: {e}"));
            }
        }
    }
    shared.gate.layered.capability.revoke_agent(name);
    let path = format!("/kernel/agents/{name}");
    if shared.tree.get(&path).is_some() {
        if let Err(e) = shared.tree.remove(&path) {
            problems.push(format!("tree {path}: {e}"));
        }
    }
    // Both are legal from every live state; a process already Stopped
    // (a retired one being stopped again) stays so.
    if let Err(e) = shared.agents.table.set_state(pid, ProcessState::Stopping) {
        tracing::debug!("release {name}: {e}");
    }
    if let Err(e) = shared.agents.table.set_state(pid, ProcessState::Stopped) {
        tracing::debug!("release {name}: {e}");
    }
    shared.note_or_log(
        name,
        "agent.stop",
        &json!({ "pid": pid, "requested": requested, "problems": problems }),
    );
    if requested {
        shared.agents.table.remove(pid);
    } else {
        shared.agents.table.retire(pid);
    }
}

/// May `who` stop or restart process `pid` (named `name`, spawned by
/// `owner`)? Apps: their own agents; agents with `spawn`: their
/// descendants; the kernel and the operator: any.
fn may_manage(k: &Shared, who: &Principal, pid: Pid, owner: &str) -> bool {
    match who {
        Principal::Kernel | Principal::Operator => true,
        Principal::App(_) => who.owns(owner),
        Principal::Agent(a) => {
            if !a.caps.spawn && !a.is_supervisor() {
                return false;
            }
            let mut cur = k.agents.table.get(pid).and_then(|e| e.parent);
            while let Some(p) = cur {
                if p == a.pid {
                    return true;
                }
                cur = k.agents.table.get(p).and_then(|e| e.parent);
            }
            false
        }
    }
}

/// Stop an agent and (first) all its descendants (`agent.stop`).
#[derive(Debug)]
pub struct Stop {
    /// The agent.
    pub pid: Pid,
    name: Option<Arc<str>>,
}

impl Stop {
    /// Stop agent `pid`.
    pub fn new(pid: Pid) -> Self {
        Stop { pid, name: None }
    }
}

impl Action for Stop {
    type Output = ();

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("agent.stop")
    }

    fn gate_context(&self) -> Value {
        json!({ "pid": self.pid, "name": self.name.as_deref() })
    }

    fn authorize(&mut self, who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        let k = k.shared();
        let e = k
            .agents
            .table
            .get(self.pid)
            .ok_or(KernelError::NoSuchProcess(self.pid))?;
        self.name = Some(e.name.clone());
        if !may_manage(k, who, self.pid, &e.owner) {
            return Err(KernelError::Denied(format!(
                "`{}` may not stop `{}` (spawned by `{}`)",
                who.gate_name(),
                e.name,
                e.owner
            )));
        }
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<()> {
        stop_tree(cx.shared, self.pid).await
    }
}

pub(crate) fn stop_tree(
    shared: &Arc<Shared>,
    pid: Pid,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = KernelResult<()>> + Send + '_>> {
    Box::pin(async move {
        let entry = shared
            .agents
            .table
            .get(pid)
            .ok_or(KernelError::NoSuchProcess(pid))?;
        for child in entry.children.iter().rev() {
            match stop_tree(shared, *child).await {
                Ok(()) | Err(KernelError::NoSuchProcess(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if entry.state == ProcessState::Stopped {
            shared.agents.table.remove(pid);
            return Ok(());
        }
        shared.agents.table.set_state(pid, ProcessState::Stopping)?;
        if let Some(tx) = shared.agents.controls.get(&pid).map(|t| t.clone()) {
            // A full control queue means a stop is already on its way.
            if tx
                .try_send(Control::Signal(crate::ipc::KernelSignal::Shutdown))
                .is_err()
            {
                tracing::debug!("agent {pid}: control queue full while stopping");
            }
        }
        if let Some((_, mut handle)) = shared.agents.tasks.remove(&pid) {
            // A guest inside a call is cut off at its next fuel yield; an
            // idle one exits on the signal (with a backstop).
            let busy = entry
                .usage
                .in_call
                .load(std::sync::atomic::Ordering::Relaxed);
            if busy
                || tokio::time::timeout(Duration::from_secs(1), &mut handle)
                    .await
                    .is_err()
            {
                handle.abort();
                // A cancelled task's JoinError is the expected outcome.
                if let Err(e) = handle.await {
                    if !e.is_cancelled() {
                        tracing::warn!("agent {pid}: task ended with {e}");
                    }
                }
            }
        }
        Ok(())
    })
}

/// Restart an agent's instance (`agent.restart`): a fresh instance, the
/// same pid, inbox and capabilities.
#[derive(Debug)]
pub struct Restart {
    /// The agent.
    pub pid: Pid,
    name: Option<Arc<str>>,
}

impl Restart {
    /// Restart agent `pid`.
    pub fn new(pid: Pid) -> Self {
        Restart { pid, name: None }
    }
}

impl Action for Restart {
    type Output = ();

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("agent.restart")
    }

    fn gate_context(&self) -> Value {
        json!({ "pid": self.pid, "name": self.name.as_deref() })
    }

    fn authorize(&mut self, who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        let k = k.shared();
        let e = k
            .agents
            .table
            .get(self.pid)
            .ok_or(KernelError::NoSuchProcess(self.pid))?;
        self.name = Some(e.name.clone());
        if !may_manage(k, who, self.pid, &e.owner) {
            return Err(KernelError::Denied(format!(
                "`{}` may not restart `{}` (spawned by `{}`)",
                who.gate_name(),
                e.name,
                e.owner
            )));
        }
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<()> {
        cx.shared.control(self.pid, Control::Restart).await
    }
}
