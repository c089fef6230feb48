//! Spawning, stopping and restarting agents, and the supervision tree:
//! stopping a parent stops its children first.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;
use weft_runtime::{Grants, LoadedComponent};

use crate::agent::task::{self, AgentSpec};
use crate::agent::{bindings, AgentPre};
use crate::capability::{AgentLimits, Capabilities, IpcScope};
use crate::error::{KernelError, KernelResult};
use crate::process::{Pid, ProcessEntry, ProcessInfo, ProcessState};
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
        max_retries: u32,
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
    /// Unique among live agents; `[A-Za-z0-9._-]`.
    pub name: String,
    pub component: LoadedComponent,
    pub capabilities: Capabilities,
    /// `None` takes the kernel's `[agent_limits]`.
    pub limits: Option<AgentLimits>,
    pub restart: RestartPolicy,
    pub parent: Option<Pid>,
    /// Handed to the agent's `init`.
    pub config: serde_json::Value,
    /// WASI grants, applied only under `SandboxPolicy::Granted`.
    pub grants: Grants,
    /// Chain lineage parent, e.g. `app:hello@1.0.0`.
    pub lineage: Option<String>,
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
        }
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 128
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// The gate actions an agent's capabilities grant it. The in-process
/// capability checks are finer; these rules make the gate deny by default.
fn gate_actions(caps: &Capabilities) -> Vec<&'static str> {
    let mut a = vec!["service.cron.*"];
    if caps.ipc != IpcScope::None {
        a.push("ipc.*");
    }
    if !caps.tools.allow.is_empty() {
        a.push("tool.exec.**");
    }
    if caps.chain_append {
        a.push("chain.append");
    }
    if caps.spawn {
        a.extend(["agent.spawn", "agent.stop", "agent.restart"]);
    }
    a
}

pub(crate) fn agent_pre(shared: &Shared, c: &LoadedComponent) -> KernelResult<AgentPre> {
    let mut pres = shared.agent_pres.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = pres.get(&c.digest) {
        return Ok(p.clone());
    }
    let invalid = |e: wasmtime::Error| {
        KernelError::Run(weft_runtime::RunError::InvalidComponent {
            reason: format!("not a weft:kernel agent: {e:#}"),
        })
    };
    let pre = shared
        .agent_linker
        .instantiate_pre(&c.component)
        .map_err(invalid)?;
    let pre = bindings::AgentPre::new(pre).map_err(invalid)?;
    pres.insert(c.digest, pre.clone());
    Ok(pre)
}

pub(crate) async fn spawn(shared: &Arc<Shared>, req: SpawnRequest) -> KernelResult<Pid> {
    shared.ensure_running()?;
    if !valid_name(&req.name) {
        return Err(KernelError::Invalid(format!(
            "agent name `{}`: use 1-128 of [A-Za-z0-9._-]",
            req.name
        )));
    }
    let by: Arc<str> = match req.parent {
        Some(p) => shared
            .processes
            .name_of(p)
            .ok_or(KernelError::NoSuchProcess(p))?,
        None => Arc::from("kernel"),
    };
    let digest = req.component.digest.to_hex();
    shared.gate(
        &by,
        "agent.spawn",
        &json!({ "name": req.name, "component": digest }),
    )?;
    let pre = agent_pre(shared, &req.component)?;
    let caps = Arc::new(req.capabilities);
    let usage = Arc::default();
    let name: Arc<str> = Arc::from(req.name.as_str());
    let pid = shared.processes.insert(ProcessEntry {
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
    })?;
    let config = req.config.to_string();
    let spec = Arc::new(AgentSpec {
        pid,
        name: name.clone(),
        parent: req.parent,

        pre,
        caps: caps.clone(),
        limits: req
            .limits
            .unwrap_or_else(|| shared.config.agent_limits.clone()),
        restart: req.restart,
        config,
        grants: req.grants,
        usage,
    });
    let _ = shared.layered.capability.allow(&name, &gate_actions(&caps));
    let inbox = shared.a2a.register(pid);
    let (ctl_tx, ctl_rx) = mpsc::channel(16);
    shared.controls.insert(pid, ctl_tx);
    let live = match task::start(shared, &spec).await {
        Ok(l) => l,
        Err(f) => {
            release(shared, pid, &name, true);
            return Err(KernelError::Failed(format!(
                "agent `{name}` did not start: {f}"
            )));
        }
    };
    let seq = shared.record(
        &name,
        "agent.spawn",
        &json!({ "pid": pid, "name": &*name, "parent": spec.parent, "component": digest, "capabilities": &*caps }),
    )?;
    let _ = shared.tree.insert(
        &format!("/kernel/agents/{name}"),
        [
            ("pid".to_string(), json!(pid)),
            ("component".to_string(), json!(digest)),
            ("spawn_seq".to_string(), json!(seq)),
        ]
        .into_iter()
        .collect(),
    );
    if let Some(parent) = &req.lineage {
        shared
            .chain
            .record_lineage(parent, &format!("agent:{name}"), "spawn")?;
    }
    let guard = task::TaskGuard::new(shared.clone(), spec);
    let handle = tokio::spawn(task::run(guard, live, inbox, ctl_rx));
    shared.tasks.insert(pid, handle);
    Ok(pid)
}

