//! The `ecc` kernel unit: one [`Ecc`] per kernel, served to agents through
//! the `weft:kernel/ecc` interface and to the operator through `weaver ecc`.
//!
//! * **Checked.** Every call is an action through the chokepoint as the
//!   calling agent ([`actions::EccAccess`], gate action `ecc.<op>`): the op
//!   must be in the agent's `ecc.ops`, the namespace in its
//!   `ecc.namespaces`, and an app's agents reach only the app's own
//!   namespaces (`<app>`, `<app>/...`) plus what `[ecc] shares` gives the
//!   app. A refusal is a `denied` error and a `gate.deny` record.
//! * **Recorded.** Every mutation is one [`EccOp`], appended to the chain
//!   as an `ecc.op` record (durably: fsync'ed before the call returns),
//!   then applied, both under the state's write lock, so the chain holds
//!   the ops in the order they were applied.
//! * **Recovered.** A snapshot (`<state>/ecc/`) is written every
//!   `snapshot_every` ops, after recovery and at shutdown; its marker is the
//!   chain length when it was taken. At boot the unit loads it and replays
//!   the `ecc.op` records after the marker, so a `kill -9` loses nothing
//!   that was acknowledged.
//! * **Calibrated.** At boot a bounded measured run ([`run_calibration`])
//!   is recorded (`ecc.calibration`) and shown by `weaver ecc calibration`.

pub mod actions;
pub mod control;
mod convert;
mod host;
mod ticker;

use std::any::Any;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use weft_kernel::agent::AgentLinker;
use weft_kernel::chain::ChainView;
use weft_kernel::console::LogLevel;
use weft_kernel::control::{ControlCx, ControlReply};
use weft_kernel::{
    AgentPrincipal, BoxFuture, Extensions, InitCx, Kernel, KernelError, KernelResult, Subsystem,
    SubsystemError,
};

use crate::{
    run_calibration, CalibrationConfig, CalibrationReport, Ecc, EccConfig, EccOp, SystemClock,
    SNAPSHOT_FILE,
};

/// The chain record kind of one applied op (its payload is the [`EccOp`]).
pub const OP_KIND: &str = "ecc.op";

/// `[ecc]` in `weft.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EccSection {
    /// Ops between snapshots (0: only after recovery and at shutdown).
    pub snapshot_every: u64,
    /// Run the calibration at boot.
    pub calibrate: bool,
    /// Namespace patterns an app's agents may use besides the app's own,
    /// by app name (`shares = { search = ["corpus/*"] }`). Each agent
    /// still needs them in its `ecc.namespaces`.
    pub shares: BTreeMap<String, Vec<String>>,
    /// `[ecc.tick]`: the cognitive tick service.
    pub tick: ticker::TickSection,
}

impl Default for EccSection {
    fn default() -> Self {
        EccSection {
            snapshot_every: 10_000,
            calibrate: true,
            shares: BTreeMap::new(),
            tick: ticker::TickSection::default(),
        }
    }
}

/// The ecc unit. Register it before the apps unit (apps resume at boot and
/// their agents may call ECC at once).
#[derive(Default)]
pub struct EccUnit {
    inner: Arc<Inner>,
}

impl EccUnit {
    /// The unit (configured at boot from `[ecc]`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Read access to the state (for tests and benches in the host).
    pub fn read(&self) -> RwLockReadGuard<'_, Ecc> {
        self.inner.read()
    }
}

