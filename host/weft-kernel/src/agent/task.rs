//! An agent's task: start the instance, serve its inbox, and restart it per
//! its policy when it crashes. One task per agent; the store lives here.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tokio::sync::mpsc;
use weft_runtime::wasmtime::Store;
use weft_runtime::{Grants, RunError, StoreData};

use super::bindings::{self, weft::kernel::ipc};
use super::syscalls::{payload_from_wit, payload_to_wit};
use super::{AgentCtx, AgentPre};
use crate::capability::{AgentLimits, Capabilities, SandboxPolicy};
use crate::console::{BootPhase, LogLevel};
use crate::cron::CronJobSpec;
use crate::ipc::{Envelope, KernelMessage, KernelSignal, Payload, Reply};
use crate::process::{Pid, ProcessState, Usage};
use crate::shared::{Control, PermitCache, Shared};
use crate::supervisor::RestartPolicy;

/// Everything needed to (re)start one agent.
pub(crate) struct AgentSpec {
    pub pid: Pid,
    pub name: Arc<str>,
    pub parent: Option<Pid>,
    pub pre: AgentPre,
    pub caps: Arc<Capabilities>,
    pub limits: AgentLimits,
    pub restart: RestartPolicy,
    pub config: String,
    pub grants: Grants,
    pub usage: Arc<Usage>,
}

/// A running instance.
pub(crate) struct Live {
    store: Store<StoreData<AgentCtx>>,
    agent: bindings::Agent,
}

/// Why an instance ended.
#[derive(Debug)]
pub(crate) enum Failure {
    Run(RunError),
    Init(String),
}

impl Failure {
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Run(e) => e.kind(),
            Failure::Init(_) => "init error",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Run(e) => write!(f, "{e}"),
            Failure::Init(m) => write!(f, "init error: {m}"),
        }
    }
}

enum Exit {
    Stop,
    Restart,
    Crash(Failure),
}

/// Instantiate the agent and call its `init`.
pub(crate) async fn start(shared: &Arc<Shared>, spec: &AgentSpec) -> Result<Live, Failure> {
    let limits = spec.limits.runtime_limits();
    let grants = match spec.caps.sandbox {
        SandboxPolicy::Granted => spec.grants.clone(),
        SandboxPolicy::Strict => Grants::default(),
    };
    let ctx = AgentCtx::new(
        shared.clone(),
        spec.pid,
        spec.name.clone(),
        spec.parent,
        spec.caps.clone(),
        spec.limits.clone(),
        spec.usage.clone(),
    );
    let rt = &shared.runtime;
    let mut store = rt.new_store(&limits, &grants, ctx).map_err(Failure::Run)?;
    let started = Instant::now();
    let pre = &spec.pre;
    let config = &spec.config;
    let r = rt
        .guard(&mut store, &limits, async |s| {
            let agent = pre.instantiate_async(&mut *s).await?;
            let init = agent.call_init(&mut *s, config).await?;
            Ok((agent, init))
        })
        .await;
    account(spec, rt.usage(&store, &limits, started));
    match r {
        Ok((agent, Ok(()))) => Ok(Live { store, agent }),
        Ok((_, Err(msg))) => Err(Failure::Init(msg)),
        Err(e) => Err(Failure::Run(e)),
    }
}

fn account(spec: &AgentSpec, u: weft_runtime::Usage) {
    spec.usage
        .fuel_consumed
        .fetch_add(u.fuel_used, Ordering::Relaxed);
    spec.usage
        .wall_ns
        .fetch_add(u.wall.as_nanos() as u64, Ordering::Relaxed);
}

