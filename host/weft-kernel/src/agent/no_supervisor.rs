//! `weft:kernel/supervisor` for a kernel booted without the `apps` unit
//! (which serves it: the agents a supervisor starts are its app's). Every
//! call fails with a typed error saying so; the interface must still be
//! linked, since some guests import every interface of their world.

use wasmtime::component::HasData;

use super::bindings::weft::kernel::ipc::{Error, Pid};
use super::bindings::weft::kernel::supervisor::{self, Child};
use super::AgentLinker;
use crate::error::{KernelError, KernelResult};

/// The host side of the fallback: it holds nothing.
pub(crate) struct NoSupervisor;

impl HasData for NoSupervisor {
    type Data<'a> = NoSupervisor;
}

fn off<T>() -> Result<T, Error> {
    Err(Error::Failed(
        "supervision is not available: this kernel was booted without the `apps` unit".into(),
    ))
}

/// Link the fallback.
pub(crate) fn link(linker: &mut AgentLinker) -> KernelResult<()> {
    supervisor::add_to_linker::<_, NoSupervisor>(linker, |_| NoSupervisor)
        .map_err(|e| KernelError::Failed(format!("cannot link the supervisor fallback: {e:#}")))
}

impl supervisor::Host for NoSupervisor {
    async fn spawn(
        &mut self,
        _agent: String,
        _name: String,
        _config: Option<String>,
    ) -> Result<Pid, Error> {
        off()
    }
    async fn stop(&mut self, _name: String) -> Result<(), Error> {
        off()
    }
    async fn restart(&mut self, _name: String) -> Result<(), Error> {
        off()
    }
    async fn children(&mut self) -> Vec<Child> {
        Vec::new()
    }
}
