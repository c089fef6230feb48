//! Pre-instantiated components, one per digest and world. `InstancePre`
//! resolves imports once; instantiating from it afterwards is a few
//! microseconds.

use std::collections::HashMap;
use std::sync::Mutex;

use wasmtime::{InstancePre, Linker};
use wasmtime_wasi::p2::bindings::CommandPre;

use crate::cache::Digest;
use crate::extensions::{Extensions, LinkTools, ToolImports, ToolLinker};
use crate::runtime::{lock, ComponentKind, LoadedComponent, Runtime};
use crate::sandbox::StoreData;
use crate::tool::bindings::ToolPre;
use crate::RunError;

/// What tools, commands and preview1 programs run in.
pub type ToolStoreData = StoreData<Extensions>;

#[derive(Default)]
pub(crate) struct PreCache {
    tools: Mutex<HashMap<Digest, ToolPre<ToolStoreData>>>,
    commands: Mutex<HashMap<Digest, CommandPre<ToolStoreData>>>,
    modules: Mutex<HashMap<Digest, InstancePre<ToolStoreData>>>,
    imports: Mutex<ToolImports>,
}

impl PreCache {
    pub fn evict(&self, digest: &Digest) {
        lock(&self.tools).remove(digest);
        lock(&self.commands).remove(digest);
        lock(&self.modules).remove(digest);
    }
}

impl Runtime {
    /// Add host interfaces (under `name`, replacing what `name` added
    /// before) to the linker of every tool and WASI command from now on; a
    /// subsystem's per-run state goes in the [`Extensions`] passed to
    /// [`Runtime::invoke_with`]. Pre-instantiations made before are dropped.
    pub fn link_tools(&self, name: &'static str, link: LinkTools) {
        lock(&self.pres().imports).set(name, link);
        lock(&self.pres().tools).clear();
        lock(&self.pres().commands).clear();
    }

    /// A linker for tools, commands and other components that are not
    /// agents (an HTTP route's handler): WASI plus what
    /// [`Runtime::link_tools`] added.
    pub fn tool_linker(&self) -> Result<ToolLinker, RunError> {
        let mut linker = self.linker::<Extensions>()?;
        lock(&self.pres().imports).apply(&mut linker)?;
        Ok(linker)
    }

    /// The pre-instantiated tool for `c`, created on first use.
    pub fn tool_pre(&self, c: &LoadedComponent) -> Result<ToolPre<ToolStoreData>, RunError> {
        if let Some(p) = lock(&self.pres().tools).get(&c.digest) {
            return Ok(p.clone());
        }
        if c.kind != ComponentKind::Tool {
            return Err(wrong_world(
                c,
                "the weft:kernel tool world (exports `describe` and `invoke`)",
            ));
        }
        let linker = self.tool_linker()?;
        let pre = linker
            .instantiate_pre(c.component()?)
            .map_err(RunError::invalid)?;
        let pre = ToolPre::new(pre).map_err(RunError::invalid)?;
        lock(&self.pres().tools).insert(c.digest, pre.clone());
        Ok(pre)
    }

    /// The pre-instantiated command for `c`, created on first use.
    pub fn command_pre(&self, c: &LoadedComponent) -> Result<CommandPre<ToolStoreData>, RunError> {
        if let Some(p) = lock(&self.pres().commands).get(&c.digest) {
            return Ok(p.clone());
        }
        if c.kind != ComponentKind::Command {
            return Err(wrong_world(
                c,
                "a WASI 0.2 command (exports `wasi:cli/run`)",
            ));
        }
        let linker = self.tool_linker()?;
        let pre = linker
            .instantiate_pre(c.component()?)
            .map_err(RunError::invalid)?;
        let pre = CommandPre::new(pre).map_err(RunError::invalid)?;
        lock(&self.pres().commands).insert(c.digest, pre.clone());
        Ok(pre)
    }
}

impl Runtime {
    /// The pre-instantiated preview1 core module for `c`, created on first
    /// use. Its imports must all be `wasi_snapshot_preview1` functions.
    pub fn preview1_pre(
        &self,
        c: &LoadedComponent,
    ) -> Result<InstancePre<ToolStoreData>, RunError> {
        if let Some(p) = lock(&self.pres().modules).get(&c.digest) {
            return Ok(p.clone());
        }
        let crate::runtime::Code::Module(module) = &c.code else {
            return Err(wrong_world(c, "a WASI preview1 core module"));
        };
        if c.kind != ComponentKind::Preview1 {
            return Err(wrong_world(c, "a WASI preview1 command (exports `_start`)"));
        }
        if let Some(i) = module
            .imports()
            .find(|i| i.module() != "wasi_snapshot_preview1")
        {
            return Err(RunError::invalid(format!(
                "the module imports `{}::{}`; a preview1 program may import only \
                 `wasi_snapshot_preview1` functions",
                i.module(),
                i.name()
            )));
        }
        let mut linker: Linker<ToolStoreData> = Linker::new(self.engine());
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s| s.p1())
            .map_err(|e| RunError::Host(format!("cannot link WASI preview1: {e:#}")))?;
        let pre = linker.instantiate_pre(module).map_err(RunError::invalid)?;
        lock(&self.pres().modules).insert(c.digest, pre.clone());
        Ok(pre)
    }
}

fn wrong_world(c: &LoadedComponent, wanted: &str) -> RunError {
    if let crate::runtime::Code::Module(_) = c.code {
        // Say what it is rather than list a module's exports as a world's.
        if c.kind == ComponentKind::Preview1 {
            if let Err(e) = c.component() {
                return e;
            }
        }
        return RunError::invalid(format!(
            "this is a core wasm module that exports {}; a WASI preview1 program must \
             export `_start`, anything else must be a component (build for wasm32-wasip2)",
            if c.exports.is_empty() {
                "nothing".to_string()
            } else {
                c.exports.join(", ")
            }
        ));
    }
    let exports = if c.exports.is_empty() {
        "nothing".to_string()
    } else {
        c.exports.join(", ")
    };
    RunError::invalid(format!(
        "expected {wanted}, but the component exports {exports}"
    ))
}
