//! The chokepoint: every change to kernel state (and every read through the
//! control API) is an [`Action`] carried out by [`crate::Kernel::act`], which
//!
//! 1. checks it in-process ([`Action::authorize`]: capabilities, ownership,
//!    the app ceiling) — a refusal is recorded as a `gate.deny`;
//! 2. asks the gate (capability rules, then governance) as its
//!    [`Principal`], which records the decision with a receipt — a permit
//!    for a repeatable action may be reused until policy changes;
//! 3. performs it, and the action records its effect through [`ActCx`].
//!
//! A record that cannot be written fails the action (fail closed): the
//! chain's writer failure is sticky, so every later action fails too.
//! Nothing else in the kernel's public API appends to the chain.

mod permits;
mod principal;

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};

use crate::environment::AuditMode;
use crate::error::{KernelError, KernelResult};
use crate::shared::Shared;

pub use permits::PermitCache;
pub use principal::{valid_agent_name, AgentPrincipal, AppPrincipal, Principal, RESERVED_NAMES};

/// A request to change (or, for control queries, read) kernel state.
///
/// Implemented by the kernel's own actions (spawn, send, invoke a tool,
/// ...) and by each subsystem's (cron add, app install, ...). Only
/// [`crate::Kernel::act`] performs one.
pub trait Action: Send {
    /// What performing it returns.
    type Output: Send;

    /// The gate's name for it: `agent.spawn`, `tool.exec.calc`, `cron.add`.
    fn gate_action(&self) -> Cow<'static, str>;

    /// What the gate and governance see, hashed into the decision's
    /// receipt. Never secrets or message bodies.
    fn gate_context(&self) -> Value;

    /// `Some(object)` when a permit for (principal, action, object) may be
    /// reused until policy changes (hot paths: sends, syscalls, queries).
    /// `None` (the default) asks the gate every time.
    fn reuse_permit(&self) -> Option<Cow<'_, str>> {
        None
    }

    /// In-process checks before the gate: capabilities, ownership, the app
    /// ceiling, existence. [`KernelError::Denied`] is recorded as a refusal;
    /// any other error just fails the action.
    /// May resolve names and remember what it found for `perform`.
    fn authorize(&mut self, _who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        Ok(())
    }

    /// The call's input, for environments that audit in full: its BLAKE3
    /// digest joins the gate context (the input itself never does).
    fn audit_input(&self) -> Option<Cow<'_, [u8]>> {
        None
    }

    /// A second principal whose authority the action also needs: a
    /// built-in acting for a sender needs the receiving agent's too.
    fn also_needs(&self) -> Option<&Principal> {
        None
    }

    /// Carry it out. Called only once the gate permitted; records its
    /// effects through `cx` (before the irreversible part where it can).
    fn perform(self, cx: &mut ActCx<'_>)
        -> impl Future<Output = KernelResult<Self::Output>> + Send;
}

/// What an action's [`Action::authorize`] may read: the kernel, without a
/// way to change it.
pub struct KernelView<'a>(&'a Shared);

impl<'a> KernelView<'a> {
    pub(crate) fn new(shared: &'a Shared) -> Self {
        KernelView(shared)
    }

    pub(crate) fn shared(&self) -> &'a Shared {
        self.0
    }

    /// The registered subsystem of type `T`.
    pub fn subsystem<T: crate::Subsystem>(&self) -> Option<&'a T> {
        self.0
            .units()
            .iter()
            .find_map(|u| u.as_any().downcast_ref::<T>())
    }

    /// The live agent named `name`: its pid and the principal that spawned it.
    pub fn agent(&self, name: &str) -> Option<(crate::Pid, String)> {
        let pid = self.0.agents.table.pid_of(name)?;
        let e = self.0.agents.table.get(pid)?;
        Some((pid, e.owner.to_string()))
    }

    /// The kernel's default environment (`[kernel] environment`).
    pub fn environment(&self) -> &'a str {
        &self.0.config.kernel.environment
    }

    /// The kernel's environments.
    pub fn environments(&self) -> &'a crate::environment::Environments {
        &self.0.environments
    }
}

