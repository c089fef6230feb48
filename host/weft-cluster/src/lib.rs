//! The Weft cluster: nodes that share membership, node metadata and a
//! trust store on etcd, and talk over the weft-mesh transport (Noise XX +
//! ML-KEM-768). The kernel unit is [`unit::ClusterUnit`]; `docs/cluster.md`
//! describes the design and the operator's commands.
//!
//! Without `[cluster]` in `weft.toml` (or `weaver run --cluster`) the unit
//! does nothing and no etcd is needed.

pub mod mesh;
pub mod model;
pub mod store;
pub mod unit;

use std::time::Duration;

/// What can go wrong in the cluster unit.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// etcd answered with an error.
    #[error("cluster store at {endpoints}: {op} failed: {source}")]
    Store {
        /// The endpoints.
        endpoints: String,
        /// What was being done.
        op: &'static str,
        /// etcd's error.
        source: etcd_client::Error,
    },
    /// etcd did not answer in time: unreachable, or its quorum is lost.
    #[error("cluster store at {endpoints} did not answer `{op}` within {after:?} (etcd unreachable or its quorum lost); cluster changes are refused until it answers")]
    Unavailable {
        /// The endpoints.
        endpoints: String,
        /// What was being done.
        op: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// A value in etcd is not what Weft wrote.
    #[error("cluster store key `{key}` holds an unreadable value: {message}")]
    Corrupt {
        /// The key.
        key: String,
        /// Why it does not parse.
        message: String,
    },
    /// Too many concurrent writers to one key.
    #[error("cluster store key `{0}` kept changing under us; try again")]
    Contended(String),
    /// No node of that name ever joined.
    #[error("no node `{0}` in the cluster")]
    NoSuchNode(String),
    /// The mesh failed.
    #[error("{0}")]
    Mesh(String),
    /// A cluster fact could not be written to the chain (the node does
    /// not go on as if it were).
    #[error("cannot record `{kind}` on the chain: {message}")]
    Record {
        /// The chain kind.
        kind: &'static str,
        /// The kernel's error.
        message: String,
    },
    /// This kernel is not in a cluster.
    #[error(
        "this kernel is not in a cluster (no [cluster] in weft.toml and no `weaver run --cluster`)"
    )]
    NotClustered,
}
