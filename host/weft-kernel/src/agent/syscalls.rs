//! The kernel's syscalls (`weft:kernel/kernel`), as seen from an agent.
//! Each one checks the caller's capabilities; a refusal is an `error`
//! returned to the guest and counted, never a trap.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::RngCore;
use serde_json::json;
use weft_runtime::StoreData;

use super::bindings::weft::kernel::{ipc, kernel, types};
use super::AgentCtx;
use crate::error::KernelError;
use crate::ipc::{MessageTarget, Payload};
use crate::shared::SendOutcome;

impl types::Host for StoreData<AgentCtx> {}
impl ipc::Host for StoreData<AgentCtx> {}

/// Map a kernel error onto the WIT error variant.
pub(crate) fn to_wit_error(e: KernelError) -> ipc::Error {
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
        self.data.sender.pid
    }

    async fn self_name(&mut self) -> String {
        self.data.sender.name.to_string()
    }

    async fn send(&mut self, to: ipc::Target, body: ipc::Payload) -> Result<u64, ipc::Error> {
        let payload = payload_from_wit(body)?;
        let ctx = &mut self.data;
        let out = ctx
            .shared
            .send(
                &ctx.sender,
                target_from_wit(to),
                payload,
                None,
                &mut ctx.permits,
            )
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
        let ctx = &mut self.data;
        let cap = ctx
            .shared
            .config
            .ipc
            .max_request_timeout_ms
            .min(ctx.limits.timeout_ms);
        let wait = Duration::from_millis(u64::from(timeout_ms).min(cap));
        match ctx
            .shared
            .send(
                &ctx.sender,
                target_from_wit(to),
                payload,
                Some(wait),
                &mut ctx.permits,
            )
            .await
            .map_err(to_wit_error)?
        {
            SendOutcome::Replied(p) => Ok(payload_to_wit(p)),
            _ => Err(ipc::Error::Failed("no reply".into())),
        }
    }

    async fn subscribe(&mut self, topic: String) -> Result<(), ipc::Error> {
        let ctx = &mut self.data;
        if topic.is_empty() {
            return Err(ipc::Error::Invalid("empty topic".into()));
        }
        if !ctx.sender.caps.ipc.allows_topic(&topic) {
            ctx.sender.usage.iter().for_each(|u| {
                u.denials.fetch_add(1, Ordering::Relaxed);
            });
            return Err(ipc::Error::Denied(format!(
                "ipc scope of `{}` does not allow topic `{topic}`",
                ctx.sender.name
            )));
        }
        ctx.shared
            .permit_cached(&ctx.sender, "ipc.subscribe", &topic, &mut ctx.permits)
            .map_err(to_wit_error)?;
        ctx.shared.topics.subscribe(&topic, ctx.sender.pid);
        Ok(())
    }

    async fn unsubscribe(&mut self, topic: String) -> Result<(), ipc::Error> {
        let ctx = &self.data;
        if ctx.shared.topics.unsubscribe(&topic, ctx.sender.pid) {
            Ok(())
        } else {
            Err(ipc::Error::NotFound(format!("not subscribed to `{topic}`")))
        }
    }

    async fn invoke_tool(
        &mut self,
        name: String,
        input: types::Json,
    ) -> Result<types::Json, ipc::Error> {
        let ctx = &self.data;
        if let Some(u) = &ctx.sender.usage {
            let max = ctx.limits.max_tool_calls;
            if max != 0 && u.tool_calls.load(Ordering::Relaxed) >= max {
                return Err(ipc::Error::Limit(format!(
                    "`{}` may make at most {max} tool calls",
                    ctx.sender.name
                )));
            }
        }
        ctx.shared
            .invoke_tool(&ctx.sender, &name, &input)
            .await
            .map(|v| v.to_string())
            .map_err(to_wit_error)
    }

    async fn log(&mut self, lvl: ipc::Level, msg: String) {
        let name = &self.data.sender.name;
        match lvl {
            ipc::Level::Trace => tracing::trace!(agent = %name, "{msg}"),
            ipc::Level::Debug => tracing::debug!(agent = %name, "{msg}"),
            ipc::Level::Info => tracing::info!(agent = %name, "{msg}"),
            ipc::Level::Warn => tracing::warn!(agent = %name, "{msg}"),
            ipc::Level::Error => tracing::error!(agent = %name, "{msg}"),
        }
    }

    async fn now(&mut self) -> u64 {
        weft_chain::now_ns()
    }

    async fn random(&mut self, len: u32) -> Vec<u8> {
        let mut buf = vec![0u8; len.min(4096) as usize];
        rand::rngs::OsRng.fill_bytes(&mut buf);
        buf
    }

    async fn chain_append(&mut self, kind: String, body: types::Json) -> Result<u64, ipc::Error> {
        let ctx = &mut self.data;
        if !ctx.sender.caps.chain_append {
            ctx.sender.usage.iter().for_each(|u| {
                u.denials.fetch_add(1, Ordering::Relaxed);
            });
            return Err(ipc::Error::Denied(format!(
                "`{}` may not append to the chain",
                ctx.sender.name
            )));
        }
        if kind.is_empty()
            || kind.len() > 64
            || !kind
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(ipc::Error::Invalid(format!(
                "bad event kind `{kind}`: use [a-z0-9._-], at most 64 chars"
            )));
        }
        let value: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| ipc::Error::Invalid(format!("body is not JSON: {e}")))?;
        let full = format!("agent.{kind}");
        ctx.shared
            .permit_cached(&ctx.sender, "chain.append", &full, &mut ctx.permits)
            .map_err(to_wit_error)?;
        ctx.shared
            .record(
                &ctx.sender.name,
                &full,
                &json!({ "pid": ctx.sender.pid, "body": value }),
            )
            .map_err(to_wit_error)
    }
}
