//! Pre-instantiated components, one per digest and world. `InstancePre`
//! resolves imports once; instantiating from it afterwards is a few
//! microseconds.

use std::collections::HashMap;
use std::sync::Mutex;

use wasmtime_wasi::p2::bindings::CommandPre;

use crate::cache::Digest;
use crate::runtime::{lock, ComponentKind, LoadedComponent, Runtime};
use crate::sandbox::StoreData;
use crate::tool::bindings::ToolPre;
use crate::RunError;

#[derive(Default)]
pub(crate) struct PreCache {
    tools: Mutex<HashMap<Digest, ToolPre<StoreData<()>>>>,
    commands: Mutex<HashMap<Digest, CommandPre<StoreData<()>>>>,
}

impl PreCache {
    pub fn evict(&self, digest: &Digest) {
        lock(&self.tools).remove(digest);
        lock(&self.commands).remove(digest);
    }
}

impl Runtime {
    /// The pre-instantiated tool for `c`, created on first use.
    pub fn tool_pre(&self, c: &LoadedComponent) -> Result<ToolPre<StoreData<()>>, RunError> {
        if let Some(p) = lock(&self.pres().tools).get(&c.digest) {
            return Ok(p.clone());
        }
        if c.kind != ComponentKind::Tool {
            return Err(wrong_world(
                c,
                "the weft:kernel tool world (exports `describe` and `invoke`)",
            ));
        }
        let linker = self.linker::<()>()?;
        let pre = linker
            .instantiate_pre(&c.component)
            .map_err(RunError::invalid)?;
        let pre = ToolPre::new(pre).map_err(RunError::invalid)?;
        lock(&self.pres().tools).insert(c.digest, pre.clone());
        Ok(pre)
    }

    /// The pre-instantiated command for `c`, created on first use.
    pub fn command_pre(&self, c: &LoadedComponent) -> Result<CommandPre<StoreData<()>>, RunError> {
        if let Some(p) = lock(&self.pres().commands).get(&c.digest) {
            return Ok(p.clone());
        }
        if c.kind != ComponentKind::Command {
            return Err(wrong_world(
                c,
                "a WASI 0.2 command (exports `wasi:cli/run`)",
            ));
        }
        let linker = self.linker::<()>()?;
        let pre = linker
            .instantiate_pre(&c.component)
            .map_err(RunError::invalid)?;
        let pre = CommandPre::new(pre).map_err(RunError::invalid)?;
        lock(&self.pres().commands).insert(c.digest, pre.clone());
        Ok(pre)
    }
}

fn wrong_world(c: &LoadedComponent, wanted: &str) -> RunError {
    let exports = if c.exports.is_empty() {
        "nothing".to_string()
    } else {
        c.exports.join(", ")
    };
    RunError::invalid(format!(
        "expected {wanted}, but the component exports {exports}"
    ))
}
