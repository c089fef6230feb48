//! The escalation queue: an action governance defers (`escalate-to-human`)
//! waits here for a person instead of failing.
//!
//! The asking call waits up to `[escalation] wait_ms`; a person decides
//! with `weaver gov approve|deny ID --reason ..` (the [`Decide`] action).
//! If nobody decides in time the caller gets a `pending` error naming the
//! escalation; asking again for the same thing (same principal, action and
//! context) joins it rather than opening another, and once it is approved
//! the next such request goes through — once. An escalation nobody decides
//! within `ttl_s` expires (a denial).
//!
//! Every step is on the chain (`escalation.open`, `.approve`, `.deny`,
//! `.use`; durable, and indexed so boot finds them without reading the
//! log), so the queue survives a restart: a request approved while the
//! kernel was down is let through when the agent asks again.

mod decide;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;
use weft_chain::ChainManager;

use crate::act::Principal;
use crate::config::EscalationSection;
use crate::error::{KernelError, KernelResult};
use crate::shared::Shared;

pub use decide::Decide;

/// The chain source of the queue's own records (kernel notes, gated like
/// any other, written where the gate's decisions are).
const SOURCE: &str = "gate";

/// Where an escalation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EscalationState {
    /// Waiting for a person.
    Pending,
    /// Approved; the next identical request goes through.
    Approved,
    /// Refused by a person.
    Denied,
    /// Nobody decided within its time to live.
    Expired,
    /// Approved and used by the request it was for.
    Used,
}

/// One action waiting for (or decided by) a person.
#[derive(Clone, Debug, Serialize)]
pub struct Escalation {
    /// The chain seq of its `escalation.open` record.
    pub id: u64,
    /// Who asked (its gate name).
    pub principal: String,
    /// The gate action.
    pub action: String,
    /// What the gate and governance saw.
    pub context: Value,
    /// Why governance deferred it.
    pub reason: String,
    /// When it was opened (ns since the epoch).
    pub opened_ns: u64,
    /// When it expires unless decided.
    pub expires_ns: u64,
    /// Where it is.
    pub state: EscalationState,
    /// The person who decided it.
    pub decided_by: Option<String>,
    /// The reason they gave.
    pub decision_reason: Option<String>,
    #[serde(skip)]
    key: String,
}

impl Escalation {
    fn state_at(&self, now: u64) -> EscalationState {
        match self.state {
            EscalationState::Pending if now >= self.expires_ns => EscalationState::Expired,
            s => s,
        }
    }
}

/// `escalation.open`'s payload.
#[derive(Serialize, Deserialize)]
struct Opened {
    principal: String,
    action: String,
    context: Value,
    key: String,
    reason: String,
    expires_ns: u64,
}

