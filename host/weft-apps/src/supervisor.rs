//! `weft:kernel/supervisor`: an app's `supervisor` agents start instances
//! of the agents their app declares, and stop and restart them. Served by
//! the apps unit because the app's plan and installed components are here;
//! every call passes the chokepoint as the calling agent, which the kernel
//! refuses unless it is the app's supervisor ([`Spawn::for_app`]).

use wasmtime::component::HasData;
use weft_kernel::agent::bindings::weft::kernel::ipc::{Error, Pid};
use weft_kernel::agent::bindings::weft::kernel::supervisor::{self, Child};
use weft_kernel::agent::{to_wit_error, AgentCtx, AgentLinker};
use weft_kernel::{KernelError, KernelResult, Restart, Spawn, Stop};
use weft_runtime::StoreData;

use crate::app_error::AppError;
use crate::AppsUnit;

/// A supervisor's view for its calls.
struct SupervisorHost<'a> {
    ctx: &'a mut AgentCtx,
}

struct SupervisorData;

impl HasData for SupervisorData {
    type Data<'a> = SupervisorHost<'a>;
}

/// Link `weft:kernel/supervisor` into the agent world.
pub(crate) fn link(linker: &mut AgentLinker) -> KernelResult<()> {
    supervisor::add_to_linker::<_, SupervisorData>(linker, |s: &mut StoreData<AgentCtx>| {
        SupervisorHost { ctx: &mut s.data }
    })
    .map_err(|e| KernelError::Failed(format!("cannot link weft:kernel/supervisor: {e:#}")))
}

fn app_error(e: AppError) -> Error {
    match e {
        AppError::NoSuchAgent { .. } | AppError::NotFound(_) => Error::NotFound(e.to_string()),
        AppError::BadState { .. } => Error::Invalid(e.to_string()),
        AppError::Kernel { source, .. } => to_wit_error(*source),
        other => Error::Failed(other.to_string()),
    }
}

impl SupervisorHost<'_> {
    /// The caller's name and the app it belongs to.
    fn app(&self) -> Result<(String, String), Error> {
        let me = self.ctx.principal();
        let app = me.agent().and_then(|a| a.app.as_deref()).ok_or_else(|| {
            Error::Denied(format!("`{}` is not an agent of an app", me.gate_name()))
        })?;
        Ok((me.gate_name().to_string(), app.to_string()))
    }

    /// The pid of `<app>.<name>`.
    fn pid(&self, app: &str, name: &str) -> Result<Pid, Error> {
        let full = format!("{app}.{name}");
        self.ctx
            .kernel()
            .pid_of(&full)
            .ok_or_else(|| Error::NotFound(format!("no agent named `{full}`")))
    }
}

impl supervisor::Host for SupervisorHost<'_> {
    async fn spawn(
        &mut self,
        agent: String,
        name: String,
        config: Option<String>,
    ) -> Result<Pid, Error> {
        let (me, app) = self.app()?;
        let kernel = self.ctx.kernel();
        let manager = kernel
            .subsystem::<AppsUnit>()
            .and_then(AppsUnit::manager)
            .ok_or_else(|| Error::Failed("the apps unit is not running".into()))?;
        let (mut req, principal) = manager
            .agent_request(&app, &agent, &name)
            .map_err(app_error)?;
        if let Some(c) = config {
            req.config = serde_json::from_str(&c)
                .map_err(|e| Error::Invalid(format!("config is not JSON: {e}")))?;
        }
        req.lineage = Some(format!("agent:{me}"));
        self.ctx
            .act(Spawn::for_app(req, principal))
            .await
            .map_err(to_wit_error)
    }

    async fn stop(&mut self, name: String) -> Result<(), Error> {
        let (_, app) = self.app()?;
        let pid = self.pid(&app, &name)?;
        self.ctx.act(Stop::new(pid)).await.map_err(to_wit_error)
    }

    async fn restart(&mut self, name: String) -> Result<(), Error> {
        let (_, app) = self.app()?;
        let pid = self.pid(&app, &name)?;
        self.ctx.act(Restart::new(pid)).await.map_err(to_wit_error)
    }

    async fn children(&mut self) -> Vec<Child> {
        let me = self.ctx.principal().pid();
        self.ctx
            .kernel()
            .processes()
            .into_iter()
            .filter(|p| p.parent == Some(me))
            .map(|p| Child {
                pid: p.pid,
                name: p.name,
                state: format!("{:?}", p.state).to_lowercase(),
            })
            .collect()
    }
}
