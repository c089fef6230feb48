//! What an agent may do: the model shared with guests ([`weft_model::caps`]),
//! plus the conversion of its limits into the runtime's.

use std::time::Duration;

pub use weft_model::{AgentLimits, Capabilities, IpcScope, SandboxPolicy, ToolPermissions};

/// The runtime limits one message (or `init`) of an agent runs with.
pub fn runtime_limits(l: &AgentLimits) -> weft_runtime::Limits {
    weft_runtime::Limits {
        fuel: l.fuel_per_message,
        timeout: Duration::from_millis(l.timeout_ms),
        max_memory_bytes: usize::try_from(l.max_memory_bytes).unwrap_or(usize::MAX),
        ..weft_runtime::Limits::default()
    }
}
