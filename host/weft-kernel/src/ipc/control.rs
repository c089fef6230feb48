//! The IPC unit as a subsystem, and the server side of `weaver agent send`
//! (a message from the operator to an agent; its CLI is in
//! `agent::control`).

use std::any::Any;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{MessageTarget, Payload, SendMessage, SendOutcome};
use crate::control::{ControlCx, ControlError, ControlReply};
use crate::subsystem::{BoxFuture, Subsystem};

/// The IPC unit's control requests.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Send to an agent by name (or to a service's method) and wait for
    /// its reply.
    Send {
        /// The agent's name; with `method`, a registered service's name.
        name: String,
        /// Send to this method of the service `name` (a service-method
        /// message, as an agent's `ServiceMethod` target sends).
        #[serde(default)]
        method: Option<String>,
        /// A text payload (when `json` is absent).
        text: Option<String>,
        /// A JSON payload.
        json: Option<Value>,
        /// How long to wait for the reply (default 5 s, at most 10 min).
        wait_ms: Option<u64>,
    },
}

fn payload_json(p: Payload) -> Value {
    match p {
        Payload::Text(s) => json!({ "text": s }),
        Payload::Json(v) => json!({ "json": v }),
        Payload::Binary(b) => json!({ "binary_bytes": b.len() }),
    }
}

/// Serve one request.
pub async fn serve(cx: ControlCx<'_>) -> ControlReply {
    match cx.parse::<Request>("ipc")? {
        Request::Send {
            name,
            method,
            text,
            json,
            wait_ms,
        } => {
            let payload = match (json, text) {
                (Some(v), _) if !v.is_null() => Payload::Json(v),
                (_, Some(t)) => Payload::Text(t),
                _ => return Err(ControlError::bad_request("`send` needs `text` or `json`")),
            };
            let wait = Duration::from_millis(wait_ms.unwrap_or(5_000).min(600_000));
            let to = match method {
                Some(method) => MessageTarget::ServiceMethod {
                    service: name,
                    method,
                },
                None => MessageTarget::Named(name),
            };
            let send = SendMessage::new(to, payload).wait(wait);
            match cx.kernel.act(cx.who, send).await? {
                SendOutcome::Replied(p) => Ok(payload_json(p)),
                other => Err(ControlError::kernel(format!(
                    "expected a reply, got {other:?}"
                ))),
            }
        }
    }
}

/// The built-in IPC unit.
pub(crate) struct IpcUnit;

impl Subsystem for IpcUnit {
    fn name(&self) -> &'static str {
        "ipc"
    }

    fn actions(&self) -> &'static [&'static str] {
        &[
            "ipc.send",
            "ipc.publish",
            "ipc.broadcast",
            "ipc.subscribe",
            "ipc.unsubscribe",
            "service.register",
            "service.unregister",
        ]
    }

    fn control_ops(&self) -> &'static [&'static str] {
        &["send"]
    }

    fn control<'a>(&'a self, cx: ControlCx<'a>) -> BoxFuture<'a, ControlReply> {
        Box::pin(serve(cx))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
