//! Running components of the `weft:kernel` tool world.

use std::time::Instant;

use serde::Serialize;

use crate::config::Limits;
use crate::error::{Failure, Usage};
use crate::extensions::Extensions;
use crate::runtime::{LoadedComponent, Runtime};
use crate::sandbox::Grants;
use crate::RunError;

#[allow(missing_docs)]
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "tool",
        imports: { default: async },
        exports: { default: async },
    });
}

pub use bindings::weft::kernel::types::{ToolError, ToolInfo};

/// The result of one tool call that ran to completion.
#[derive(Debug, Serialize)]
pub struct ToolOutcome {
    /// The tool's answer: a JSON document, or the error the tool reported.
    pub result: Result<serde_json::Value, ToolFailure>,
    /// What the call consumed.
    #[serde(flatten)]
    pub usage: Usage,
    /// What the tool printed, as diagnostics (tools answer via `result`).
    pub stderr: String,
}

/// A tool's own error result, as opposed to a [`RunError`] (the host
/// stopped the guest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", content = "message", rename_all = "kebab-case")]
pub enum ToolFailure {
    /// The tool refused its input.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The tool could not do what was asked.
    #[error("failed: {0}")]
    Failed(String),
}

impl From<ToolError> for ToolFailure {
    fn from(e: ToolError) -> Self {
        match e {
            ToolError::InvalidInput(m) => ToolFailure::InvalidInput(m),
            ToolError::Failed(m) => ToolFailure::Failed(m),
        }
    }
}

impl Runtime {
    /// Ask a tool to describe itself.
    pub async fn describe_tool(
        &self,
        c: &LoadedComponent,
        limits: &Limits,
    ) -> Result<ToolInfo, RunError> {
        let pre = self.tool_pre(c)?;
        let mut store = self.new_store(limits, &Grants::default(), Extensions::default())?;
        self.guard(&mut store, limits, async |s| {
            let tool = pre.instantiate_async(&mut *s).await?;
            tool.call_describe(&mut *s).await
        })
        .await
    }

    /// Invoke a tool once on `input` (must be valid JSON) in a fresh,
    /// sandboxed instance.
    pub async fn run_tool(
        &self,
        c: &LoadedComponent,
        input: &str,
        limits: &Limits,
        grants: &Grants,
    ) -> Result<ToolOutcome, Failure> {
        self.run_tool_with(c, input, limits, grants, Extensions::default())
            .await
    }

    /// [`Runtime::run_tool`] with `ext` in the store, for the interfaces
    /// added by [`Runtime::link_tools`].
    pub async fn run_tool_with(
        &self,
        c: &LoadedComponent,
        input: &str,
        limits: &Limits,
        grants: &Grants,
        ext: Extensions,
    ) -> Result<ToolOutcome, Failure> {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(input) {
            return Ok(ToolOutcome {
                result: Err(ToolFailure::InvalidInput(format!("input is not JSON: {e}"))),
                usage: Usage::default(),
                stderr: String::new(),
            });
        }
        let pre = self.tool_pre(c).map_err(Failure::before_start)?;
        let start = Instant::now();
        let mut store = self
            .new_store(limits, grants, ext)
            .map_err(Failure::before_start)?;
        let raw = self
            .guard(&mut store, limits, async |s| {
                let tool = pre.instantiate_async(&mut *s).await?;
                tool.call_invoke(&mut *s, &input.to_string()).await
            })
            .await;
        let usage = self.usage(&store, limits, start);
        let raw = raw.map_err(|error| Failure { error, usage })?;
        let result = match raw {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| ToolFailure::Failed(format!("tool returned invalid JSON: {e}"))),
            Err(e) => Err(e.into()),
        };
        Ok(ToolOutcome {
            result,
            usage,
            stderr: String::from_utf8_lossy(&store.data().stderr().take()).into_owned(),
        })
    }
}

impl Runtime {
    /// Run `c` as a tool, whatever it is: a tool-world component gets
    /// `input` through `invoke`; a WASI command (a 0.2 component or a
    /// preview1 core module) gets it on stdin (argv is just `tool`) and
    /// answers on stdout, as JSON (anything else is taken as a JSON string);
    /// a non-zero exit is a `failed` tool error carrying its stderr.
    pub async fn invoke(
        &self,
        c: &LoadedComponent,
        input: &str,
        limits: &Limits,
        grants: &Grants,
    ) -> Result<ToolOutcome, Failure> {
        self.invoke_with(c, input, limits, grants, Extensions::default())
            .await
    }

    /// [`Runtime::invoke`] with `ext` in the store, for the interfaces
    /// added by [`Runtime::link_tools`] (a kernel's `wasi:http`).
    pub async fn invoke_with(
        &self,
        c: &LoadedComponent,
        input: &str,
        limits: &Limits,
        grants: &Grants,
        ext: Extensions,
    ) -> Result<ToolOutcome, Failure> {
        if c.kind == crate::ComponentKind::Tool {
            return self.run_tool_with(c, input, limits, grants, ext).await;
        }
        if !c.kind.is_command() {
            return Err(Failure::before_start(RunError::invalid(format!(
                "neither a weft:kernel tool (exports `describe`, `invoke`) nor a WASI command; \
                 it exports: {}",
                if c.exports.is_empty() {
                    "nothing".into()
                } else {
                    c.exports.join(", ")
                }
            ))));
        }
        let mut g = grants.clone();
        g.args = vec!["tool".into()];
        g.stdin = input.as_bytes().to_vec();
        let out = self.run_command_with(c, limits, &g, ext).await?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let result = if out.exit_code == 0 {
            let text = String::from_utf8_lossy(&out.stdout);
            Ok(serde_json::from_str(text.trim())
                .unwrap_or_else(|_| serde_json::Value::String(text.trim_end().to_string())))
        } else {
            let why = stderr.trim();
            Err(ToolFailure::Failed(if why.is_empty() {
                format!("exited with code {}", out.exit_code)
            } else {
                format!("exited with code {}: {why}", out.exit_code)
            }))
        };
        Ok(ToolOutcome {
            result,
            usage: out.usage,
            stderr,
        })
    }
}
