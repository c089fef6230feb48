//! The IPC actions: send (direct, request/reply, service, topic,
//! broadcast), subscribe, unsubscribe, and service registration. Each runs
//! through [`crate::Kernel::act`]; agents reach the first three through
//! their syscalls.

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::message::Envelope;
use super::service::{AuditLevel, ServiceEndpoint, ServiceEntry, SystemService};
use super::topic::HostSubscription;
use super::{KernelMessage, KernelSignal, MessageTarget, Payload};
use crate::act::{ActCx, Action, KernelView, Principal};
use crate::error::{KernelError, KernelResult};
use crate::process::Pid;
use crate::shared::{Control, Shared};

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

/// Where a send goes once its target is looked up.
#[derive(Debug)]
enum Resolved {
    Agent { pid: Pid, name: Arc<str> },
    Service { pid: Pid, object: String },
    Native { entry: NativeEntry, object: String },
    Topic,
    Broadcast,
}

/// A service the host serves itself (a container), for [`Resolved`].
struct NativeEntry {
    name: String,
    audit: AuditLevel,
    service: Arc<dyn SystemService>,
}

impl std::fmt::Debug for NativeEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "native service `{}`", self.name)
    }
}

/// How long a host-served service may take to answer a message nobody
/// waits for (a waiting sender sets its own limit).
pub const SERVICE_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Workers (the least-privileged role) send only to agents and services.
fn worker_may_not(who: &Principal, what: &str) -> KernelResult<()> {
    match who {
        Principal::Agent(a) if !a.may_publish() => Err(KernelError::Denied(format!(
            "`{}` is a worker and may not {what}: give it role = \"coordinator\" \
             (or \"supervisor\") in weftapp.toml",
            a.name
        ))),
        _ => Ok(()),
    }
}

/// Send a message (`ipc.send`, `ipc.publish` for a topic, `ipc.broadcast`).
/// With [`SendMessage::wait`], waits for a direct target's reply.
#[derive(Debug)]
pub struct SendMessage {
    to: MessageTarget,
    payload: Payload,
    wait: Option<Duration>,
    resolved: Option<Resolved>,
}

impl SendMessage {
    /// Send `payload` to `to` without waiting.
    pub fn new(to: MessageTarget, payload: Payload) -> Self {
        SendMessage {
            to,
            payload,
            wait: None,
            resolved: None,
        }
    }

    /// Wait up to `limit` for the reply (direct and service targets only).
    pub fn wait(mut self, limit: Duration) -> Self {
        self.wait = Some(limit);
        self
    }

    fn object(&self) -> Cow<'_, str> {
        match (&self.resolved, &self.to) {
            (Some(Resolved::Agent { name, .. }), _) => Cow::Borrowed(name),
            (Some(Resolved::Service { object, .. }), _)
            | (Some(Resolved::Native { object, .. }), _) => Cow::Borrowed(object),
            (_, MessageTarget::Topic(t)) => Cow::Borrowed(t),
            (_, MessageTarget::Named(n)) => Cow::Borrowed(n),
            _ => Cow::Borrowed("*"),
        }
    }
}

/// Longest agent, service, method or topic name a message may name, in
/// bytes (longer ones are refused before anything is looked up or recorded).
pub const MAX_NAME_BYTES: usize = 256;

/// `p` is within `max` bytes (`[ipc] max_payload_bytes`).
pub(crate) fn check_payload(p: &Payload, max: usize) -> KernelResult<()> {
    let n = p.len();
    if n > max {
        return Err(KernelError::Invalid(format!(
            "payload of {n} bytes exceeds the limit of {max} ([ipc] max_payload_bytes)"
        )));
    }
    Ok(())
}

fn check_name(what: &str, name: &str) -> KernelResult<()> {
    if name.len() > MAX_NAME_BYTES {
        return Err(KernelError::Invalid(format!(
            "{what} name of {} bytes exceeds the limit of {MAX_NAME_BYTES}",
            name.len()
        )));
    }
    Ok(())
}

fn check_target(to: &MessageTarget) -> KernelResult<()> {
    match to {
        MessageTarget::Named(n) => check_name("agent", n),
        MessageTarget::Service(s) => check_name("service", s),
        MessageTarget::ServiceMethod { service, method } => {
            check_name("service", service)?;
            check_name("method", method)
        }
        MessageTarget::Topic(t) => check_name("topic", t),
        MessageTarget::Agent(_) | MessageTarget::Broadcast => Ok(()),
    }
}

