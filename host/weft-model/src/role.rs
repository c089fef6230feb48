//! An agent's `role` and `priority` in `weftapp.toml`: what the role lets
//! it do is enforced by the kernel (a `supervisor` starts agents of its
//! app, a `worker` may not publish or broadcast, `system` is reserved);
//! the priority is its share of a core under contention.

use serde::{Deserialize, Serialize};

/// An agent's `role`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentRole {
    /// The default, least privilege: it may not publish to topics or
    /// broadcast, nor start agents.
    #[default]
    Worker,
    /// Directs workers: may publish and broadcast (within its `ipc`).
    Coordinator,
    /// Starts, stops and restarts agents of its own app
    /// (`weft:kernel/supervisor`); may publish and broadcast.
    Supervisor,
    /// Reserved for the kernel's own components: refused in manifests.
    System,
}

/// An agent's `priority`: its share of a core when agents contend for
/// one. The kernel scales the fuel an agent runs between yields to the
/// scheduler by [`AgentPriority::slice_quarters`], so under contention a
/// `high` agent runs 4x the guest code of a `normal` one and 16x a `low`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentPriority {
    /// A quarter of `normal`'s share.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Four times `normal`'s share.
    High,
}

impl AgentPriority {
    /// The fuel slice between scheduler yields, in quarters of the
    /// kernel's base slice (`normal` is 4/4).
    pub fn slice_quarters(self) -> u64 {
        match self {
            AgentPriority::Low => 1,
            AgentPriority::Normal => 4,
            AgentPriority::High => 16,
        }
    }

    /// As the manifest spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentPriority::Low => "low",
            AgentPriority::Normal => "normal",
            AgentPriority::High => "high",
        }
    }
}

impl AgentRole {
    /// As the manifest spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentRole::Worker => "worker",
            AgentRole::Coordinator => "coordinator",
            AgentRole::Supervisor => "supervisor",
            AgentRole::System => "system",
        }
    }
}

impl AgentRole {
    /// May an agent of this role publish to topics and broadcast?
    pub fn may_publish(self) -> bool {
        !matches!(self, AgentRole::Worker)
    }
}
