//! The app registry: what is installed, in which state, persisted as
//! `<state>/apps/registry.json` (temp file, fsync, rename, fsync dir).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::app_error::AppError;

/// File name of the registry under `<state>/apps`.
pub const REGISTRY_FILE: &str = "registry.json";

/// Where an installed app is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppState {
    /// Installed and never started.
    Installed,
    /// Its start steps are running.
    Starting,
    /// Started.
    Running,
    /// Its stop steps are running.
    Stopping,
    /// Stopped by request.
    Stopped,
    /// Starting it failed; `error` says why.
    Failed,
    /// Recorded as Running, but one of its agents has stopped since (gave up
    /// after its restarts, or was stopped by hand). Never stored: worked out
    /// from the process table when asked. `app stop` then `app start`
    /// brings it back.
    Degraded,
}

impl std::fmt::Display for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

/// An app's agent: its manifest id and, while running, its pid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRef {
    /// The agent's `id` in the manifest.
    pub id: String,
    /// Its pid while the app runs.
    pub pid: Option<u64>,
}

/// One installed app, as the registry keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppInfo {
    /// The app's name.
    pub name: String,
    /// The installed version.
    pub version: String,
    /// From the manifest.
    pub description: String,
    /// Its state.
    pub state: AppState,
    /// The environment it was installed into.
    pub environment: String,
    /// Trust-store name of the signer; `None` for an unsigned (dev) bundle.
    pub signer: Option<String>,
    /// BLAKE3 of the installed `weftapp.toml` (checked before each start;
    /// empty in registries written before it was recorded).
    #[serde(default)]
    pub manifest: String,
    /// Component path to BLAKE3 hex.
    pub components: BTreeMap<String, String>,
    /// Its agents, in manifest order.
    pub agents: Vec<AgentRef>,
    /// Tools registered while running.
    pub tools: Vec<String>,
    /// Services registered while running.
    pub services: Vec<String>,
    /// Chain seq of the `app.install` (or `app.upgrade`) event.
    pub install_seq: u64,
    /// Why the app last failed (start, restart or upgrade).
    pub error: Option<String>,
}

/// Progress of an install or upgrade.
#[derive(Clone, Debug, Serialize)]
pub struct Progress {
    /// What was just done.
    pub step: String,
    /// Steps done so far.
    pub done: usize,
    /// Steps in all.
    pub total: usize,
}

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Registry {
    pub version: u32,
    pub apps: BTreeMap<String, AppInfo>,
}

impl Registry {
    pub fn path(apps_dir: &Path) -> PathBuf {
        apps_dir.join(REGISTRY_FILE)
    }

    pub fn load(apps_dir: &Path) -> Result<Self, AppError> {
        let path = Self::path(apps_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| AppError::Registry {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Registry {
                version: 1,
                apps: BTreeMap::new(),
            }),
            Err(e) => Err(AppError::io(path, e)),
        }
    }

    pub fn save(&self, apps_dir: &Path) -> Result<(), AppError> {
        let path = Self::path(apps_dir);
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| AppError::Registry {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_atomic(&path, &bytes)
    }
}

/// Write `bytes` to `path` via a fsynced temp file and a rename, then
/// fsync the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| AppError::io(dir, e))?;
    let tmp = path.with_extension("json.tmp");
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        // A full disk leaves no half-written temp file behind.
        let _ = std::fs::remove_file(&tmp);
        return Err(AppError::io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| AppError::io(path, e))?;
    sync_dir(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), AppError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AppError::io(dir, e))
}
