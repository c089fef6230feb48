//! Agents: component instances of the `weft:kernel` agent world, each with
//! its own store (fuel, memory, deadline), run as one tokio task apiece.

pub mod bindings;
mod syscalls;
pub(crate) mod task;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::capability::{AgentLimits, Capabilities};
use crate::process::{Pid, Usage};
use crate::shared::{PermitCache, Sender, Shared};

/// Pre-instantiated agent component.
pub type AgentPre = bindings::AgentPre<weft_runtime::StoreData<AgentCtx>>;

/// Per-agent host state, living in the agent's store: who it is, what it
/// may do, and the kernel it talks to.
pub struct AgentCtx {
    pub(crate) sender: Sender,
    pub(crate) shared: Arc<Shared>,
    pub(crate) limits: AgentLimits,
    pub(crate) permits: PermitCache,
}

impl AgentCtx {
    pub(crate) fn new(
        shared: Arc<Shared>,
        pid: Pid,
        name: Arc<str>,
        parent: Option<Pid>,
        caps: Arc<Capabilities>,
        limits: AgentLimits,
        usage: Arc<Usage>,
    ) -> Self {
        shared.live.stores.fetch_add(1, Ordering::Relaxed);
        AgentCtx {
            sender: Sender {
                pid,
                name,
                parent,
                caps,
                usage: Some(usage),
                max_messages: limits.max_messages,
            },
            shared,
            limits,
            permits: PermitCache::new(),
        }
    }
}

impl Drop for AgentCtx {
    fn drop(&mut self) {
        self.shared.live.stores.fetch_sub(1, Ordering::Relaxed);
    }
}