/// What an action's [`Action::perform`] may use: the kernel, who asked,
/// and the only way to record an effect.
pub struct ActCx<'a> {
    pub(crate) shared: &'a Arc<Shared>,
    who: &'a Principal,
    recorded: u32,
}

impl<'a> ActCx<'a> {
    pub(crate) fn new(shared: &'a Arc<Shared>, who: &'a Principal) -> Self {
        ActCx {
            shared,
            who,
            recorded: 0,
        }
    }

    /// Who asked.
    pub fn who(&self) -> &Principal {
        self.who
    }

    /// The kernel, for actions that carry out further actions (an app's
    /// install runs its steps as the app).
    pub fn kernel(&self) -> crate::Kernel {
        crate::Kernel::from_shared(self.shared.clone())
    }

    /// Record an effect (buffered: on disk within the chain's flush
    /// interval, and before the control API answers). The source is the
    /// principal.
    pub fn record<T: Serialize + ?Sized>(&mut self, kind: &str, payload: &T) -> KernelResult<u64> {
        self.recorded += 1;
        self.shared
            .append(self.who.gate_name(), kind, payload, false)
    }

    /// Record an effect and wait until it is on disk (fsync'ed, group
    /// committed): for effects a caller must never lose, even to `kill -9`.
    pub fn record_durable<T: Serialize + ?Sized>(
        &mut self,
        kind: &str,
        payload: &T,
    ) -> KernelResult<u64> {
        self.recorded += 1;
        self.shared
            .append(self.who.gate_name(), kind, payload, true)
    }

    /// Record a lineage edge (`bundle:…` → `app:…`, `app:…` → `agent:…`).
    pub fn record_lineage(
        &mut self,
        parent: &str,
        child: &str,
        derivation: &str,
    ) -> KernelResult<u64> {
        self.recorded += 1;
        Ok(self
            .shared
            .chain
            .record_lineage(parent, child, derivation)?)
    }

    /// Put app `app` in environment `env` (an app's install, upgrade or
    /// resume): its agents act there from now on.
    pub fn set_app_environment(
        &mut self,
        app: &str,
        env: &str,
    ) -> KernelResult<Arc<crate::environment::Environment>> {
        self.shared
            .environments
            .assign(app, env)
            .map_err(KernelError::Invalid)
    }

    /// Forget app `app`'s environment (it was removed).
    pub fn clear_app_environment(&mut self, app: &str) {
        self.shared.environments.unassign(app);
    }

    /// The runtime, for actions that run a guest (an app's hook).
    pub fn runtime(&self) -> &weft_runtime::Runtime {
        &self.shared.runtime
    }

    /// The resource tree, for actions that keep it current.
    pub fn tree(&self) -> &weft_tree::TreeManager {
        &self.shared.tree
    }
}

