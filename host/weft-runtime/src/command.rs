//! Running plain WASI 0.2 command components (`wasi:cli/run`).

use std::time::Instant;

use crate::config::Limits;
use crate::error::{Failure, Usage};
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
    /// Run a command component to completion with `grants.args` as argv and
    /// `grants.stdin` as its standard input.
    pub async fn run_command(
        &self,
        c: &LoadedComponent,
        limits: &Limits,
        grants: &Grants,
    ) -> Result<CommandOutcome, Failure> {
        let pre = self.command_pre(c).map_err(Failure::before_start)?;
        let start = Instant::now();
        let mut store = self
            .new_store(limits, grants, ())
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
        let usage = self.usage(&store, limits, start);
        let exit_code = exit_code.map_err(|error| Failure { error, usage })?;
        let data = store.data();
        Ok(CommandOutcome {
            exit_code,
            stdout: data.stdout().take(),
            stderr: data.stderr().take(),
            usage,
        })
    }
}