/// `escalation.approve|deny|use`'s payload.
#[derive(Serialize, Deserialize)]
struct Decided {
    id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// The queue, restored from the chain at boot.
pub(crate) struct Escalations {
    config: EscalationSection,
    open: Mutex<BTreeMap<u64, Escalation>>,
    changed: Notify,
    /// Held while a person's decision is recorded and applied.
    deciding: Mutex<()>,
}

/// What identifies "the same request": a retry joins its escalation.
fn key(principal: &str, action: &str, context: &Value) -> String {
    let ctx = serde_json::to_vec(context).unwrap_or_default();
    let digest = blake3::hash(&ctx);
    format!("{principal}\u{0}{action}\u{0}{}", digest.to_hex())
}

impl Escalations {
    /// Replays the chain's `escalation.*` records (found through its kind
    /// index).
    pub(crate) fn restore(config: EscalationSection, chain: &ChainManager) -> KernelResult<Self> {
        let mut open = BTreeMap::new();
        for seq in chain.indexed_seqs("escalation.")? {
            let Some(ev) = chain.read(seq)? else { continue };
            let bad = |e: weft_chain::ChainError| {
                KernelError::Failed(format!("escalation record {seq} is unreadable: {e}"))
            };
            if ev.kind == "escalation.open" {
                let o: Opened = ev.decode_payload().map_err(bad)?;
                open.insert(
                    seq,
                    Escalation {
                        id: seq,
                        principal: o.principal,
                        action: o.action,
                        context: o.context,
                        reason: o.reason,
                        opened_ns: ev.timestamp_ns,
                        expires_ns: o.expires_ns,
                        state: EscalationState::Pending,
                        decided_by: None,
                        decision_reason: None,
                        key: o.key,
                    },
                );
                continue;
            }
            let d: Decided = ev.decode_payload().map_err(bad)?;
            let Some(e) = open.get_mut(&d.id) else {
                continue;
            };
            match ev.kind.as_str() {
                "escalation.approve" => e.state = EscalationState::Approved,
                "escalation.deny" => e.state = EscalationState::Denied,
                "escalation.use" => e.state = EscalationState::Used,
                _ => continue,
            }
            if d.by.is_some() {
                e.decided_by = d.by;
                e.decision_reason = d.reason;
            }
        }
        Ok(Escalations {
            config,
            open: Mutex::new(open),
            changed: Notify::new(),
            deciding: Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Escalation>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every escalation, newest first, with expiry applied.
    pub(crate) fn list(&self) -> Vec<Escalation> {
        let now = weft_chain::now_ns();
        self.lock()
            .values()
            .rev()
            .map(|e| Escalation {
                state: e.state_at(now),
                ..e.clone()
            })
            .collect()
    }

    pub(crate) fn get(&self, id: u64) -> Option<Escalation> {
        let now = weft_chain::now_ns();
        self.lock().get(&id).map(|e| Escalation {
            state: e.state_at(now),
            ..e.clone()
        })
    }

    /// A person's decision, already recorded by [`Decide`].
    fn decide(&self, id: u64, approve: bool, by: &str, reason: &str) {
        if let Some(e) = self.lock().get_mut(&id) {
            e.state = if approve {
                EscalationState::Approved
            } else {
                EscalationState::Denied
            };
            e.decided_by = Some(by.to_string());
            e.decision_reason = Some(reason.to_string());
        }
        self.changed.notify_waiters();
    }
}

/// Governance deferred `action` for `who`: wait for a person (see the
/// module docs). `Ok` means approved and used; otherwise the error to
/// return. `reason` is the gate's.
pub(crate) async fn escalate(
    shared: &Shared,
    who: &Principal,
    action: &str,
    context: Value,
    reason: String,
) -> KernelResult<()> {
    let q = &shared.escalations;
    let principal = who.gate_name().to_string();
    // Deciding is never itself escalated: that would wait for itself.
    // `ttl_s = 0` turns the queue off: a deferral is a denial.
    if action.starts_with("gov.") || q.config.ttl_s == 0 {
        return Err(KernelError::Denied(reason));
    }
    let k = key(&principal, action, &context);
    let now = weft_chain::now_ns();
    // Join the live escalation for this very request, or open one.
    let existing = q
        .lock()
        .values()
        .rev()
        .find(|e| {
            e.key == k
                && matches!(
                    e.state_at(now),
                    EscalationState::Pending | EscalationState::Approved
                )
        })
        .map(|e| e.id);
    let id = match existing {
        Some(id) => id,
        None => {
            let expires_ns = now.saturating_add(q.config.ttl_s.saturating_mul(1_000_000_000));
            let opened = Opened {
                principal: principal.clone(),
                action: action.to_string(),
                context,
                key: k,
                reason: reason.clone(),
                expires_ns,
            };
            let id = shared.note_with(SOURCE, "escalation.open", &opened, true)?;
            q.lock().insert(
                id,
                Escalation {
                    id,
                    principal: opened.principal,
                    action: opened.action,
                    context: opened.context,
                    reason: opened.reason,
                    opened_ns: now,
                    expires_ns,
                    state: EscalationState::Pending,
                    decided_by: None,
                    decision_reason: None,
                    key: opened.key,
                },
            );
            shared.log.push(
                crate::console::BootPhase::Runtime,
                crate::console::LogLevel::Warn,
                format!(
                    "escalation #{id}: `{principal}` asks for `{action}` ({reason}); \
                     `weaver gov approve {id} --reason ..` or `weaver gov deny {id} --reason ..`"
                ),
            );
            id
        }
    };
    let wait_until = now.saturating_add(q.config.wait_ms.saturating_mul(1_000_000));
    loop {
        let notified = q.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let now = weft_chain::now_ns();
        let Some(e) = q.get(id) else {
            return Err(KernelError::Failed(format!("escalation #{id} vanished")));
        };
        match e.state {
            EscalationState::Approved => {
                // Use it exactly once, even if several callers joined.
                {
                    let mut open = q.lock();
                    match open.get_mut(&id) {
                        Some(e) if e.state == EscalationState::Approved => {
                            e.state = EscalationState::Used
                        }
                        _ => continue,
                    }
                }
                shared.note_with(
                    SOURCE,
                    "escalation.use",
                    &Decided {
                        id,
                        by: None,
                        reason: None,
                    },
                    true,
                )?;
                return Ok(());
            }
            EscalationState::Used => {
                return Err(KernelError::Denied(format!(
                    "{action}: escalation #{id} was approved once and an identical request \
                     used it; ask again to open a new one"
                )))
            }
            EscalationState::Denied => {
                return Err(KernelError::Denied(format!(
                    "{action}: escalation #{id} denied by {}: {}",
                    e.decided_by.as_deref().unwrap_or("a person"),
                    e.decision_reason.as_deref().unwrap_or("no reason given")
                )))
            }
            EscalationState::Expired => {
                return Err(KernelError::Denied(format!(
                    "{action}: escalation #{id} expired: nobody decided within {} s",
                    q.config.ttl_s
                )))
            }
            EscalationState::Pending => {}
        }
        let until = wait_until.min(e.expires_ns);
        if now >= until {
            return Err(KernelError::Deferred(format!(
                "pending: escalation #{id}: `{action}` waits for a person ({reason}); \
                 ask again to see whether it was approved"
            )));
        }
        // A timeout just means: look again (expired, or stop waiting).
        tokio::time::timeout(Duration::from_nanos(until - now), notified)
            .await
            .ok();
    }
}
