//! The kernel's syscalls (`weft:kernel/kernel`), as seen from an agent.
//! Each one is an action of the unit that owns it, carried out through
//! the chokepoint as the calling agent: checked against its capabilities,
//! gated (a permit reused until policy changes where the action allows),
//! recorded. A refusal is an `error` returned to the guest and counted,
//! never a trap.

use std::time::Duration;

use rand::RngCore;
use weft_runtime::StoreData;

use super::bindings::weft::kernel::{ipc, kernel, types};
use super::AgentCtx;
use crate::act::Query;
use crate::chain::ChainAppend;
use crate::console::{BootPhase, LogLevel};
use crate::error::KernelError;
use crate::ipc::{MessageTarget, Payload, SendMessage, SendOutcome, Subscribe, Unsubscribe};
use crate::tools::InvokeTool;

impl types::Host for StoreData<AgentCtx> {}
impl ipc::Host for StoreData<AgentCtx> {}

/// Map a kernel error onto the WIT error variant.
pub fn to_wit_error(e: KernelError) -> ipc::Error {
    match e {
        KernelError::Denied(m) | KernelError::Deferred(m) => ipc::Error::Denied(m),
        KernelError::NotFound(m) => ipc::Error::NotFound(m),
        KernelError::NoSuchProcess(p) => ipc::Error::NotFound(format!("no process {p}")),
        KernelError::NoSuchName(n) => ipc::Error::NotFound(format!("no agent named `{n}`")),
        KernelError::Timeout(m) => ipc::Error::Timeout(m),
        KernelError::Limit(m) => ipc::Error::Limit(m),
        KernelError::Invalid(m) => ipc::Error::Invalid(m),
        other => ipc::Error::Failed(other.to_string()),
    }
}

pub(crate) fn payload_from_wit(p: ipc::Payload) -> Result<Payload, ipc::Error> {
    Ok(match p {
        ipc::Payload::Text(t) => Payload::Text(t),
        ipc::Payload::Binary(b) => Payload::Binary(b),
        ipc::Payload::Json(j) => Payload::Json(
            serde_json::from_str(&j)
                .map_err(|e| ipc::Error::Invalid(format!("json payload: {e}")))?,
        ),
    })
}

pub(crate) fn payload_to_wit(p: Payload) -> ipc::Payload {
    match p {
        Payload::Text(t) => ipc::Payload::Text(t),
        Payload::Binary(b) => ipc::Payload::Binary(b),
        Payload::Json(j) => ipc::Payload::Json(j.to_string()),
    }
}

fn target_from_wit(t: ipc::Target) -> MessageTarget {
    match t {
        ipc::Target::Agent(p) => MessageTarget::Agent(p),
        ipc::Target::Named(n) => MessageTarget::Named(n),
        ipc::Target::Service(s) => MessageTarget::Service(s),
        ipc::Target::ServiceMethod(sm) => MessageTarget::ServiceMethod {
            service: sm.service,
            method: sm.method,
        },
        ipc::Target::Topic(t) => MessageTarget::Topic(t),
        ipc::Target::Broadcast => MessageTarget::Broadcast,
    }
}

impl kernel::Host for StoreData<AgentCtx> {
    async fn self_pid(&mut self) -> ipc::Pid {
        // Identity is no secret; still a read the gate may refuse.
        match self.data.act(Query("kernel.self")).await {
            Ok(()) => self.data.me.pid(),
            Err(_) => 0,
        }
    }

    async fn self_name(&mut self) -> String {
        match self.data.act(Query("kernel.self")).await {
            Ok(()) => self.data.me.gate_name().to_string(),
            Err(_) => String::new(),
        }
    }

    async fn send(&mut self, to: ipc::Target, body: ipc::Payload) -> Result<u64, ipc::Error> {
        let payload = payload_from_wit(body)?;
        let out = self
            .data
            .act(SendMessage::new(target_from_wit(to), payload))
            .await
            .map_err(to_wit_error)?;
        Ok(match out {
            SendOutcome::Sent(id) => id,
            SendOutcome::Delivered(n) => n,
            SendOutcome::Replied(_) => 0,
        })
    }

    async fn request(
        &mut self,
        to: ipc::Target,
        body: ipc::Payload,
        timeout_ms: u32,
    ) -> Result<ipc::Payload, ipc::Error> {
        let payload = payload_from_wit(body)?;
        let cap = self
            .data
            .shared
            .config
            .ipc
            .max_request_timeout_ms
            .min(self.data.limits.timeout_ms);
        let wait = Duration::from_millis(u64::from(timeout_ms).min(cap));
        match self
            .data
            .act(SendMessage::new(target_from_wit(to), payload).wait(wait))
            .await
            .map_err(to_wit_error)?
        {
            SendOutcome::Replied(p) => Ok(payload_to_wit(p)),
            _ => Err(ipc::Error::Failed("no reply".into())),
        }
    }

    async fn subscribe(&mut self, topic: String) -> Result<(), ipc::Error> {
        self.data
            .act(Subscribe { topic })
            .await
            .map_err(to_wit_error)
    }

    async fn unsubscribe(&mut self, topic: String) -> Result<(), ipc::Error> {
        self.data
            .act(Unsubscribe { topic })
            .await
            .map_err(to_wit_error)
    }

    async fn invoke_tool(
        &mut self,
        name: String,
        input: types::Json,
    ) -> Result<types::Json, ipc::Error> {
        self.data
            .act(InvokeTool::new(name, input))
            .await
            .map(|v| v.to_string())
            .map_err(to_wit_error)
    }

    async fn log(&mut self, lvl: ipc::Level, msg: String) {
        if self.data.act(Query("kernel.log")).await.is_err() {
            return;
        }
        // Into the kernel log (`weaver kernel logs`), under the agent's name.
        let level = match lvl {
            ipc::Level::Trace | ipc::Level::Debug => LogLevel::Debug,
            ipc::Level::Info => LogLevel::Info,
            ipc::Level::Warn => LogLevel::Warn,
            ipc::Level::Error => LogLevel::Error,
        };
        let source = self.data.me.gate_name().to_string();
        self.data
            .shared
            .log
            .push_from(BootPhase::Runtime, level, Some(source), msg);
    }

    async fn now(&mut self) -> u64 {
        match self.data.act(Query("kernel.now")).await {
            Ok(()) => weft_chain::now_ns(),
            Err(_) => 0,
        }
    }

    async fn random(&mut self, len: u32) -> Vec<u8> {
        if self.data.act(Query("kernel.random")).await.is_err() {
            return Vec::new();
        }
        let mut buf = vec![0u8; len.min(4096) as usize];
        rand::rngs::OsRng.fill_bytes(&mut buf);
        buf
    }

    async fn chain_append(&mut self, kind: String, body: types::Json) -> Result<u64, ipc::Error> {
        let value: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| ipc::Error::Invalid(format!("body is not JSON: {e}")))?;
        self.data
            .act(ChainAppend::new(kind, value))
            .await
            .map_err(to_wit_error)
    }
}
