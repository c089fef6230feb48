//! The `cluster` kernel unit.
//!
//! * **Off by default.** Without `[cluster]` (or `weaver run --cluster`) it
//!   does nothing and no etcd is needed.
//! * **Membership.** At start the node writes its record (Joining) and an
//!   `alive/<node>` key bound to a lease, opens its mesh listener, then turns
//!   Active; a task keeps the lease alive. On a clean shutdown it writes
//!   Leaving and revokes the lease. A node whose lease expires reads as
//!   Failed to everyone else.
//! * **Trust.** The trust store lives in etcd; only the operator changes it
//!   (`weaver cluster trust add/rm`, gated actions recorded on the chain).
//!   Every node mirrors it and admits at the mesh handshake only keys in it.
//! * **Visible.** `/network/peers/<node>` in the resource tree follows the
//!   cluster (a watch on etcd plus a periodic refresh); each change is a
//!   tree event on the chain. Mesh refusals and classical sessions are
//!   recorded (`cluster.mesh.*`).

pub mod actions;
pub mod control;
mod node;

use std::any::Any;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};
use weft_kernel::control::{ControlCx, ControlReply};
use weft_kernel::{BoxFuture, InitCx, Kernel, Subsystem, SubsystemError};

use crate::model::ClusterSection;
pub use node::Node;

/// Settings from `weaver run --cluster URLS --node NAME --mesh ADDR`, which
/// override `[cluster]`. Set once per process, before boot (units are
/// built by a plain `fn()`, so the flags cannot be passed in).
static CLI: OnceLock<CliFlags> = OnceLock::new();

/// The cluster flags of `weaver run`.
#[derive(Clone, Debug, Default)]
pub struct CliFlags {
    /// `--cluster`: comma-separated etcd endpoints.
    pub endpoints: Option<String>,
    /// `--node`.
    pub node: Option<String>,
    /// `--mesh`.
    pub mesh: Option<String>,
}

/// Give this process's cluster flags (call before booting the kernel).
pub fn set_cli_flags(flags: CliFlags) {
    let _already_set = CLI.set(flags);
}

fn apply_flags(section: &mut ClusterSection, flags: &CliFlags) {
    if let Some(e) = &flags.endpoints {
        section.endpoints = e
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
    if let Some(n) = &flags.node {
        section.node = n.clone();
    }
    if let Some(m) = &flags.mesh {
        section.mesh = m.clone();
    }
}

/// The cluster unit.
#[derive(Default)]
pub struct ClusterUnit {
    inner: Arc<Inner>,
}

impl ClusterUnit {
    /// The unit (configured at boot from `[cluster]` and the flags).
    pub fn new() -> Self {
        Self::default()
    }

    /// This node, once it has joined.
    pub fn node(&self) -> Option<&Arc<Node>> {
        self.inner.node.get()
    }
}

#[derive(Default)]
pub(crate) struct Inner {
    section: OnceLock<ClusterSection>,
    node: OnceLock<Arc<Node>>,
    problem: Mutex<Option<String>>,
}

impl Inner {
    pub(crate) fn node(&self) -> Result<&Arc<Node>, crate::ClusterError> {
        self.node.get().ok_or(crate::ClusterError::NotClustered)
    }
}

impl Subsystem for ClusterUnit {
    fn name(&self) -> &'static str {
        "cluster"
    }

    fn init(&self, cx: &InitCx<'_>) -> Result<(), SubsystemError> {
        let mut section: ClusterSection = cx
            .section()
            .map_err(|e| SubsystemError::new("cluster", e))?;
        if let Some(flags) = CLI.get() {
            apply_flags(&mut section, flags);
        }
        section
            .validate()
            .map_err(|e| SubsystemError::new("cluster", e))?;
        let _ = self.inner.section.set(section);
        Ok(())
    }

    fn start<'a>(&'a self, kernel: &'a Kernel) -> BoxFuture<'a, Result<(), SubsystemError>> {
        Box::pin(async move {
            let section = self.inner.section.get().cloned().unwrap_or_default();
            if !section.enabled() {
                return Ok(());
            }
            let node = Node::join(kernel, section)
                .await
                .map_err(|e| SubsystemError::new("cluster", e))?;
            let _ = self.inner.node.set(node);
            Ok(())
        })
    }

    fn shutdown<'a>(&'a self, kernel: &'a Kernel) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(node) = self.inner.node.get() {
                if let Err(e) = node.leave(kernel).await {
                    *self.inner.problem.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(e.to_string());
                }
            }
        })
    }

    fn stop(&self) {
        if let Some(node) = self.inner.node.get() {
            node.abort_tasks();
        }
    }

    fn actions(&self) -> &'static [&'static str] {
        actions::ACTIONS
    }

    fn control_ops(&self) -> &'static [&'static str] {
        control::OPS
    }

    fn control<'a>(&'a self, cx: ControlCx<'a>) -> BoxFuture<'a, ControlReply> {
        Box::pin(control::serve(self.inner.clone(), cx))
    }

    fn status(&self) -> Value {
        if let Some(p) = self
            .inner
            .problem
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return json!(format!("PROBLEM: {p}"));
        }
        match self.inner.node.get() {
            None => json!("single node (no [cluster])"),
            Some(n) => json!(n.status_line()),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
