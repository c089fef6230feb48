//! `weaver agent send`: a message from the operator to an agent, and the
//! IPC unit as a subsystem.

use std::any::Any;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::{FromArgMatches, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{MessageTarget, Payload, SendMessage, SendOutcome};
use crate::control::cli::CliCommand;
use crate::control::protocol::exit;
use crate::control::{ControlCx, ControlError, ControlReply};
use crate::subsystem::{BoxFuture, Subsystem};

/// The IPC unit's control requests.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Send to an agent by name and wait for its reply.
    Send {
        /// The agent's name.
        name: String,
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
            let send = SendMessage::new(MessageTarget::Named(name), payload).wait(wait);
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

#[derive(Subcommand)]
enum AgentCmd {
    /// Send a message and print the reply.
    Send {
        name: String,
        message: String,
        /// MESSAGE is JSON (sent as a JSON payload, not text).
        #[arg(long)]
        json: bool,
        /// How long to wait for the reply.
        #[arg(long = "wait-ms", default_value_t = 5000)]
        wait_ms: u64,
    },
}

/// `weaver agent`.
pub fn cli() -> CliCommand {
    CliCommand {
        command: || {
            AgentCmd::augment_subcommands(
                clap::Command::new("agent")
                    .about("Talk to agents")
                    .subcommand_required(true),
            )
        },
        run: |cx, m| Box::pin(run(cx.state, m)),
    }
}

async fn run(state: &Path, m: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    let AgentCmd::Send {
        name,
        message,
        json,
        wait_ms,
    } = AgentCmd::from_arg_matches(m)?;
    let (text, json) = if json {
        match serde_json::from_str::<Value>(&message) {
            Ok(v) => (None, Some(v)),
            Err(e) => {
                eprintln!("weaver: MESSAGE is not JSON: {e}");
                return Ok(ExitCode::from(exit::USAGE));
            }
        }
    } else {
        (Some(message), None)
    };
    let req = Request::Send {
        name,
        text,
        json,
        wait_ms: Some(wait_ms),
    };
    let v = crate::ask!(state, "ipc", &req);
    match (&v["text"], &v["json"]) {
        (Value::String(s), _) => println!("{s}"),
        (_, j) if !j.is_null() => println!("{j}"),
        _ => println!("{v}"),
    }
    Ok(ExitCode::SUCCESS)
}