fn scope_denied(who: &Principal, what: String) -> KernelError {
    KernelError::Denied(format!(
        "ipc scope of `{}` does not allow {what}",
        who.gate_name()
    ))
}

impl Action for SendMessage {
    type Output = SendOutcome;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self.to {
            MessageTarget::Topic(_) => "ipc.publish",
            MessageTarget::Broadcast => "ipc.broadcast",
            _ => "ipc.send",
        })
    }

    fn gate_context(&self) -> Value {
        json!({ "to": self.object() })
    }

    fn audit_input(&self) -> Option<Cow<'_, [u8]>> {
        Some(match &self.payload {
            Payload::Text(t) => Cow::Borrowed(t.as_bytes()),
            Payload::Json(v) => Cow::Owned(serde_json::to_vec(v).unwrap_or_default()),
            Payload::Binary(b) => Cow::Borrowed(b),
        })
    }

    fn reuse_permit(&self) -> Option<Cow<'_, str>> {
        Some(self.object())
    }

    fn authorize(&mut self, who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        let k = k.shared();
        check_target(&self.to)?;
        check_payload(&self.payload, k.config.ipc.max_payload_bytes)?;
        let direct = |pid: Pid, name: Arc<str>| -> KernelResult<Resolved> {
            if !who.may_message(pid, &name) {
                return Err(scope_denied(who, format!("sending to `{name}`")));
            }
            Ok(Resolved::Agent { pid, name })
        };
        self.resolved = Some(match &self.to {
            MessageTarget::Agent(pid) => {
                let name = k
                    .agents
                    .table
                    .name_of(*pid)
                    .ok_or_else(|| KernelError::NotFound(format!("no agent with pid {pid}")))?;
                direct(*pid, name)?
            }
            MessageTarget::Named(n) => {
                let pid = k.agents.table.pid_of(n).ok_or_else(|| {
                    // Suggest only names the asker could message.
                    let names = k.agents.table.names();
                    let visible = names.iter().filter(|c| match k.agents.table.pid_of(c) {
                        Some(p) => who.may_message(p, c),
                        None => false,
                    });
                    KernelError::NotFound(format!(
                        "no agent named `{n}`{}",
                        crate::suggest::hint(n, visible.map(|c| &**c))
                    ))
                })?;
                direct(pid, Arc::from(n.as_str()))?
            }
            MessageTarget::Service(svc) | MessageTarget::ServiceMethod { service: svc, .. } => {
                let entry = k
                    .ipc
                    .services
                    .get(svc)
                    .ok_or_else(|| KernelError::NotFound(format!("no service `{svc}`")))?;
                let allowed = match who {
                    Principal::Kernel | Principal::Operator => true,
                    Principal::App(_) => who.owns(&entry.owner),
                    Principal::Agent(a) => a.caps.ipc.allows_service(svc),
                };
                if !allowed {
                    return Err(scope_denied(who, format!("service `{svc}`")));
                }
                match entry.endpoint {
                    ServiceEndpoint::AgentInbox(pid) => Resolved::Service {
                        pid,
                        object: format!("service:{svc}"),
                    },
                    _ if entry.native.as_ref().is_some_and(|n| n.takes_calls()) => {
                        Resolved::Native {
                            object: format!("service:{svc}"),
                            entry: NativeEntry {
                                name: svc.clone(),
                                audit: entry.audit_level,
                                service: entry.native.clone().ok_or_else(|| {
                                    KernelError::Failed(format!("service `{svc}` vanished"))
                                })?,
                            },
                        }
                    }
                    other => {
                        return Err(KernelError::Invalid(format!(
                            "service `{svc}` is not served by an agent ({other:?})"
                        )))
                    }
                }
            }
            MessageTarget::Topic(topic) => {
                if self.wait.is_some() {
                    return Err(KernelError::Invalid(
                        "cannot wait for a reply from a topic".into(),
                    ));
                }
                worker_may_not(who, "publish to a topic")?;
                let allowed = match who {
                    Principal::Kernel | Principal::Operator => true,
                    Principal::App(a) => a.owns_name(topic),
                    Principal::Agent(a) => a.caps.ipc.allows_topic(topic),
                };
                if !allowed {
                    return Err(scope_denied(who, format!("topic `{topic}`")));
                }
                Resolved::Topic
            }
            MessageTarget::Broadcast => {
                if self.wait.is_some() {
                    return Err(KernelError::Invalid(
                        "cannot wait for a reply from a broadcast".into(),
                    ));
                }
                worker_may_not(who, "broadcast")?;
                Resolved::Broadcast
            }
        });
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<SendOutcome> {
        let k = cx.shared.clone();
        let who = cx.who().clone();
        count_sent(&who)?;
        let mut msg = message(&k, &who, self.to, self.payload);
        let pid = match self.resolved {
            Some(Resolved::Agent { pid, .. }) | Some(Resolved::Service { pid, .. }) => pid,
            Some(Resolved::Native { entry, .. }) => {
                return call_native(cx, entry, msg, who, self.wait).await;
            }
            Some(Resolved::Topic) => {
                let topic = match &msg.to {
                    MessageTarget::Topic(t) => t.clone(),
                    _ => unreachable!("resolved as a topic"),
                };
                msg.topic = Some(topic.clone());
                let mut delivered = k.ipc.topics.deliver_hosts(&topic, &msg);
                for pid in k.ipc.topics.subscribers(&topic) {
                    let env = Envelope::Message {
                        msg: msg.clone(),
                        reply: None,
                        sender: who.clone(),
                    };
                    if k.ipc.router.try_deliver(pid, env) {
                        delivered += 1;
                    }
                }
                record_send(cx, &msg, None, delivered)?;
                return Ok(SendOutcome::Delivered(delivered as u64));
            }
            Some(Resolved::Broadcast) | None => {
                let mut delivered = 0;
                for pid in k.ipc.router.pids() {
                    if pid == who.pid() && who.agent().is_some() {
                        continue;
                    }
                    let Some(name) = k.agents.table.name_of(pid) else {
                        continue;
                    };
                    if !who.may_message(pid, &name) {
                        continue;
                    }
                    let env = Envelope::Message {
                        msg: msg.clone(),
                        reply: None,
                        sender: who.clone(),
                    };
                    if k.ipc.router.try_deliver(pid, env) {
                        delivered += 1;
                    }
                }
                record_send(cx, &msg, None, delivered)?;
                return Ok(SendOutcome::Delivered(delivered as u64));
            }
        };
        if let MessageTarget::ServiceMethod { method, .. } = &msg.to {
            msg.method = Some(method.clone());
        }
        // Suspend and resume are signals, handled before the guest sees
        // anything, even when the agent is suspended or its inbox full.
        if let Some(sig) = builtin_signal(&msg.payload) {
            record_send(cx, &msg, Some(pid), 1)?;
            k.control(pid, Control::Signal(sig)).await?;
            return Ok(SendOutcome::Sent(msg.id));
        }
        let (reply_tx, reply_rx) = match self.wait {
            Some(_) => {
                let (tx, rx) = oneshot::channel();
                msg.correlation_id = Some(msg.id);
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        record_send(cx, &msg, Some(pid), 1)?;
        let id = msg.id;
        let env = Envelope::Message {
            msg,
            reply: reply_tx,
            sender: who,
        };
        k.ipc
            .router
            .deliver(pid, env, k.config.ipc.send_timeout())
            .await?;
        match (self.wait, reply_rx) {
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
}

/// A message to a service the host serves: recorded like any send, then
/// handed to the service; with [`AuditLevel::Full`] its answer is recorded
/// too (its size and outcome, never its body).
async fn call_native(
    cx: &mut ActCx<'_>,
    entry: NativeEntry,
    mut msg: KernelMessage,
    who: Principal,
    wait: Option<Duration>,
) -> KernelResult<SendOutcome> {
    let method = match &msg.to {
        MessageTarget::ServiceMethod { method, .. } => Some(method.clone()),
        _ => None,
    };
    msg.method = method.clone();
    if wait.is_some() {
        msg.correlation_id = Some(msg.id);
    }
    record_send(cx, &msg, None, 1)?;
    let timeout = wait.unwrap_or(SERVICE_CALL_TIMEOUT);
    let started = std::time::Instant::now();
    let call = entry.service.call(super::service::ServiceRequest {
        service: entry.name.clone(),
        method,
        payload: msg.payload,
        sender: who.gate_name().to_string(),
        message_id: msg.id,
        timeout,
    });
    let answer = match tokio::time::timeout(timeout, call).await {
        Ok(r) => r.map_err(KernelError::Failed),
        Err(_) => Err(KernelError::Timeout(format!(
            "service `{}` did not answer within {} ms",
            entry.name,
            timeout.as_millis()
        ))),
    };
    if entry.audit == AuditLevel::Full {
        cx.record(
            "ipc.service_reply",
            &json!({
                "id": msg.id,
                "service": entry.name,
                "ok": answer.is_ok(),
                "len": answer.as_ref().map(Payload::len).ok(),
                "error": answer.as_ref().err().map(ToString::to_string),
                "elapsed_us": started.elapsed().as_micros() as u64,
            }),
        )?;
    }
    let reply = answer?;
    Ok(match wait {
        Some(_) => SendOutcome::Replied(reply),
        None => SendOutcome::Sent(msg.id),
    })
}

fn count_sent(who: &Principal) -> KernelResult<()> {
    if let Principal::Agent(a) = who {
        let sent = a.usage.messages_sent.fetch_add(1, Ordering::Relaxed) + 1;
        if a.max_messages != 0 && sent > a.max_messages {
            a.usage.messages_sent.fetch_sub(1, Ordering::Relaxed);
            return Err(KernelError::Limit(format!(
                "`{}` may send at most {} messages",
                a.name, a.max_messages
            )));
        }
    }
    Ok(())
}

fn message(k: &Shared, who: &Principal, to: MessageTarget, payload: Payload) -> KernelMessage {
    KernelMessage {
        id: k.ipc.next_id(),
        from: who.pid(),
        from_name: match who {
            Principal::Agent(a) => a.name.clone(),
            other => Arc::from(other.gate_name()),
        },
        to,
        payload,
        timestamp_ns: weft_chain::now_ns(),
        correlation_id: None,
        topic: None,
        method: None,
    }
}

/// Every message is witnessed on the chain by its metadata, never its body.
fn record_send(
    cx: &mut ActCx<'_>,
    msg: &KernelMessage,
    to_pid: Option<Pid>,
    delivered: usize,
) -> KernelResult<u64> {
    cx.record(
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
    )
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

/// An agent subscribes to a topic (`ipc.subscribe`).
#[derive(Debug)]
pub struct Subscribe {
    /// The exact topic name.
    pub topic: String,
}

impl Action for Subscribe {
    type Output = ();

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("ipc.subscribe")
    }

    fn gate_context(&self) -> Value {
        json!({ "topic": self.topic })
    }

    fn reuse_permit(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.topic))
    }

    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        if self.topic.is_empty() {
            return Err(KernelError::Invalid("empty topic".into()));
        }
        check_name("topic", &self.topic)?;
        match who {
            Principal::Agent(a) if a.caps.ipc.allows_topic(&self.topic) => Ok(()),
            Principal::Agent(_) => Err(scope_denied(who, format!("topic `{}`", self.topic))),
            _ => Err(KernelError::Invalid(
                "only agents subscribe to topics; the host uses SubscribeHost".into(),
            )),
        }
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<()> {
        let pid = cx.who().pid();
        cx.record("ipc.subscribe", &json!({ "pid": pid, "topic": self.topic }))?;
        cx.shared.ipc.topics.subscribe(&self.topic, pid);
        Ok(())
    }
}

/// An agent drops a topic subscription (`ipc.unsubscribe`).
#[derive(Debug)]
pub struct Unsubscribe {
    /// The exact topic name.
    pub topic: String,
}

impl Action for Unsubscribe {
    type Output = ();

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("ipc.unsubscribe")
    }

    fn gate_context(&self) -> Value {
        json!({ "topic": self.topic })
    }

    fn reuse_permit(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.topic))
    }

    fn authorize(&mut self, who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        let k = k.shared();
        check_name("topic", &self.topic)?;
        if !k.ipc.topics.subscribers(&self.topic).contains(&who.pid()) || who.agent().is_none() {
            return Err(KernelError::NotFound(format!(
                "not subscribed to `{}`",
                self.topic
            )));
        }
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<()> {
        let pid = cx.who().pid();
        cx.record(
            "ipc.unsubscribe",
            &json!({ "pid": pid, "topic": self.topic }),
        )?;
        cx.shared.ipc.topics.unsubscribe(&self.topic, pid);
        Ok(())
    }
}