/// The task body. `live` is the instance `spawn` already started.
pub(crate) async fn run(
    mut guard: TaskGuard,
    live: Live,
    mut inbox: mpsc::Receiver<Envelope>,
    mut control: mpsc::Receiver<Control>,
) {
    let (shared, spec) = (guard.shared.clone(), guard.spec.clone());
    let mut live = Some(live);
    let mut attempts: u32 = 0;
    loop {
        let exit = match live.take() {
            Some(l) => serve(&shared, &spec, l, &mut inbox, &mut control).await,
            None => match start(&shared, &spec).await {
                Ok(l) => serve(&shared, &spec, l, &mut inbox, &mut control).await,
                Err(f) => Exit::Crash(f),
            },
        };
        match exit {
            Exit::Stop => {
                guard.requested = true;
                return;
            }
            Exit::Restart => {
                let _ = shared.processes.set_state(spec.pid, ProcessState::Starting);
                let _ = shared.record(
                    &spec.name,
                    "agent.restart",
                    &json!({ "pid": spec.pid, "reason": "requested" }),
                );
            }
            Exit::Crash(f) => {
                // Every failure's message starts with its kind already.
                let why = f.to_string();
                shared.processes.set_failure(spec.pid, why.clone());
                let _ = shared.record(
                    &spec.name,
                    "agent.crash",
                    &json!({ "pid": spec.pid, "kind": f.kind(), "error": f.to_string(), "attempt": attempts }),
                );
                shared.log.push(
                    BootPhase::Runtime,
                    LogLevel::Warn,
                    format!("agent {} crashed: {why}", spec.name),
                );
                let Some(delay) = spec.restart.next_delay(attempts) else {
                    let _ = shared.record(
                        &spec.name,
                        "agent.give_up",
                        &json!({ "pid": spec.pid, "restarts": attempts, "last_error": why }),
                    );
                    return;
                };
                attempts += 1;
                spec.usage.restarts.fetch_add(1, Ordering::Relaxed);
                let _ = shared.processes.set_state(spec.pid, ProcessState::Starting);
                let _ = shared.record(
                    &spec.name,
                    "agent.restart",
                    &json!({ "pid": spec.pid, "attempt": attempts, "backoff_ms": delay.as_millis() as u64 }),
                );
                // Back off, but stay stoppable.
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    c = control.recv() => {
                        if matches!(c, None | Some(Control::Signal(KernelSignal::Shutdown))) {
                            guard.requested = true;
                            return;
                        }
                    }
                }
            }
        }
    }
}

async fn serve(
    shared: &Arc<Shared>,
    spec: &Arc<AgentSpec>,
    mut live: Live,
    inbox: &mut mpsc::Receiver<Envelope>,
    control: &mut mpsc::Receiver<Control>,
) -> Exit {
    let _ = shared.processes.set_state(spec.pid, ProcessState::Running);
    let mut suspended = false;
    let mut permits = PermitCache::new();
    loop {
        tokio::select! {
            biased;
            c = control.recv() => match c {
                None | Some(Control::Signal(KernelSignal::Shutdown)) => return Exit::Stop,
                Some(Control::Restart) => return Exit::Restart,
                Some(Control::Signal(sig)) => {
                    if let Err(f) = signal(shared, spec, &mut live, sig, &mut suspended).await {
                        return Exit::Crash(f);
                    }
                }
            },
            env = inbox.recv(), if !suspended => match env {
                None => return Exit::Stop,
                Some(Envelope::Signal(sig)) => {
                    if let Err(f) = signal(shared, spec, &mut live, sig, &mut suspended).await {
                        return Exit::Crash(f);
                    }
                }
                Some(Envelope::Message { msg, reply }) => {
                    spec.usage.messages_received.fetch_add(1, Ordering::Relaxed);
                    let me = live.store.data().data.sender.clone();
                    if let Some(r) = builtin(shared, spec, &me, &msg, &mut permits).await {
                        if let Some(tx) = reply {
                            let _ = tx.send(r);
                        }
                        continue;
                    }
                    if let Err(f) = handle(shared, spec, &mut live, &msg, reply).await {
                        return Exit::Crash(f);
                    }
                }
            },
        }
    }
}

async fn signal(
    shared: &Arc<Shared>,
    spec: &AgentSpec,
    live: &mut Live,
    sig: KernelSignal,
    suspended: &mut bool,
) -> Result<(), Failure> {
    match sig {
        KernelSignal::Suspend if !*suspended => {
            *suspended = true;
            let _ = shared
                .processes
                .set_state(spec.pid, ProcessState::Suspended);
            let _ = shared.record(&spec.name, "agent.suspend", &json!({ "pid": spec.pid }));
        }
        KernelSignal::Resume if *suspended => {
            *suspended = false;
            let _ = shared.processes.set_state(spec.pid, ProcessState::Running);
            let _ = shared.record(&spec.name, "agent.resume", &json!({ "pid": spec.pid }));
        }
        KernelSignal::Custom(s) => {
            let mut msg = KernelMessage {
                id: shared.next_id(),
                from: crate::process::KERNEL_PID,
                from_name: Arc::from("kernel"),
                to: crate::ipc::MessageTarget::Agent(spec.pid),
                payload: Payload::Text(s),
                timestamp_ns: weft_chain::now_ns(),
                correlation_id: None,
                topic: None,
                method: None,
            };
            msg.method = Some("signal".into());
            handle(shared, spec, live, &msg, None).await?;
        }
        _ => {}
    }
    Ok(())
}

fn to_wit(msg: &KernelMessage) -> ipc::Message {
    ipc::Message {
        id: msg.id,
        sender: msg.from,
        sender_name: msg.from_name.to_string(),
        payload: payload_to_wit(msg.payload.clone()),
        correlation_id: msg.correlation_id,
        topic: msg.topic.clone(),
        method: msg.method.clone(),
        timestamp_ns: msg.timestamp_ns,
    }
}

