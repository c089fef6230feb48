//! `Shared`: the kernel's state, reachable from the public [`crate::Kernel`]
//! handle and from every agent's syscalls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use dashmap::DashMap;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use weft_chain::ChainManager;
use weft_gate::{ChainedGate, GateBackend, GateDecision};
use weft_runtime::Runtime;
use weft_tree::TreeManager;

use crate::a2a::A2ARouter;
use crate::agent::AgentPre;
use crate::capability::{Capabilities, IpcScope, SendTarget};
use crate::config::KernelConfig;
use crate::console::{BootLog, BootPhase, LogLevel};
use crate::cron::CronService;
use crate::error::{KernelError, KernelResult};
use crate::gate::LayeredGate;
use crate::ipc::{Envelope, KernelMessage, KernelSignal, MessageTarget, Payload};
use crate::process::{Pid, ProcessTable, Usage, KERNEL_PID};
use crate::service::{ServiceEndpoint, ServiceRegistry};
use crate::tools::ToolRegistry;
use crate::KernelState;

/// Control messages for an agent's task, separate from its inbox so they
/// get through when the inbox is full or the agent is suspended.
pub(crate) enum Control {
    Signal(KernelSignal),
    Restart,
}

/// Live counts, for leak checks and `kernel status`.
#[derive(Default, Debug)]
pub struct LiveCounts {
    pub tasks: AtomicUsize,
    pub stores: AtomicUsize,
}

/// Who is sending: an agent, or the kernel on behalf of a client.
#[derive(Clone)]
pub(crate) struct Sender {
    pub pid: Pid,
    pub name: Arc<str>,
    pub parent: Option<Pid>,
    pub caps: Arc<Capabilities>,
    pub usage: Option<Arc<Usage>>,
    pub max_messages: u64,
}

impl Sender {
    pub fn kernel() -> Self {
        Sender {
            pid: KERNEL_PID,
            name: Arc::from("kernel"),
            parent: None,
            caps: Arc::new(Capabilities {
                ipc: IpcScope::All,
                ..Capabilities::default()
            }),
            usage: None,
            max_messages: 0,
        }
    }

