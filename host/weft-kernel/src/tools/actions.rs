//! The tool actions: run a registered tool (`tool.exec.<name>`), register
//! one (`tool.register`), unregister one (`tool.unregister`).

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use weft_runtime::{ToolFailure, Usage};

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

    fn audit_input(&self) -> Option<Cow<'_, [u8]>> {
        Some(Cow::Borrowed(self.input.as_bytes()))
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
        self.entry = Some(k.tools.get(&self.name).ok_or_else(|| {
            let names: Vec<String> = k.tools.list().into_iter().map(|t| t.name).collect();
            KernelError::NotFound(format!(
                "no tool `{}`{}",
                self.name,
                crate::suggest::hint(&self.name, names.iter().map(String::as_str))
            ))
        })?);
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<Value> {
        let report = self.run(cx).await?;
        match (report.result, report.error) {
            (Some(v), None) => Ok(v),
            (_, Some(e)) => Err(KernelError::Failed(e.to_string())),
            (None, None) => Ok(Value::Null),
        }
    }
}

impl InvokeTool {
    /// Run the tool (already authorized) and record `tool.exec`; a run that
    /// happened is `Ok` whatever its outcome, with what it consumed.
    async fn run(self, cx: &mut ActCx<'_>) -> KernelResult<ToolReport> {
        let Some(entry) = self.entry else {
            return Err(KernelError::NotFound(format!("no tool `{}`", self.name)));
        };
        if let Principal::Agent(a) = cx.who() {
            a.usage.tool_calls.fetch_add(1, Ordering::Relaxed);
        }
        let ext = prepare(cx, &entry, self.via.as_ref())?;
        let r = cx
            .shared
            .runtime
            .invoke_with(
                &entry.component,
                &self.input,
                &entry.limits,
                &entry.grants,
                ext,
            )
            .await;
        let (result, error, usage) = match r {
            Ok(o) => match o.result {
                Ok(v) => (Some(v), None, o.usage),
                Err(e) => (None, Some(ToolRunError::from(&e)), o.usage),
            },
            Err(f) => (
                None,
                Some(ToolRunError {
                    kind: f.kind().to_string(),
                    message: f.to_string(),
                    guest: true,
                }),
                f.usage,
            ),
        };
        let outcome = match &error {
            None => "ok".to_string(),
            Some(e) if e.guest => e.kind.clone(),
            Some(e) => format!("tool error: {}", e.message_with_kind()),
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
        Ok(ToolReport {
            tool: self.name,
            result,
            error,
            usage,
        })
    }
}

/// The per-run state of the subsystems' tool interfaces (`wasi:http`).
fn prepare(
    cx: &ActCx<'_>,
    entry: &ToolEntry,
    via: Option<&Principal>,
) -> KernelResult<weft_runtime::Extensions> {
    let mut ext = weft_runtime::Extensions::default();
    let kernel = cx.kernel();
    let nobody = Principal::Kernel;
    let run = crate::subsystem::ToolRun {
        kernel: &kernel,
        tool: entry,
        registrar: entry.registrar.as_ref().unwrap_or(&nobody),
        caller: via.unwrap_or(cx.who()),
    };
    for u in cx.shared.units().iter() {
        u.prepare_tool(&run, &mut ext)?;
    }
    Ok(ext)
}

/// What one run of a registered tool gave, whatever the outcome: the
/// `--json` report of `weaver tool run NAME`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolReport {
    /// The tool's name.
    pub tool: String,
    /// Its JSON answer, when it gave one.
    pub result: Option<Value>,
    /// Why it did not.
    pub error: Option<ToolRunError>,
    /// Fuel, wall time and peak memory of the run.
    pub usage: Usage,
}

/// Why a tool run gave no answer: the tool's own error result
/// (`invalid-input`, `failed`) or the host stopping the guest (`out of
/// fuel`, `timeout`, `trap`, ...; then `guest` is set).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolRunError {
    /// `invalid-input` or `failed` for the tool's own error; else the
    /// runtime's error kind.
    pub kind: String,
    /// What went wrong.
    pub message: String,
    /// Set when the guest failed rather than answered with an error.
    pub guest: bool,
}

impl ToolRunError {
    /// `invalid input: why` for a tool error; the message as it is for a
    /// guest failure (it starts with its kind already).
    pub fn message_with_kind(&self) -> String {
        if self.guest {
            self.message.clone()
        } else {
            format!("{}: {}", self.kind.replace('-', " "), self.message)
        }
    }
}

impl std::fmt::Display for ToolRunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message_with_kind())
    }
}

impl From<&ToolFailure> for ToolRunError {
    fn from(e: &ToolFailure) -> Self {
        let (kind, message) = match e {
            ToolFailure::InvalidInput(m) => ("invalid-input", m),
            ToolFailure::Failed(m) => ("failed", m),
        };
        ToolRunError {
            kind: kind.into(),
            message: message.clone(),
            guest: false,
        }
    }
}

/// [`InvokeTool`] for the operator's `weaver tool run NAME`: the same
/// checks, gate action and record, answered with the whole [`ToolReport`].
pub struct InvokeToolReport(pub InvokeTool);

impl Action for InvokeToolReport {
    type Output = ToolReport;

    fn gate_action(&self) -> Cow<'static, str> {
        self.0.gate_action()
    }

    fn gate_context(&self) -> Value {
        self.0.gate_context()
    }

    fn audit_input(&self) -> Option<Cow<'_, [u8]>> {
        self.0.audit_input()
    }

    fn also_needs(&self) -> Option<&Principal> {
        self.0.also_needs()
    }

    fn authorize(&mut self, who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        self.0.authorize(who, k)
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<ToolReport> {
        self.0.run(cx).await
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
        // The manifest checker refuses this first; the kernel holds the
        // line for any other caller.
        if let Some(c) = who.as_app().and_then(|a| a.ceiling.as_ref()) {
            if let Err(e) = self.0.network.within(&c.network) {
                let why: Vec<String> = e.into_iter().map(|e| e.message).collect();
                return Err(KernelError::Denied(format!(
                    "tool `{name}`: {}",
                    why.join("; ")
                )));
            }
        }
        Ok(())
    }

    async fn perform(mut self, cx: &mut ActCx<'_>) -> KernelResult<u64> {
        self.0.owner = cx.who().gate_name().to_string();
        self.0.registrar = Some(cx.who().clone());
        // What `tool ls` shows is the tool's own `describe()` unless the
        // registrant gave a description.
        if self.0.description.is_empty() {
            self.0.description = describe(cx, &self.0).await;
        }
        let seq = cx.record(
            "tool.register",
            &json!({ "name": self.0.name, "digest": self.0.component.digest.to_hex(),
                     "owner": self.0.owner, "outbound": self.0.network.outbound }),
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

/// The description a tool gives of itself: its `describe()` text, or what a
/// program is (a command has no `describe`).
async fn describe(cx: &ActCx<'_>, e: &ToolEntry) -> String {
    use weft_runtime::ComponentKind as K;
    match e.component.kind {
        K::Tool => match cx
            .shared
            .runtime
            .describe_tool(&e.component, &e.limits)
            .await
        {
            Ok(info) => info.description,
            Err(err) => format!("(describe() failed: {err})"),
        },
        K::Command => "a WASI 0.2 command: JSON input on stdin, its stdout is the answer".into(),
        K::Preview1 => {
            "a WASI preview1 program: JSON input on stdin, its stdout is the answer".into()
        }
        K::Other => String::new(),
    }
}
