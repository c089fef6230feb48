//! The cron subsystem: scheduled messages. The cron component keeps the
//! job table ([`component`]); this unit owns time and the chokepoint. Adding
//! and removing a job are actions (`cron.add`, `cron.remove`); a job fires
//! as its owner (the operator, an app, an agent) through an ordinary send,
//! so a job can never message anyone its owner could not; each firing is
//! noted as `cron.fire`. `[cron]` in `weft.toml`; `weaver cron ...` is
//! [`control`]; agents reach it through the `cron.add` / `cron.remove`
//! built-ins (with the sender's authority and the receiver's).
//!
//! Failure policy: a cron component that cannot be loaded leaves the
//! kernel running without cron (recorded as `cron.failure`, logged); a
//! failing tick is skipped and recorded, and the next call gets a fresh
//! instance loaded with the last good table.

mod component;
pub mod control;

use std::any::Any;
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use weft_chain::now_ns;
use weft_kernel::console::LogLevel;
use weft_kernel::control::{ControlCx, ControlReply};
use weft_kernel::ipc::SendMessage;
use weft_kernel::{
    ActCx, Action, AppClearCx, AppStepCx, BoxFuture, BuiltinCx, InitCx, Kernel, KernelError,
    KernelResult, KernelState, KernelView, MessageTarget, Note, Payload, Principal, Subsystem,
    SubsystemError,
};
use weft_model::plan::Step;

pub use component::{default_limits, ComponentCron, CronJob, CronJobSpec, Rejected, STATE_FILE};
pub use control::cli;

use weft_kernel::components::component_source;

/// Longest the driver sleeps without looking again (clock jumps).
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// Pause after a failed tick before the next attempt.
const FAILURE_BACKOFF: Duration = Duration::from_millis(200);

/// `[cron]` in `weft.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CronSection {
    /// `false`: no cron.
    pub enabled: Option<bool>,
    /// A replacement cron component.
    pub component: Option<PathBuf>,
}

