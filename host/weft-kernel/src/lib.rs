//! The Weft kernel: the host's scheduling half, its gate and its chain.
//!
//! Agents are component instances of the `weft:kernel` agent world, each in
//! its own store with its own fuel, memory and deadline, run as tokio tasks
//! and supervised like Erlang processes. They talk only through checked
//! messages (direct, request/reply, topics, services).
//!
//! **One way to act.** Every change to kernel state — spawning, sending,
//! running a tool, registering a service, a subsystem's own actions — is an
//! [`Action`] carried out by [`Kernel::act`] as a [`Principal`]: checked
//! in-process, asked of the gate, recorded on the chain, then performed.
//! Nothing else in this API changes state or appends to the chain; the
//! chain is handed out read-only ([`chain::ChainView`]).
//!
//! **Subsystems.** IPC, tools and chain appends are built-in units; the
//! governance, cron, health and apps subsystems plug in as [`Subsystem`]s
//! registered at boot ([`Kernel::boot_with`]). See `docs/architecture.md`.

pub mod act;
pub mod agent;
pub mod capability;
pub mod chain;
pub mod components;
pub mod config;
pub mod console;
pub mod control;
pub mod environment;
pub mod error;
pub mod escalation;
mod gate;
pub mod ipc;
mod kernel;
pub mod process;
mod shared;
pub mod status;
pub mod subsystem;
pub mod suggest;
pub mod supervisor;
pub mod tools;

pub use act::{ActCx, Action, AgentPrincipal, AppPrincipal, KernelView, Note, Principal, Query};
pub use capability::{AgentLimits, Capabilities, IpcScope, SandboxPolicy, ToolPermissions};
pub use config::KernelConfig;
pub use error::{KernelError, KernelResult};
pub use ipc::{KernelMessage, KernelSignal, MessageTarget, Payload, SendOutcome};
pub use kernel::{default_state_dir, Kernel, KernelState, KernelStats};
pub use process::{Pid, ProcessInfo, ProcessState};
pub use subsystem::{
    AppClearCx, AppStepCx, BoxFuture, BuiltinCx, ClearReason, Extensions, InitCx, Subsystem,
    SubsystemError, ToolRun,
};
pub use supervisor::{Restart, RestartPolicy, Spawn, SpawnRequest, Stop};

/// The command-line parts of the kernel's own units, in the order `weaver`
/// lists them.
pub fn builtin_cli() -> Vec<control::cli::CliCommand> {
    let mut v = status::cli();
    v.push(agent::control::cli());
    v.push(agent::control::agent_cli());
    v.push(tools::control::cli());
    v.push(chain::control::cli());
    v
}
