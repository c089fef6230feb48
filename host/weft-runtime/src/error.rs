//! Typed failures of a guest run, and how raw wasmtime errors map onto them.

use std::time::Duration;

use wasmtime::{Trap, WasmBacktrace};

use crate::cache::CacheError;

/// Why a guest call did not produce a result. Every variant leaves the
/// runtime healthy: the failed instance is dropped and the next call gets a
/// fresh one.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RunError {
    /// The guest used its whole fuel budget.
    #[error("out of fuel: used the whole budget of {budget} units{}", guest_suffix(.guest))]
    OutOfFuel {
        /// The budget, in fuel units.
        budget: u64,
        /// What the guest left behind.
        guest: GuestDetail,
    },

    /// The call ran past its wall-clock deadline.
    #[error("timeout: still running after {} ms{}", .limit.as_millis(), guest_suffix(.guest))]
    Timeout {
        /// The deadline.
        limit: Duration,
        /// What the guest left behind.
        guest: GuestDetail,
    },

    /// The guest tried to grow a memory or table past its limit.
    #[error("memory limit: tried to grow a {what} to {requested} (limit {limit}){}", guest_suffix(.guest))]
    MemoryLimit {
        /// `memory` (bytes) or `table` (elements).
        what: &'static str,
        /// The size it asked for.
        requested: usize,
        /// The most it may have.
        limit: usize,
        /// What the guest left behind.
        guest: GuestDetail,
    },

    /// The guest overflowed its wasm stack.
    #[error("stack overflow: wasm call stack exceeded {limit} bytes{}", guest_suffix(.guest))]
    StackOverflow {
        /// The stack size, in bytes.
        limit: usize,
        /// What the guest left behind.
        guest: GuestDetail,
    },

    /// Any other trap: `unreachable` (a Rust panic), an out-of-bounds
    /// access, a failed host call.
    #[error("trap: {message}{}", guest_suffix(.guest))]
    Trap {
        /// The trap's description.
        message: String,
        /// What the guest left behind.
        guest: GuestDetail,
    },

    /// The bytes are not a component, or not one of the expected world.
    #[error("invalid component: {reason}")]
    InvalidComponent {
        /// What is wrong with it.
        reason: String,
    },

    /// The guest wrote more than [`crate::Limits::max_output_bytes`] to a stream.
    #[error("output limit: guest wrote more than {limit} bytes to {stream}")]
    OutputLimit {
        /// `stdout` or `stderr`.
        stream: &'static str,
        /// The limit, in bytes.
        limit: usize,
    },

    /// The compile cache directory is not safe to load native code from
    /// (or cannot be created); the message says why and how to fix it.
    #[error(transparent)]
    Cache(#[from] CacheError),

    /// The host side failed (I/O on a granted directory, ...).
    #[error("host error: {0}")]
    Host(String),
}

impl RunError {
    /// The short, stable name of the kind, as printed by `weaver` and in
    /// JSON reports: `out of fuel`, `timeout`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            RunError::OutOfFuel { .. } => "out of fuel",
            RunError::Timeout { .. } => "timeout",
            RunError::MemoryLimit { .. } => "memory limit",
            RunError::StackOverflow { .. } => "stack overflow",
            RunError::Trap { .. } => "trap",
            RunError::InvalidComponent { .. } => "invalid component",
            RunError::OutputLimit { .. } => "output limit",
            RunError::Cache(_) => "cache",
            RunError::Host(_) => "host error",
        }
    }

    pub(crate) fn invalid(reason: impl std::fmt::Display) -> Self {
        RunError::InvalidComponent {
            reason: format!("{reason:#}"),
        }
    }
}

/// What a call consumed, reported whether it succeeded or not (the chain
/// records fuel for failed tool runs too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Wall-clock time of the call (serialized as `wall_us`).
    #[serde(
        rename = "wall_us",
        serialize_with = "ser_micros",
        deserialize_with = "de_micros"
    )]
    pub wall: Duration,
    /// Largest linear memory the guest grew to, in bytes.
    pub peak_memory: usize,
}

fn ser_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros().try_into().unwrap_or(u64::MAX))
}

fn de_micros<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    <u64 as serde::Deserialize>::deserialize(d).map(Duration::from_micros)
}

