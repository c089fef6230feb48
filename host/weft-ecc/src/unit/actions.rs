//! The unit's actions. Every `ecc` call of an agent is one
//! [`EccAccess`] (reads) or [`EccMutate`] (changes, recorded) through the
//! chokepoint, as the agent; gate action `ecc.<op>`, a permit reused per
//! (agent, op, namespace) until policy changes.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{json, Value};
use weft_kernel::{ActCx, Action, KernelError, KernelResult, KernelView, Principal};

use super::{Inner, OP_KIND};
use crate::{Ecc, EccError, EccOp, OpOutcome};

/// Every gate action of the unit: `ecc.<op>` per op of
/// `weft_model::caps::ECC_OPS`.
pub const ACTIONS: &[&str] = &["ecc.*"];

/// May `who` perform `op` on `ns` (`None`: an op without a namespace,
/// the clock)? Agents need the op and the namespace in their `ecc`
/// capability, and an app's agents stay in the app's namespaces plus its
/// shares; the kernel and the operator may do anything.
pub(crate) fn check(
    who: &Principal,
    op: &str,
    ns: Option<&str>,
    inner: &Inner,
) -> KernelResult<()> {
    match who {
        Principal::Kernel | Principal::Operator => Ok(()),
        Principal::App(a) => match ns {
            Some(ns) if owned_by(a.name(), ns) => Ok(()),
            None => Ok(()),
            Some(ns) => Err(KernelError::Denied(format!(
                "app `{}` may not use ECC namespace `{ns}`",
                a.name()
            ))),
        },
        Principal::Agent(agent) => {
            let caps = &agent.caps.ecc;
            if !caps.allows_op(op) {
                return Err(KernelError::Denied(format!(
                    "agent `{}` may not `{op}` in ECC (its ecc.ops do not allow it)",
                    agent.name
                )));
            }
            let Some(ns) = ns else { return Ok(()) };
            if !caps.allows_namespace(ns) {
                return Err(KernelError::Denied(format!(
                    "agent `{}` may not use ECC namespace `{ns}` (its ecc.namespaces do not allow it)",
                    agent.name
                )));
            }
            if let Some(app) = agent.app.as_deref() {
                let shared = inner
                    .shares(app)
                    .iter()
                    .any(|p| weft_model::glob::name_matches(p, ns));
                if !owned_by(app, ns) && !shared {
                    return Err(KernelError::Denied(format!(
                        "ECC namespace `{ns}` belongs to no app `{app}` owns: agents of app `{app}` use `{app}` and `{app}/...` (or what `[ecc] shares` gives it)"
                    )));
                }
            }
            Ok(())
        }
    }
}

/// `ns` is app `app`'s own: `app` or under `app/`.
fn owned_by(app: &str, ns: &str) -> bool {
    ns == app || (ns.len() > app.len() && ns.starts_with(app) && ns.as_bytes()[app.len()] == b'/')
}

fn gate_name(op: &str) -> Cow<'static, str> {
    Cow::Owned(format!("ecc.{op}"))
}

/// A read (`search`, `get`, `stats`, `graph`, `refs`, `pending`): checked
/// and gated, not recorded beyond the gate's permit.
pub struct EccAccess {
    pub(crate) op: &'static str,
    pub(crate) ns: Option<String>,
    pub(crate) inner: Arc<Inner>,
}

impl Action for EccAccess {
    type Output = ();

    fn gate_action(&self) -> Cow<'static, str> {
        gate_name(self.op)
    }

    fn gate_context(&self) -> Value {
        json!({ "ns": self.ns })
    }

    fn reuse_permit(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.ns.as_deref().unwrap_or("")))
    }

    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        check(who, self.op, self.ns.as_deref(), &self.inner)
    }

    async fn perform(self, _cx: &mut ActCx<'_>) -> KernelResult<()> {
        Ok(())
    }
}

/// Builds the op to record from the state (ops that issue clock
/// timestamps are built under the write lock, in record order).
pub type BuildOp = Box<dyn FnOnce(&mut Ecc) -> Result<EccOp, EccError> + Send>;

/// A change: checked and gated, then, under the state's write lock, the op
/// is built, recorded durably as `ecc.op`, and applied.
pub struct EccMutate {
    pub(crate) op: &'static str,
    pub(crate) ns: Option<String>,
    pub(crate) build: BuildOp,
    pub(crate) inner: Arc<Inner>,
}

impl Action for EccMutate {
    type Output = Result<OpOutcome, EccError>;

    fn gate_action(&self) -> Cow<'static, str> {
        gate_name(self.op)
    }

    fn gate_context(&self) -> Value {
        json!({ "ns": self.ns })
    }

    fn reuse_permit(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.ns.as_deref().unwrap_or("")))
    }

    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        check(who, self.op, self.ns.as_deref(), &self.inner)
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<Result<OpOutcome, EccError>> {
        let out = {
            let mut ecc = self.inner.write();
            let op = match (self.build)(&mut ecc) {
                Ok(op) => op,
                // Refused before anything was recorded or changed.
                Err(e) => return Ok(Err(e)),
            };
            cx.record_durable(OP_KIND, &op)?;
            ecc.apply(&op)
        };
        self.inner.applied();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::owned_by;

    #[test]
    fn an_app_owns_its_name_and_what_is_under_it() {
        assert!(owned_by("mem", "mem"));
        assert!(owned_by("mem", "mem/notes"));
        assert!(owned_by("mem", "mem/a/b"));
        assert!(!owned_by("mem", "memory"));
        assert!(!owned_by("mem", "me"));
        assert!(!owned_by("mem", "other/mem"));
    }
}
