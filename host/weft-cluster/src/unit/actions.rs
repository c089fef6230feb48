//! The unit's actions, each through `Kernel::act`. Operator changes to
//! the cluster (trust, drain) go to etcd first and are then recorded
//! durably; if the record fails the etcd change is undone where it can be.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde_json::{json, Value};
use weft_kernel::{ActCx, Action, KernelError, KernelResult, KernelView, Principal};
use weft_mesh::PeerKey;

use super::Node;
use crate::mesh::{ping, PingReport};
use crate::model::{now_ms, valid_node_name, NodeView, TrustEntry};
use crate::ClusterError;

/// Every gate action of the unit (the `cluster.mesh.*`, `cluster.join`,
/// `cluster.leave` and `cluster.lease.lost` notes are the kernel's).
pub const ACTIONS: &[&str] = &[
    "cluster.read",
    "cluster.trust.add",
    "cluster.trust.rm",
    "cluster.drain",
    "cluster.ping",
    "cluster.peers",
    "cluster.join",
    "cluster.leave",
    "cluster.lease.lost",
    "cluster.mesh.session",
    "cluster.mesh.downgrade",
    "cluster.mesh.refused",
];

fn failed(e: ClusterError) -> KernelError {
    KernelError::Failed(e.to_string())
}

fn operator_only(who: &Principal, what: &str) -> KernelResult<()> {
    match who {
        Principal::Operator | Principal::Kernel => Ok(()),
        other => Err(KernelError::Denied(format!(
            "only the operator may {what}, not `{}`",
            other.gate_name()
        ))),
    }
}

/// `weaver cluster trust add KEY [--label L]`.
pub struct TrustAdd {
    pub(crate) node: Arc<Node>,
    pub(crate) key: String,
    pub(crate) label: String,
}

impl Action for TrustAdd {
    type Output = Value;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("cluster.trust.add")
    }

    fn gate_context(&self) -> Value {
        json!({ "key": self.key, "label": self.label })
    }

    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        operator_only(who, "change the cluster trust store")?;
        let key = PeerKey::from_hex(&self.key)
            .map_err(|e| KernelError::Invalid(format!("`{}`: {e}", self.key)))?;
        self.key = key.to_hex();
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<Value> {
        let entry = TrustEntry {
            key: self.key.clone(),
            label: self.label.clone(),
            added_ms: now_ms(),
        };
        self.node.store.trust_put(&entry).await.map_err(failed)?;
        if let Err(e) = cx.record_durable("cluster.trust.add", &entry) {
            let _ = self.node.store.trust_delete(&entry.key).await;
            return Err(e);
        }
        self.node.refresh_trust().await.map_err(failed)?;
        Ok(json!(entry))
    }
}

/// `weaver cluster trust rm KEY`.
pub struct TrustRm {
    pub(crate) node: Arc<Node>,
    pub(crate) key: String,
}

impl Action for TrustRm {
    type Output = Value;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("cluster.trust.rm")
    }

    fn gate_context(&self) -> Value {
        json!({ "key": self.key })
    }

    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        operator_only(who, "change the cluster trust store")?;
        let key = PeerKey::from_hex(&self.key)
            .map_err(|e| KernelError::Invalid(format!("`{}`: {e}", self.key)))?;
        self.key = key.to_hex();
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<Value> {
        let before = self.node.store.trust().await.map_err(failed)?;
        let Some(entry) = before.get(&self.key).cloned() else {
            return Err(KernelError::NotFound(format!(
                "key {} is not in the cluster trust store",
                self.key
            )));
        };
        self.node
            .store
            .trust_delete(&self.key)
            .await
            .map_err(failed)?;
        if let Err(e) = cx.record_durable("cluster.trust.rm", &json!({ "key": self.key })) {
            let _ = self.node.store.trust_put(&entry).await;
            return Err(e);
        }
        self.node.refresh_trust().await.map_err(failed)?;
        Ok(json!({ "removed": self.key }))
    }
}

/// `weaver cluster drain NODE`: the node takes no new work.
pub struct Drain {
    pub(crate) node: Arc<Node>,
    pub(crate) target: String,
}

