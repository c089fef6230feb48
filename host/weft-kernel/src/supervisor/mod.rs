//! Spawning, stopping and restarting agents ([`Spawn`], [`Stop`],
//! [`Restart`], each an action), and the supervision tree: stopping a
//! parent stops its children first.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use weft_model::plan::{AgentPriority, AgentRole};
use weft_runtime::{Grants, LoadedComponent};

use crate::act::{ActCx, Action, KernelView, Principal};
use crate::capability::{AgentLimits, Capabilities};
use crate::error::{KernelError, KernelResult};
use crate::process::{Pid, ProcessState};
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
mod spawn;

pub use spawn::Spawn;

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

/// The name of agent `pid`, if `who` may `verb` it (see [`may_manage`]).
fn managed(k: &Shared, who: &Principal, pid: Pid, verb: &str) -> KernelResult<Arc<str>> {
    let e = k
        .agents
        .table
        .get(pid)
        .ok_or(KernelError::NoSuchProcess(pid))?;
    if !may_manage(k, who, pid, &e.owner) {
        return Err(KernelError::Denied(format!(
            "`{}` may not {verb} `{}` (spawned by `{}`)",
            who.gate_name(),
            e.name,
            e.owner
        )));
    }
    Ok(e.name.clone())
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
        self.name = Some(managed(k.shared(), who, self.pid, "stop")?);
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
        self.name = Some(managed(k.shared(), who, self.pid, "restart")?);
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<()> {
        cx.shared.control(self.pid, Control::Restart).await
    }
}
