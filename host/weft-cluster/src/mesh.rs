//! The mesh between nodes: a TCP listener and a dialer running weft-mesh's
//! handshake, with admission by the cluster trust store.
//!
//! Every handshake outcome that matters for security is reported as a
//! [`MeshEvent`] (the unit records it on the chain): a refused key, a
//! refused or accepted classical (non-post-quantum) session, a failure.
//!
//! On an established channel each frame is `type: u8 || body`: `PING`
//! (answered by `PONG` with the same body) is what `weaver cluster ping`
//! measures the round trip with.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedSender;
use weft_mesh::{accept, connect, Channel, MeshConfig, MeshError, MeshIdentity, PeerKey};

use crate::ClusterError;

const PING: u8 = 1;
const PONG: u8 = 2;

/// The keys the trust store admits, kept current from etcd.
pub type TrustSet = Arc<RwLock<HashSet<PeerKey>>>;

/// Something the chain must hear about.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum MeshEvent {
    /// A hybrid (Noise + ML-KEM-768) session was established.
    Session {
        /// The other side's address.
        addr: String,
        /// Its static key (hex).
        peer: String,
        /// We dialled.
        initiator: bool,
    },
    /// A classical session was accepted (post-quantum not required here).
    Downgrade {
        /// The other side's address.
        addr: String,
        /// Its static key (hex).
        peer: String,
        /// We offered ML-KEM.
        local_kem: bool,
        /// It offered ML-KEM.
        peer_kem: bool,
    },
    /// A handshake was refused or failed.
    Refused {
        /// The other side's address.
        addr: String,
        /// Its static key (hex), when it got that far.
        peer: Option<String>,
        /// Why.
        reason: String,
    },
}

/// This node's side of the mesh.
#[derive(Clone)]
pub struct Mesh {
    identity: MeshIdentity,
    config: MeshConfig,
    trust: TrustSet,
    events: UnboundedSender<MeshEvent>,
}

impl Mesh {
    /// A mesh endpoint with this identity, policy and trust set.
    pub fn new(
        identity: MeshIdentity,
        config: MeshConfig,
        trust: TrustSet,
        events: UnboundedSender<MeshEvent>,
    ) -> Self {
        Mesh {
            identity,
            config,
            trust,
            events,
        }
    }

    fn admits(&self, key: &PeerKey) -> bool {
        self.trust
            .read()
            .map(|t| t.contains(key))
            .unwrap_or_else(|p| p.into_inner().contains(key))
    }

    fn report(&self, e: MeshEvent) {
        // The unit's recorder is gone only at shutdown.
        let _ignored = self.events.send(e);
    }

    /// Reports the outcome of a handshake and passes it on.
    fn outcome(
        &self,
        addr: SocketAddr,
        r: Result<Channel<TcpStream>, MeshError>,
    ) -> Result<Channel<TcpStream>, MeshError> {
        let addr = addr.to_string();
        match &r {
            Ok(ch) => self.report(match ch.downgrade() {
                Some(d) => MeshEvent::Downgrade {
                    addr,
                    peer: d.peer.to_hex(),
                    local_kem: d.local_kem,
                    peer_kem: d.peer_kem,
                },
                None => MeshEvent::Session {
                    addr,
                    peer: ch.peer().to_hex(),
                    initiator: ch.info().initiator,
                },
            }),
            Err(e) => {
                let peer = match e {
                    MeshError::UntrustedPeer { key } => Some(key.to_hex()),
                    MeshError::DowngradeRefused { downgrade } => Some(downgrade.peer.to_hex()),
                    MeshError::PeerRequiresPq { peer } => peer.map(|k| k.to_hex()),
                    _ => None,
                };
                self.report(MeshEvent::Refused {
                    addr,
                    peer,
                    reason: e.to_string(),
                });
            }
        }
        r
    }

    /// Binds the listener and serves it until the task is aborted.
    pub async fn listen(&self, addr: &str) -> Result<tokio::task::JoinHandle<()>, ClusterError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| ClusterError::Mesh(format!("cannot listen on {addr}: {e}")))?;
        let me = self.clone();
        Ok(tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let me = me.clone();
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let r = accept(stream, &me.identity, &me.config, |k| me.admits(k)).await;
                    if let Ok(ch) = me.outcome(peer, r) {
                        serve(ch).await;
                    }
                });
            }
        }))
    }

    /// Dials `addr` and runs the handshake (admission included).
    pub async fn dial(&self, addr: &str) -> Result<Channel<TcpStream>, ClusterError> {
        let sock: SocketAddr = addr
            .parse()
            .map_err(|e| ClusterError::Mesh(format!("mesh address `{addr}`: {e}")))?;
        let stream = tokio::time::timeout(self.config.handshake_timeout, TcpStream::connect(sock))
            .await
            .map_err(|_| ClusterError::Mesh(format!("connecting to {addr} timed out")))?
            .map_err(|e| ClusterError::Mesh(format!("cannot connect to {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let r = connect(stream, &self.identity, &self.config, |k| self.admits(k)).await;
        self.outcome(sock, r)
            .map_err(|e| ClusterError::Mesh(format!("mesh handshake with {addr}: {e}")))
    }
}

/// Answers pings until the peer goes.
async fn serve(mut ch: Channel<TcpStream>) {
    while let Ok(mut frame) = ch.recv().await {
        if frame.first() == Some(&PING) {
            frame[0] = PONG;
            if ch.send(&frame).await.is_err() {
                return;
            }
        }
    }
}

/// What `ping` measured.
#[derive(Clone, Debug, Serialize)]
pub struct PingReport {
    /// The handshake (TCP connect included), in microseconds.
    pub handshake_us: u64,
    /// The session is hybrid.
    pub pq: bool,
    /// Round trips, in microseconds, sorted.
    pub rtt_us: Vec<u64>,
}

/// Dials `addr` and sends `count` pings of `size` bytes one after another.
pub async fn ping(
    mesh: &Mesh,
    addr: &str,
    count: usize,
    size: usize,
) -> Result<PingReport, ClusterError> {
    let started = Instant::now();
    let mut ch = mesh.dial(addr).await?;
    let handshake_us = started.elapsed().as_micros() as u64;
    let mut body = vec![0u8; size.max(9)];
    body[0] = PING;
    let mut rtt_us = Vec::with_capacity(count);
    for i in 0..count as u64 {
        body[1..9].copy_from_slice(&i.to_be_bytes());
        let t = Instant::now();
        let fail = |e: MeshError| ClusterError::Mesh(format!("ping {addr}: {e}"));
        ch.send(&body).await.map_err(fail)?;
        let reply = ch.recv().await.map_err(fail)?;
        if reply.first() != Some(&PONG) || reply[1..] != body[1..] {
            return Err(ClusterError::Mesh(format!(
                "ping {addr}: reply {i} does not echo the ping"
            )));
        }
        rtt_us.push(t.elapsed().as_micros() as u64);
    }
    let _ = ch.close().await;
    rtt_us.sort_unstable();
    Ok(PingReport {
        handshake_us,
        pq: ch.pq(),
        rtt_us,
    })
}
