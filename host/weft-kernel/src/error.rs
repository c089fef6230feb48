//! [`KernelError`]: everything the kernel's public API can refuse.

use crate::process::{Pid, ProcessState};

/// A kernel operation failed. Guests never see this type: syscalls map it
/// to the WIT `error` variant.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// A kernel state change that the lifecycle does not allow.
    #[error("illegal kernel transition {from:?} -> {to:?}")]
    IllegalKernelTransition {
        /// The current state.
        from: crate::KernelState,
        /// The state asked for.
        to: crate::KernelState,
    },
    /// The kernel is booting or shutting down.
    #[error("kernel is {0:?}, not Running")]
    NotRunning(crate::KernelState),
    /// `weft.toml` cannot be read or is wrong.
    #[error("config {path}: {message}")]
    Config {
        /// The config file.
        path: String,
        /// What is wrong, with the key and line where known.
        message: String,
    },
    /// `kernel.max_processes` processes are alive already.
    #[error("process table full ({max} processes)")]
    ProcessLimit {
        /// The limit.
        max: u32,
    },
    /// No process with this pid.
    #[error("no process {0}")]
    NoSuchProcess(Pid),
    /// No live agent with this name.
    #[error("no agent named `{0}`")]
    NoSuchName(String),
    /// Agent names are unique.
    #[error("an agent named `{0}` already runs")]
    NameTaken(String),
    /// A process state change that the lifecycle does not allow.
    #[error("process {pid}: illegal transition {from:?} -> {to:?}")]
    IllegalTransition {
        /// The process.
        pid: Pid,
        /// Its current state.
        from: ProcessState,
        /// The state asked for.
        to: ProcessState,
    },
    /// The gate or a capability check refused the action.
    #[error("denied: {0}")]
    Denied(String),
    /// The gate deferred the action to a human.
    #[error("deferred for review: {0}")]
    Deferred(String),
    /// No such agent, service, topic, tool or other object.
    #[error("not found: {0}")]
    NotFound(String),
    /// No reply in time, or the target's inbox stayed full.
    #[error("timeout: {0}")]
    Timeout(String),
    /// A per-agent limit (messages, tool calls) is used up.
    #[error("limit: {0}")]
    Limit(String),
    /// The request makes no sense (bad JSON, empty name, wrong target, ...).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The target or the kernel failed to carry out a valid request.
    #[error("failed: {0}")]
    Failed(String),
    /// A guest run failed (fuel, deadline, trap, ...).
    #[error(transparent)]
    Run(#[from] weft_runtime::RunError),
    /// The chain refused or failed an append or read.
    #[error("chain: {0}")]
    Chain(#[from] weft_chain::ChainError),
    /// The resource tree refused a change.
    #[error("tree: {0}")]
    Tree(#[from] weft_tree::TreeError),
    /// A subsystem's own refusal or failure, with its stable kind
    /// (`already-installed`, `manifest`, `hook`, ...). `internal` marks a
    /// failure of the kernel's machinery rather than of the request.
    #[error("{message}")]
    Subsystem {
        /// A short, stable name of the failure.
        kind: &'static str,
        /// For a person.
        message: String,
        /// The kernel's own machinery failed (chain, disk, registry).
        internal: bool,
    },
    /// An I/O failure, with what the kernel was doing.
    #[error("{context}: {source}")]
    Io {
        /// What failed, e.g. `cannot read <path>`.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The result of a kernel operation.
pub type KernelResult<T> = Result<T, KernelError>;