/// Give one message to the guest. A trap ends the instance; a handler
/// error is reported to the sender and counted.
async fn handle(
    shared: &Arc<Shared>,
    spec: &AgentSpec,
    live: &mut Live,
    msg: &KernelMessage,
    reply: Option<tokio::sync::oneshot::Sender<Reply>>,
) -> Result<(), Failure> {
    let rt = &shared.runtime;
    let limits = spec.limits.runtime_limits();
    let wmsg = to_wit(msg);
    let Live { store, agent } = live;
    rt.arm(store, &limits);
    let started = Instant::now();
    spec.usage.in_call.store(true, Ordering::Relaxed);
    let r = rt
        .guard(store, &limits, async |s| {
            agent.call_handle(&mut *s, &wmsg).await
        })
        .await;
    spec.usage.in_call.store(false, Ordering::Relaxed);
    account(spec, rt.usage(store, &limits, started));
    match r {
        Ok(Ok(out)) => {
            if let Some(tx) = reply {
                let p = match out {
                    Some(p) => payload_from_wit(p).map_err(|e| format!("bad reply: {e:?}")),
                    None => Ok(Payload::Text(String::new())),
                };
                let _ = tx.send(p);
            }
            Ok(())
        }
        Ok(Err(e)) => {
            spec.usage.handler_errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(agent = %spec.name, "handler error: {e}");
            if let Some(tx) = reply {
                let _ = tx.send(Err(e));
            }
            Ok(())
        }
        Err(e) => {
            if let Some(tx) = reply {
                let _ = tx.send(Err(format!("agent `{}` failed: {e}", spec.name)));
            }
            Err(Failure::Run(e))
        }
    }
}

/// Built-in commands, run by the host with the agent's identity and
/// capabilities before the guest sees the message: `exec`, `cron.add`,
/// `cron.remove`. (`suspend` and `resume` are turned into signals when sent.)
async fn builtin(
    shared: &Arc<Shared>,
    spec: &AgentSpec,
    me: &crate::shared::Sender,
    msg: &KernelMessage,
    permits: &mut PermitCache,
) -> Option<Reply> {
    let Payload::Json(v) = &msg.payload else {
        return None;
    };
    let cmd = v.get("cmd")?.as_str()?;
    let r = match cmd {
        "exec" => {
            let tool = v.get("tool").and_then(|t| t.as_str()).unwrap_or_default();
            let input = v.get("input").cloned().unwrap_or(json!({})).to_string();
            shared
                .invoke_tool(me, tool, &input)
                .await
                .map(Payload::Json)
        }
        "cron.add" => {
            let mut spec_v = v.clone();
            if let Some(o) = spec_v.as_object_mut() {
                o.remove("cmd");
                o.entry("target").or_insert(json!(spec.name.to_string()));
            }
            match serde_json::from_value::<CronJobSpec>(spec_v) {
                Err(e) => Err(crate::KernelError::Invalid(format!("cron.add: {e}"))),
                Ok(job) => shared
                    .permit_cached(me, "service.cron.add", &job.target, permits)
                    .and_then(|()| shared.cron())
                    .and_then(|c| c.add(&spec.name, job).map_err(crate::KernelError::Failed))
                    .map(|job| Payload::Json(json!(job))),
            }
        }
        "cron.remove" => {
            let id = v
                .get("id")
                .and_then(|t| t.as_str())
                .unwrap_or_default()
                .to_string();
            shared
                .permit_cached(me, "service.cron.remove", &id, permits)
                .and_then(|()| shared.cron())
                .and_then(|c| {
                    c.remove(&spec.name, &id)
                        .map_err(crate::KernelError::Failed)
                })
                .map(|()| Payload::Json(json!({ "removed": id })))
        }
        _ => return None,
    };
    Some(r.map_err(|e| e.to_string()))
}

/// Cleans up after the task however it ends (returned, aborted by `stop`
/// while the guest was busy, or dropped before it first ran). Created before
/// the task is spawned so the live-task count never lags behind.
pub(crate) struct TaskGuard {
    shared: Arc<Shared>,
    spec: Arc<AgentSpec>,
    requested: bool,
}

impl TaskGuard {
    pub(crate) fn new(shared: Arc<Shared>, spec: Arc<AgentSpec>) -> Self {
        shared.live.tasks.fetch_add(1, Ordering::Relaxed);
        TaskGuard {
            shared,
            spec,
            requested: false,
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        let (s, pid) = (&self.shared, self.spec.pid);
        // An aborted task was stopped on request.
        let requested = self.requested || s.processes.state(pid) == Some(ProcessState::Stopping);
        crate::supervisor::release(s, pid, &self.spec.name, requested);
        s.live.tasks.fetch_sub(1, Ordering::Relaxed);
    }
}
