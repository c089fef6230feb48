//! Default per-agent limits, shared by the kernel (which applies them) and
//! the `apps` component (which fills a partial `limits` table with them).

use serde::{Deserialize, Serialize};

/// Per-agent limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentLimits {
    /// Fuel for handling one message (and for `init`).
    pub fuel_per_message: u64,
    /// Wall-clock limit for handling one message, in ms.
    pub timeout_ms: u64,
    /// Largest linear memory, in bytes.
    pub max_memory_bytes: u64,
    /// Messages the agent may send over its lifetime (0 = unlimited).
    pub max_messages: u64,
    /// Tool calls over its lifetime (0 = unlimited).
    pub max_tool_calls: u64,
}

impl Default for AgentLimits {
    fn default() -> Self {
        AgentLimits {
            fuel_per_message: 100_000_000,
            timeout_ms: 5_000,
            max_memory_bytes: 64 << 20,
            max_messages: 0,
            max_tool_calls: 0,
        }
    }
}
