//! [`ComponentCron`]: the job table, kept by the cron component.
//!
//! The component keeps the table and does the schedule arithmetic; this
//! adapter calls it with fuel and a deadline, exports the table after
//! every change and writes it to `<state_dir>/cron.json` (tmp + fsync +
//! rename), imports it at boot, and recreates a failed instance from the
//! last good table. It records nothing itself: the unit ([`super`]) turns
//! its results and failures into actions and notes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;
use weft_chain::now_ns;
use weft_runtime::{Limits, LoadedComponent, Runtime};

use crate::bindings::cron::weft::kernel::cron_types as wit;
use crate::bindings::cron::{Cron, CronPre};
use crate::exec::{lock, world, Guest, Instance};
use crate::ComponentError;
/// A job that came due in a tick.
pub use wit::Fired;

world!(Cron, CronPre, "cron");

/// File the job table is persisted to, under the state dir.
pub const STATE_FILE: &str = "cron.json";

/// A job as it is asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CronJobSpec {
    /// Cron expression (5 or 6 fields), `every <duration>` or `at <RFC 3339>`.
    pub schedule: String,
    /// Agent name the fired job is sent to.
    pub target: String,
    /// Message body sent when it fires.
    #[serde(default)]
    pub payload: Value,
}

/// A scheduled job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CronJob {
    /// Unique within the table, e.g. `job-7`.
    pub id: String,
    /// The principal it fires as (`operator`, `app:hello`, an agent).
    pub owner: String,
    /// What it does.
    #[serde(flatten)]
    pub spec: CronJobSpec,
}

/// A table the component refused at boot, moved aside.
#[derive(Clone, Debug)]
pub struct Rejected {
    /// Why.
    pub why: String,
    /// Where the file went.
    pub moved_to: PathBuf,
}

/// Per-call limits of the cron component: generous enough for a large table.
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
    /// `None` after a failure; recreated from `table` on next use.
    instance: Mutex<Option<Instance<Cron>>>,
    /// The last exported job table (the source of truth for recovery).
    table: Mutex<String>,
    state_file: Option<PathBuf>,
    wake: Notify,
    rejected: Option<Rejected>,
}

/// The cron service. Cheap to clone.
#[derive(Clone)]
pub struct ComponentCron {
    inner: Arc<Inner>,
}

impl ComponentCron {
    /// Instantiate the component and restore the job table from
    /// `state_dir/cron.json` if there is one. A table the component rejects
    /// is moved aside to `cron.json.rejected` ([`ComponentCron::rejected`]
    /// says so, for the unit to record).
    pub fn new(
        runtime: &Runtime,
        component: LoadedComponent,
        state_dir: Option<&Path>,
        limits: Limits,
    ) -> Result<Self, ComponentError> {
        let guest: Guest<Cron> = Guest::new(runtime, component, limits)?;
        let mut inst = guest.instantiate()?;
        let state_file = state_dir.map(|d| d.join(STATE_FILE));
        let mut rejected = None;
        if let Some(f) = state_file.as_ref().filter(|f| f.exists()) {
            let text = std::fs::read_to_string(f).map_err(|e| ComponentError::Io {
                context: format!("cannot read {}", f.display()),
                source: e,
            })?;
            let imported =
                guest.call(&mut inst, async |w, s| w.call_import_state(s, &text).await)?;
            if let Err(why) = imported {
                let aside = f.with_extension("json.rejected");
                std::fs::rename(f, &aside).map_err(|e| ComponentError::Io {
                    context: format!("cannot move the rejected {} aside", f.display()),
                    source: e,
                })?;
                rejected = Some(Rejected {
                    why,
                    moved_to: aside,
                });
            }
        }
        let table = guest.call(&mut inst, async |w, s| w.call_export_state(s).await)?;
        Ok(ComponentCron {
            inner: Arc::new(Inner {
                guest,
                instance: Mutex::new(Some(inst)),
                table: Mutex::new(table),
                state_file,
                wake: Notify::new(),
                rejected,
            }),
        })
    }

