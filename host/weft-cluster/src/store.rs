//! The cluster state on etcd: typed reads and writes of the keys
//! [`crate::model`] describes, each bounded by the request timeout so a lost
//! quorum is a clear error instead of a hang.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp, WatchOptions,
    WatchStream,
};
use serde::de::DeserializeOwned;

use crate::model::{NodeRecord, NodeView, TrustEntry};
use crate::ClusterError;

/// Pause between tries of a transient failure.
const RETRY: Duration = Duration::from_millis(50);

/// A member down (connection refused) or without a leader: worth another try.
fn transient(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::TransportError(_) => true,
        etcd_client::Error::GRpcStatus(s) => {
            // 14 Unavailable, 4 DeadlineExceeded, 1 Cancelled (tonic's own
            // per-try timeout) in gRPC status codes.
            matches!(i32::from(s.code()), 14 | 4 | 1)
        }
        _ => false,
    }
}

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
        // Each try gets a third of the budget, so a request stuck on a dead
        // member is tried again (on another) before the whole call times out.
        let options = ConnectOptions::new()
            .with_timeout(timeout / 3)
            .with_connect_timeout(timeout / 3);
        let client =
            match tokio::time::timeout(timeout, Client::connect(endpoints, Some(options))).await {
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
    /// A member that is down or has no leader is transient: the request is
    /// tried again (the client balances over the endpoints) until the
    /// timeout, which then reads as [`ClusterError::Unavailable`].
    async fn call<T, F, Fut>(&self, op: &'static str, mut f: F) -> Result<T, ClusterError>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = Instant::now() + self.timeout;
        let unavailable = || ClusterError::Unavailable {
            endpoints: self.endpoints.clone(),
            op,
            after: self.timeout,
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, f(self.client.clone())).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) if transient(&e) => {
                    if Instant::now() + RETRY >= deadline {
                        return Err(unavailable());
                    }
                    tokio::time::sleep(RETRY).await;
                }
                Ok(Err(source)) => {
                    return Err(ClusterError::Store {
                        endpoints: self.endpoints.clone(),
                        op,
                        source,
                    })
                }
                Err(_) => return Err(unavailable()),
            }
        }
    }

    async fn put(&self, op: &'static str, key: String, value: Vec<u8>) -> Result<(), ClusterError> {
        self.call(op, |mut c| {
            let (key, value) = (key.clone(), value.clone());
            async move { c.put(key, value, None).await }
        })
        .await?;
        Ok(())
    }

    /// A new lease of `ttl` seconds.
    pub async fn grant(&self, ttl: i64) -> Result<i64, ClusterError> {
        Ok(self
            .call("lease grant", |mut c| async move {
                c.lease_grant(ttl, None).await
            })
            .await?
            .id())
    }

    /// Refreshes `lease` once; `false` when etcd says it has expired.
    pub async fn keep_alive(&self, lease: i64) -> Result<bool, ClusterError> {
        let resp = self
            .call("lease keep-alive", |mut c| async move {
                let (mut keeper, mut stream) = c.lease_keep_alive(lease).await?;
                keeper.keep_alive().await?;
                stream.message().await
            })
            .await?;
        Ok(resp.is_some_and(|r| r.ttl() > 0))
    }

    /// Revokes `lease` (its keys go at once).
    pub async fn revoke(&self, lease: i64) -> Result<(), ClusterError> {
        self.call("lease revoke", |mut c| async move {
            c.lease_revoke(lease).await
        })
        .await?;
        Ok(())
    }

    /// Writes `alive/<node>` under `lease`.
    pub async fn put_alive(&self, node: &str, lease: i64) -> Result<(), ClusterError> {
        let key = self.key(&format!("alive/{node}"));
        self.call("put alive", |mut c| {
            let key = key.clone();
            async move {
                let opts = PutOptions::new().with_lease(lease);
                c.put(key, lease.to_string(), Some(opts)).await
            }
        })
        .await?;
        Ok(())
    }

    /// Writes a node's record.
    pub async fn put_member(&self, record: &NodeRecord) -> Result<(), ClusterError> {
        let value = serde_json::to_vec(record).map_err(|e| ClusterError::Corrupt {
            key: format!("members/{}", record.name),
            message: e.to_string(),
        })?;
        let key = self.key(&format!("members/{}", record.name));
        self.put("put member", key, value).await?;
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
            let k = key.clone();
            let resp = self
                .call("get member", |mut c| {
                    let k = k.clone();
                    async move { c.get(k, None).await }
                })
                .await?;
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
            let done = self
                .call("update member", |mut c| {
                    let txn = txn.clone();
                    async move { c.txn(txn).await }
                })
                .await?;
            if done.succeeded() {
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
        let value = serde_json::to_vec(entry).map_err(|e| ClusterError::Corrupt {
            key: format!("trust/{}", entry.key),
            message: e.to_string(),
        })?;
        let key = self.key(&format!("trust/{}", entry.key));
        self.put("put trust", key, value).await?;
        Ok(())
    }

    /// Removes a trusted key; `false` when it was not there.
    pub async fn trust_delete(&self, key: &str) -> Result<bool, ClusterError> {
        let key = self.key(&format!("trust/{key}"));
        let resp = self
            .call("delete trust", |mut c| {
                let key = key.clone();
                async move { c.delete(key, None).await }
            })
            .await?;
        Ok(resp.deleted() > 0)
    }

    /// A watch on every cluster key.
    pub async fn watch(&self) -> Result<WatchStream, ClusterError> {
        let prefix = self.prefix.clone();
        self.call("watch", |mut c| {
            let prefix = prefix.clone();
            async move {
                c.watch(prefix, Some(WatchOptions::new().with_prefix()))
                    .await
            }
        })
        .await
    }

    /// Values under `<prefix><dir>` decoded as JSON, by the rest of the key.
    async fn list<T: DeserializeOwned>(
        &self,
        dir: &str,
    ) -> Result<BTreeMap<String, T>, ClusterError> {
        let base = self.key(dir);
        let resp = self
            .call("list", |mut c| {
                let base = base.clone();
                async move { c.get(base, Some(GetOptions::new().with_prefix())).await }
            })
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
