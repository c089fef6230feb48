//! Agent-to-agent routing: one bounded inbox per agent. A full inbox makes
//! the sender wait (back-pressure) up to the send timeout; it never grows.

use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::mpsc;

use crate::error::{KernelError, KernelResult};
use crate::ipc::Envelope;
use crate::process::Pid;

/// The inboxes of all live agents.
pub(crate) struct A2ARouter {
    inboxes: DashMap<Pid, mpsc::Sender<Envelope>>,
    capacity: usize,
}

impl A2ARouter {
    pub fn new(capacity: usize) -> Self {
        A2ARouter {
            inboxes: DashMap::new(),
            capacity,
        }
    }

    /// Create `pid`'s inbox and return its receiving end.
    pub fn register(&self, pid: Pid) -> mpsc::Receiver<Envelope> {
        let (tx, rx) = mpsc::channel(self.capacity);
        self.inboxes.insert(pid, tx);
        rx
    }

    pub fn unregister(&self, pid: Pid) {
        self.inboxes.remove(&pid);
    }

    fn sender(&self, pid: Pid) -> KernelResult<mpsc::Sender<Envelope>> {
        self.inboxes
            .get(&pid)
            .map(|s| s.clone())
            .ok_or_else(|| KernelError::NotFound(format!("no agent with pid {pid}")))
    }

    /// Deliver, waiting while the inbox is full, at most `timeout`.
    pub async fn deliver(&self, pid: Pid, env: Envelope, timeout: Duration) -> KernelResult<()> {
        let tx = self.sender(pid)?;
        // Fast path: no timer when there is room.
        let env = match tx.try_send(env) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err(KernelError::NotFound(format!("agent {pid} has stopped")))
            }
            Err(mpsc::error::TrySendError::Full(env)) => env,
        };
        match tx.send_timeout(env, timeout).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => Err(KernelError::Timeout(format!(
                "inbox of agent {pid} stayed full for {} ms",
                timeout.as_millis()
            ))),
            Err(mpsc::error::SendTimeoutError::Closed(_)) => {
                Err(KernelError::NotFound(format!("agent {pid} has stopped")))
            }
        }
    }

    /// Deliver only if there is room now (topics and broadcasts: a slow
    /// subscriber misses messages rather than stalling the publisher).
    pub fn try_deliver(&self, pid: Pid, env: Envelope) -> bool {
        match self.inboxes.get(&pid) {
            Some(tx) => tx.try_send(env).is_ok(),
            None => false,
        }
    }

    pub fn pids(&self) -> Vec<Pid> {
        self.inboxes.iter().map(|e| *e.key()).collect()
    }
}
