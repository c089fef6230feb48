//! [`KernelError`]: everything the kernel's public API can refuse.

use crate::process::{Pid, ProcessState};

/// A kernel operation failed. Guests never see this type: syscalls map it
/// to the WIT `error` variant.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("illegal kernel transition {from:?} -> {to:?}")]
    IllegalKernelTransition {
        from: crate::KernelState,
        to: crate::KernelState,
    },
    #[error("kernel is {0:?}, not Running")]
    NotRunning(crate::KernelState),
    #[error("config {path}: {message}")]
    Config { path: String, message: String },
    #[error("process table full ({max} processes)")]
    ProcessLimit { max: u32 },
    #[error("no process {0}")]
    NoSuchProcess(Pid),
    #[error("no agent named `{0}`")]
    NoSuchName(String),
    #[error("an agent named `{0}` already runs")]
    NameTaken(String),
    #[error("process {pid}: illegal transition {from:?} -> {to:?}")]
    IllegalTransition {
        pid: Pid,
        from: ProcessState,
        to: ProcessState,
    },
    #[error("denied: {0}")]
    Denied(String),
    #[error("deferred for review: {0}")]
    Deferred(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("timeout: {0}")]
    Timeout(String),
    #[error("limit: {0}")]
    Limit(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("failed: {0}")]
    Failed(String),
    #[error(transparent)]
    Run(#[from] weft_runtime::RunError),
    #[error("chain: {0}")]
    Chain(#[from] weft_chain::ChainError),
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
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

pub type KernelResult<T> = Result<T, KernelError>;
