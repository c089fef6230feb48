//! What an agent may do. Checked in-process on every syscall (cheap), before
//! the gate is asked about actions it records.

use std::time::Duration;

use serde::{Deserialize, Serialize};
// The gate's matcher, so capabilities and gate rules agree on patterns.
use weft_gate::glob::name_matches as glob;

use crate::process::Pid;

/// An agent's capabilities, fixed at spawn.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Capabilities {
    pub tools: ToolPermissions,
    pub ipc: IpcScope,
    pub sandbox: SandboxPolicy,
    /// May append events of its own kinds to the chain.
    pub chain_append: bool,
    /// May spawn child agents.
    pub spawn: bool,
}

/// Tools by name; `*` and `?` globs. Deny wins over allow; nothing allowed
/// by default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolPermissions {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

impl ToolPermissions {
    pub fn allows(&self, tool: &str) -> bool {
        !self.deny.iter().any(|p| glob(p, tool)) && self.allow.iter().any(|p| glob(p, tool))
    }
}

/// Whom an agent may message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IpcScope {
    /// Any agent, service and topic.
    All,
    /// Only its parent (replies to requests are always allowed).
    ParentOnly,
    /// Only these agents or services, by name (globs allowed).
    Named(Vec<String>),
    /// Only publish/subscribe on these topics (globs allowed).
    Topics(Vec<String>),
    /// Nothing but replies.
    #[default]
    None,
}

/// Whether an agent gets any WASI resources at all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxPolicy {
    /// No WASI grants whatever the spawn request says: no dirs, no env.
    #[default]
    Strict,
    /// The grants in the spawn request (dirs, env) are applied.
    Granted,
}

/// Per-agent limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentLimits {
    /// Fuel for handling one message (and for `init`).
    pub fuel_per_message: u64,
    /// Wall-clock limit for handling one message, in ms.
    pub timeout_ms: u64,
    /// Largest linear memory, in bytes.
    pub max_memory_bytes: usize,
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

impl AgentLimits {
    pub fn runtime_limits(&self) -> weft_runtime::Limits {
        weft_runtime::Limits {
            fuel: self.fuel_per_message,
            timeout: Duration::from_millis(self.timeout_ms),
            max_memory_bytes: self.max_memory_bytes,
            ..weft_runtime::Limits::default()
        }
    }
}

/// What a direct send is aimed at, for the scope check.
pub struct SendTarget<'a> {
    pub pid: Pid,
    pub name: &'a str,
}

impl IpcScope {
    /// May an agent with parent `parent` send directly to `to`?
    pub fn allows_send(&self, parent: Option<Pid>, to: &SendTarget<'_>) -> bool {
        match self {
            IpcScope::All => true,
            IpcScope::ParentOnly => parent == Some(to.pid),
            IpcScope::Named(names) => names.iter().any(|n| glob(n, to.name)),
            IpcScope::Topics(_) | IpcScope::None => false,
        }
    }

    /// May it publish to or subscribe on `topic`?
    pub fn allows_topic(&self, topic: &str) -> bool {
        match self {
            IpcScope::All => true,
            IpcScope::Topics(t) => t.iter().any(|p| glob(p, topic)),
            _ => false,
        }
    }

    /// May it reach the owner of service `name`?
    pub fn allows_service(&self, name: &str) -> bool {
        match self {
            IpcScope::All => true,
            IpcScope::Named(names) => names.iter().any(|n| glob(n, name)),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*", "anything"));
        assert!(glob("calc", "calc"));
        assert!(!glob("calc", "calc2"));
        assert!(glob("c?lc*", "calculator"));
        assert!(glob("app.*.events", "app.x.events"));
        assert!(!glob("a*b", "ac"));
    }

    #[test]
    fn tool_deny_wins() {
        let t = ToolPermissions {
            allow: vec!["*".into()],
            deny: vec!["shell*".into()],
        };
        assert!(t.allows("calc"));
        assert!(!t.allows("shell-exec"));
        assert!(!ToolPermissions::default().allows("calc"));
    }

    #[test]
    fn ipc_scopes() {
        let to = SendTarget {
            pid: 7,
            name: "pong",
        };
        assert!(IpcScope::All.allows_send(None, &to));
        assert!(IpcScope::ParentOnly.allows_send(Some(7), &to));
        assert!(!IpcScope::ParentOnly.allows_send(Some(8), &to));
        assert!(IpcScope::Named(vec!["po*".into()]).allows_send(None, &to));
        assert!(!IpcScope::None.allows_send(None, &to));
        assert!(IpcScope::Topics(vec!["news.*".into()]).allows_topic("news.tech"));
        assert!(!IpcScope::Topics(vec!["news.*".into()]).allows_send(None, &to));
    }
}