    fn denied(&self) {
        if let Some(u) = &self.usage {
            u.denials.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub(crate) struct Shared {
    pub config: KernelConfig,
    pub state_dir: std::path::PathBuf,
    pub state: RwLock<KernelState>,
    pub log: BootLog,
    pub runtime: Runtime,
    pub processes: ProcessTable,
    pub a2a: A2ARouter,
    pub topics: crate::topic::TopicRouter,
    pub services: ServiceRegistry,
    pub tools: ToolRegistry,
    pub chain: Arc<ChainManager>,
    pub tree: TreeManager,
    pub layered: Arc<LayeredGate>,
    pub gate: ChainedGate,
    /// Bumped whenever policy changes, invalidating cached permits.
    pub gate_epoch: AtomicU64,
    pub agent_linker: wasmtime::component::Linker<weft_runtime::StoreData<crate::agent::AgentCtx>>,
    pub agent_pres: Mutex<HashMap<weft_runtime::Digest, AgentPre>>,
    pub controls: DashMap<Pid, mpsc::Sender<Control>>,
    pub tasks: DashMap<Pid, tokio::task::JoinHandle<()>>,
    pub cron: RwLock<Option<Arc<dyn CronService>>>,
    pub next_msg: AtomicU64,
    pub live: LiveCounts,
}

impl Shared {
    pub fn kernel_state(&self) -> KernelState {
        *self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn ensure_running(&self) -> KernelResult<()> {
        match self.kernel_state() {
            KernelState::Running => Ok(()),
            s => Err(KernelError::NotRunning(s)),
        }
    }

    /// Ask the gate; every decision is signed and recorded on the chain.
    pub fn gate(&self, agent: &str, action: &str, context: &Value) -> KernelResult<()> {
        match self.gate.check(agent, action, context) {
            GateDecision::Permit { .. } => Ok(()),
            GateDecision::Defer { reason } => {
                Err(KernelError::Deferred(format!("{action}: {reason}")))
            }
            GateDecision::Deny { reason, .. } => {
                Err(KernelError::Denied(format!("{action}: {reason}")))
            }
        }
    }

    /// Append a buffered event. A chain failure is a kernel fault: logged
    /// loudly, returned to callers that care.
    pub fn record<T: Serialize + ?Sized>(
        &self,
        source: &str,
        kind: &str,
        payload: &T,
    ) -> KernelResult<u64> {
        match self.chain.append(source, kind, payload) {
            Ok(ev) => Ok(ev.seq),
            Err(e) => {
                self.log.push(
                    BootPhase::Runtime,
                    LogLevel::Error,
                    format!("chain append {kind} failed: {e}"),
                );
                Err(e.into())
            }
        }
    }

    pub fn next_id(&self) -> u64 {
        self.next_msg.fetch_add(1, Ordering::Relaxed)
    }

    fn resolve_name(&self, name: &str) -> KernelResult<Pid> {
        self.processes
            .pid_of(name)
            .ok_or_else(|| KernelError::NotFound(format!("no agent named `{name}`")))
    }

    /// Check that `from` may send directly to `pid`, through its scope and
    /// (once per target and policy epoch) the gate.
    fn check_direct(
        &self,
        from: &Sender,
        pid: Pid,
        permits: &mut PermitCache,
    ) -> KernelResult<Arc<str>> {
        let name = self
            .processes
            .name_of(pid)
            .ok_or_else(|| KernelError::NotFound(format!("no agent with pid {pid}")))?;
        let target = SendTarget { pid, name: &name };
        if !from.caps.ipc.allows_send(from.parent, &target) {
            from.denied();
            return Err(KernelError::Denied(format!(
                "ipc scope of `{}` does not allow sending to `{name}`",
                from.name
            )));
        }
        self.permit_cached(from, "ipc.send", &name, permits)?;
        Ok(name)
    }

    /// Where the gate's policy stands: the kernel's own changes (governance
    /// installed or replaced) and the governance backend's (policy reloaded,
    /// component swapped). Remembered permits are valid for one value.
    pub fn policy_epoch(&self) -> (u64, u64) {
        (
            self.gate_epoch.load(Ordering::Acquire),
            self.layered.policy_epoch(),
        )
    }

    /// Gate check whose permit is remembered per (action, object) until the
    /// policy changes, so hot paths do not sign a receipt per message.
    pub fn permit_cached(
        &self,
        from: &Sender,
        action: &str,
        object: &str,
        permits: &mut PermitCache,
    ) -> KernelResult<()> {
        let epoch = self.policy_epoch();
        let key = (action.to_string(), object.to_string());
        if permits.get(&key) == Some(&epoch) {
            return Ok(());
        }
        let r = self.gate(&from.name, action, &json!({ "to": object }));
        if r.is_err() {
            from.denied();
        }
        r?;
        permits.insert(key, epoch);
        Ok(())
    }

    fn count_sent(&self, from: &Sender) -> KernelResult<()> {
        if let Some(u) = &from.usage {
            let sent = u.messages_sent.fetch_add(1, Ordering::Relaxed) + 1;
            if from.max_messages != 0 && sent > from.max_messages {
                u.messages_sent.fetch_sub(1, Ordering::Relaxed);
                return Err(KernelError::Limit(format!(
                    "`{}` may send at most {} messages",
                    from.name, from.max_messages
                )));
            }
        }
        Ok(())
    }

    fn message(&self, from: &Sender, to: MessageTarget, payload: Payload) -> KernelMessage {
        KernelMessage {
            id: self.next_id(),
            from: from.pid,
            from_name: from.name.clone(),
            to,
            payload,
            timestamp_ns: weft_chain::now_ns(),
            correlation_id: None,
            topic: None,
            method: None,
        }
    }

    fn record_send(&self, msg: &KernelMessage, to_pid: Option<Pid>, delivered: usize) {
        let _ = self.record(
            &msg.from_name,
            "ipc.send",
            &json!({
                "id": msg.id,
                "from": msg.from,
                "to": msg.to,
                "to_pid": to_pid,
                "payload": msg.payload.kind(),
                "len": msg.payload.len(),
                "correlation_id": msg.correlation_id,
                "delivered": delivered,
            }),
        );
    }

    /// Route a message. Returns the message id for direct sends, or the
    /// delivery count for topics and broadcasts. With `wait`, blocks for
    /// the reply of a direct target.
    pub async fn send(
        &self,
        from: &Sender,
        to: MessageTarget,
        payload: Payload,
        wait: Option<Duration>,
        permits: &mut PermitCache,
    ) -> KernelResult<SendOutcome> {
        self.ensure_running()?;
        let timeout = self.config.ipc.send_timeout();
        let (pid, mut msg) = match &to {
            MessageTarget::Agent(pid) => {
                self.check_direct(from, *pid, permits)?;
                (*pid, self.message(from, to.clone(), payload))
            }
            MessageTarget::Named(name) => {
                let pid = self.resolve_name(name)?;
                self.check_direct(from, pid, permits)?;
                (pid, self.message(from, to.clone(), payload))
            }
            MessageTarget::Service(svc) | MessageTarget::ServiceMethod { service: svc, .. } => {
                let pid = self.service_owner(from, svc, permits)?;
                let mut m = self.message(from, to.clone(), payload);
                if let MessageTarget::ServiceMethod { method, .. } = &to {
                    m.method = Some(method.clone());
                }
                (pid, m)
            }
            MessageTarget::Topic(topic) => {
                if wait.is_some() {
                    return Err(KernelError::Invalid(
                        "cannot wait for a reply from a topic".into(),
                    ));
                }
                return self
                    .publish(from, topic, payload, permits)
                    .map(SendOutcome::Delivered);
            }
            MessageTarget::Broadcast => {
                if wait.is_some() {
                    return Err(KernelError::Invalid(
                        "cannot wait for a reply from a broadcast".into(),
                    ));
                }
                return self
                    .broadcast(from, payload, permits)
                    .map(SendOutcome::Delivered);
            }
        };
        self.count_sent(from)?;
        // Suspend and resume are signals, handled before the guest sees
        // anything, even when the agent is suspended or its inbox full.
        if let Some(sig) = builtin_signal(&msg.payload) {
            self.record_send(&msg, Some(pid), 1);
            self.control(pid, Control::Signal(sig)).await?;
            return Ok(SendOutcome::Sent(msg.id));
        }
        let (reply_tx, reply_rx) = match wait {
            Some(_) => {
                let (tx, rx) = oneshot::channel();
                msg.correlation_id = Some(msg.id);
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        self.record_send(&msg, Some(pid), 1);
        let id = msg.id;
        self.a2a
            .deliver(
                pid,
                Envelope::Message {
                    msg,
                    reply: reply_tx,
                },
                timeout,
            )
            .await?;
        match (wait, reply_rx) {
            (Some(limit), Some(rx)) => match tokio::time::timeout(limit, rx).await {
                Ok(Ok(Ok(p))) => Ok(SendOutcome::Replied(p)),
                Ok(Ok(Err(e))) => Err(KernelError::Failed(e)),
                Ok(Err(_)) => Err(KernelError::Failed(format!(
                    "agent {pid} stopped before replying"
                ))),
                Err(_) => Err(KernelError::Timeout(format!(
                    "no reply from agent {pid} within {} ms",
                    limit.as_millis()
                ))),
            },
            _ => Ok(SendOutcome::Sent(id)),
        }
    }

    fn service_owner(
        &self,
        from: &Sender,
        svc: &str,
        permits: &mut PermitCache,
    ) -> KernelResult<Pid> {
        let entry = self
            .services
            .get(svc)
            .ok_or_else(|| KernelError::NotFound(format!("no service `{svc}`")))?;
        if !from.caps.ipc.allows_service(svc) {
            from.denied();
            return Err(KernelError::Denied(format!(
                "ipc scope of `{}` does not allow service `{svc}`",
                from.name
            )));
        }
        self.permit_cached(from, "ipc.send", &format!("service:{svc}"), permits)?;
        match entry.endpoint {
            ServiceEndpoint::AgentInbox(pid) => Ok(pid),
            other => Err(KernelError::Invalid(format!(
                "service `{svc}` is not served by an agent ({other:?})"
            ))),
        }
    }

    pub fn publish(
        &self,
        from: &Sender,
        topic: &str,
        payload: Payload,
        permits: &mut PermitCache,
    ) -> KernelResult<u64> {
        if !from.caps.ipc.allows_topic(topic) {
            from.denied();
            return Err(KernelError::Denied(format!(
                "ipc scope of `{}` does not allow topic `{topic}`",
                from.name
            )));
        }
        self.permit_cached(from, "ipc.publish", topic, permits)?;
        self.count_sent(from)?;
        let mut msg = self.message(from, MessageTarget::Topic(topic.to_string()), payload);
        msg.topic = Some(topic.to_string());
        let mut delivered = self.topics.deliver_hosts(topic, &msg);
        for pid in self.topics.subscribers(topic) {
            let env = Envelope::Message {
                msg: msg.clone(),
                reply: None,
            };
            if self.a2a.try_deliver(pid, env) {
                delivered += 1;
            }
        }
        self.record_send(&msg, None, delivered);
        Ok(delivered as u64)
    }

    fn broadcast(
        &self,
        from: &Sender,
        payload: Payload,
        permits: &mut PermitCache,
    ) -> KernelResult<u64> {
        self.permit_cached(from, "ipc.broadcast", "*", permits)?;
        self.count_sent(from)?;
        let msg = self.message(from, MessageTarget::Broadcast, payload);
        let mut delivered = 0;
        for pid in self.a2a.pids() {
            if pid == from.pid {
                continue;
            }
            let Some(name) = self.processes.name_of(pid) else {
                continue;
            };
            if !from
                .caps
                .ipc
                .allows_send(from.parent, &SendTarget { pid, name: &name })
            {
                continue;
            }
            let env = Envelope::Message {
                msg: msg.clone(),
                reply: None,
            };
            if self.a2a.try_deliver(pid, env) {
                delivered += 1;
            }
        }
        self.record_send(&msg, None, delivered);
        Ok(delivered as u64)
    }

    pub async fn control(&self, pid: Pid, c: Control) -> KernelResult<()> {
        let tx = self
            .controls
            .get(&pid)
            .map(|t| t.clone())
            .ok_or_else(|| KernelError::NotFound(format!("no agent with pid {pid}")))?;
        tx.send(c)
            .await
            .map_err(|_| KernelError::NotFound(format!("agent {pid} has stopped")))
    }

    /// Run a registered tool for `from`: capability check, gate, limits from
    /// the registration, and a `tool.exec` record of fuel and outcome.
    pub async fn invoke_tool(&self, from: &Sender, name: &str, input: &str) -> KernelResult<Value> {
        self.ensure_running()?;
        if from.pid != KERNEL_PID && !from.caps.tools.allows(name) {
            from.denied();
            return Err(KernelError::Denied(format!(
                "`{}` may not use tool `{name}`",
                from.name
            )));
        }
        let entry = self
            .tools
            .get(name)
            .ok_or_else(|| KernelError::NotFound(format!("no tool `{name}`")))?;
        self.gate(
            &from.name,
            &format!("tool.exec.{name}"),
            &json!({ "tool": name, "input_len": input.len() }),
        )
        .inspect_err(|_| from.denied())?;
        if let Some(u) = &from.usage {
            u.tool_calls.fetch_add(1, Ordering::Relaxed);
        }
        let r = self
            .runtime
            .run_tool(&entry.component, input, &entry.limits, &entry.grants)
            .await;
        let (outcome, usage, result) = match r {
            Ok(o) => {
                let usage = o.usage;
                match o.result {
                    Ok(v) => ("ok".to_string(), usage, Ok(v)),
                    Err(e) => (
                        format!("tool error: {e}"),
                        usage,
                        Err(KernelError::Failed(e.to_string())),
                    ),
                }
            }
            Err(f) => (
                f.kind().to_string(),
                f.usage,
                Err(KernelError::Failed(f.to_string())),
            ),
        };
        let _ = self.record(
            &from.name,
            "tool.exec",
            &json!({
                "tool": name,
                "digest": entry.component.digest.to_hex(),
                "outcome": outcome,
                "fuel_used": usage.fuel_used,
                "wall_us": usage.wall.as_micros() as u64,
            }),
        );
        result
    }

    pub fn cron(&self) -> KernelResult<Arc<dyn CronService>> {
        self.cron
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| KernelError::NotFound("no cron service is registered".into()))
    }
}

/// Remembered permits: (action, object) -> policy epoch.
pub(crate) type PermitCache = HashMap<(String, String), (u64, u64)>;

/// What a send produced.
#[derive(Debug)]
pub enum SendOutcome {
    /// Queued; the message id.
    Sent(u64),
    /// Delivered to this many topic subscribers or broadcast targets.
    Delivered(u64),
    /// The target's reply.
    Replied(Payload),
}

/// `{"cmd": "suspend"}` and `{"cmd": "resume"}` become signals.
fn builtin_signal(p: &Payload) -> Option<KernelSignal> {
    let Payload::Json(v) = p else { return None };
    match v.get("cmd")?.as_str()? {
        "suspend" => Some(KernelSignal::Suspend),
        "resume" => Some(KernelSignal::Resume),
        _ => None,
    }
}
