//! Trust changes asked for while no kernel runs. Trust is kernel state, so
//! it changes only through the gate and onto the chain; `weaver trust add`
//! with no kernel queues the change in `<state>/trust.pending.json`
//! (checked now, so a bad key is refused at once), and the apps unit
//! carries it out as the operator when the kernel next boots.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::TrustError;
use crate::pack::write_atomic;
use crate::trust::TrustStore;

/// File the queue is kept in, under the state dir.
pub const PENDING_FILE: &str = "trust.pending.json";

/// One queued change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PendingTrust {
    /// Trust `key` under `name`.
    Add {
        /// The signer's name.
        name: String,
        /// Hex Ed25519 public key.
        key: String,
    },
    /// Stop trusting `name`.
    Remove {
        /// The signer's name.
        name: String,
    },
}

/// The queued changes, oldest first.
pub fn pending(state: &Path) -> Result<Vec<PendingTrust>, TrustError> {
    let path = state.join(PENDING_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| TrustError::Malformed {
            path,
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(TrustError::Io { path, source }),
    }
}

/// Check `op` against the store and the queue, then queue it. The caller
/// holds the state dir's lock (no kernel runs).
pub fn queue(state: &Path, op: PendingTrust) -> Result<(), TrustError> {
    let mut queued = pending(state)?;
    // What the store would hold once the queue is carried out.
    let mut view = TrustStore::empty();
    for (n, k) in TrustStore::open(state)?.list() {
        view.add(&n, &k)?;
    }
    for q in &queued {
        match q {
            PendingTrust::Add { name, key } => view.add(name, key)?,
            PendingTrust::Remove { name } => view.remove(name)?,
        }
    }
    match &op {
        PendingTrust::Add { name, key } => view.add(name, key)?,
        PendingTrust::Remove { name } => view.remove(name)?,
    }
    queued.push(op);
    let path = state.join(PENDING_FILE);
    let mut text = serde_json::to_vec_pretty(&queued).unwrap_or_default();
    text.push(b'\n');
    write_atomic(&path, &text).map_err(|source| TrustError::Io { path, source })
}

/// Forget the queue (once it has been carried out).
pub fn clear(state: &Path) -> Result<(), TrustError> {
    let path = state.join(PENDING_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(TrustError::Io { path, source }),
    }
}