/// The cron subsystem.
#[derive(Default)]
pub struct CronUnit {
    cron: OnceLock<ComponentCron>,
    problem: OnceLock<String>,
    driver: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl CronUnit {
    /// The job table (`None` when disabled or failed to load).
    pub fn cron(&self) -> Option<&ComponentCron> {
        self.cron.get()
    }

    fn require(&self) -> KernelResult<&ComponentCron> {
        self.cron.get().ok_or_else(|| match self.problem.get() {
            Some(p) => KernelError::Failed(format!("cron is unavailable: {p}")),
            None => KernelError::NotFound("no cron service is installed".into()),
        })
    }

    async fn drive(kernel: Kernel, cron: ComponentCron) {
        while kernel.state() == KernelState::Running {
            let sleep = match cron.next_wake(now_ns()) {
                Ok(Some(at)) => Duration::from_nanos(at.saturating_sub(now_ns())).min(MAX_SLEEP),
                Ok(None) => MAX_SLEEP,
                Err(e) => {
                    note_failure(&kernel, "next-wake", &e).await;
                    FAILURE_BACKOFF
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = cron.changed() => continue,
            }
            if kernel.state() != KernelState::Running {
                break;
            }
            // A failed tick is skipped (and recorded); jobs stay due.
            let fired = match cron.tick(now_ns()) {
                Ok(f) => f,
                Err(e) => {
                    note_failure(&kernel, "tick", &e).await;
                    tokio::time::sleep(FAILURE_BACKOFF).await;
                    continue;
                }
            };
            for f in fired {
                fire(&kernel, &cron, f).await;
            }
        }
    }
}

async fn note_failure(kernel: &Kernel, phase: &str, e: &crate::ComponentError) {
    let note = Note::new(
        "cron",
        "cron.failure",
        json!({ "phase": phase, "kind": e.kind(), "error": e.to_string() }),
    );
    if let Err(err) = kernel.act(&Principal::Kernel, note).await {
        kernel.log(
            LogLevel::Error,
            format!("cron: cannot record a failure ({e}): {err}"),
        );
    }
}

/// Send a fired job as its owner, then note the firing.
async fn fire(kernel: &Kernel, cron: &ComponentCron, f: component::Fired) {
    let owner = cron
        .list()
        .ok()
        .and_then(|jobs| jobs.into_iter().find(|j| j.id == f.job_id))
        .map(|j| j.owner);
    let payload: Value = serde_json::from_str(&f.payload).unwrap_or(Value::Null);
    let sent = match owner.as_deref().and_then(|o| kernel.principal_of(o)) {
        Some(who) => kernel
            .act(
                &who,
                SendMessage::new(
                    MessageTarget::Named(f.target.clone()),
                    Payload::Json(payload),
                ),
            )
            .await
            .map(|_| ()),
        None => Err(KernelError::NotFound(format!(
            "the job's owner `{}` is not running",
            owner.as_deref().unwrap_or("?")
        ))),
    };
    let note = Note::new(
        "cron",
        "cron.fire",
        json!({
            "job": f.job_id,
            "owner": owner,
            "target": f.target,
            "scheduled_ns": f.scheduled_ns,
            "delivered": sent.is_ok(),
            "error": sent.err().map(|e| e.to_string()),
        }),
    );
    if let Err(e) = kernel.act(&Principal::Kernel, note).await {
        kernel.log(
            LogLevel::Error,
            format!("cron: cannot record a firing: {e}"),
        );
    }
}

impl Subsystem for CronUnit {
    fn name(&self) -> &'static str {
        "cron"
    }

    fn init(&self, cx: &InitCx<'_>) -> Result<(), SubsystemError> {
        let err = |e: KernelError| SubsystemError::new("cron", e);
        let section: CronSection = cx.section().map_err(err)?;
        if section.enabled == Some(false) {
            cx.log(LogLevel::Info, "disabled");
            return Ok(());
        }
        let source = component_source(section.component.as_deref(), cx.config_path(), "cron.wasm");
        let built = source
            .load(cx.runtime())
            .map_err(crate::ComponentError::from)
            .and_then(|c| {
                ComponentCron::new(cx.runtime(), c, Some(cx.state_dir()), default_limits())
            });
        match built {
            Ok(c) => {
                if let Some(r) = c.rejected() {
                    cx.note(
                        "cron.failure",
                        &json!({ "phase": "import", "kind": "rejected state", "error": r.why,
                                 "moved_to": r.moved_to }),
                    )
                    .map_err(err)?;
                }
                // init runs once per kernel.
                let _first = self.cron.set(c);
            }
            Err(e) => {
                cx.note(
                    "cron.failure",
                    &json!({ "phase": "install", "kind": e.kind(), "error": e.to_string() }),
                )
                .map_err(err)?;
                cx.log(LogLevel::Error, format!("unavailable: {e}"));
                let _first = self.problem.set(e.to_string());
            }
        }
        Ok(())
    }

    fn start<'a>(&'a self, kernel: &'a Kernel) -> BoxFuture<'a, Result<(), SubsystemError>> {
        Box::pin(async move {
            if let Some(c) = self.cron.get() {
                let task = tokio::spawn(CronUnit::drive(kernel.clone(), c.clone()));
                *self.driver.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
            }
            Ok(())
        })
    }

    fn stop(&self) {
        if let Some(t) = self.driver.lock().unwrap_or_else(|p| p.into_inner()).take() {
            t.abort();
        }
    }

    fn actions(&self) -> &'static [&'static str] {
        &["cron.add", "cron.remove", "cron.list"]
    }