/// Undo a process's registrations; called once its task ends (or its
/// start failed). Deliberately stopped processes leave the table; failed
/// ones stay as `Stopped` with their failure until stopped again.
pub(crate) fn release(shared: &Shared, pid: Pid, name: &str, requested: bool) {
    shared.a2a.unregister(pid);
    shared.controls.remove(&pid);
    shared.topics.unsubscribe_all(pid);
    for svc in shared.services.unregister_owner(pid) {
        let _ = shared.tree.remove(&format!("/kernel/services/{svc}"));
    }
    let _ = shared.layered.capability.revoke_agent(name);
    let _ = shared.tree.remove(&format!("/kernel/agents/{name}"));
    let _ = shared.processes.set_state(pid, ProcessState::Stopping);
    let _ = shared.processes.set_state(pid, ProcessState::Stopped);
    let _ = shared.record(
        name,
        "agent.stop",
        &json!({ "pid": pid, "requested": requested }),
    );
    if requested {
        shared.processes.remove(pid);
    } else {
        shared.processes.retire(pid);
    }
}

pub(crate) async fn stop(shared: &Arc<Shared>, pid: Pid, by: &str) -> KernelResult<()> {
    let entry = shared
        .processes
        .get(pid)
        .ok_or(KernelError::NoSuchProcess(pid))?;
    shared.gate(
        by,
        "agent.stop",
        &json!({ "pid": pid, "name": &*entry.name }),
    )?;
    stop_tree(shared, pid).await
}

fn stop_tree(
    shared: &Arc<Shared>,
    pid: Pid,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = KernelResult<()>> + Send + '_>> {
    Box::pin(async move {
        let entry = shared
            .processes
            .get(pid)
            .ok_or(KernelError::NoSuchProcess(pid))?;
        for child in entry.children.iter().rev() {
            let _ = stop_tree(shared, *child).await;
        }
        if entry.state == ProcessState::Stopped {
            shared.processes.remove(pid);
            return Ok(());
        }
        let _ = shared.processes.set_state(pid, ProcessState::Stopping);
        if let Some(tx) = shared.controls.get(&pid).map(|t| t.clone()) {
            let _ = tx.try_send(Control::Signal(crate::ipc::KernelSignal::Shutdown));
        }
        if let Some((_, mut handle)) = shared.tasks.remove(&pid) {
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
                let _ = handle.await;
            }
        }
        Ok(())
    })
}

pub(crate) async fn restart(shared: &Arc<Shared>, pid: Pid, by: &str) -> KernelResult<()> {
    let entry = shared
        .processes
        .get(pid)
        .ok_or(KernelError::NoSuchProcess(pid))?;
    shared.gate(
        by,
        "agent.restart",
        &json!({ "pid": pid, "name": &*entry.name }),
    )?;
    shared.control(pid, Control::Restart).await
}

pub(crate) fn inspect(shared: &Shared, pid: Pid) -> Option<ProcessInfo> {
    shared.processes.info(pid)
}
