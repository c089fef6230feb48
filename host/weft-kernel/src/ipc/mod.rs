//! IPC: how agents (and the operator, apps and the kernel) reach each other.
//!
//! One unit: bounded inboxes ([`router`]), topics ([`topic`]), the service
//! registry ([`service`]), the actions that change them ([`actions`]: send,
//! subscribe, register a service, ...), and the control commands
//! ([`control`]: `weaver agent send`). The agent syscalls `send`,
//! `request`, `subscribe` and `unsubscribe` are these actions.

pub mod actions;
pub mod control;
mod message;
pub(crate) mod router;
pub mod service;
pub mod topic;

use std::sync::atomic::{AtomicU64, Ordering};

pub use actions::{
    RegisterService, SendMessage, SendOutcome, Subscribe, SubscribeHost, UnregisterService,
    Unsubscribe,
};
pub(crate) use control::IpcUnit;
pub(crate) use message::Envelope;
pub use message::{KernelMessage, KernelSignal, MessageTarget, Payload, Reply};

/// The IPC unit's state.
pub(crate) struct Ipc {
    pub router: router::A2ARouter,
    pub topics: topic::TopicRouter,
    pub services: service::ServiceRegistry,
    next_msg: AtomicU64,
}

impl Ipc {
    pub fn new(inbox_capacity: usize) -> Self {
        Ipc {
            router: router::A2ARouter::new(inbox_capacity),
            topics: topic::TopicRouter::default(),
            services: service::ServiceRegistry::default(),
            next_msg: AtomicU64::new(1),
        }
    }

    /// A message id, unique for this kernel run.
    pub fn next_id(&self) -> u64 {
        self.next_msg.fetch_add(1, Ordering::Relaxed)
    }
}
