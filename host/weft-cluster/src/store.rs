//! The cluster state on etcd: typed reads and writes of the keys
//! [`crate::model`] describes, each bounded by the request timeout so a lost
//! quorum is a clear error instead of a hang.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp, WatchOptions,
    WatchStream,
};
use serde::de::DeserializeOwned;

use crate::model::{NodeRecord, NodeView, TrustEntry};
use crate::ClusterError;

/// A connection to the cluster's etcd.
#[derive(Clone)]
pub struct Store {
    client: Client,
    prefix: String,
    endpoints: String,
    timeout: Duration,
}

impl Store {
    /// Connects to `endpoints` (keys under `prefix`).
    pub async fn connect(
        endpoints: &[String],
        prefix: &str,
        timeout: Duration,
    ) -> Result<Store, ClusterError> {
        let joined = endpoints.join(",");
        let options = ConnectOptions::new()
            .with_timeout(timeout)
            .with_connect_timeout(timeout);
        let client = match tokio::time::timeout(timeout, Client::connect(endpoints, Some(options)))
            .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(source)) => {
                return Err(ClusterError::Store {
                    endpoints: joined,
                    op: "connect",
                    source,
                })
            }
            Err(_) => {
                return Err(ClusterError::Unavailable {
                    endpoints: joined,
                    op: "connect",
                    after: timeout,
                })
            }
        };
        Ok(Store {
            client,
            prefix: prefix.to_string(),
            endpoints: joined,
            timeout,
        })
    }

    /// The endpoints, for messages.
    pub fn endpoints(&self) -> &str {
        &self.endpoints
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// Runs one etcd request within the timeout, naming `op` on failure.
    async fn call<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, ClusterError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(ClusterError::Store {
                endpoints: self.endpoints.clone(),
                op,
                source,
            }),
            Err(_) => Err(ClusterError::Unavailable {
                endpoints: self.endpoints.clone(),
                op,
                after: self.timeout,
            }),
        }
    }

    /// A new lease of `ttl` seconds.
    pub async fn grant(&self, ttl: i64) -> Result<i64, ClusterError> {
        let mut c = self.client.clone();
        Ok(self
            .call("lease grant", c.lease_grant(ttl, None))
            .await?
            .id())
    }

    /// Refreshes `lease` once; `false` when etcd says it has expired.
    pub async fn keep_alive(&self, lease: i64) -> Result<bool, ClusterError> {
        let mut c = self.client.clone();
        let (mut keeper, mut stream) = self.call("lease keep-alive", c.lease_keep_alive(lease)).await?;
        self.call("lease keep-alive", keeper.keep_alive()).await?;
        match self.call("lease keep-alive", stream.message()).await? {
            Some(resp) => Ok(resp.ttl() > 0),
            None => Ok(false),
        }
    }

    /// Revokes `lease` (its keys go at once).
    pub async fn revoke(&self, lease: i64) -> Result<(), ClusterError> {
        let mut c = self.client.clone();
        self.call("lease revoke", c.lease_revoke(lease)).await?;
        Ok(())
    }

    /// Writes `alive/<node>` under `lease`.
    pub async fn put_alive(&self, node: &str, lease: i64) -> Result<(), ClusterError> {
        let mut c = self.client.clone();
        let opts = PutOptions::new().with_lease(lease);
        self.call(
            "put alive",
            c.put(self.key(&format!("alive/{node}")), lease.to_string(), Some(opts)),
        )
        .await?;
        Ok(())
    }

    /// Writes a node's record.
    pub async fn put_member(&self, record: &NodeRecord) -> Result<(), ClusterError> {
        let mut c = self.client.clone();
        let value = serde_json::to_vec(record).map_err(|e| ClusterError::Corrupt {
            key: format!("members/{}", record.name),
            message: e.to_string(),
        })?;
        self.call(
            "put member",
            c.put(self.key(&format!("members/{}", record.name)), value, None),
        )
        .await?;
        Ok(())
    }

    /// Changes a node's record with `f`, atomically (retried when another
    /// writer got there first). `NotFound` when the node never joined.
    pub async fn update_member(
        &self,
        node: &str,
        f: impl Fn(&mut NodeRecord),
    ) -> Result<NodeRecord, ClusterError> {
        let key = self.key(&format!("members/{node}"));
        for _ in 0..16 {
            let mut c = self.client.clone();
            let resp = self.call("get member", c.get(key.clone(), None)).await?;
            let Some(kv) = resp.kvs().first() else {
                return Err(ClusterError::NoSuchNode(node.to_string()));
            };
            let mut record: NodeRecord = decode(&key, kv.value())?;
            f(&mut record);
            let value = serde_json::to_vec(&record).map_err(|e| ClusterError::Corrupt {
                key: key.clone(),
                message: e.to_string(),
            })?;
            let txn = Txn::new()
                .when(vec![Compare::mod_revision(
                    key.clone(),
                    CompareOp::Equal,
                    kv.mod_revision(),
                )])
                .and_then(vec![TxnOp::put(key.clone(), value, None)]);
            if self.call("update member", c.txn(txn)).await?.succeeded() {
                return Ok(record);
            }
        }
        Err(ClusterError::Contended(key))
    }

    /// Every node, with whether its lease is live.
    pub async fn nodes(&self) -> Result<Vec<NodeView>, ClusterError> {
        let members: BTreeMap<String, NodeRecord> = self.list("members/").await?;
        let alive: BTreeMap<String, serde_json::Value> = self.list("alive/").await?;
        Ok(members
            .into_iter()
            .map(|(name, record)| NodeView {
                alive: alive.contains_key(&name),
                record,
            })
            .collect())
    }

    /// The trust store, by key hex.
    pub async fn trust(&self) -> Result<BTreeMap<String, TrustEntry>, ClusterError> {
        self.list("trust/").await
    }

    /// Adds (or relabels) a trusted key.
    pub async fn trust_put(&self, entry: &TrustEntry) -> Result<(), ClusterError> {
        let mut c = self.client.clone();
        let value = serde_json::to_vec(entry).map_err(|e| ClusterError::Corrupt {
            key: format!("trust/{}", entry.key),
            message: e.to_string(),
        })?;
        self.call(
            "put trust",
            c.put(self.key(&format!("trust/{}", entry.key)), value, None),
        )
        .await?;
        Ok(())
    }

    /// Removes a trusted key; `false` when it was not there.
    pub async fn trust_delete(&self, key: &str) -> Result<bool, ClusterError> {
        let mut c = self.client.clone();
        let resp = self
            .call("delete trust", c.delete(self.key(&format!("trust/{key}")), None))
            .await?;
        Ok(resp.deleted() > 0)
    }

    /// A watch on every cluster key.
    pub async fn watch(&self) -> Result<WatchStream, ClusterError> {
        let mut c = self.client.clone();
        self.call(
            "watch",
            c.watch(self.prefix.clone(), Some(WatchOptions::new().with_prefix())),
        )
        .await
    }

    /// Values under `<prefix><dir>` decoded as JSON, by the rest of the key.
    async fn list<T: DeserializeOwned>(
        &self,
        dir: &str,
    ) -> Result<BTreeMap<String, T>, ClusterError> {
        let mut c = self.client.clone();
        let base = self.key(dir);
        let resp = self
            .call(
                "list",
                c.get(base.clone(), Some(GetOptions::new().with_prefix())),
            )
            .await?;
        let mut out = BTreeMap::new();
        for kv in resp.kvs() {
            let key = String::from_utf8_lossy(kv.key()).to_string();
            let name = key.strip_prefix(&base).unwrap_or(&key).to_string();
            out.insert(name, decode(&key, kv.value())?);
        }
        Ok(out)
    }
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, ClusterError> {
    // `alive/` values are lease ids: numbers in JSON too.
    serde_json::from_slice(bytes).map_err(|e| ClusterError::Corrupt {
        key: key.to_string(),
        message: e.to_string(),
    })
}
