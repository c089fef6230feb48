//! [`ComponentCron`]: the kernel's cron service, answered by the cron
//! component, plus the driver task that owns time.
//!
//! The component keeps the job table and does the schedule arithmetic. The
//! host asks it when the next job is due, sleeps until then (or until a job
//! is added), calls `tick` and sends each fired job to its target agent.
//! The table is exported after every change and written to
//! `<state_dir>/cron.json` (tmp + fsync + rename); it is imported at boot.
//! A failing component skips that tick (recorded as `cron.failure`); the
//! next call gets a fresh instance loaded with the last good table.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Notify;
use weft_chain::{now_ns, ChainManager};
use weft_kernel::cron::{CronJob, CronJobSpec, CronService};
use weft_kernel::{Kernel, KernelState, MessageTarget, Payload};
use weft_runtime::{Limits, LoadedComponent, Runtime};

use crate::bindings::cron::weft::kernel::cron_types as wit;
use crate::bindings::cron::{Cron, CronPre};
use crate::exec::{lock, world, Guest, Instance};
use crate::SubsystemError;

world!(Cron, CronPre, "cron");

/// File the job table is persisted to, under the state dir.
pub const STATE_FILE: &str = "cron.json";

/// Longest the driver sleeps without looking again (jobs added by another
/// path, clock jumps).
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// Pause after a failed tick before the next attempt.
const FAILURE_BACKOFF: Duration = Duration::from_millis(200);

pub fn default_limits() -> Limits {
    Limits {
        fuel: 500_000_000,
        timeout: std::time::Duration::from_secs(2),
        max_memory_bytes: 128 << 20,
        max_output_bytes: 64 << 10,
        ..Limits::default()
    }
}

struct Inner {
    guest: Guest<Cron>,
    chain: Arc<ChainManager>,
    /// `None` after a failure; recreated from `table` on next use.
    instance: Mutex<Option<Instance<Cron>>>,
    /// The last exported job table (the source of truth for recovery).
    table: Mutex<String>,
    state_file: Option<PathBuf>,
    wake: Notify,
}

/// The cron service. Cheap to clone.
#[derive(Clone)]
pub struct ComponentCron {
    inner: Arc<Inner>,
}

impl ComponentCron {
    /// Instantiate the component and restore the job table from
    /// `state_dir/cron.json` if there is one. A table the component rejects
    /// is moved aside to `cron.json.rejected` and recorded.
    pub fn new(
        runtime: &Runtime,
        chain: Arc<ChainManager>,
        component: LoadedComponent,
        state_dir: Option<&Path>,
        limits: Limits,
    ) -> Result<Self, SubsystemError> {
        let guest: Guest<Cron> = Guest::new(runtime, component, limits)?;
        let mut inst = guest.instantiate()?;
        let state_file = state_dir.map(|d| d.join(STATE_FILE));
        if let Some(f) = state_file.as_ref().filter(|f| f.exists()) {
            let text = std::fs::read_to_string(f).map_err(|e| SubsystemError::Io {
                context: format!("cannot read {}", f.display()),
                source: e,
            })?;
            let imported =
                guest.call(&mut inst, async |w, s| w.call_import_state(s, &text).await)?;
            if let Err(why) = imported {
                let aside = f.with_extension("json.rejected");
                let _ = std::fs::rename(f, &aside);
                let _ = chain.append(
                    "cron",
                    "cron.failure",
                    &json!({ "phase": "import", "kind": "rejected state", "error": why,
                             "moved_to": aside }),
                );
            }
        }
        let table = guest.call(&mut inst, async |w, s| w.call_export_state(s).await)?;
        Ok(ComponentCron {
            inner: Arc::new(Inner {
                guest,
                chain,
                instance: Mutex::new(Some(inst)),
                table: Mutex::new(table),
                state_file,
                wake: Notify::new(),
            }),
        })
    }

    pub fn component_digest(&self) -> String {
        self.inner.guest.component.digest.to_hex()
    }

    /// Change the limits of later calls (tests use a tiny fuel budget to
    /// make the component fail).
    pub fn set_limits(&self, limits: Limits) {
        self.inner.guest.set_limits(limits);
    }

    /// Run `f` on the instance, recreating it (from the last good table)
    /// if an earlier call failed.
    fn with<R>(
        &self,
        phase: &str,
        f: impl AsyncFnOnce(&Cron, &mut crate::exec::GuestStore) -> wasmtime::Result<R>,
    ) -> Result<R, SubsystemError> {
        let i = &self.inner;
        let mut slot = lock(&i.instance);
        let r = (|| {
            let mut inst = match slot.take() {
                Some(inst) => inst,
                None => {
                    let mut inst = i.guest.instantiate()?;
                    let table = lock(&i.table).clone();
                    i.guest
                        .call(&mut inst, async |w, s| w.call_import_state(s, &table).await)?
                        .map_err(SubsystemError::Component)?;
                    inst
                }
            };
            let r = i.guest.call(&mut inst, f)?;
            *slot = Some(inst);
            Ok(r)
        })();
        if let Err(e) = &r {
            self.record_failure(phase, e);
        }
        r
    }

