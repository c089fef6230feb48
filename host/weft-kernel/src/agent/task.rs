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
use crate::act::{AgentPrincipal, Principal};
use crate::capability::{runtime_limits, AgentLimits, SandboxPolicy};
use crate::console::{BootPhase, LogLevel};
use crate::ipc::{Envelope, KernelMessage, KernelSignal, Payload, Reply};
use crate::process::ProcessState;
use crate::shared::{Control, Shared};
use crate::subsystem::{BuiltinCx, Extensions};
use crate::supervisor::RestartPolicy;

/// Everything needed to (re)start one agent.
pub(crate) struct AgentSpec {
    pub me: Arc<AgentPrincipal>,
    pub pre: AgentPre,
    pub limits: AgentLimits,
    pub restart: RestartPolicy,
    pub config: String,
    pub grants: Grants,
    pub priority: weft_model::plan::AgentPriority,
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
    let limits = runtime_limits(&spec.limits);
    let grants = match spec.me.caps.sandbox {
        SandboxPolicy::Granted => spec.grants.clone(),
        SandboxPolicy::Strict => Grants::default(),
    };
    let mut extensions = Extensions::default();
    for u in shared.units().iter() {
        u.prepare(&spec.me, &mut extensions)
            .map_err(|e| Failure::Init(format!("{}: {e}", u.name())))?;
    }
    let ctx = AgentCtx::new(
        shared.clone(),
        spec.me.clone(),
        spec.limits.clone(),
        extensions,
    );
    let rt = &shared.runtime;
    let mut store = rt.new_store(&limits, &grants, ctx).map_err(Failure::Run)?;
    rt.set_fuel_slice(&mut store, spec.priority.slice_quarters())
        .map_err(Failure::Run)?;
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
    drain_output(shared, spec, &store);
    match r {
        Ok((agent, Ok(()))) => Ok(Live { store, agent }),
        Ok((_, Err(msg))) => Err(Failure::Init(msg)),
        Err(e) => Err(Failure::Run(e)),
    }
}

/// What the guest printed during its last call goes to the kernel log
/// (`weaver kernel logs`), under its name; the buffers start empty again.
fn drain_output(shared: &Shared, spec: &AgentSpec, store: &Store<StoreData<AgentCtx>>) {
    let d = store.data();
    let (out, err) = (d.stdout().take(), d.stderr().take());
    shared.log.guest_output(&spec.me.name, &out, &err);
}

fn account(spec: &AgentSpec, u: weft_runtime::Usage) {
    spec.me
        .usage
        .fuel_consumed
        .fetch_add(u.fuel_used, Ordering::Relaxed);
    spec.me
        .usage
        .wall_ns
        .fetch_add(u.wall.as_nanos() as u64, Ordering::Relaxed);
}

