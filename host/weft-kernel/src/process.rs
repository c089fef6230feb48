//! The process table: every live agent, its state and its usage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use serde::Serialize;

use weft_model::plan::{AgentPriority, AgentRole};

use crate::capability::{AgentLimits, Capabilities};
use crate::error::{KernelError, KernelResult};

/// A process id. 0 is the kernel itself.
pub type Pid = u64;

/// The kernel's own pid, used as the sender of messages from outside.
pub const KERNEL_PID: Pid = 0;

/// Where a process is in its life; [`ProcessState::can_become`] lists the legal moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ProcessState {
    /// Spawned or restarting: instantiating and running `init`.
    Starting,
    /// Handling messages.
    Running,
    /// Alive, but its messages wait until it is resumed.
    Suspended,
    /// Being stopped.
    Stopping,
    /// Gone; a row kept only for a process that gave up after crashing.
    Stopped,
}

impl ProcessState {
    /// The legal transitions; anything else is refused.
    pub fn can_become(self, to: ProcessState) -> bool {
        use ProcessState::*;
        matches!(
            (self, to),
            (Starting, Running)
                | (Starting, Stopping)
                | (Starting, Stopped)
                | (Running, Suspended)
                | (Running, Stopping)
                | (Running, Starting) // restart after a crash
                | (Suspended, Running)
                | (Suspended, Starting)
                | (Suspended, Stopping)
                | (Stopping, Stopped)
        )
    }
}

/// Counters updated by the agent's task and its syscalls without locks.
#[derive(Debug, Default)]
pub struct Usage {
    /// Messages the agent sent.
    pub messages_sent: AtomicU64,
    /// Messages it took from its inbox.
    pub messages_received: AtomicU64,
    /// Tools it invoked.
    pub tool_calls: AtomicU64,
    /// Fuel its calls used.
    pub fuel_consumed: AtomicU64,
    /// Wall time inside its calls, in nanoseconds.
    pub wall_ns: AtomicU64,
    /// Syscalls refused by its capabilities or the gate.
    pub denials: AtomicU64,
    /// Times the supervisor restarted it.
    pub restarts: AtomicU64,
    /// Messages its `handle` answered with an error.
    pub handler_errors: AtomicU64,
    /// True while the guest is inside a call; `stop` then cuts it off
    /// instead of waiting for the call to end.
    pub in_call: std::sync::atomic::AtomicBool,
}

/// A copy of [`Usage`] for reports.
#[derive(Clone, Debug, Default, Serialize)]
pub struct UsageSnapshot {
    /// See [`Usage::messages_sent`].
    pub messages_sent: u64,
    /// See [`Usage::messages_received`].
    pub messages_received: u64,
    /// See [`Usage::tool_calls`].
    pub tool_calls: u64,
    /// See [`Usage::fuel_consumed`].
    pub fuel_consumed: u64,
    /// [`Usage::wall_ns`] in milliseconds.
    pub wall_ms: u64,
    /// See [`Usage::denials`].
    pub denials: u64,
    /// See [`Usage::restarts`].
    pub restarts: u64,
    /// See [`Usage::handler_errors`].
    pub handler_errors: u64,
}

impl Usage {
    /// The counters now.
    pub fn snapshot(&self) -> UsageSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        UsageSnapshot {
            messages_sent: l(&self.messages_sent),
            messages_received: l(&self.messages_received),
            tool_calls: l(&self.tool_calls),
            fuel_consumed: l(&self.fuel_consumed),
            wall_ms: l(&self.wall_ns) / 1_000_000,
            denials: l(&self.denials),
            restarts: l(&self.restarts),
            handler_errors: l(&self.handler_errors),
        }
    }
}