/// The host (the operator or the kernel) receives what is published on a
/// topic, on a channel of `capacity` messages (`ipc.subscribe`).
#[derive(Debug)]
pub struct SubscribeHost {
    /// The exact topic name.
    pub topic: String,
    /// Messages buffered before new ones are dropped for this subscriber.
    pub capacity: usize,
}

impl Action for SubscribeHost {
    type Output = HostSubscription;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("ipc.subscribe")
    }

    fn gate_context(&self) -> Value {
        json!({ "topic": self.topic, "host": true })
    }

    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        match who {
            Principal::Kernel | Principal::Operator => Ok(()),
            other => Err(KernelError::Denied(format!(
                "`{}` may not subscribe from the host side",
                other.gate_name()
            ))),
        }
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<HostSubscription> {
        cx.record(
            "ipc.subscribe",
            &json!({ "host": true, "topic": self.topic }),
        )?;
        Ok(cx
            .shared
            .ipc
            .topics
            .subscribe_host(&self.topic, self.capacity.max(1)))
    }
}

/// Register a named service (`service.register`): on the chain and in the
/// tree under `/kernel/services`.
pub struct RegisterService {
    /// Unique service name.
    pub name: String,
    /// Where its requests go.
    pub endpoint: ServiceEndpoint,
    /// How much of its traffic the chain witnesses.
    pub audit_level: AuditLevel,
    /// A service the host runs itself (started here, stopped on removal).
    pub native: Option<Arc<dyn SystemService>>,
}

