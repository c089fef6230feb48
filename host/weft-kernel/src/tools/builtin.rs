//! The tools unit as a subsystem: the `exec` built-in and the control
//! commands.

use std::any::Any;

use serde_json::json;

use super::InvokeTool;
use crate::control::{ControlCx, ControlReply};
use crate::error::KernelResult;
use crate::ipc::Payload;
use crate::subsystem::{BoxFuture, BuiltinCx, Subsystem};

/// The built-in tools unit.
pub(crate) struct ToolsUnit;

impl Subsystem for ToolsUnit {
    fn name(&self) -> &'static str {
        "tools"
    }

    fn actions(&self) -> &'static [&'static str] {
        &[
            "tool.exec.*",
            "tool.register",
            "tool.unregister",
            "tool.list",
        ]
    }

    fn control_ops(&self) -> &'static [&'static str] {
        &["ls", "run"]
    }

    fn builtins(&self) -> &'static [&'static str] {
        &["exec"]
    }

    /// `{"cmd": "exec", "tool": T, "input": {..}}`: the receiving agent runs
    /// tool T for the sender, with the authority of both.
    fn builtin<'a>(&'a self, cx: BuiltinCx<'a>) -> BoxFuture<'a, KernelResult<Payload>> {
        Box::pin(async move {
            let tool = cx
                .request
                .get("tool")
                .and_then(|t| t.as_str())
                .unwrap_or_default()
                .to_string();
            let input = cx
                .request
                .get("input")
                .cloned()
                .unwrap_or(json!({}))
                .to_string();
            let action = InvokeTool::new(tool, input).via(cx.receiver.clone());
            cx.kernel.act(cx.sender, action).await.map(Payload::Json)
        })
    }

    fn control<'a>(&'a self, cx: ControlCx<'a>) -> BoxFuture<'a, ControlReply> {
        Box::pin(super::control::serve(cx))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
