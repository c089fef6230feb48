//! Message envelopes: what travels between agents, and how it is addressed.

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::process::Pid;

/// A message body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// UTF-8 text.
    Text(String),
    /// A JSON document.
    Json(serde_json::Value),
    /// Raw bytes.
    Binary(Vec<u8>),
}

impl Payload {
    /// Size for metadata records (the chain never stores bodies).
    pub fn len(&self) -> usize {
        match self {
            Payload::Text(t) => t.len(),
            Payload::Json(j) => j.to_string().len(),
            Payload::Binary(b) => b.len(),
        }
    }

    /// True when [`Payload::len`] is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `text`, `json` or `binary`, for records.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Text(_) => "text",
            Payload::Json(_) => "json",
            Payload::Binary(_) => "binary",
        }
    }
}

/// Where a message goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageTarget {
    /// An agent by pid.
    Agent(Pid),
    /// An agent by name.
    Named(String),
    /// The agent that serves a registered service.
    Service(String),
    /// A method of a registered service; the receiver sees it as the message's `method`.
    ServiceMethod {
        /// The service.
        service: String,
        /// The method name.
        method: String,
    },
    /// Every subscriber of a topic; a full inbox is skipped.
    Topic(String),
    /// Every agent the sender may message, but itself; a full inbox is skipped.
    Broadcast,
}

/// Out-of-band control, handled by the host before the guest sees anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelSignal {
    /// Stop the agent.
    Shutdown,
    /// Stop handling messages (they wait in the inbox) until `Resume`.
    Suspend,
    /// Handle messages again after `Suspend`.
    Resume,
    /// Delivered to the guest as a message with `method = "signal"`.
    Custom(String),
}

/// A message as the kernel routes it.
#[derive(Clone, Debug, Serialize)]
pub struct KernelMessage {
    /// Unique per kernel run.
    pub id: u64,
    /// The sender's pid ([`KERNEL_PID`](crate::process::KERNEL_PID) from outside the agents).
    pub from: Pid,
    /// The sender's name.
    pub from_name: std::sync::Arc<str>,
    /// Where it was addressed.
    pub to: MessageTarget,
    /// The body.
    pub payload: Payload,
    /// When it was sent, nanoseconds since the UNIX epoch.
    pub timestamp_ns: u64,
    /// For a request, its own `id`; the reply answers it.
    pub correlation_id: Option<u64>,
    /// Set for topic deliveries.
    pub topic: Option<String>,
    /// Set for service-method calls and custom signals.
    pub method: Option<String>,
}

/// The reply to a request: the handler's payload, or why there is none.
pub type Reply = Result<Payload, String>;

/// What sits in an agent's inbox.
pub(crate) enum Envelope {
    Message {
        msg: KernelMessage,
        /// Present when the sender waits for a reply.
        reply: Option<oneshot::Sender<Reply>>,
        /// Who sent it, with their authority: a built-in the receiver runs
        /// for the sender is checked against both.
        sender: crate::act::Principal,
    },
}
