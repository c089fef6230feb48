//! Keep-alive for outbound requests. An idle HTTP/1.1 connection is kept
//! under the exact (scheme, host, port, **address**) it was opened for, so a
//! request reuses one only after its own lookup and address check chose that
//! same address (the rebinding check stays per request), and an `https`
//! connection only for the host its certificate was verified for.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::client::conn::http1::SendRequest;
use tokio::task::AbortHandle;
use weft_model::net::Scheme;

use crate::fetch::Target;

/// Idle connections kept per key.
const MAX_IDLE_PER_KEY: usize = 4;
/// Kept idle at most this long (servers close theirs too; a stale one is
/// caught by [`hyper::client::conn::http1::SendRequest::try_send_request`]).
const MAX_IDLE: Duration = Duration::from_secs(10);

/// What a connection was opened (and, for `https`, verified) for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    https: bool,
    host: String,
    port: u16,
    addr: SocketAddr,
}

impl Key {
    /// The key of a request to `t` connected to `addr`.
    pub fn new(t: &Target, addr: SocketAddr) -> Key {
        Key {
            https: t.scheme == Scheme::Https,
            host: t.host.clone(),
            port: t.port,
            addr,
        }
    }
}

/// One open connection: the request handle and its connection task, which
/// is aborted when the connection is dropped (not kept).
pub struct Conn<B> {
    /// Sends requests on it.
    pub sender: SendRequest<B>,
    task: AbortHandle,
}

impl<B> Conn<B> {
    /// `sender`, driven by `task`.
    pub fn new(sender: SendRequest<B>, task: AbortHandle) -> Self {
        Conn { sender, task }
    }
}

impl<B> Drop for Conn<B> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Kept connections of one key, each with when it went idle.
type Idle<B> = Vec<(Conn<B>, Instant)>;

/// Idle connections by [`Key`].
pub struct Pool<B> {
    idle: Mutex<HashMap<Key, Idle<B>>>,
}

impl<B> Default for Pool<B> {
    fn default() -> Self {
        Pool {
            idle: Mutex::new(HashMap::new()),
        }
    }
}

impl<B> Pool<B> {
    /// The most recently kept live connection for `key`, if any.
    pub fn take(&self, key: &Key) -> Option<Conn<B>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(key)?;
        let found = loop {
            let Some((c, since)) = list.pop() else {
                break None;
            };
            if since.elapsed() < MAX_IDLE && !c.sender.is_closed() {
                break Some(c);
            }
        };
        if list.is_empty() {
            idle.remove(key);
        }
        found
    }

    /// Keep `conn` for the next request to `key` (its response was read in
    /// full). Over the per-key limit the oldest is closed.
    pub fn put(&self, key: Key, conn: Conn<B>) {
        if conn.sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain(|_, l| {
            l.retain(|(c, since)| since.elapsed() < MAX_IDLE && !c.sender.is_closed());
            !l.is_empty()
        });
        let list = idle.entry(key).or_default();
        if list.len() >= MAX_IDLE_PER_KEY {
            list.remove(0);
        }
        list.push((conn, Instant::now()));
    }

    /// Idle connections kept (all keys).
    pub fn idle(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.values().map(Vec::len).sum()
    }
}