    fn record_failure(&self, phase: &str, e: &SubsystemError) {
        let _ = self.inner.chain.append(
            "cron",
            "cron.failure",
            &json!({ "phase": phase, "kind": e.kind(), "error": e.to_string() }),
        );
    }

    /// Export the table and write it out (tmp + fsync + rename).
    fn persist(&self) -> Result<(), SubsystemError> {
        let table = self.with("export", async |w, s| w.call_export_state(s).await)?;
        *lock(&self.inner.table) = table.clone();
        if let Some(f) = &self.inner.state_file {
            write_atomic(f, table.as_bytes()).map_err(|e| SubsystemError::Io {
                context: format!("cannot write {}", f.display()),
                source: e,
            })?;
        }
        Ok(())
    }

    /// Jobs due at or before `now_ns` (advancing their schedules).
    pub fn tick(&self, now_ns: u64) -> Result<Vec<wit::Fired>, SubsystemError> {
        let fired = self.with("tick", async |w, s| w.call_tick(s, now_ns).await)?;
        if !fired.is_empty() {
            self.persist()?;
        }
        Ok(fired)
    }

    pub fn next_wake(&self, now_ns: u64) -> Result<Option<u64>, SubsystemError> {
        self.with("next-wake", async |w, s| w.call_next_wake(s, now_ns).await)
    }

    /// The jobs with their next due time and fire counts.
    pub fn jobs(&self) -> Result<Vec<wit::Job>, SubsystemError> {
        self.with("list", async |w, s| w.call_list(s).await)
    }

    /// Start the driver: it fires due jobs at `kernel`'s agents until the
    /// kernel stops running.
    pub fn start(&self, kernel: Kernel) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move { me.drive(kernel).await })
    }

    async fn drive(self, kernel: Kernel) {
        while kernel.state() == KernelState::Running {
            let sleep = match self.next_wake(now_ns()) {
                Ok(Some(at)) => Duration::from_nanos(at.saturating_sub(now_ns())).min(MAX_SLEEP),
                Ok(None) => MAX_SLEEP,
                Err(_) => FAILURE_BACKOFF,
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.inner.wake.notified() => continue,
            }
            if kernel.state() != KernelState::Running {
                break;
            }
            // A failed tick is skipped (and recorded); jobs stay due.
            let Ok(fired) = self.tick(now_ns()) else {
                tokio::time::sleep(FAILURE_BACKOFF).await;
                continue;
            };
            for f in fired {
                self.deliver(&kernel, f).await;
            }
        }
    }

    async fn deliver(&self, kernel: &Kernel, f: wit::Fired) {
        let payload: Value = serde_json::from_str(&f.payload).unwrap_or(Value::Null);
        let sent = kernel
            .send(
                MessageTarget::Named(f.target.clone()),
                Payload::Json(payload),
            )
            .await;
        let _ = self.inner.chain.append(
            "cron",
            "cron.fire",
            &json!({
                "job": f.job_id,
                "target": f.target,
                "scheduled_ns": f.scheduled_ns,
                "delivered": sent.is_ok(),
                "error": sent.err().map(|e| e.to_string()),
            }),
        );
    }
}

fn spec_of(j: &wit::Job) -> CronJob {
    CronJob {
        id: j.id.clone(),
        owner: j.owner.clone(),
        spec: CronJobSpec {
            schedule: j.spec.schedule.clone(),
            target: j.spec.target.clone(),
            payload: serde_json::from_str(&j.spec.payload).unwrap_or(Value::Null),
        },
    }
}

impl CronService for ComponentCron {
    fn add(&self, owner: &str, spec: CronJobSpec) -> Result<CronJob, String> {
        let wspec = wit::JobSpec {
            schedule: spec.schedule,
            target: spec.target,
            payload: spec.payload.to_string(),
        };
        let now = now_ns();
        let job = self
            .with("add", async |w, s| w.call_add(s, owner, &wspec, now).await)
            .map_err(|e| e.to_string())??;
        self.persist().map_err(|e| e.to_string())?;
        self.inner.wake.notify_one();
        Ok(spec_of(&job))
    }

    fn remove(&self, owner: &str, id: &str) -> Result<(), String> {
        self.with("remove", async |w, s| w.call_remove(s, owner, id).await)
            .map_err(|e| e.to_string())??;
        self.persist().map_err(|e| e.to_string())?;
        self.inner.wake.notify_one();
        Ok(())
    }

    fn list(&self) -> Vec<CronJob> {
        self.jobs()
            .map(|js| js.iter().map(spec_of).collect())
            .unwrap_or_default()
    }
}

/// Write `bytes` to `path` so a crash leaves the old or the new file.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
