//! `Shared`: the kernel's state, split by unit, reachable from the public
//! [`crate::Kernel`] handle, from actions and from every agent's syscalls.
//! Only actions (crate::act) change it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use serde::Serialize;
use serde_json::json;
use tokio::sync::Notify;
use weft_chain::ChainManager;
use weft_runtime::Runtime;
use weft_tree::TreeManager;

use crate::act::{PermitCache, Principal};
use crate::agent::Agents;
use crate::config::KernelConfig;
use crate::console::{BootLog, BootPhase, LogLevel};
use crate::error::{KernelError, KernelResult};
use crate::gate::GateStack;
use crate::ipc::{Ipc, KernelSignal};
use crate::process::Pid;
use crate::subsystem::Units;
use crate::tools::registry::ToolRegistry;
use crate::KernelState;

/// Control messages for an agent's task, separate from its inbox so they
/// get through when the inbox is full or the agent is suspended.
pub(crate) enum Control {
    Signal(KernelSignal),
    Restart,
}

pub(crate) struct Shared {
    pub config: KernelConfig,
    pub state_dir: PathBuf,
    pub state: RwLock<KernelState>,
    pub log: BootLog,
    pub runtime: Runtime,
    pub chain: Arc<ChainManager>,
    pub tree: TreeManager,
    pub gate: GateStack,
    pub environments: crate::environment::Environments,
    pub escalations: crate::escalation::Escalations,
    pub agents: Agents,
    pub ipc: Ipc,
    pub tools: ToolRegistry,
    /// Registered subsystems (set once, at boot, after `Shared` exists:
    /// their `init` needs it).
    pub units: OnceLock<Units>,
    /// Records that could not be written where no caller could be told
    /// (a crash record in a dying task): shown by `kernel status`.
    pub lost_records: AtomicU64,
    /// A stop asked for through the control API, acted on once answered.
    pub stop_requested: AtomicBool,
    pub stop: Notify,
}

impl Shared {
    pub fn kernel_state(&self) -> KernelState {
        *self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn ensure_running(&self) -> KernelResult<()> {
        match self.kernel_state() {
            KernelState::Running => Ok(()),
            s => Err(KernelError::NotRunning(s)),
        }
    }

    pub fn units(&self) -> &Units {
        static EMPTY: OnceLock<Units> = OnceLock::new();
        self.units
            .get()
            .unwrap_or_else(|| EMPTY.get_or_init(Units::empty))
    }

    /// Append to the chain. Only actions (through `ActCx`), notes and the
    /// gate call this. A failure is a kernel fault: logged loudly and
    /// returned.
    pub fn append<T: Serialize + ?Sized>(
        &self,
        source: &str,
        kind: &str,
        payload: &T,
        durable: bool,
    ) -> KernelResult<u64> {
        let r = if durable {
            self.chain.append_durable(source, kind, payload)
        } else {
            self.chain.append(source, kind, payload)
        };
        match r {
            Ok(ev) => Ok(ev.seq),
            Err(e) => {
                self.log.push(
                    BootPhase::Runtime,
                    LogLevel::Error,
                    format!("chain append {kind} failed: {e}"),
                );
                Err(e.into())
            }
        }
    }

    /// Record a fact as the kernel: the gate is asked (its permit reused
    /// per kind and source) and the note appended with `source`. Works
    /// while booting and shutting down too, unlike `act`.
    pub fn note<T: Serialize + ?Sized>(
        &self,
        source: &str,
        kind: &str,
        payload: &T,
    ) -> KernelResult<u64> {
        self.note_with(source, kind, payload, false)
    }

    /// [`Shared::note`], optionally waiting until it is on disk.
    pub fn note_with<T: Serialize + ?Sized>(
        &self,
        source: &str,
        kind: &str,
        payload: &T,
        durable: bool,
    ) -> KernelResult<u64> {
        self.gate.permit(
            &Principal::Kernel,
            kind,
            || json!({ "source": source }),
            Some(source),
            None::<&mut PermitCache>,
        )?;
        self.append(source, kind, payload, durable)
    }

    /// [`Shared::note`] where nobody can be told it failed (a dying task):
    /// the failure is logged as an error and counted, never dropped
    /// silently. The chain's failure is sticky, so every later action
    /// fails anyway.
    pub fn note_or_log<T: Serialize + ?Sized>(&self, source: &str, kind: &str, payload: &T) {
        if let Err(e) = self.note(source, kind, payload) {
            self.lost_records.fetch_add(1, Ordering::Relaxed);
            self.log.push(
                BootPhase::Runtime,
                LogLevel::Error,
                format!("could not record {kind} from {source}: {e}"),
            );
        }
    }

    pub async fn control(&self, pid: Pid, c: Control) -> KernelResult<()> {
        let tx = self
            .agents
            .controls
            .get(&pid)
            .map(|t| t.clone())
            .ok_or_else(|| KernelError::NotFound(format!("no agent with pid {pid}")))?;
        tx.send(c)
            .await
            .map_err(|_| KernelError::NotFound(format!("agent {pid} has stopped")))
    }
}