impl Action for RegisterService {
    type Output = u64;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("service.register")
    }

    fn gate_context(&self) -> Value {
        json!({ "service": self.name, "endpoint": self.endpoint })
    }

    fn authorize(&mut self, who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        let k = k.shared();
        if !crate::act::valid_agent_name(&self.name) {
            return Err(KernelError::Invalid(format!(
                "service name `{}`: use 1-128 of [A-Za-z0-9._-]",
                self.name
            )));
        }
        if k.ipc.services.get(&self.name).is_some() {
            return Err(KernelError::Invalid(format!(
                "service `{}` is already registered",
                self.name
            )));
        }
        if let (ServiceEndpoint::AgentInbox(pid), Principal::App(_) | Principal::Agent(_)) =
            (&self.endpoint, who)
        {
            // Only an agent of one's own may serve one's service.
            let owner = k.agents.table.get(*pid).map(|e| e.owner.clone());
            let own = match (who, owner) {
                (Principal::Agent(a), _) if a.pid == *pid => true,
                (_, Some(o)) => who.owns(&o),
                _ => false,
            };
            if !own {
                return Err(KernelError::Denied(format!(
                    "`{}` may not register a service served by agent {pid}",
                    who.gate_name()
                )));
            }
        }
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<u64> {
        let owner_pid = match &self.endpoint {
            ServiceEndpoint::AgentInbox(p) => Some(*p),
            _ => None,
        };
        let owner = cx.who().gate_name().to_string();
        let seq = cx.record(
            "service.register",
            &json!({ "name": self.name, "owner": owner, "owner_pid": owner_pid,
                     "endpoint": self.endpoint, "audit_level": self.audit_level }),
        )?;
        if let Some(n) = &self.native {
            n.start().map_err(|e| {
                KernelError::Failed(format!("service `{}` failed to start: {e}", self.name))
            })?;
        }
        cx.shared.ipc.services.register(ServiceEntry {
            name: self.name.clone(),
            owner,
            owner_pid,
            endpoint: self.endpoint.clone(),
            audit_level: self.audit_level,
            chain_seq: seq,
            native: self.native,
        })?;
        cx.tree().insert(
            &format!("/kernel/services/{}", self.name),
            [("endpoint".to_string(), json!(self.endpoint))]
                .into_iter()
                .collect(),
        )?;
        Ok(seq)
    }
}