/// One row of the process table.
#[derive(Clone, Debug)]
pub struct ProcessEntry {
    /// Its pid.
    pub pid: Pid,
    /// Its unique name.
    pub name: Arc<str>,
    /// The agent that spawned it, if one did.
    pub parent: Option<Pid>,
    /// Agents it spawned that are still in the table.
    pub children: Vec<Pid>,
    /// Its state.
    pub state: ProcessState,
    /// What it may do, fixed at spawn.
    pub capabilities: Arc<Capabilities>,
    /// Its live counters.
    pub usage: Arc<Usage>,
    /// BLAKE3 of the component the agent runs.
    pub component: String,
    /// When it was spawned, nanoseconds since the UNIX epoch.
    pub started_ns: u64,
    /// Why the process last failed, with the error kind.
    pub last_failure: Option<String>,
    /// The principal that spawned it (`operator`, `app:hello`, an agent).
    pub owner: Arc<str>,
    /// Its manifest role; `None` for agents started outside an app.
    pub role: Option<AgentRole>,
    /// Its scheduling share.
    pub priority: AgentPriority,
    /// Where it came from on the chain (`app:hello@1.0.0`, `agent:hello.boss`).
    pub lineage: Option<Arc<str>>,
    /// The limits each of its messages runs under.
    pub limits: Arc<AgentLimits>,
}

/// What `inspect` and `ps` show.
#[derive(Clone, Debug, Serialize)]
pub struct ProcessInfo {
    /// See [`ProcessEntry::pid`].
    pub pid: Pid,
    /// See [`ProcessEntry::name`].
    pub name: String,
    /// See [`ProcessEntry::parent`].
    pub parent: Option<Pid>,
    /// See [`ProcessEntry::children`].
    pub children: Vec<Pid>,
    /// See [`ProcessEntry::state`].
    pub state: ProcessState,
    /// See [`ProcessEntry::component`].
    pub component: String,
    /// See [`ProcessEntry::started_ns`].
    pub started_ns: u64,
    /// See [`ProcessEntry::last_failure`].
    pub last_failure: Option<String>,
    /// The principal that spawned it.
    pub owner: String,
    /// See [`ProcessEntry::role`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<AgentRole>,
    /// See [`ProcessEntry::priority`].
    pub priority: AgentPriority,
    /// See [`ProcessEntry::lineage`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lineage: Option<String>,
    /// See [`ProcessEntry::limits`].
    pub limits: AgentLimits,
    /// Its counters when the row was read.
    pub usage: UsageSnapshot,
}

impl From<&ProcessEntry> for ProcessInfo {
    fn from(e: &ProcessEntry) -> Self {
        ProcessInfo {
            pid: e.pid,
            name: e.name.to_string(),
            parent: e.parent,
            children: e.children.clone(),
            state: e.state,
            component: e.component.clone(),
            started_ns: e.started_ns,
            last_failure: e.last_failure.clone(),
            owner: e.owner.to_string(),
            role: e.role,
            priority: e.priority,
            lineage: e.lineage.as_deref().map(str::to_string),
            limits: (*e.limits).clone(),
            usage: e.usage.snapshot(),
        }
    }
}

/// PID allocation and the table of live processes.
pub struct ProcessTable {
    entries: DashMap<Pid, ProcessEntry>,
    names: DashMap<Arc<str>, Pid>,
    next: AtomicU64,
    max: u32,
}

impl ProcessTable {
    /// An empty table that holds at most `max` processes.
    pub fn new(max: u32) -> Self {
        ProcessTable {
            entries: DashMap::new(),
            names: DashMap::new(),
            next: AtomicU64::new(1),
            max,
        }
    }

    /// Reserve a pid and a unique name for a new process in `Starting`.
    pub fn insert(&self, mut entry: ProcessEntry) -> KernelResult<Pid> {
        if self.entries.len() >= self.max as usize {
            return Err(KernelError::ProcessLimit { max: self.max });
        }
        let pid = self.next.fetch_add(1, Ordering::Relaxed);
        match self.names.entry(entry.name.clone()) {
            dashmap::Entry::Occupied(_) => {
                return Err(KernelError::NameTaken(entry.name.to_string()))
            }
            dashmap::Entry::Vacant(v) => {
                v.insert(pid);
            }
        }
        entry.pid = pid;
        entry.state = ProcessState::Starting;
        if let Some(parent) = entry.parent {
            if let Some(mut p) = self.entries.get_mut(&parent) {
                p.children.push(pid);
            }
        }
        self.entries.insert(pid, entry);
        Ok(pid)
    }

    /// A copy of `pid`'s row.
    pub fn get(&self, pid: Pid) -> Option<ProcessEntry> {
        self.entries.get(&pid).map(|e| e.clone())
    }

