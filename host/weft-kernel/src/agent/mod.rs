//! Agents: component instances of the `weft:kernel` agent world, each with
//! its own store (fuel, memory, deadline), run as one tokio task apiece and
//! supervised ([`crate::supervisor`]). The kernel's syscalls are in
//! [`syscalls`]; each one is an action of the unit that owns it.

pub mod bindings;
pub mod control;
pub(crate) mod no_ecc;
pub(crate) mod no_supervisor;
mod syscalls;

pub use syscalls::to_wit_error;
pub(crate) mod task;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use tokio::sync::mpsc;

use crate::act::{AgentPrincipal, PermitCache, Principal};
use crate::capability::AgentLimits;
use crate::process::{Pid, ProcessTable};
use crate::shared::{Control, Shared};
use crate::subsystem::Extensions;

/// Pre-instantiated agent component.
pub type AgentPre = bindings::AgentPre<weft_runtime::StoreData<AgentCtx>>;

/// The agent world's linker: subsystems add their host interfaces to it at
/// boot ([`crate::Subsystem::link`]).
pub type AgentLinker = wasmtime::component::Linker<weft_runtime::StoreData<AgentCtx>>;

/// Live counts, for leak checks and `kernel status`.
#[derive(Default, Debug)]
pub struct LiveCounts {
    /// Agent tasks alive.
    pub tasks: AtomicUsize,
    /// Agent stores alive.
    pub stores: AtomicUsize,
}

/// The agents' share of the kernel: the process table and what runs them.
pub(crate) struct Agents {
    pub table: ProcessTable,
    pub linker: AgentLinker,
    pub pres: Mutex<HashMap<weft_runtime::Digest, AgentPre>>,
    pub controls: DashMap<Pid, mpsc::Sender<Control>>,
    pub tasks: DashMap<Pid, tokio::task::JoinHandle<()>>,
    /// Live agents as principals, for acting on their behalf later (a
    /// cron job fires as its owner).
    pub principals: DashMap<Pid, Arc<AgentPrincipal>>,
    pub live: LiveCounts,
}

/// Per-agent host state, living in the agent's store: who it is, what it
/// may do, the kernel it talks to, and what subsystems attached.
pub struct AgentCtx {
    pub(crate) me: Principal,
    pub(crate) shared: Arc<Shared>,
    pub(crate) limits: AgentLimits,
    pub(crate) permits: PermitCache,
    /// State subsystems attached in [`crate::Subsystem::prepare`].
    pub extensions: Extensions,
    /// The message the guest is handling, while it handles one.
    pub(crate) handling: Option<Handling>,
}

/// The message an agent is handling, as its host functions see it (the
/// `ecc` unit merges its timestamp into the hybrid logical clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handling {
    /// The message id.
    pub id: u64,
    /// When it was sent, ns since the UNIX epoch.
    pub timestamp_ns: u64,
}

impl AgentCtx {
    pub(crate) fn new(
        shared: Arc<Shared>,
        me: Arc<AgentPrincipal>,
        limits: AgentLimits,
        extensions: Extensions,
    ) -> Self {
        shared.agents.live.stores.fetch_add(1, Ordering::Relaxed);
        AgentCtx {
            me: Principal::Agent(me),
            shared,
            limits,
            permits: PermitCache::new(),
            extensions,
            handling: None,
        }
    }

    /// The message being handled, if the guest is in `handle`.
    pub fn handling(&self) -> Option<Handling> {
        self.handling
    }

    /// The kernel this agent runs in (for host functions whose work
    /// outlives the call, such as an outgoing HTTP request).
    pub fn kernel(&self) -> crate::Kernel {
        crate::Kernel::from_shared(self.shared.clone())
    }

    /// The agent this store belongs to.
    pub fn principal(&self) -> &Principal {
        &self.me
    }

    /// Carry out `action` as this agent (what a subsystem's host function
    /// does): checked, gated, recorded, then performed.
    pub async fn act<A: crate::act::Action>(
        &mut self,
        action: A,
    ) -> crate::KernelResult<A::Output> {
        crate::act::act(&self.shared, &self.me, action, Some(&mut self.permits)).await
    }
}

impl Drop for AgentCtx {
    fn drop(&mut self) {
        self.shared
            .agents
            .live
            .stores
            .fetch_sub(1, Ordering::Relaxed);
    }
}