/// What the unit keeps: the state and what recovery and snapshots need.
pub(crate) struct Inner {
    ecc: RwLock<Ecc>,
    section: OnceLock<EccSection>,
    dir: OnceLock<PathBuf>,
    chain: OnceLock<ChainView>,
    calibration: Mutex<Option<CalibrationReport>>,
    /// Ops applied since the last snapshot.
    since_snapshot: AtomicU64,
    /// Ops applied (and recorded) in this run.
    applied: AtomicU64,
    /// Ops replayed at boot.
    replayed: AtomicU64,
    saving: AtomicBool,
    last_snapshot: Mutex<Option<Value>>,
    problem: Mutex<Option<String>>,
    /// The tick service (none when `[ecc.tick] enabled = false`).
    ticker: OnceLock<Arc<ticker::Ticker>>,
    tick_task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            ecc: RwLock::new(Ecc::new(Arc::new(SystemClock), EccConfig::default())),
            section: OnceLock::new(),
            dir: OnceLock::new(),
            chain: OnceLock::new(),
            calibration: Mutex::new(None),
            since_snapshot: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            saving: AtomicBool::new(false),
            last_snapshot: Mutex::new(None),
            problem: Mutex::new(None),
            ticker: OnceLock::new(),
            tick_task: Mutex::new(None),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Ecc> {
        self.ecc.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Ecc> {
        self.ecc.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn section(&self) -> EccSection {
        self.section.get().cloned().unwrap_or_default()
    }

    /// An op was recorded and applied: snapshot in the background when
    /// `snapshot_every` ops have gone by.
    pub(crate) fn applied(self: &Arc<Self>) {
        self.applied.fetch_add(1, Ordering::Relaxed);
        let n = self.since_snapshot.fetch_add(1, Ordering::Relaxed) + 1;
        let every = self.section().snapshot_every;
        if every > 0 && n >= every && !self.saving.swap(true, Ordering::AcqRel) {
            let me = self.clone();
            let run = move || {
                if let Err(e) = me.snapshot() {
                    *lock(&me.problem) = Some(format!("snapshot failed: {e}"));
                }
                me.saving.store(false, Ordering::Release);
            };
            match tokio::runtime::Handle::try_current() {
                Ok(h) => drop(h.spawn_blocking(run)),
                Err(_) => run(),
            }
        }
    }

    /// Write a snapshot now. Its marker is the chain's length: every
    /// `ecc.op` record below it is in the state (records are appended under
    /// the write lock, and this holds the read lock).
    pub(crate) fn snapshot(&self) -> KernelResult<()> {
        let (Some(dir), Some(chain)) = (self.dir.get(), self.chain.get()) else {
            return Ok(());
        };
        let ecc = self.read();
        let marker = chain.len();
        let started = std::time::Instant::now();
        let info = ecc
            .save_snapshot(dir, marker)
            .map_err(|e| KernelError::Failed(format!("ecc snapshot in {}: {e}", dir.display())))?;
        self.since_snapshot.store(0, Ordering::Relaxed);
        *lock(&self.last_snapshot) = Some(json!({
            "marker": marker,
            "bytes": info.bytes + info.graph_bytes,
            "ms": started.elapsed().as_secs_f64() * 1e3,
        }));
        Ok(())
    }

    /// Load the snapshot (if any) and replay the `ecc.op` records after it.
    fn recover(&self, kernel: &Kernel) -> Result<Value, SubsystemError> {
        let err = |m: String| SubsystemError::new("ecc", m);
        let dir = kernel.state_dir().join("ecc");
        std::fs::create_dir_all(&dir)
            .map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
        let chain = kernel.chain();
        let (mut ecc, from) = if dir.join(SNAPSHOT_FILE).exists() {
            let (ecc, info) = Ecc::load_snapshot(&dir, Arc::new(SystemClock), EccConfig::default())
                .map_err(|e| err(format!("loading the snapshot: {e}")))?;
            (ecc, info.marker)
        } else {
            (Ecc::new(Arc::new(SystemClock), EccConfig::default()), 0)
        };
        let mut ops = 0u64;
        let mut failed = 0u64;
        chain
            .for_each(from.., |ev| {
                if ev.kind != OP_KIND {
                    return Ok(());
                }
                let op: EccOp = ciborium::from_reader(ev.payload.as_slice()).map_err(|e| {
                    KernelError::Failed(format!("chain event {}: not an ecc op: {e}", ev.seq))
                })?;
                ops += 1;
                // A recorded op that failed live fails again, changing nothing.
                if ecc.apply(&op).is_err() {
                    failed += 1;
                }
                Ok(())
            })
            .map_err(|e| err(format!("replaying the chain from {from}: {e}")))?;
        *self.write() = ecc;
        let _ = self.dir.set(dir);
        let _ = self.chain.set(chain);
        self.replayed.store(ops, Ordering::Relaxed);
        if ops > 0 {
            self.snapshot().map_err(|e| err(e.to_string()))?;
        }
        Ok(json!({ "snapshot_marker": from, "replayed": ops, "refused_on_replay": failed }))
    }

    /// The namespace patterns agents of `app` may use besides its own.
    pub(crate) fn shares(&self, app: &str) -> Vec<String> {
        self.section
            .get()
            .and_then(|s| s.shares.get(app).cloned())
            .unwrap_or_default()
    }
}

/// What an agent's store carries so its `ecc` host functions find the unit.
pub(crate) struct AgentEcc(pub(crate) Arc<Inner>);

impl Subsystem for EccUnit {
    fn name(&self) -> &'static str {
        "ecc"
    }

    fn link(&self, linker: &mut AgentLinker) -> KernelResult<()> {
        host::link(linker)
    }

    fn init(&self, cx: &InitCx<'_>) -> Result<(), SubsystemError> {
        let section: EccSection = cx.section().map_err(|e| SubsystemError::new("ecc", e))?;
        if section.calibrate {
            match run_calibration(&CalibrationConfig::default()) {
                Ok(report) => {
                    cx.note("ecc.calibration", &report)
                        .map_err(|e| SubsystemError::new("ecc", e))?;
                    cx.log(
                        LogLevel::Info,
                        format!(
                            "calibration {:.1} ms: insert {} ns, search {} ns, edge {} ns, blake3 {} ns",
                            report.total_ns as f64 / 1e6,
                            report.insert_ns,
                            report.search_ns,
                            report.edge_ns,
                            report.hash_ns
                        ),
                    );
                    *lock(&self.inner.calibration) = Some(report);
                }
                Err(e) => cx.log(LogLevel::Error, format!("calibration failed: {e}")),
            }
        }
        if section.tick.enabled {
            let config = section
                .tick
                .config(lock(&self.inner.calibration).as_ref())
                .map_err(|e| SubsystemError::new("ecc", e))?;
            let t = ticker::Ticker::new(config, section.tick.topic.clone())
                .map_err(|e| SubsystemError::new("ecc", e))?;
            let _ = self.inner.ticker.set(Arc::new(t));
        }
        let _ = self.inner.section.set(section);
        Ok(())
    }

    fn start<'a>(&'a self, kernel: &'a Kernel) -> BoxFuture<'a, Result<(), SubsystemError>> {
        Box::pin(async move {
            let report = self.inner.recover(kernel)?;
            kernel.log(LogLevel::Info, format!("ecc: recovered {report}"));
            if let Some(t) = self.inner.ticker.get() {
                let task = tokio::spawn(t.clone().run(kernel.clone()));
                *lock(&self.inner.tick_task) = Some(task.abort_handle());
            }
            Ok(())
        })
    }

    fn stop(&self) {
        if let Some(t) = lock(&self.inner.tick_task).take() {
            t.abort();
        }
        if let Err(e) = self.inner.snapshot() {
            *lock(&self.inner.problem) = Some(e.to_string());
        }
    }

    fn actions(&self) -> &'static [&'static str] {
        actions::ACTIONS
    }

    fn control_ops(&self) -> &'static [&'static str] {
        control::OPS
    }

    fn prepare(&self, _agent: &AgentPrincipal, ext: &mut Extensions) -> KernelResult<()> {
        ext.insert(AgentEcc(self.inner.clone()));
        Ok(())
    }

    fn control<'a>(&'a self, cx: ControlCx<'a>) -> BoxFuture<'a, ControlReply> {
        Box::pin(control::serve(self.inner.clone(), cx))
    }

    fn status(&self) -> Value {
        if let Some(p) = lock(&self.inner.problem).clone() {
            return json!(format!("PROBLEM: {p}"));
        }
        let ecc = self.inner.read();
        json!(format!(
            "{} namespaces; {} ops applied, {} replayed at boot",
            ecc.namespaces().count(),
            self.inner.applied.load(Ordering::Relaxed),
            self.inner.replayed.load(Ordering::Relaxed)
        ))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The snapshot directory of a kernel state dir.
pub fn snapshot_dir(state: &Path) -> PathBuf {
    state.join("ecc")
}
