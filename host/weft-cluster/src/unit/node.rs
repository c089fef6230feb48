//! This node in the cluster: joining, keeping its lease, following the
//! cluster into the trust set and `/network/peers`, leaving.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use weft_kernel::console::LogLevel;
use weft_kernel::{Kernel, Note, Principal};
use weft_mesh::{MeshConfig, MeshIdentity, PeerKey};

use super::actions::SyncPeers;
use crate::mesh::{Mesh, MeshEvent, TrustSet};
use crate::model::{now_ms, Capacity, ClusterSection, NodeRecord, NodeState, NodeView};
use crate::store::Store;
use crate::ClusterError;

/// Where the node's static mesh key is kept, under the state dir.
pub const KEY_FILE: &str = "cluster/mesh.key";

/// This node, joined.
pub struct Node {
    pub(crate) section: ClusterSection,
    pub(crate) store: Store,
    pub(crate) mesh: Mesh,
    pub(crate) trust: TrustSet,
    pub(crate) identity: MeshIdentity,
    lease: AtomicI64,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The last problem talking to etcd, cleared when it answers again.
    pub(crate) problem: Mutex<Option<String>>,
}

fn note(
    source_kind: &'static str,
    payload: impl Serialize + Send + Sync,
) -> Note<impl Serialize + Send + Sync> {
    Note::new("cluster", source_kind, payload)
}

/// Records a cluster fact durably, as the kernel; a record that cannot be
/// written is an error, never dropped.
async fn record(
    kernel: &Kernel,
    kind: &'static str,
    payload: impl Serialize + Send + Sync,
) -> Result<(), ClusterError> {
    kernel
        .act(&Principal::Kernel, note(kind, payload).durable())
        .await
        .map(|_| ())
        .map_err(|e| ClusterError::Record {
            kind,
            message: e.to_string(),
        })
}

impl Node {
    /// Registers this node (Joining), takes a lease, opens the mesh, turns
    /// Active, and starts the lease and watch tasks.
    pub async fn join(kernel: &Kernel, section: ClusterSection) -> Result<Arc<Node>, ClusterError> {
        let identity = load_or_create_identity(kernel.state_dir())?;
        let store = Store::connect(
            &section.endpoints,
            &section.prefix,
            Duration::from_millis(section.timeout_ms),
        )
        .await?;
        let trust: TrustSet = Arc::new(RwLock::new(HashSet::new()));
        let (tx, rx) = mpsc::unbounded_channel();
        let config = MeshConfig {
            require_pq: section.require_pq,
            kem_supported: section.kem,
            ..MeshConfig::default()
        };
        let mesh = Mesh::new(identity.clone(), config, trust.clone(), tx);
        let record = NodeRecord {
            name: section.node.clone(),
            mesh: section.mesh.clone(),
            key: identity.public_key_hex(),
            platform: format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
            capacity: capacity(section.cpus),
            state: NodeState::Joining,
            draining: false,
            since_ms: now_ms(),
        };
        store.put_member(&record).await?;
        let lease = store.grant(section.lease_ttl_secs).await?;
        store.put_alive(&section.node, lease).await?;
        let node = Arc::new(Node {
            section,
            store,
            mesh,
            trust,
            identity,
            lease: AtomicI64::new(lease),
            tasks: Mutex::new(Vec::new()),
            problem: Mutex::new(None),
        });
        node.refresh_trust().await?;
        self::record(kernel, "cluster.join", &record).await?;
        let listener = node.mesh.listen(&node.section.mesh).await?;
        node.store
            .update_member(&node.section.node, |r| {
                r.state = NodeState::Active;
                r.since_ms = now_ms();
            })
            .await?;
        let tasks = vec![
            listener,
            tokio::spawn(record_mesh_events(kernel.clone(), rx)),
            tokio::spawn(keep_lease(kernel.clone(), node.clone())),
            tokio::spawn(follow(kernel.clone(), node.clone())),
        ];
        *lock(&node.tasks) = tasks;
        // /network/peers is current when boot returns.
        if let Err(e) = node.sync_peers(kernel).await {
            kernel.log(LogLevel::Warn, format!("cluster: {e}"));
        }
        kernel.log(
            LogLevel::Info,
            format!(
                "cluster: node `{}` joined {} (mesh {}, key {})",
                node.section.node,
                node.store.endpoints(),
                node.section.mesh,
                node.identity.public_key_hex()
            ),
        );
        Ok(node)
    }

    /// Clean shutdown: Leaving, then the lease (and `alive/`) goes.
    pub async fn leave(&self, kernel: &Kernel) -> Result<(), ClusterError> {
        self.abort_tasks();
        self.store
            .update_member(&self.section.node, |r| {
                r.state = NodeState::Leaving;
                r.since_ms = now_ms();
            })
            .await?;
        self.store
            .revoke(self.lease.load(Ordering::Acquire))
            .await?;
        record(
            kernel,
            "cluster.leave",
            serde_json::json!({ "node": self.section.node }),
        )
        .await
    }

