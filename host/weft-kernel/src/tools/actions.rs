//! The tool actions: run a registered tool (`tool.exec.<name>`), register
//! one (`tool.register`), unregister one (`tool.unregister`).

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use super::registry::ToolEntry;
use crate::act::{ActCx, Action, KernelView, Principal};
use crate::error::{KernelError, KernelResult};

/// Run a registered tool with its registered limits and grants; records
/// `tool.exec` with the fuel used and the outcome.
pub struct InvokeTool {
    name: String,
    input: String,
    via: Option<Principal>,
    entry: Option<ToolEntry>,
}

impl InvokeTool {
    /// Run tool `name` on `input` (a JSON document).
    pub fn new(name: impl Into<String>, input: impl Into<String>) -> Self {
        InvokeTool {
            name: name.into(),
            input: input.into(),
            via: None,
            entry: None,
        }
    }

    /// Run it through `agent`, which received the request (the `exec`
    /// built-in): both the asker and `agent` must be allowed the tool.
    pub fn via(mut self, agent: Principal) -> Self {
        self.via = Some(agent);
        self
    }
}

/// May `who` use tool `name` by its own capabilities?
fn allowed(who: &Principal, name: &str) -> bool {
    match who {
        Principal::Kernel | Principal::Operator => true,
        Principal::App(_) => false,
        Principal::Agent(a) => a.caps.tools.allows(name),
    }
}

impl Action for InvokeTool {
    type Output = Value;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Owned(format!("tool.exec.{}", self.name))
    }

    fn gate_context(&self) -> Value {
        json!({ "tool": self.name, "input_len": self.input.len() })
    }

    fn also_needs(&self) -> Option<&Principal> {
        self.via.as_ref()
    }

    fn authorize(&mut self, who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        let k = k.shared();
        for p in std::iter::once(who).chain(self.via.as_ref()) {
            if !allowed(p, &self.name) {
                return Err(KernelError::Denied(format!(
                    "`{}` may not use tool `{}`",
                    p.gate_name(),
                    self.name
                )));
            }
        }
        if let Principal::Agent(a) = who {
            let max = a.max_tool_calls;
            if max != 0 && a.usage.tool_calls.load(Ordering::Relaxed) >= max {
                return Err(KernelError::Limit(format!(
                    "`{}` may make at most {max} tool calls",
                    a.name
                )));
            }
        }
        self.entry = Some(
            k.tools
                .get(&self.name)
                .ok_or_else(|| KernelError::NotFound(format!("no tool `{}`", self.name)))?,
        );
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<Value> {
        let Some(entry) = self.entry else {
            return Err(KernelError::NotFound(format!("no tool `{}`", self.name)));
        };
        if let Principal::Agent(a) = cx.who() {
            a.usage.tool_calls.fetch_add(1, Ordering::Relaxed);
        }
        let r = cx
            .shared
            .runtime
            .run_tool(&entry.component, &self.input, &entry.limits, &entry.grants)
            .await;
        let (outcome, usage, result) = match r {
            Ok(o) => {
                let usage = o.usage;
                match o.result {
                    Ok(v) => ("ok".to_string(), usage, Ok(v)),
                    Err(e) => (
                        format!("tool error: {e}"),
                        usage,
                        Err(KernelError::Failed(e.to_string())),
                    ),
                }
            }
            Err(f) => (
                f.kind().to_string(),
                f.usage,
                Err(KernelError::Failed(f.to_string())),
            ),
        };
        cx.record(
            "tool.exec",
            &json!({
                "tool": self.name,
                "digest": entry.component.digest.to_hex(),
                "via": self.via.as_ref().map(|v| v.gate_name()),
                "outcome": outcome,
                "fuel_used": usage.fuel_used,
                "wall_us": usage.wall.as_micros() as u64,
            }),
        )?;
        result
    }
}

/// Register a tool (`tool.register`); its owner is whoever registers it.
pub struct RegisterTool(pub ToolEntry);

impl Action for RegisterTool {
    type Output = u64;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("tool.register")
    }

    fn gate_context(&self) -> Value {
        json!({ "tool": self.0.name, "digest": self.0.component.digest.to_hex() })
    }

    fn authorize(&mut self, who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        let k = k.shared();
        let name = &self.0.name;
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(KernelError::Invalid(format!(
                "tool name `{name}`: use 1-64 of [A-Za-z0-9._-]"
            )));
        }
        if let Some(e) = k.tools.get(name) {
            return Err(KernelError::Invalid(format!(
                "tool `{name}` is already registered by `{}`",
                e.owner
            )));
        }
        if matches!(who, Principal::Agent(_)) {
            return Err(KernelError::Denied(format!(
                "agent `{}` may not register tools",
                who.gate_name()
            )));
        }
        Ok(())
    }

    async fn perform(mut self, cx: &mut ActCx<'_>) -> KernelResult<u64> {
        self.0.owner = cx.who().gate_name().to_string();
        let seq = cx.record(
            "tool.register",
            &json!({ "name": self.0.name, "digest": self.0.component.digest.to_hex(),
                     "owner": self.0.owner }),
        )?;
        cx.shared.tools.insert(self.0);
        Ok(seq)
    }
}

/// Unregister a tool (`tool.unregister`); only its owner (or the
/// operator) may.
#[derive(Debug)]
pub struct UnregisterTool {
    /// The tool's name.
    pub name: String,
}

impl Action for UnregisterTool {
    type Output = ();

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("tool.unregister")
    }

    fn gate_context(&self) -> Value {
        json!({ "tool": self.name })
    }

    fn authorize(&mut self, who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        let k = k.shared();
        let e = k
            .tools
            .get(&self.name)
            .ok_or_else(|| KernelError::NotFound(format!("no tool `{}`", self.name)))?;
        if !who.owns(&e.owner) {
            return Err(KernelError::Denied(format!(
                "tool `{}` belongs to `{}`, not `{}`",
                self.name,
                e.owner,
                who.gate_name()
            )));
        }
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<()> {
        cx.record("tool.unregister", &json!({ "name": self.name }))?;
        cx.shared.tools.remove(&self.name);
        Ok(())
    }
}