/// Stop and remove a service (`service.unregister`); only its owner (or
/// the operator) may.
#[derive(Debug)]
pub struct UnregisterService {
    /// The service's name.
    pub name: String,
}

impl Action for UnregisterService {
    type Output = ();

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("service.unregister")
    }

    fn gate_context(&self) -> Value {
        json!({ "service": self.name })
    }

    fn authorize(&mut self, who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        let k = k.shared();
        let e = k
            .ipc
            .services
            .get(&self.name)
            .ok_or_else(|| KernelError::NotFound(format!("no service `{}`", self.name)))?;
        if !who.owns(&e.owner) {
            return Err(KernelError::Denied(format!(
                "service `{}` belongs to `{}`, not `{}`",
                self.name,
                e.owner,
                who.gate_name()
            )));
        }
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<()> {
        let k = cx.shared.clone();
        let Some(e) = k.ipc.services.unregister(&self.name) else {
            return Err(KernelError::NotFound(format!("no service `{}`", self.name)));
        };
        let stop_error = e.native.and_then(|n| n.stop().err());
        cx.record(
            "service.unregister",
            &json!({ "name": self.name, "stop_error": stop_error }),
        )?;
        if k.tree
            .get(&format!("/kernel/services/{}", self.name))
            .is_some()
        {
            k.tree.remove(&format!("/kernel/services/{}", self.name))?;
        }
        Ok(())
    }
}