    fn control_ops(&self) -> &'static [&'static str] {
        &["ls", "add", "rm"]
    }

    fn app_actions(&self) -> &'static [&'static str] {
        &["cron.add", "cron.remove"]
    }

    fn claims_step(&self, step: &Step) -> bool {
        matches!(step, Step::AddCron(_))
    }

    /// `add-cron`: the app's job, owned by and fired as the app, to its
    /// agent `<app>.<target>`.
    fn app_step<'a>(&'a self, cx: AppStepCx<'a>) -> BoxFuture<'a, KernelResult<()>> {
        Box::pin(async move {
            let (Step::AddCron(job), Some(app)) = (cx.step, cx.app.as_app()) else {
                return Err(KernelError::Invalid(format!(
                    "cron does not carry out {:?}",
                    cx.step
                )));
            };
            let spec = CronJobSpec {
                schedule: job.schedule.clone(),
                target: format!("{}.{}", app.name(), job.target),
                payload: serde_json::from_str(&job.payload).unwrap_or(Value::Null),
            };
            cx.kernel.act(cx.app, CronAdd::new(spec)).await.map(|_| ())
        })
    }

    /// Remove every job the app owns (whatever the reason: a start adds
    /// them again from its plan).
    fn app_clear<'a>(&'a self, cx: AppClearCx<'a>) -> BoxFuture<'a, KernelResult<()>> {
        let (kernel, app) = (cx.kernel, cx.app);
        Box::pin(async move {
            let Some(cron) = self.cron.get().cloned() else {
                return Ok(());
            };
            let jobs = tokio::task::spawn_blocking(move || cron.list())
                .await
                .map_err(|e| KernelError::Failed(format!("cron: {e}")))?
                .map_err(|e| KernelError::Failed(e.to_string()))?;
            for j in jobs.into_iter().filter(|j| j.owner == app.gate_name()) {
                kernel.act(app, CronRemove::new(&j.id)).await?;
            }
            Ok(())
        })
    }

    fn builtins(&self) -> &'static [&'static str] {
        &["cron.add", "cron.remove"]
    }

    /// `{"cmd": "cron.add", "schedule": S, "target": A, "payload": {..}}`
    /// (target defaults to the receiver) and `{"cmd": "cron.remove", "id": I}`:
    /// the receiving agent's jobs, managed for the sender, with both
    /// authorities.
    fn builtin<'a>(&'a self, cx: BuiltinCx<'a>) -> BoxFuture<'a, KernelResult<Payload>> {
        Box::pin(async move {
            match cx.cmd {
                "cron.add" => {
                    let mut spec = cx.request.clone();
                    if let Some(o) = spec.as_object_mut() {
                        o.remove("cmd");
                        o.entry("target").or_insert(json!(cx.receiver.gate_name()));
                    }
                    let spec: CronJobSpec = serde_json::from_value(spec)
                        .map_err(|e| KernelError::Invalid(format!("cron.add: {e}")))?;
                    let job = cx
                        .kernel
                        .act(cx.sender, CronAdd::new(spec).via(cx.receiver.clone()))
                        .await?;
                    Ok(Payload::Json(json!(job)))
                }
                _ => {
                    let id = cx
                        .request
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    cx.kernel
                        .act(cx.sender, CronRemove::new(&id).via(cx.receiver.clone()))
                        .await?;
                    Ok(Payload::Json(json!({ "removed": id })))
                }
            }
        })
    }

    fn status(&self) -> Value {
        match (self.cron.get(), self.problem.get()) {
            (Some(c), _) => match c.list() {
                Ok(jobs) => json!(format!("{} jobs", jobs.len())),
                Err(e) => json!(format!("failing: {e}")),
            },
            (None, Some(p)) => json!(format!("UNAVAILABLE: {p}")),
            (None, None) => json!("disabled"),
        }
    }

    fn control<'a>(&'a self, cx: ControlCx<'a>) -> BoxFuture<'a, ControlReply> {
        Box::pin(control::serve(self, cx))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `who` may address `target` (a job is a later message to it).
fn may_target(who: &Principal, k: &KernelView<'_>, target: &str) -> bool {
    match who {
        Principal::Agent(a) => {
            let pid = k.agent(target).map_or(0, |(pid, _)| pid);
            a.caps.cron && a.caps.ipc.allows_send(a.parent, pid, target)
        }
        other => other.may_message(0, target),
    }
}

/// Schedule a job (`cron.add`); it fires as its owner: whoever adds it, or
/// the agent a built-in request was sent to.
pub struct CronAdd {
    spec: CronJobSpec,
    via: Option<Principal>,
    cron: Option<ComponentCron>,
}

impl CronAdd {
    /// Schedule `spec`.
    pub fn new(spec: CronJobSpec) -> Self {
        CronAdd {
            spec,
            via: None,
            cron: None,
        }
    }

    /// Through `agent`, which owns the job; the asker needs the right too.
    pub fn via(mut self, agent: Principal) -> Self {
        self.via = Some(agent);
        self
    }
}

fn unit<'k>(k: &KernelView<'k>) -> KernelResult<&'k CronUnit> {
    k.subsystem::<CronUnit>()
        .ok_or_else(|| KernelError::NotFound("no cron service is installed".into()))
}

