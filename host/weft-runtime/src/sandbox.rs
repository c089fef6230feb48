//! The per-instance sandbox: WASI context built from explicit [`Grants`],
//! captured output, and the limiter. Nothing is inherited from the host.

use std::path::PathBuf;

use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

use crate::config::Limits;
use crate::limiter::Limiter;
use crate::output::BoundedOutput;
use crate::RunError;

/// What a caller explicitly gives a guest. The default grants nothing: no
/// files, no environment, no arguments, empty stdin, and never a network.
#[derive(Clone, Debug, Default)]
pub struct Grants {
    /// Preopened host directories.
    pub dirs: Vec<DirGrant>,
    /// Environment variables, in order.
    pub env: Vec<(String, String)>,
    /// `argv`, including `argv[0]` (the program name) if the guest expects it.
    pub args: Vec<String>,
    /// The guest's whole standard input.
    pub stdin: Vec<u8>,
}

/// A host directory preopened in the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// The path the guest sees it at.
    pub guest: String,
    /// Refuse writes (`:ro`).
    pub read_only: bool,
}

impl DirGrant {
    /// Parse the CLI form `HOST::GUEST[:ro]` (`::` because a guest path may
    /// itself contain a single colon only at the `:ro` suffix).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (host, rest) = spec
            .split_once("::")
            .ok_or_else(|| format!("`{spec}`: expected HOST::GUEST or HOST::GUEST:ro"))?;
        let (guest, read_only) = match rest.strip_suffix(":ro") {
            Some(g) => (g, true),
            None => (rest.strip_suffix(":rw").unwrap_or(rest), false),
        };
        if host.is_empty() || guest.is_empty() {
            return Err(format!("`{spec}`: host and guest paths must not be empty"));
        }
        Ok(DirGrant {
            host: PathBuf::from(host),
            guest: guest.to_string(),
            read_only,
        })
    }
}

/// Store data for every guest: WASI state plus the embedder's own `T`
/// (the kernel keeps an agent's syscall state there).
pub struct StoreData<T> {
    /// WASI state: the preview1 context wraps the 0.2 one (and its resource
    /// table), so one store serves components and preview1 core modules.
    wasi: WasiP1Ctx,
    pub(crate) limiter: Limiter,
    pub(crate) stdout: BoundedOutput,
    pub(crate) stderr: BoundedOutput,
    /// The current call's time limit, for the error the epoch callback raises.
    pub(crate) timeout: std::time::Duration,
    /// The embedder's state.
    pub data: T,
}

impl<T> StoreData<T> {
    pub(crate) fn new(
        limits: &Limits,
        grants: &Grants,
        blocking_fs: bool,
        data: T,
    ) -> Result<Self, RunError> {
        let stdout = BoundedOutput::new("stdout", limits.max_output_bytes);
        let stderr = BoundedOutput::new("stderr", limits.max_output_bytes);
        let mut b = WasiCtx::builder();
        b.allow_blocking_current_thread(blocking_fs);
        b.stdout(stdout.clone()).stderr(stderr.clone());
        b.stdin(MemoryInputPipe::new(grants.stdin.clone()));
        b.args(&grants.args);
        b.envs(&grants.env);
        for d in &grants.dirs {
            let perms = if d.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            b.preopened_dir(&d.host, &d.guest, perms).map_err(|e| {
                RunError::Host(format!(
                    "cannot grant directory {}: {e:#}",
                    d.host.display()
                ))
            })?;
        }
        Ok(StoreData {
            wasi: b.build_p1(),
            limiter: Limiter::new(limits),
            stdout,
            stderr,
            timeout: limits.timeout,
            data,
        })
    }

    /// The guest's captured stdout so far.
    pub fn stdout(&self) -> &BoundedOutput {
        &self.stdout
    }

    /// The guest's captured stderr so far.
    pub fn stderr(&self) -> &BoundedOutput {
        &self.stderr
    }

    /// Largest linear memory the guest grew to.
    pub fn peak_memory(&self) -> usize {
        self.limiter.peak_memory
    }
}

impl<T> StoreData<T> {
    /// The preview1 view of the WASI state, for core modules.
    pub(crate) fn p1(&mut self) -> &mut WasiP1Ctx {
        &mut self.wasi
    }
}

impl<T: Send> StoreData<T> {
    /// The WASI resource table and the embedder's state at once, for host
    /// interfaces (`wasi:http`) whose resources share WASI's table.
    pub fn table_and_data(&mut self) -> (&mut wasmtime::component::ResourceTable, &mut T) {
        let view = self.wasi.ctx();
        (view.table, &mut self.data)
    }
}

impl<T: Send> WasiView for StoreData<T> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.ctx()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_grant_forms() {
        let g = DirGrant::parse("/tmp/x::/data:ro").unwrap();
        assert_eq!((g.guest.as_str(), g.read_only), ("/data", true));
        let g = DirGrant::parse("/tmp/x::/data").unwrap();
        assert!(!g.read_only);
        assert!(DirGrant::parse("/tmp/x").is_err());
        assert!(DirGrant::parse("::/data").is_err());
    }
}
