//! The Weft kernel: the host's scheduling half.
//!
//! Agents are component instances of the `weft:kernel` agent world, each in
//! its own store with its own fuel, memory and deadline, run as tokio tasks
//! and supervised like Erlang processes. They talk only through checked
//! messages (direct, request/reply, topics, services); every syscall is
//! checked against the agent's [`Capabilities`], and every recorded action
//! passes the gate and lands on the chain.

pub mod a2a;
pub mod agent;
pub mod capability;
pub mod config;
pub mod console;
pub mod cron;
pub mod error;
mod gate;
pub mod ipc;
mod kernel;
pub mod process;
pub mod service;
mod shared;
pub mod supervisor;
pub mod tools;
pub mod topic;

pub use capability::{AgentLimits, Capabilities, IpcScope, SandboxPolicy, ToolPermissions};
pub use config::{KernelConfig, SubsystemsSection};
pub use error::{KernelError, KernelResult};
pub use ipc::{KernelMessage, KernelSignal, MessageTarget, Payload};
pub use kernel::{default_state_dir, Kernel, KernelState, KernelStats};
pub use process::{Pid, ProcessInfo, ProcessState};
pub use shared::SendOutcome;
pub use supervisor::{RestartPolicy, SpawnRequest};