impl Action for CronAdd {
    type Output = CronJob;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("cron.add")
    }

    fn gate_context(&self) -> Value {
        json!({ "target": self.spec.target, "schedule": self.spec.schedule,
                "via": self.via.as_ref().map(|v| v.gate_name()) })
    }

    fn also_needs(&self) -> Option<&Principal> {
        self.via.as_ref()
    }

    fn authorize(&mut self, who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        for p in std::iter::once(who).chain(self.via.as_ref()) {
            if !may_target(p, k, &self.spec.target) {
                return Err(KernelError::Denied(format!(
                    "`{}` may not schedule messages to `{}`",
                    p.gate_name(),
                    self.spec.target
                )));
            }
        }
        self.cron = Some(unit(k)?.require()?.clone());
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<CronJob> {
        let owner = self
            .via
            .as_ref()
            .unwrap_or(cx.who())
            .gate_name()
            .to_string();
        let cron = self
            .cron
            .ok_or_else(|| KernelError::Failed("cron.add was not authorized".into()))?;
        let spec = self.spec;
        let o = owner.clone();
        let job = tokio::task::spawn_blocking(move || cron.add(&o, spec))
            .await
            .map_err(|e| KernelError::Failed(format!("cron.add: {e}")))?
            .map_err(|e| KernelError::Failed(e.to_string()))?;
        cx.record(
            "cron.add",
            &json!({ "id": job.id, "owner": owner, "target": job.spec.target,
                     "schedule": job.spec.schedule }),
        )?;
        Ok(job)
    }
}

/// Remove a job (`cron.remove`); only its owner (or the operator) may.
pub struct CronRemove {
    id: String,
    via: Option<Principal>,
    found: Option<(ComponentCron, CronJob)>,
}

impl CronRemove {
    /// Remove job `id`.
    pub fn new(id: &str) -> Self {
        CronRemove {
            id: id.to_string(),
            via: None,
            found: None,
        }
    }

    /// Through `agent`, which must own the job.
    pub fn via(mut self, agent: Principal) -> Self {
        self.via = Some(agent);
        self
    }
}

impl Action for CronRemove {
    type Output = ();

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("cron.remove")
    }

    fn gate_context(&self) -> Value {
        json!({ "id": self.id })
    }

    fn also_needs(&self) -> Option<&Principal> {
        self.via.as_ref()
    }

    fn authorize(&mut self, who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        let cron = unit(k)?.require()?.clone();
        let job = cron
            .list()
            .map_err(|e| KernelError::Failed(e.to_string()))?
            .into_iter()
            .find(|j| j.id == self.id)
            .ok_or_else(|| KernelError::NotFound(format!("no cron job `{}`", self.id)))?;
        let owner = self.via.as_ref().unwrap_or(who);
        if !owner.owns(&job.owner) {
            return Err(KernelError::Denied(format!(
                "job `{}` belongs to `{}`, not `{}`",
                self.id,
                job.owner,
                owner.gate_name()
            )));
        }
        if let (Some(_), Principal::Agent(a)) = (&self.via, who) {
            if !a.caps.cron {
                return Err(KernelError::Denied(format!(
                    "`{}` may not manage cron jobs",
                    a.name
                )));
            }
        }
        self.found = Some((cron, job));
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<()> {
        let (cron, job) = self
            .found
            .ok_or_else(|| KernelError::Failed("cron.remove was not authorized".into()))?;
        cx.record("cron.remove", &json!({ "id": job.id, "owner": job.owner }))?;
        let (owner, id) = (job.owner, job.id);
        tokio::task::spawn_blocking(move || cron.remove(&owner, &id))
            .await
            .map_err(|e| KernelError::Failed(format!("cron.remove: {e}")))?
            .map_err(|e| KernelError::Failed(e.to_string()))
    }
}