    /// `pid`'s row as [`ProcessInfo`].
    pub fn info(&self, pid: Pid) -> Option<ProcessInfo> {
        self.entries.get(&pid).map(|e| ProcessInfo::from(&*e))
    }

    /// The pid of the live process called `name`.
    pub fn pid_of(&self, name: &str) -> Option<Pid> {
        self.names.get(name).map(|p| *p)
    }

    /// The names of the live processes.
    pub fn names(&self) -> Vec<Arc<str>> {
        self.names.iter().map(|e| e.key().clone()).collect()
    }

    /// The name of `pid`.
    pub fn name_of(&self, pid: Pid) -> Option<Arc<str>> {
        self.entries.get(&pid).map(|e| e.name.clone())
    }

    /// The state of `pid`.
    pub fn state(&self, pid: Pid) -> Option<ProcessState> {
        self.entries.get(&pid).map(|e| e.state)
    }

    /// Move `pid` to `to` if the transition is legal.
    pub fn set_state(&self, pid: Pid, to: ProcessState) -> KernelResult<ProcessState> {
        let mut e = self
            .entries
            .get_mut(&pid)
            .ok_or(KernelError::NoSuchProcess(pid))?;
        let from = e.state;
        if from == to {
            return Ok(from);
        }
        if !from.can_become(to) {
            return Err(KernelError::IllegalTransition { pid, from, to });
        }
        e.state = to;
        Ok(from)
    }

    /// Records why `pid` last failed.
    pub fn set_failure(&self, pid: Pid, why: String) {
        if let Some(mut e) = self.entries.get_mut(&pid) {
            e.last_failure = Some(why);
        }
    }

    /// Keep a failed process's row for inspection but free its name.
    pub fn retire(&self, pid: Pid) {
        if let Some(e) = self.entries.get(&pid) {
            self.names.remove_if(&e.name, |_, p| *p == pid);
        }
    }

    /// Drop a stopped process from the table, freeing its name.
    pub fn remove(&self, pid: Pid) -> Option<ProcessEntry> {
        let (_, e) = self.entries.remove(&pid)?;
        self.names.remove_if(&e.name, |_, p| *p == pid);
        if let Some(parent) = e.parent {
            if let Some(mut p) = self.entries.get_mut(&parent) {
                p.children.retain(|c| *c != pid);
            }
        }
        Some(e)
    }

    /// Every row, by pid.
    pub fn list(&self) -> Vec<ProcessInfo> {
        let mut v: Vec<ProcessInfo> = self
            .entries
            .iter()
            .map(|e| ProcessInfo::from(&*e))
            .collect();
        v.sort_by_key(|p| p.pid);
        v
    }

    /// Rows in the table, retired ones included.
    pub fn count(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, parent: Option<Pid>) -> ProcessEntry {
        ProcessEntry {
            pid: 0,
            name: name.into(),
            parent,
            children: vec![],
            state: ProcessState::Starting,
            capabilities: Arc::default(),
            usage: Arc::default(),
            component: String::new(),
            started_ns: 0,
            last_failure: None,
            owner: "kernel".into(),
            role: None,
            priority: AgentPriority::Normal,
            lineage: None,
            limits: Arc::default(),
        }
    }

    #[test]
    fn limits_names_and_transitions() {
        let t = ProcessTable::new(2);
        let a = t.insert(entry("a", None)).unwrap();
        assert!(matches!(
            t.insert(entry("a", None)),
            Err(KernelError::NameTaken(_))
        ));
        let b = t.insert(entry("b", Some(a))).unwrap();
        assert!(matches!(
            t.insert(entry("c", None)),
            Err(KernelError::ProcessLimit { max: 2 })
        ));
        assert_eq!(t.get(a).unwrap().children, vec![b]);
        assert!(t.set_state(a, ProcessState::Suspended).is_err());
        t.set_state(a, ProcessState::Running).unwrap();
        t.set_state(a, ProcessState::Suspended).unwrap();
        assert!(t.set_state(a, ProcessState::Stopped).is_err());
        t.set_state(a, ProcessState::Stopping).unwrap();
        t.set_state(a, ProcessState::Stopped).unwrap();
        t.remove(b);
        assert!(t.get(a).unwrap().children.is_empty());
        assert_eq!(t.pid_of("b"), None);
    }
}
