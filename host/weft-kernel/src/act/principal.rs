//! [`Principal`]: who asks for an action. Every action has exactly one, and
//! the gate judges the action as that principal.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use weft_model::plan::AgentRole;
use weft_model::Capabilities;

use crate::process::{Pid, Usage, KERNEL_PID};

/// Names no agent may take: they are principals of their own.
pub const RESERVED_NAMES: &[&str] = &["kernel", "operator"];

/// Who asks.
#[derive(Clone, Debug)]
pub enum Principal {
    /// The kernel's own bookkeeping: boot, shutdown, supervision, the facts
    /// subsystems record. Its gate rule allows everything and governance
    /// does not judge it (it would judge its own records).
    Kernel,
    /// A person at the control socket (`weaver`). Its gate rules come from
    /// `[operator]` in `weft.toml` (default: everything); governance judges
    /// it like anyone else.
    Operator,
    /// An installed app carrying out its plan. It acts only on what it
    /// owns (agents named `<app>.*`, the tools, services and cron jobs it
    /// registered) and spawns agents only within its manifest ceiling.
    App(Arc<AppPrincipal>),
    /// A running agent, limited by its capabilities.
    Agent(Arc<AgentPrincipal>),
}

/// An app as a principal.
#[derive(Debug)]
pub struct AppPrincipal {
    name: String,
    gate_name: String,
    /// The manifest's `[capabilities]`; `None`: the manifest sets none.
    pub ceiling: Option<Capabilities>,
}

impl AppPrincipal {
    /// The principal of app `name` under `ceiling`.
    pub fn new(name: &str, ceiling: Option<Capabilities>) -> Self {
        AppPrincipal {
            name: name.to_string(),
            gate_name: format!("app:{name}"),
            ceiling,
        }
    }

    /// The app's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Does the agent or service `name` belong to this app (`<app>.…`)?
    pub fn owns_name(&self, name: &str) -> bool {
        name.len() > self.name.len() + 1
            && name.starts_with(&self.name)
            && name.as_bytes()[self.name.len()] == b'.'
    }
}

/// A running agent as a principal: who it is and what it may do.
#[derive(Debug)]
pub struct AgentPrincipal {
    /// Its pid.
    pub pid: Pid,
    /// Its unique name.
    pub name: Arc<str>,
    /// Its parent, if it was spawned by another agent.
    pub parent: Option<Pid>,
    /// Its capabilities, fixed at spawn.
    pub caps: Arc<Capabilities>,
    /// Its counters (denials, messages, tool calls).
    pub usage: Arc<Usage>,
    /// Messages it may send over its life (0: unlimited).
    pub max_messages: u64,
    /// Tool calls it may make over its life (0: unlimited).
    pub max_tool_calls: u64,
    /// The principal that spawned it (`app:hello`, `operator`, an agent).
    pub owner: Arc<str>,
    /// Its manifest role; `None` for agents started outside an app (by
    /// the operator, the kernel or an agent's plain `spawn`), which the
    /// role rules do not bind.
    pub role: Option<AgentRole>,
    /// The app it belongs to: the app that spawned it, or its spawner's
    /// app (a supervisor's children are their app's too). Namespaces,
    /// secrets and environments follow it.
    pub app: Option<Arc<str>>,
}

impl AgentPrincipal {
    /// May it publish to topics and broadcast (a worker may not)?
    pub fn may_publish(&self) -> bool {
        self.role.is_none_or(AgentRole::may_publish)
    }

    /// Is it an app's supervisor?
    pub fn is_supervisor(&self) -> bool {
        self.role == Some(AgentRole::Supervisor)
    }
}

impl Principal {
    /// The app principal of `name`.
    pub fn app(name: &str, ceiling: Option<Capabilities>) -> Principal {
        Principal::App(Arc::new(AppPrincipal::new(name, ceiling)))
    }

    /// The name the gate, governance and the chain know it by: `kernel`,
    /// `operator`, `app:<name>` or the agent's name.
    pub fn gate_name(&self) -> &str {
        match self {
            Principal::Kernel => "kernel",
            Principal::Operator => "operator",
            Principal::App(a) => &a.gate_name,
            Principal::Agent(a) => &a.name,
        }
    }

    /// The pid messages from it carry (0 for everyone but agents).
    pub fn pid(&self) -> Pid {
        match self {
            Principal::Agent(a) => a.pid,
            _ => KERNEL_PID,
        }
    }

    /// The agent, if it is one.
    pub fn agent(&self) -> Option<&AgentPrincipal> {
        match self {
            Principal::Agent(a) => Some(a),
            _ => None,
        }
    }

    /// The app, if it is one.
    pub fn as_app(&self) -> Option<&AppPrincipal> {
        match self {
            Principal::App(a) => Some(a),
            _ => None,
        }
    }

    /// Count a refusal against it (agents keep a denial counter).
    pub fn count_denial(&self) {
        if let Principal::Agent(a) = self {
            a.usage.denials.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// May it send directly to the agent `name` (pid `pid`)?
    pub fn may_message(&self, pid: Pid, name: &str) -> bool {
        match self {
            Principal::Kernel | Principal::Operator => true,
            Principal::App(a) => a.owns_name(name),
            Principal::Agent(a) => a.caps.ipc.allows_send(a.parent, pid, name),
        }
    }

    /// May it own an object registered under `owner` (unregister a tool,
    /// stop an agent, remove a cron job)?
    pub fn owns(&self, owner: &str) -> bool {
        match self {
            Principal::Kernel | Principal::Operator => true,
            other => other.gate_name() == owner,
        }
    }
}

/// Is `name` one an agent may take? 1-128 of `[A-Za-z0-9._-]`, not a
/// reserved principal name.
pub fn valid_agent_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !RESERVED_NAMES.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_own_only_their_namespace() {
        let a = AppPrincipal::new("hello", None);
        assert!(a.owns_name("hello.greeter"));
        assert!(a.owns_name("hello.service.db"));
        assert!(!a.owns_name("hello"));
        assert!(!a.owns_name("hello."));
        assert!(!a.owns_name("helloworld.x"));
        assert!(!a.owns_name("other.x"));
    }

    #[test]
    fn principal_names_are_reserved() {
        assert!(!valid_agent_name("kernel"));
        assert!(!valid_agent_name("operator"));
        assert!(!valid_agent_name("app:x"));
        assert!(valid_agent_name("kernel2"));
    }
}