/// A failed run: the [`RunError`] plus what the guest consumed before it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error}")]
pub struct Failure {
    /// Why the run failed.
    pub error: RunError,
    /// What it consumed before it failed.
    pub usage: Usage,
}

impl Failure {
    /// A failure before the guest ran at all.
    pub fn before_start(error: RunError) -> Self {
        Failure {
            error,
            usage: Usage::default(),
        }
    }
}

impl std::ops::Deref for Failure {
    type Target = RunError;
    fn deref(&self) -> &RunError {
        &self.error
    }
}

/// What the guest left behind when it failed: the wasm backtrace and the
/// tail of its stderr (a Rust panic message lands there).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestDetail {
    /// The wasm backtrace at the trap, when there is one.
    pub backtrace: Option<String>,
    /// The end of what the guest wrote to stderr, if it wrote anything.
    pub stderr_tail: Option<String>,
}

fn guest_suffix(g: &GuestDetail) -> String {
    match &g.stderr_tail {
        Some(s) if !s.is_empty() => format!(" (guest said: {})", s.replace('\n', " | ")),
        _ => String::new(),
    }
}

/// Raised by our epoch callback when the wall-clock deadline passes.
#[derive(Debug, thiserror::Error)]
#[error("deadline of {0:?} passed")]
pub(crate) struct DeadlineHit(pub Duration);

/// Raised by our resource limiter when a guest grows past its limit.
#[derive(Debug, thiserror::Error)]
#[error("{what} growth to {requested} exceeds limit {limit}")]
pub(crate) struct GrowthDenied {
    pub what: &'static str,
    pub requested: usize,
    pub limit: usize,
}

/// Raised by our bounded stdout/stderr when a write would exceed the cap.
#[derive(Debug, thiserror::Error)]
#[error("{stream} exceeded {limit} bytes")]
pub(crate) struct OutputOverflow {
    pub stream: &'static str,
    pub limit: usize,
}

/// What the classifier needs to know about the run that failed.
pub(crate) struct FailureContext {
    pub fuel_budget: u64,
    pub timeout: Duration,
    pub max_wasm_stack: usize,
    /// Set when the limiter refused a growth: a Rust guest then aborts with
    /// `unreachable`, which we still report as a memory limit.
    pub denied_growth: Option<(&'static str, usize, usize)>,
    /// Set when a bounded output overflowed: the guest may have trapped on
    /// the failed write or panicked afterwards.
    pub overflowed: Option<(&'static str, usize)>,
    pub stderr_tail: Option<String>,
}

/// Map a raw wasmtime error from a guest call onto a [`RunError`].
pub(crate) fn classify(err: wasmtime::Error, cx: FailureContext) -> RunError {
    let guest = GuestDetail {
        backtrace: err.downcast_ref::<WasmBacktrace>().map(|bt| bt.to_string()),
        stderr_tail: cx.stderr_tail.clone(),
    };
    if let Some((stream, limit)) = cx.overflowed {
        return RunError::OutputLimit { stream, limit };
    }
    if let Some(o) = err.downcast_ref::<OutputOverflow>() {
        return RunError::OutputLimit {
            stream: o.stream,
            limit: o.limit,
        };
    }
    if let Some(d) = err.downcast_ref::<DeadlineHit>() {
        return RunError::Timeout { limit: d.0, guest };
    }
    if let Some(g) = err.downcast_ref::<GrowthDenied>() {
        return RunError::MemoryLimit {
            what: g.what,
            requested: g.requested,
            limit: g.limit,
            guest,
        };
    }
    if let Some((what, requested, limit)) = cx.denied_growth {
        return RunError::MemoryLimit {
            what,
            requested,
            limit,
            guest,
        };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => RunError::OutOfFuel {
            budget: cx.fuel_budget,
            guest,
        },
        Some(Trap::Interrupt) => RunError::Timeout {
            limit: cx.timeout,
            guest,
        },
        Some(Trap::StackOverflow) => RunError::StackOverflow {
            limit: cx.max_wasm_stack,
            guest,
        },
        Some(t) => RunError::Trap {
            message: t.to_string(),
            guest,
        },
        None => RunError::Trap {
            message: format!("{err:#}"),
            guest,
        },
    }
}