/// Carry out `action` as `who` (see the module docs). `permits` is the
/// caller's own permit cache (an agent's store keeps one, so its hot path
/// takes no lock); `None` uses the kernel's shared one.
pub(crate) async fn act<A: Action>(
    shared: &Arc<Shared>,
    who: &Principal,
    mut action: A,
    permits: Option<&mut PermitCache>,
) -> KernelResult<A::Output> {
    shared.ensure_running()?;
    let name = action.gate_action();
    let env = shared.environments.of_principal(who);
    let full = env.audit == AuditMode::Full;
    let default = shared.environments.default_env().name.as_str();
    let scoped = |action: &A| {
        let digest = if full {
            action
                .audit_input()
                .map(|i| blake3::hash(&i).to_hex().to_string())
        } else {
            None
        };
        scoped_context(action.gate_context(), &env.name, default, digest)
    };
    if let Err(e) = action.authorize(who, &KernelView::new(shared)) {
        if let KernelError::Denied(reason) = &e {
            who.count_denial();
            shared.gate.refuse(who, &name, &scoped(&action), reason)?;
        }
        return Err(e);
    }
    // Full audit: every call asks the gate, so every call is witnessed.
    let reuse = (!full)
        .then(|| action.reuse_permit().map(Cow::into_owned))
        .flatten();
    let asked = shared
        .gate
        .permit(who, &name, || scoped(&action), reuse.as_deref(), permits);
    if let Err(KernelError::Deferred(reason)) = asked {
        // Governance sent it to a person: the escalation queue.
        crate::escalation::escalate(shared, who, &name, scoped(&action), reason).await?;
    } else {
        asked?;
    }
    if let Some(other) = action.also_needs() {
        let other = other.clone();
        let asked = shared
            .gate
            .permit(&other, &name, || scoped(&action), None, None);
        if let Err(KernelError::Deferred(reason)) = asked {
            crate::escalation::escalate(shared, &other, &name, scoped(&action), reason).await?;
        } else {
            asked?;
        }
    }
    let mut cx = ActCx::new(shared, who);
    let out = action.perform(&mut cx).await;
    if let Err(e) = &out {
        if cx.recorded == 0 {
            // Permitted but not done: say so, so the permit is not read
            // as the effect.
            shared.append(
                who.gate_name(),
                "act.failed",
                &json!({ "action": &*name, "error": e.to_string() }),
                false,
            )?;
        }
    }
    out
}

/// `context` with the environment it is judged in (when not the kernel's
/// default, so contexts of single-environment kernels are unchanged) and,
/// under full audit, the input's digest.
fn scoped_context(mut context: Value, env: &str, default: &str, digest: Option<String>) -> Value {
    if env == default && digest.is_none() {
        return context;
    }
    if !context.is_object() {
        context = json!({ "context": context });
    }
    if let Some(m) = context.as_object_mut() {
        if env != default {
            m.insert("environment".into(), Value::String(env.to_string()));
        }
        if let Some(d) = digest {
            m.insert("input_digest".into(), Value::String(d));
        }
    }
    context
}

/// A fact the kernel records about itself or for a subsystem (a crash, a
/// fired job, a component failure): gated as [`Principal::Kernel`], its
/// permit reused per kind, recorded with `source` as the chain source.
pub struct Note<T> {
    source: Cow<'static, str>,
    kind: Cow<'static, str>,
    payload: T,
    durable: bool,
}

impl<T: Serialize + Send> Note<T> {
    /// A buffered note.
    pub fn new(
        source: impl Into<Cow<'static, str>>,
        kind: impl Into<Cow<'static, str>>,
        payload: T,
    ) -> Self {
        Note {
            source: source.into(),
            kind: kind.into(),
            payload,
            durable: false,
        }
    }

    /// Wait for the note to be on disk.
    pub fn durable(mut self) -> Self {
        self.durable = true;
        self
    }
}

impl<T: Serialize + Send + Sync> Action for Note<T> {
    type Output = u64;

    fn gate_action(&self) -> Cow<'static, str> {
        self.kind.clone()
    }

    fn gate_context(&self) -> Value {
        json!({ "source": self.source })
    }

    fn reuse_permit(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.source))
    }

    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        match who {
            Principal::Kernel => Ok(()),
            other => Err(KernelError::Denied(format!(
                "only the kernel records notes, not `{}`",
                other.gate_name()
            ))),
        }
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<u64> {
        cx.recorded += 1;
        cx.shared
            .append(&self.source, &self.kind, &self.payload, self.durable)
    }
}

/// A read the gate must allow: a control query (`agent.list`,
/// `chain.read`) or a syscall that changes nothing (`kernel.now`). Its
/// permit is reused until policy changes, and the permit's record is the
/// only one it leaves.
#[derive(Debug, Clone, Copy)]
pub struct Query(pub &'static str);

impl Action for Query {
    type Output = ();

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.0)
    }

    fn gate_context(&self) -> Value {
        json!({})
    }

    fn reuse_permit(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(""))
    }

    async fn perform(self, _cx: &mut ActCx<'_>) -> KernelResult<()> {
        Ok(())
    }
}
