//! Plan records to the kernel's and runtime's own types, for the install
//! step that spawns agents and registers tools.

use std::path::Path;
use std::time::Duration;

use weft_kernel::{
    AgentLimits, Capabilities, IpcScope, RestartPolicy, SandboxPolicy, ToolPermissions,
};
use weft_runtime::{DirGrant, Grants, Limits};

use crate::checker::types as w;

pub fn capabilities(c: &w::Capabilities) -> Capabilities {
    Capabilities {
        tools: ToolPermissions {
            allow: c.tools.allow.clone(),
            deny: c.tools.deny.clone(),
        },
        ipc: match &c.ipc {
            w::IpcScope::All => IpcScope::All,
            w::IpcScope::ParentOnly => IpcScope::ParentOnly,
            w::IpcScope::None => IpcScope::None,
            w::IpcScope::Named(n) => IpcScope::Named(n.clone()),
            w::IpcScope::Topics(t) => IpcScope::Topics(t.clone()),
        },
        sandbox: match c.sandbox {
            w::SandboxPolicy::Strict => SandboxPolicy::Strict,
            w::SandboxPolicy::Granted => SandboxPolicy::Granted,
        },
        chain_append: c.chain_append,
        spawn: c.spawn,
    }
}

pub fn agent_limits(l: &w::AgentLimits) -> AgentLimits {
    AgentLimits {
        fuel_per_message: l.fuel_per_message,
        timeout_ms: l.timeout_ms,
        max_memory_bytes: usize::try_from(l.max_memory_bytes).unwrap_or(usize::MAX),
        max_messages: l.max_messages,
        max_tool_calls: l.max_tool_calls,
    }
}

pub fn restart(r: &w::RestartPolicy) -> RestartPolicy {
    match r {
        w::RestartPolicy::Never => RestartPolicy::Never,
        w::RestartPolicy::Always => RestartPolicy::Always,
        w::RestartPolicy::OnFailure(o) => RestartPolicy::OnFailure {
            max_retries: o.max_retries,
            backoff: Duration::from_millis(o.backoff_ms),
        },
    }
}

/// An agent's `config`, which the checker produced as a JSON object.
pub fn config(a: &w::AgentSpec) -> serde_json::Value {
    serde_json::from_str(&a.config).unwrap_or_else(|_| serde_json::json!({}))
}

/// A tool's runtime limits: the manifest's values over `base`.
pub fn tool_limits(l: &w::ToolLimits, base: &Limits) -> Limits {
    Limits {
        fuel: l.fuel.unwrap_or(base.fuel),
        timeout: l.timeout_ms.map_or(base.timeout, Duration::from_millis),
        max_memory_bytes: l.max_memory_bytes.map_or(base.max_memory_bytes, |m| {
            usize::try_from(m).unwrap_or(usize::MAX)
        }),
        ..base.clone()
    }
}

/// A tool's WASI grants, host dirs resolved under the app's `data_dir`
/// (the checker has already refused absolute paths and `..`).
pub fn tool_grants(t: &w::ToolSpec, data_dir: &Path) -> Grants {
    Grants {
        dirs: t
            .dirs
            .iter()
            .map(|d| DirGrant {
                host: data_dir.join(&d.host),
                guest: d.guest.clone(),
                read_only: d.read_only,
            })
            .collect(),
        env: t
            .env
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect(),
        ..Grants::default()
    }
}