    /// Stops the background tasks (and the mesh listener).
    pub fn abort_tasks(&self) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.section.node
    }

    /// This node's static mesh key.
    pub fn public_key(&self) -> PeerKey {
        self.identity.public_key()
    }

    pub(crate) fn status_line(&self) -> String {
        match lock(&self.problem).clone() {
            Some(p) => format!("node `{}`: PROBLEM: {p}", self.section.node),
            None => format!(
                "node `{}` in cluster {} (mesh {})",
                self.section.node,
                self.store.endpoints(),
                self.section.mesh
            ),
        }
    }

    fn set_problem(&self, p: Option<String>) {
        *lock(&self.problem) = p;
    }

    /// Mirror the trust store into the admission set.
    pub(crate) async fn refresh_trust(&self) -> Result<(), ClusterError> {
        let entries = self.store.trust().await?;
        let keys: HashSet<PeerKey> = entries
            .keys()
            .filter_map(|k| PeerKey::from_hex(k).ok())
            .collect();
        *self.trust.write().unwrap_or_else(|p| p.into_inner()) = keys;
        Ok(())
    }

    /// Bring `/network/peers` in line with etcd (a gated action; only
    /// changes are written, each a tree event on the chain).
    pub(crate) async fn sync_peers(&self, kernel: &Kernel) -> Result<(), ClusterError> {
        let nodes: Vec<NodeView> = self.store.nodes().await?;
        let trusted = self.trust.read().unwrap_or_else(|p| p.into_inner()).clone();
        kernel
            .act(&Principal::Kernel, SyncPeers::new(nodes, trusted))
            .await
            .map_err(|e| ClusterError::Mesh(format!("updating /network/peers: {e}")))?;
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Refreshes the lease every third of its TTL. An expired lease (etcd
/// forgot us, e.g. after a long partition) is recorded and a new one taken.
async fn keep_lease(kernel: Kernel, node: Arc<Node>) {
    let every = Duration::from_millis((node.section.lease_ttl_secs as u64 * 1000 / 3).max(300));
    loop {
        tokio::time::sleep(every).await;
        let lease = node.lease.load(Ordering::Acquire);
        match node.store.keep_alive(lease).await {
            Ok(true) => node.set_problem(None),
            Ok(false) => {
                let lost = serde_json::json!({ "node": node.section.node, "lease": lease });
                if let Err(e) = record(&kernel, "cluster.lease.lost", lost).await {
                    kernel.log(LogLevel::Error, e.to_string());
                }
                if let Err(e) = rejoin(&node).await {
                    node.set_problem(Some(e.to_string()));
                }
            }
            Err(e) => node.set_problem(Some(e.to_string())),
        }
    }
}

async fn rejoin(node: &Node) -> Result<(), ClusterError> {
    let lease = node.store.grant(node.section.lease_ttl_secs).await?;
    node.store.put_alive(&node.section.node, lease).await?;
    node.lease.store(lease, Ordering::Release);
    node.store
        .update_member(&node.section.node, |r| {
            r.state = NodeState::Active;
            r.since_ms = now_ms();
        })
        .await?;
    node.set_problem(None);
    Ok(())
}

/// Follows etcd: a watch wakes it on every change, a timer every second
/// catches what a broken watch missed.
async fn follow(kernel: Kernel, node: Arc<Node>) {
    let mut watch = None;
    loop {
        if watch.is_none() {
            watch = node.store.watch().await.ok();
        }
        // Wake on a change (or a broken watch, dropped to be made again),
        // else after a second.
        match watch.as_mut() {
            Some(stream) => {
                tokio::select! {
                    m = stream.message() => if !matches!(m, Ok(Some(_))) { watch = None },
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            None => tokio::time::sleep(Duration::from_secs(1)).await,
        }
        let r = async {
            node.refresh_trust().await?;
            node.sync_peers(&kernel).await
        }
        .await;
        if let Err(e) = r {
            node.set_problem(Some(e.to_string()));
        }
    }
}

/// Records what the mesh reports (refusals, downgrades, sessions).
async fn record_mesh_events(kernel: Kernel, mut rx: mpsc::UnboundedReceiver<MeshEvent>) {
    while let Some(e) = rx.recv().await {
        let kind = match &e {
            MeshEvent::Session { .. } => "cluster.mesh.session",
            MeshEvent::Downgrade { .. } => "cluster.mesh.downgrade",
            MeshEvent::Refused { .. } => "cluster.mesh.refused",
        };
        if let Err(err) = record(&kernel, kind, e).await {
            kernel.log(LogLevel::Error, format!("cluster: {err}"));
        }
    }
}

fn capacity(cpus: u32) -> Capacity {
    let detected = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    let memory_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024);
    Capacity {
        cpus: if cpus == 0 { detected } else { cpus },
        memory_mib,
    }
}

/// The node's static key, made on first use (0600) and kept across runs,
/// so the trust store entry stays valid.
pub fn load_or_create_identity(state: &Path) -> Result<MeshIdentity, ClusterError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = state.join(KEY_FILE);
    let io = |what: &str, e: std::io::Error| {
        ClusterError::Mesh(format!("{what} {}: {e}", path.display()))
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut secret = [0u8; 32];
            let bytes = text.trim().as_bytes();
            if bytes.len() != 64 {
                return Err(ClusterError::Mesh(format!(
                    "{}: expected 64 hex characters",
                    path.display()
                )));
            }
            for (i, pair) in bytes.chunks(2).enumerate() {
                let s = std::str::from_utf8(pair).unwrap_or("zz");
                secret[i] = u8::from_str_radix(s, 16)
                    .map_err(|_| ClusterError::Mesh(format!("{}: not hex", path.display())))?;
            }
            Ok(MeshIdentity::from_secret_bytes(secret))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = MeshIdentity::generate().map_err(|e| ClusterError::Mesh(e.to_string()))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| io("cannot create the dir of", e))?;
            }
            let hex: String = id
                .secret_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| io("cannot create", e))?;
            std::io::Write::write_all(&mut f, hex.as_bytes()).map_err(|e| io("cannot write", e))?;
            f.sync_all().map_err(|e| io("cannot sync", e))?;
            Ok(id)
        }
        Err(e) => Err(io("cannot read", e)),
    }
}
