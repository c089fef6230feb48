//! The intent journal: what an install, upgrade or removal is about to do,
//! written (fsync'd) to `<state>/apps/intent.json` before it touches the
//! disk and removed once the registry says it is done. A kernel killed in
//! between leaves the file behind; the next boot reads the chain from
//! where the operation began to learn whether its record was committed,
//! and finishes it (the registry takes the entry the record describes, the
//! replaced files go) or undoes it (the staged files go, an app stopped
//! for an upgrade is started again). Either way the registry and the
//! chain agree again and no half-installed directory is left.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use weft_kernel::Kernel;

use crate::app_error::AppError;
use crate::registry::{write_atomic, AppInfo, AppState, Registry};

/// The journal's file name under `<state>/apps`.
pub const INTENT_FILE: &str = "intent.json";

/// One lifecycle operation in flight.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Intent {
    /// The chain record that commits it: `app.install`, `app.upgrade` or
    /// `app.remove`.
    pub kind: String,
    /// The app.
    pub name: String,
    /// The version the record names.
    pub version: String,
    /// The chain's length when the operation began: its record, if any,
    /// is at or after this position.
    pub from_seq: u64,
    /// The registry entry once committed (`None`: the app is gone); its
    /// `install_seq` is taken from the record.
    pub after: Option<AppInfo>,
    /// Removed once committed (what the operation replaced).
    pub drop_on_commit: Vec<PathBuf>,
    /// Removed when not committed (what the operation staged).
    pub drop_on_abort: Vec<PathBuf>,
    /// The app's state to restore when not committed (an upgrade of a
    /// running app stops it first).
    pub restore_state: Option<AppState>,
}

impl Intent {
    /// Write the journal durably (before the operation changes anything).
    pub fn begin(&self, apps_dir: &Path) -> Result<(), AppError> {
        let path = apps_dir.join(INTENT_FILE);
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| AppError::Registry {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_atomic(&path, &bytes)
    }
}

/// The operation is over (done or failed and cleaned up): forget it.
pub(crate) fn end(apps_dir: &Path) -> Result<(), AppError> {
    let path = apps_dir.join(INTENT_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => crate::registry::sync_dir(apps_dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(AppError::io(path, e)),
    }
}

/// Finish or undo the operation a crash cut off, if any; returns what was
/// done, for the chain (`app.recovered`).
pub(crate) fn recover(
    kernel: &Kernel,
    apps_dir: &Path,
    registry: &mut Registry,
) -> Result<Option<Value>, AppError> {
    let path = apps_dir.join(INTENT_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AppError::io(path, e)),
    };
    let intent: Intent = match serde_json::from_slice(&bytes) {
        Ok(i) => i,
        // Written atomically, so unreadable means not ours to guess at.
        Err(e) => {
            return Err(AppError::Registry {
                path,
                reason: format!("unreadable intent journal: {e}"),
            })
        }
    };
    let outcome = settle_with(kernel, apps_dir, registry, &intent, true)?;
    Ok(Some(outcome))
}

/// The operation `intent` failed in this kernel: when its record was
/// committed, finish it (the registry write that failed, again); otherwise
/// the failing operation has cleaned up after itself. The journal entry
/// goes once this succeeds.
pub(crate) fn settle(
    kernel: &Kernel,
    apps_dir: &Path,
    registry: &mut Registry,
    intent: &Intent,
) -> Result<(), AppError> {
    settle_with(kernel, apps_dir, registry, intent, false).map(drop)
}

fn settle_with(
    kernel: &Kernel,
    apps_dir: &Path,
    registry: &mut Registry,
    intent: &Intent,
    crashed: bool,
) -> Result<Value, AppError> {
    let committed = committed_at(kernel, intent)?;
    let outcome = match committed {
        Some(seq) => {
            match &intent.after {
                Some(info) => {
                    let mut info = info.clone();
                    info.install_seq = seq;
                    registry.apps.insert(intent.name.clone(), info);
                }
                None => {
                    registry.apps.remove(&intent.name);
                }
            }
            for p in &intent.drop_on_commit {
                remove_all(p)?;
            }
            "finished"
        }
        None if crashed => {
            for p in &intent.drop_on_abort {
                remove_all(p)?;
            }
            if let (Some(state), Some(info)) =
                (intent.restore_state, registry.apps.get_mut(&intent.name))
            {
                info.state = state;
            }
            "undone"
        }
        None => "failed",
    };
    if committed.is_some() || crashed {
        registry.save(apps_dir)?;
    }
    end(apps_dir)?;
    Ok(json!({
        "name": intent.name, "version": intent.version, "op": intent.kind,
        "outcome": outcome, "record": committed,
    }))
}

/// The seq of the record committing `intent`, if the chain holds it. A
/// chain that cannot be read is an error: guessing "not committed" would
/// undo an operation that happened.
fn committed_at(kernel: &Kernel, intent: &Intent) -> Result<Option<u64>, AppError> {
    let chain = kernel.chain();
    let mut found = None;
    chain
        .for_each(intent.from_seq..chain.len(), |e| {
            let hit = e.kind == intent.kind
                && e.payload_json().is_ok_and(|p| {
                    p["name"] == intent.name.as_str() && p["version"] == intent.version.as_str()
                });
            if hit && found.is_none() {
                found = Some(e.seq);
            }
            Ok(())
        })
        .map_err(|e| AppError::Kernel {
            name: intent.name.clone(),
            what: format!(
                "reading the chain to recover an interrupted {}",
                intent.kind
            ),
            source: Box::new(e),
        })?;
    Ok(found)
}

fn remove_all(p: &Path) -> Result<(), AppError> {
    match std::fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(AppError::io(p, e)),
    }
}
