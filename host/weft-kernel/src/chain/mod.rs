//! The chain as the kernel's units see it: a read-only [`ChainView`] for
//! everyone, the `chain-append` syscall as the [`ChainAppend`] action, and
//! the control commands ([`control`]: `weaver chain tail | export | verify
//! | prove | consistency | head`, offline verification of a chain directory
//! and of receipts).

pub mod control;

use std::borrow::Cow;
use std::io::Write;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use weft_chain::{
    ChainEvent, ChainManager, ChainStatus, ConsistencyProof, Receipt, SignedHead, VerifyReport,
    VerifyingKey,
};

use crate::act::{ActCx, Action, KernelView, Principal};
use crate::error::{KernelError, KernelResult};

/// A read-only view of the kernel's chain. Appending is reserved to the
/// chokepoint ([`crate::Kernel::act`]).
#[derive(Clone)]
pub struct ChainView(pub(crate) Arc<ChainManager>);

impl ChainView {
    /// The event with sequence number `seq`.
    pub fn get(&self, seq: u64) -> Option<Arc<ChainEvent>> {
        self.0.get(seq)
    }

    /// The last `n` events.
    pub fn tail(&self, n: usize) -> Vec<Arc<ChainEvent>> {
        self.0.tail(n)
    }

    /// The events in `range` of sequence numbers.
    pub fn range(&self, range: impl RangeBounds<u64>) -> Vec<Arc<ChainEvent>> {
        self.0.range(range)
    }

    /// Calls `f` for each event in `range`, in order, reading chunk by
    /// chunk (bounded memory); stops at the first error (a unit replaying
    /// its records after a snapshot).
    pub fn for_each(
        &self,
        range: impl RangeBounds<u64>,
        mut f: impl FnMut(Arc<ChainEvent>) -> KernelResult<()>,
    ) -> KernelResult<()> {
        let mut failed = None;
        let r = self.0.for_each(range, |ev| {
            f(ev).map_err(|e| {
                let reason = e.to_string();
                failed = Some(e);
                weft_chain::ChainError::BadRange { reason }
            })
        });
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(r?)
    }

    /// How many events the chain holds.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// True for a chain with no events (never, once booted: genesis).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The chain file.
    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// The key the tree heads are signed with.
    pub fn public_key(&self) -> VerifyingKey {
        self.0.public_key()
    }

    /// Length, key, heads, segments.
    pub fn status(&self) -> ChainStatus {
        self.0.status()
    }

    /// The newest durable signed tree head.
    pub fn durable_head(&self) -> Option<SignedHead> {
        self.0.durable_head()
    }

    /// The receipt of event `seq` (event, inclusion proof, durable signed
    /// head), making it durable first if needed.
    pub fn prove(&self, seq: u64) -> KernelResult<Receipt> {
        Ok(self.0.prove_durable(seq)?)
    }

    /// Proof that the tree of `new` events extends that of `old`.
    pub fn consistency(&self, old: u64, new: u64) -> KernelResult<ConsistencyProof> {
        Ok(self.0.consistency(old, new)?)
    }

    /// Stream every segment up to the durable head: records, leaves,
    /// signed heads, index (bounded memory).
    pub fn verify_integrity(&self) -> VerifyReport {
        self.0.verify_integrity()
    }

    /// The underlying chain manager (read paths only are reachable through
    /// a view; appends go through `Kernel::act`).
    pub(crate) fn manager(&self) -> &Arc<ChainManager> {
        &self.0
    }

    /// Write every event as JSON lines.
    pub fn export_jsonl<W: Write>(&self, w: W) -> KernelResult<u64> {
        Ok(self.0.export_jsonl(w)?)
    }

    /// The lineage of `child` back to its root, checked against the chain.
    pub fn verify_lineage(&self, child: &str) -> KernelResult<Vec<weft_chain::LineageLink>> {
        Ok(self.0.verify_lineage(child)?)
    }

    /// Wait until every event appended so far is on disk.
    pub fn sync(&self) -> KernelResult<()> {
        Ok(self.0.sync()?)
    }
}

/// Largest agent event kind, after the `agent.` prefix.
const MAX_KIND: usize = 64;

/// Append an event of the caller's own kind (`chain.append`), recorded as
/// `agent.<kind>` with the caller as source: the `chain-append` syscall.
#[derive(Debug)]
pub struct ChainAppend {
    kind: String,
    body: Value,
}

impl ChainAppend {
    /// An event of kind `agent.<kind>` carrying `body`.
    pub fn new(kind: impl Into<String>, body: Value) -> Self {
        ChainAppend {
            kind: format!("agent.{}", kind.into()),
            body,
        }
    }
}

impl Action for ChainAppend {
    type Output = u64;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("chain.append")
    }

    fn gate_context(&self) -> Value {
        json!({ "kind": self.kind })
    }

    fn reuse_permit(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.kind))
    }

    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        let kind = &self.kind["agent.".len()..];
        if kind.is_empty()
            || kind.len() > MAX_KIND
            || !kind
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(KernelError::Invalid(format!(
                "bad event kind `{kind}`: use [a-z0-9._-], at most {MAX_KIND} chars"
            )));
        }
        match who {
            Principal::Agent(a) if !a.caps.chain_append => Err(KernelError::Denied(format!(
                "`{}` may not append to the chain",
                a.name
            ))),
            Principal::App(a) => Err(KernelError::Denied(format!(
                "app `{}` may not append to the chain",
                a.name()
            ))),
            _ => Ok(()),
        }
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<u64> {
        let pid = cx.who().pid();
        cx.record(&self.kind, &json!({ "pid": pid, "body": self.body }))
    }
}

/// The built-in chain unit: control commands for the chain.
pub(crate) struct ChainUnit;

impl crate::Subsystem for ChainUnit {
    fn name(&self) -> &'static str {
        "chain"
    }

    fn actions(&self) -> &'static [&'static str] {
        &["chain.append", "chain.read"]
    }

    fn control_ops(&self) -> &'static [&'static str] {
        &["tail", "verify", "prove", "consistency", "head"]
    }

    fn control<'a>(
        &'a self,
        cx: crate::control::ControlCx<'a>,
    ) -> crate::subsystem::BoxFuture<'a, crate::control::ControlReply> {
        Box::pin(control::serve(cx))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