    /// The table refused at boot, if one was.
    pub fn rejected(&self) -> Option<&Rejected> {
        self.inner.rejected.as_ref()
    }

    /// Resolves when a job was added or removed (the driver sleeps on it).
    pub async fn changed(&self) {
        self.inner.wake.notified().await
    }

    /// BLAKE3 of the component.
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
        f: impl AsyncFnOnce(&Cron, &mut crate::exec::GuestStore) -> wasmtime::Result<R>,
    ) -> Result<R, ComponentError> {
        let i = &self.inner;
        let mut slot = lock(&i.instance);
        (|| {
            let mut inst = match slot.take() {
                Some(inst) => inst,
                None => {
                    let mut inst = i.guest.instantiate()?;
                    let table = lock(&i.table).clone();
                    i.guest
                        .call(&mut inst, async |w, s| w.call_import_state(s, &table).await)?
                        .map_err(ComponentError::Component)?;
                    inst
                }
            };
            let r = i.guest.call(&mut inst, f)?;
            *slot = Some(inst);
            Ok(r)
        })()
    }

    /// Export the table and write it out (tmp + fsync + rename). When it
    /// cannot be written (a full disk), the change is not kept: the
    /// instance is dropped, and the next call recreates it from the last
    /// table written.
    fn persist(&self) -> Result<(), ComponentError> {
        let table = self.with(async |w, s| w.call_export_state(s).await)?;
        if let Some(f) = &self.inner.state_file {
            if let Err(e) = write_atomic(f, table.as_bytes()) {
                *lock(&self.inner.instance) = None;
                return Err(ComponentError::Io {
                    context: format!("cannot write {}", f.display()),
                    source: e,
                });
            }
        }
        *lock(&self.inner.table) = table;
        Ok(())
    }

    /// Jobs due at or before `now_ns` (advancing their schedules).
    pub fn tick(&self, now_ns: u64) -> Result<Vec<wit::Fired>, ComponentError> {
        let fired = self.with(async |w, s| w.call_tick(s, now_ns).await)?;
        if !fired.is_empty() {
            self.persist()?;
        }
        Ok(fired)
    }

    /// When the next job is due after `now_ns` (`None`: no jobs), so the driver
    /// can sleep until then.
    pub fn next_wake(&self, now_ns: u64) -> Result<Option<u64>, ComponentError> {
        self.with(async |w, s| w.call_next_wake(s, now_ns).await)
    }

    /// The jobs with their next due time and fire counts.
    pub fn jobs(&self) -> Result<Vec<wit::Job>, ComponentError> {
        self.with(async |w, s| w.call_list(s).await)
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

impl ComponentCron {
    /// Add a job owned by `owner`; the table is persisted before this
    /// returns. A schedule the component refuses is a `Component` error.
    pub fn add(&self, owner: &str, spec: CronJobSpec) -> Result<CronJob, ComponentError> {
        let wspec = wit::JobSpec {
            schedule: spec.schedule,
            target: spec.target,
            payload: spec.payload.to_string(),
        };
        let now = now_ns();
        let job = self
            .with(async |w, s| w.call_add(s, owner, &wspec, now).await)?
            .map_err(ComponentError::Component)?;
        self.persist()?;
        self.inner.wake.notify_one();
        Ok(spec_of(&job))
    }

    /// Remove job `id` (the caller has checked who may).
    pub fn remove(&self, owner: &str, id: &str) -> Result<(), ComponentError> {
        self.with(async |w, s| w.call_remove(s, owner, id).await)?
            .map_err(ComponentError::Component)?;
        self.persist()?;
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Every job.
    pub fn list(&self) -> Result<Vec<CronJob>, ComponentError> {
        self.jobs().map(|js| js.iter().map(spec_of).collect())
    }
}

/// Write `bytes` to `path` so a crash leaves the old or the new file.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        // Leave no half-written temp file on a full disk.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // Make the rename itself durable.
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
