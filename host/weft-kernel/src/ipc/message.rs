//! Message envelopes: what travels between agents, and how it is addressed.

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::process::Pid;

/// A message body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    Text(String),
    Json(serde_json::Value),
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

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

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
    Agent(Pid),
    /// An agent by name.
    Named(String),
    Service(String),
    ServiceMethod {
        service: String,
        method: String,
    },
    Topic(String),
    Broadcast,
}

/// Out-of-band control, handled by the host before the guest sees anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelSignal {
    Shutdown,
    Suspend,
    Resume,
    /// Delivered to the guest as a message with `method = "signal"`.
    Custom(String),
}

/// A message as the kernel routes it.
#[derive(Clone, Debug, Serialize)]
pub struct KernelMessage {
    pub id: u64,
    pub from: Pid,
    pub from_name: std::sync::Arc<str>,
    pub to: MessageTarget,
    pub payload: Payload,
    pub timestamp_ns: u64,
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