/// The task body. `live` is the instance `spawn` already started, if it
/// waited for `init`; else the task starts it.
pub(crate) async fn run(
    mut guard: TaskGuard,
    live: Option<Live>,
    mut inbox: mpsc::Receiver<Envelope>,
    mut control: mpsc::Receiver<Control>,
) {
    let (shared, spec) = (guard.shared.clone(), guard.spec.clone());
    let mut live = live;
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
                set_state(&shared, &spec, ProcessState::Starting);
                shared.note_or_log(
                    &spec.me.name,
                    "agent.restart",
                    &json!({ "pid": spec.me.pid, "reason": "requested" }),
                );
            }
            Exit::Crash(f) => {
                // Every failure's message starts with its kind already.
                let why = f.to_string();
                shared.agents.table.set_failure(spec.me.pid, why.clone());
                shared.note_or_log(
                    &spec.me.name,
                    "agent.crash",
                    &json!({ "pid": spec.me.pid, "kind": f.kind(), "error": f.to_string(), "attempt": attempts }),
                );
                shared.log.push(
                    BootPhase::Runtime,
                    LogLevel::Warn,
                    format!("agent {} crashed: {why}", spec.me.name),
                );
                let Some(delay) = spec.restart.next_delay(attempts) else {
                    shared.note_or_log(
                        &spec.me.name,
                        "agent.give_up",
                        &json!({ "pid": spec.me.pid, "restarts": attempts, "last_error": why }),
                    );
                    return;
                };
                attempts += 1;
                spec.me.usage.restarts.fetch_add(1, Ordering::Relaxed);
                set_state(&shared, &spec, ProcessState::Starting);
                shared.note_or_log(
                    &spec.me.name,
                    "agent.restart",
                    &json!({ "pid": spec.me.pid, "attempt": attempts, "backoff_ms": delay.as_millis() as u64 }),
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

/// Move the agent's process to `to`. Illegal moves here would be a kernel
/// bug; they are logged, not fatal to the agent.
fn set_state(shared: &Shared, spec: &AgentSpec, to: ProcessState) {
    if let Err(e) = shared.agents.table.set_state(spec.me.pid, to) {
        tracing::warn!(agent = %spec.me.name, "state change: {e}");
    }
}

async fn serve(
    shared: &Arc<Shared>,
    spec: &Arc<AgentSpec>,
    mut live: Live,
    inbox: &mut mpsc::Receiver<Envelope>,
    control: &mut mpsc::Receiver<Control>,
) -> Exit {
    set_state(shared, spec, ProcessState::Running);
    let mut suspended = false;
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
                Some(Envelope::Message { msg, reply, sender }) => {
                    spec.me.usage.messages_received.fetch_add(1, Ordering::Relaxed);
                    if let Some(r) = builtin(shared, spec, &sender, &msg).await {
                        if let Some(tx) = reply {
                            // The requester may have given up waiting.
                            let _gone = tx.send(r);
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
            set_state(shared, spec, ProcessState::Suspended);
            shared.note_or_log(
                &spec.me.name,
                "agent.suspend",
                &json!({ "pid": spec.me.pid }),
            );
        }
        KernelSignal::Resume if *suspended => {
            *suspended = false;
            set_state(shared, spec, ProcessState::Running);
            shared.note_or_log(
                &spec.me.name,
                "agent.resume",
                &json!({ "pid": spec.me.pid }),
            );
        }
        KernelSignal::Custom(s) => {
            let mut msg = KernelMessage {
                id: shared.ipc.next_id(),
                from: crate::process::KERNEL_PID,
                from_name: Arc::from("kernel"),
                to: crate::ipc::MessageTarget::Agent(spec.me.pid),
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
    let limits = runtime_limits(&spec.limits);
    let wmsg = to_wit(msg);
    let Live { store, agent } = live;
    store.data_mut().data.handling = Some(super::Handling {
        id: msg.id,
        timestamp_ns: msg.timestamp_ns,
    });
    rt.arm(store, &limits);
    let started = Instant::now();
    spec.me.usage.in_call.store(true, Ordering::Relaxed);
    let r = rt
        .guard(store, &limits, async |s| {
            agent.call_handle(&mut *s, &wmsg).await
        })
        .await;
    spec.me.usage.in_call.store(false, Ordering::Relaxed);
    store.data_mut().data.handling = None;
    account(spec, rt.usage(store, &limits, started));
    drain_output(shared, spec, store);
    match r {
        Ok(Ok(out)) => {
            if let Some(tx) = reply {
                let max = shared.config.ipc.max_payload_bytes;
                let p = match out {
                    Some(p) => payload_from_wit(p)
                        .map_err(|e| format!("bad reply: {e:?}"))
                        .and_then(|p| {
                            crate::ipc::actions::check_payload(&p, max)
                                .map(|()| p)
                                .map_err(|e| format!("bad reply: {e}"))
                        }),
                    None => Ok(Payload::Text(String::new())),
                };
                // The requester may have given up waiting.
                let _gone = tx.send(p);
            }
            Ok(())
        }
        Ok(Err(e)) => {
            spec.me.usage.handler_errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(agent = %spec.me.name, "handler error: {e}");
            if let Some(tx) = reply {
                let _gone = tx.send(Err(e));
            }
            Ok(())
        }
        Err(e) => {
            if let Some(tx) = reply {
                let _gone = tx.send(Err(format!("agent `{}` failed: {e}", spec.me.name)));
            }
            Err(Failure::Run(e))
        }
    }
}

/// Built-in commands (`{"cmd": NAME, ...}`), answered by the subsystem that
/// claims NAME before the guest sees the message, with the sender's
/// authority and this agent's (both must allow it). `suspend` and `resume`
/// never get here: sending them turns them into signals.
async fn builtin(
    shared: &Arc<Shared>,
    spec: &AgentSpec,
    sender: &Principal,
    msg: &KernelMessage,
) -> Option<Reply> {
    let Payload::Json(v) = &msg.payload else {
        return None;
    };
    let cmd = v.get("cmd")?.as_str()?;
    let unit = shared.units().for_builtin(cmd)?.clone();
    let receiver = Principal::Agent(spec.me.clone());
    let cx = BuiltinCx {
        kernel: crate::Kernel::from_shared(shared.clone()),
        cmd,
        sender,
        receiver: &receiver,
        request: v,
    };
    Some(unit.builtin(cx).await.map_err(|e| e.to_string()))
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
        shared.agents.live.tasks.fetch_add(1, Ordering::Relaxed);
        TaskGuard {
            shared,
            spec,
            requested: false,
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        let (s, pid) = (&self.shared, self.spec.me.pid);
        // An aborted task was stopped on request.
        let requested = self.requested || s.agents.table.state(pid) == Some(ProcessState::Stopping);
        crate::supervisor::release(s, pid, &self.spec.me.name, requested);
        s.agents.live.tasks.fetch_sub(1, Ordering::Relaxed);
    }
}
