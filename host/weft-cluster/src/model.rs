//! What the cluster keeps in etcd, and the `[cluster]` section.
//!
//! Keys, under the prefix (`/weft/cluster/` by default):
//!
//! * `members/<node>`: the node's [`NodeRecord`] (JSON), written by the node
//!   itself (state, metadata) and by an operator's `drain`;
//! * `alive/<node>`: bound to the node's lease; it disappears when the lease
//!   expires, and the record's state then reads as [`NodeState::Failed`];
//! * `trust/<key hex>`: a [`TrustEntry`]; only `weaver cluster trust add/rm`
//!   writes these.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `[cluster]` in `weft.toml`. Absent (or `endpoints` empty): single node,
/// no etcd.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSection {
    /// etcd client URLs (`http://127.0.0.1:2379`).
    pub endpoints: Vec<String>,
    /// This node's name in the cluster (letters, digits, `-`, `_`).
    pub node: String,
    /// Where the mesh listens (`127.0.0.1:7001`).
    pub mesh: String,
    /// Lease time to live in seconds: a node silent for this long is Failed.
    pub lease_ttl_secs: i64,
    /// Key prefix in etcd (several clusters may share one etcd).
    pub prefix: String,
    /// Refuse mesh sessions that are not post-quantum (hybrid).
    pub require_pq: bool,
    /// Offer ML-KEM-768 in mesh handshakes.
    pub kem: bool,
    /// etcd request timeout in milliseconds (a lost quorum shows as this).
    pub timeout_ms: u64,
    /// Capacity advertised to the cluster: CPUs (0: detect).
    pub cpus: u32,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection {
            endpoints: Vec::new(),
            node: String::new(),
            mesh: String::new(),
            lease_ttl_secs: 5,
            prefix: "/weft/cluster/".into(),
            require_pq: true,
            kem: true,
            timeout_ms: 3000,
            cpus: 0,
        }
    }
}

impl ClusterSection {
    /// Clustering is on.
    pub fn enabled(&self) -> bool {
        !self.endpoints.is_empty()
    }

    /// What is wrong with it, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        if !valid_node_name(&self.node) {
            return Err(format!(
                "cluster.node `{}` must be 1-63 letters, digits, `-` or `_`",
                self.node
            ));
        }
        if self.mesh.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "cluster.mesh `{}` must be an IP address and port, e.g. 127.0.0.1:7001",
                self.mesh
            ));
        }
        if !(2..=3600).contains(&self.lease_ttl_secs) {
            return Err("cluster.lease_ttl_secs must be between 2 and 3600".into());
        }
        if self.require_pq && !self.kem {
            return Err("cluster.require_pq needs cluster.kem = true".into());
        }
        if !self.prefix.starts_with('/') || !self.prefix.ends_with('/') {
            return Err("cluster.prefix must start and end with `/`".into());
        }
        if let Some(bad) = self
            .endpoints
            .iter()
            .find(|e| !(e.starts_with("http://") || e.starts_with("https://")))
        {
            return Err(format!(
                "cluster.endpoints: `{bad}` is not an http:// or https:// URL"
            ));
        }
        Ok(())
    }
}

/// A node name: what `name@node` and the etcd keys use.
pub fn valid_node_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A node's lifecycle state.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Registered, not yet serving its mesh.
    Joining,
    /// Serving.
    Active,
    /// Shut down cleanly (or shutting down).
    Leaving,
    /// Its lease expired without a clean leave.
    Failed,
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeState::Joining => "joining",
            NodeState::Active => "active",
            NodeState::Leaving => "leaving",
            NodeState::Failed => "failed",
        })
    }
}

/// What a node can take.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Capacity {
    /// CPUs.
    pub cpus: u32,
    /// Memory in MiB (0: unknown).
    pub memory_mib: u64,
}

/// A node as recorded in `members/<node>`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeRecord {
    /// Its name.
    pub name: String,
    /// Its mesh address.
    pub mesh: String,
    /// Its static X25519 public key (hex), what the trust store must list.
    pub key: String,
    /// `os/arch`.
    pub platform: String,
    /// What it can take.
    pub capacity: Capacity,
    /// Its state as the node last wrote it (see [`NodeView::state`]).
    pub state: NodeState,
    /// An operator drained it: it takes no new work.
    #[serde(default)]
    pub draining: bool,
    /// Unix time in ms of the last state change.
    pub since_ms: u64,
}

/// A node as the cluster sees it: its record and whether its lease is live.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeView {
    /// The record.
    pub record: NodeRecord,
    /// Its lease is live (`alive/<node>` exists).
    pub alive: bool,
}

impl NodeView {
    /// The effective state: a node that claims Joining or Active but whose
    /// lease is gone has Failed.
    pub fn state(&self) -> NodeState {
        match (self.record.state, self.alive) {
            (NodeState::Joining | NodeState::Active, false) => NodeState::Failed,
            (s, _) => s,
        }
    }
}

/// One key of the trust store.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TrustEntry {
    /// The static public key (hex).
    pub key: String,
    /// A label for people (usually the node's name).
    pub label: String,
    /// Unix time in ms when it was added.
    pub added_ms: u64,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: NodeState) -> NodeRecord {
        NodeRecord {
            name: "a".into(),
            mesh: "127.0.0.1:1".into(),
            key: "00".into(),
            platform: "linux/x86_64".into(),
            capacity: Capacity {
                cpus: 1,
                memory_mib: 0,
            },
            state,
            draining: false,
            since_ms: 0,
        }
    }

    #[test]
    fn a_lost_lease_makes_a_live_state_failed_but_not_a_leave() {
        for (s, alive, want) in [
            (NodeState::Active, true, NodeState::Active),
            (NodeState::Active, false, NodeState::Failed),
            (NodeState::Joining, false, NodeState::Failed),
            (NodeState::Leaving, false, NodeState::Leaving),
        ] {
            let v = NodeView {
                record: record(s),
                alive,
            };
            assert_eq!(v.state(), want, "{s} alive={alive}");
        }
    }

    #[test]
    fn the_section_is_checked() {
        assert!(ClusterSection::default().validate().is_ok());
        let mut s = ClusterSection {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            node: "a".into(),
            mesh: "127.0.0.1:7001".into(),
            ..Default::default()
        };
        assert!(s.validate().is_ok());
        s.node = "a b".into();
        assert!(s.validate().unwrap_err().contains("cluster.node"));
        s.node = "a".into();
        s.mesh = "localhost".into();
        assert!(s.validate().unwrap_err().contains("cluster.mesh"));
        s.mesh = "127.0.0.1:7001".into();
        s.kem = false;
        assert!(s.validate().unwrap_err().contains("require_pq"));
    }
}