impl Action for Drain {
    type Output = Value;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("cluster.drain")
    }

    fn gate_context(&self) -> Value {
        json!({ "node": self.target })
    }

    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        operator_only(who, "drain a node")
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<Value> {
        let record = self
            .node
            .store
            .update_member(&self.target, |r| r.draining = true)
            .await
            .map_err(|e| match e {
                ClusterError::NoSuchNode(n) => {
                    KernelError::NotFound(format!("no node `{n}` in the cluster"))
                }
                other => failed(other),
            })?;
        cx.record_durable("cluster.drain", &json!({ "node": self.target }))?;
        Ok(json!(record))
    }
}

/// `weaver cluster ping NODE`: a mesh session to the node and round trips.
pub struct Ping {
    pub(crate) node: Arc<Node>,
    pub(crate) target: String,
    pub(crate) count: usize,
    pub(crate) size: usize,
}

impl Action for Ping {
    type Output = PingReport;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("cluster.ping")
    }

    fn gate_context(&self) -> Value {
        json!({ "node": self.target, "count": self.count })
    }

    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        operator_only(who, "ping a node")?;
        if self.count == 0 || self.count > 1_000_000 || self.size > 1 << 20 {
            return Err(KernelError::Invalid(
                "ping: count must be 1..=1000000 and size at most 1 MiB".into(),
            ));
        }
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<PingReport> {
        let nodes = self.node.store.nodes().await.map_err(failed)?;
        let Some(view) = nodes.iter().find(|v| v.record.name == self.target) else {
            return Err(KernelError::NotFound(format!(
                "no node `{}` in the cluster",
                self.target
            )));
        };
        let report = ping(&self.node.mesh, &view.record.mesh, self.count, self.size)
            .await
            .map_err(failed)?;
        let median = report.rtt_us.get(report.rtt_us.len() / 2).copied();
        cx.record(
            "cluster.ping",
            &json!({ "node": self.target, "count": self.count, "pq": report.pq,
                     "handshake_us": report.handshake_us, "median_us": median }),
        )?;
        Ok(report)
    }
}

/// Keeps `/network/peers/<node>` equal to the cluster as etcd has it; only
/// what differs is written (each write a tree event on the chain).
pub struct SyncPeers {
    want: BTreeMap<String, BTreeMap<String, Value>>,
}

impl SyncPeers {
    /// The peers' metadata as the tree should hold it.
    pub fn new(nodes: Vec<NodeView>, trusted: HashSet<PeerKey>) -> Self {
        let want = nodes
            .into_iter()
            // Names come from etcd: skip what cannot be a tree path segment.
            .filter(|v| valid_node_name(&v.record.name))
            .map(|v| {
                let r = &v.record;
                let is_trusted = PeerKey::from_hex(&r.key).is_ok_and(|k| trusted.contains(&k));
                let meta: BTreeMap<String, Value> = [
                    ("state", json!(v.state())),
                    ("mesh", json!(r.mesh)),
                    ("key", json!(r.key)),
                    ("trusted", json!(is_trusted)),
                    ("platform", json!(r.platform)),
                    ("cpus", json!(r.capacity.cpus)),
                    ("memory_mib", json!(r.capacity.memory_mib)),
                    ("draining", json!(r.draining)),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                (r.name.clone(), meta)
            })
            .collect();
        SyncPeers { want }
    }
}

const PEERS: &str = "/network/peers";

impl Action for SyncPeers {
    type Output = usize;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("cluster.peers")
    }

    fn gate_context(&self) -> Value {
        json!({ "peers": self.want.len() })
    }

    fn reuse_permit(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(PEERS))
    }

    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        match who {
            Principal::Kernel => Ok(()),
            other => Err(KernelError::Denied(format!(
                "only the kernel follows the cluster into {PEERS}, not `{}`",
                other.gate_name()
            ))),
        }
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<usize> {
        let tree = cx.tree();
        let mut changes = 0;
        for node in tree.list(PEERS)? {
            let depth_one = node.path.rsplit_once('/').is_some_and(|(p, _)| p == PEERS);
            if depth_one && !self.want.contains_key(&node.name) {
                tree.remove_recursive(&node.path)?;
                changes += 1;
            }
        }
        for (name, meta) in self.want {
            changes += tree.upsert(&format!("{PEERS}/{name}"), meta)?;
        }
        Ok(changes)
    }
}
