//! Running plain WASI programs: 0.2 command components (`wasi:cli/run`)
//! and preview1 core modules (`_start`).

use std::time::Instant;

use crate::config::Limits;
use crate::error::{Failure, Usage};
use crate::extensions::Extensions;
use crate::runtime::{LoadedComponent, Runtime};
use crate::sandbox::Grants;

/// The result of a command that ran to completion (whatever its exit code).
#[derive(Debug)]
pub struct CommandOutcome {
    /// The code passed to `exit`, else 0 when `run` returned `Ok` and 1 when it returned `Err`.
    pub exit_code: i32,
    /// Everything it wrote to stdout, up to the output limit.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr, up to the output limit.
    pub stderr: Vec<u8>,
    /// What the run consumed.
    pub usage: Usage,
}

impl Runtime {
    /// Run a command component or a preview1 core module to completion with
    /// `grants.args` as argv and `grants.stdin` as its standard input. The
    /// exit code is the one the program passed to `exit` (preserved, e.g. 33).
    pub async fn run_command(
        &self,
        c: &LoadedComponent,
        limits: &Limits,
        grants: &Grants,
    ) -> Result<CommandOutcome, Failure> {
        self.run_command_with(c, limits, grants, Extensions::default())
            .await
    }

    /// [`Runtime::run_command`] with `ext` in the store, for the interfaces
    /// added by [`Runtime::link_tools`] (not for preview1 modules).
    pub async fn run_command_with(
        &self,
        c: &LoadedComponent,
        limits: &Limits,
        grants: &Grants,
        ext: Extensions,
    ) -> Result<CommandOutcome, Failure> {
        if c.kind == crate::ComponentKind::Preview1 {
            return self.run_preview1(c, limits, grants).await;
        }
        let pre = self.command_pre(c).map_err(Failure::before_start)?;
        let start = Instant::now();
        let mut store = self
            .new_store(limits, grants, ext)
            .map_err(Failure::before_start)?;
        let exit_code = self
            .guard(&mut store, limits, async |s| {
                let cmd = pre.instantiate_async(&mut *s).await?;
                match cmd.wasi_cli_run().call_run(&mut *s).await {
                    Ok(Ok(())) => Ok(0),
                    Ok(Err(())) => Ok(1),
                    // `exit(n)` unwinds as an error carrying the code.
                    Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                        Some(exit) => Ok(exit.0),
                        None => Err(e),
                    },
                }
            })
            .await;
        finish(self, &store, limits, start, exit_code)
    }

    async fn run_preview1(
        &self,
        c: &LoadedComponent,
        limits: &Limits,
        grants: &Grants,
    ) -> Result<CommandOutcome, Failure> {
        let pre = self.preview1_pre(c).map_err(Failure::before_start)?;
        let start = Instant::now();
        let mut store = self
            .new_store(limits, grants, Extensions::default())
            .map_err(Failure::before_start)?;
        let exit_code = self
            .guard(&mut store, limits, async |s| {
                let instance = pre.instantiate_async(&mut *s).await?;
                let main = instance.get_typed_func::<(), ()>(&mut *s, "_start")?;
                match main.call_async(&mut *s, ()).await {
                    Ok(()) => Ok(0),
                    // `proc_exit(n)` unwinds as an error carrying the code.
                    Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                        Some(exit) => Ok(exit.0),
                        None => Err(e),
                    },
                }
            })
            .await;
        finish(self, &store, limits, start, exit_code)
    }
}

fn finish(
    rt: &Runtime,
    store: &wasmtime::Store<crate::StoreData<Extensions>>,
    limits: &Limits,
    start: Instant,
    exit_code: Result<i32, crate::RunError>,
) -> Result<CommandOutcome, Failure> {
    let usage = rt.usage(store, limits, start);
    let exit_code = exit_code.map_err(|error| Failure { error, usage })?;
    let data = store.data();
    Ok(CommandOutcome {
        exit_code,
        stdout: data.stdout().take(),
        stderr: data.stderr().take(),
        usage,
    })
}
