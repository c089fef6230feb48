//! Impulses: short-lived events between structures and agents, delivered in HLC order.
//!
//! Each namespace has a queue ordered by `(timestamp, id)`. Timestamps come from the
//! hybrid logical clock, so if impulse A causally precedes B (B was emitted after A was
//! emitted or received here) then A's timestamp is smaller and A is delivered first. The
//! id (a per-queue counter) only breaks ties between equal timestamps from different nodes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crossref::NodeRef;
use crate::error::{EccError, Result};
use crate::hlc::HlcTimestamp;
use crate::names::{validate_label, Namespace};

/// Largest impulse payload, in bytes.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Default queue capacity per namespace.
pub const DEFAULT_QUEUE_CAP: usize = 65_536;

/// One impulse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impulse {
    /// Per-queue sequence number, assigned when it is queued.
    pub id: u64,
    /// Its HLC timestamp: when it was emitted (here, or on the node that sent it).
    pub ts: HlcTimestamp,
    /// What it is about (a label, e.g. `memory.updated`).
    pub topic: String,
    /// The node it concerns, if any.
    pub source: Option<NodeRef>,
    /// Opaque content, at most [`MAX_PAYLOAD`] bytes.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// Checks topic, source and payload size.
pub(crate) fn validate_impulse(
    topic: &str,
    source: Option<&NodeRef>,
    payload: &[u8],
) -> Result<()> {
    validate_label("impulse topic", topic)?;
    if let Some(s) = source {
        s.validate()?;
    }
    if payload.len() > MAX_PAYLOAD {
        return Err(EccError::InvalidParameter {
            what: "impulse payload",
            reason: format!("at most {MAX_PAYLOAD} bytes, got {}", payload.len()),
        });
    }
    Ok(())
}

/// One namespace's pending impulses.
#[derive(Clone, Debug)]
pub struct ImpulseQueue {
    ns: Namespace,
    pending: BTreeMap<(HlcTimestamp, u64), Impulse>,
    next_id: u64,
    cap: usize,
}

/// Serialisable content of a queue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSnapshot {
    /// Pending impulses in delivery order.
    pub pending: Vec<Impulse>,
    /// The next id to assign.
    pub next_id: u64,
}

impl ImpulseQueue {
    /// An empty queue holding at most `cap` impulses.
    pub fn new(ns: Namespace, cap: usize) -> Self {
        ImpulseQueue {
            ns,
            pending: BTreeMap::new(),
            next_id: 0,
            cap,
        }
    }

    /// Number of pending impulses.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Pending impulses in delivery order, without removing them.
    pub fn peek(&self) -> impl Iterator<Item = &Impulse> + '_ {
        self.pending.values()
    }

    /// The id the next queued impulse will get.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Checks that one more impulse fits and is well formed.
    pub(crate) fn check_push(
        &self,
        topic: &str,
        source: Option<&NodeRef>,
        payload: &[u8],
    ) -> Result<()> {
        validate_impulse(topic, source, payload)?;
        if self.pending.len() >= self.cap {
            return Err(EccError::QueueFull {
                ns: self.ns.clone(),
                cap: self.cap,
            });
        }
        Ok(())
    }

    /// Queues an impulse with timestamp `ts`; returns its id.
    pub(crate) fn push(
        &mut self,
        ts: HlcTimestamp,
        topic: &str,
        source: Option<&NodeRef>,
        payload: &[u8],
    ) -> Result<u64> {
        self.check_push(topic, source, payload)?;
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(
            (ts, id),
            Impulse {
                id,
                ts,
                topic: topic.to_string(),
                source: source.cloned(),
                payload: payload.to_vec(),
            },
        );
        Ok(id)
    }

    /// Removes and returns every impulse with timestamp `<= now`, in delivery order.
    pub(crate) fn drain_ready(&mut self, now: HlcTimestamp) -> Vec<Impulse> {
        let later = if now == HlcTimestamp::new(u64::MAX, u32::MAX) {
            BTreeMap::new()
        } else {
            self.pending.split_off(&(now.successor(), 0))
        };
        let ready = std::mem::replace(&mut self.pending, later);
        ready.into_values().collect()
    }

    /// The serialisable content.
    pub fn to_snapshot(&self) -> QueueSnapshot {
        QueueSnapshot {
            pending: self.pending.values().cloned().collect(),
            next_id: self.next_id,
        }
    }

    /// Rebuilds a queue from snapshot content.
    pub fn from_snapshot(ns: Namespace, cap: usize, snap: QueueSnapshot) -> Result<Self> {
        let mut q = ImpulseQueue::new(ns, cap);
        for imp in snap.pending {
            validate_impulse(&imp.topic, imp.source.as_ref(), &imp.payload)?;
            if imp.id >= snap.next_id || q.pending.insert((imp.ts, imp.id), imp).is_some() {
                return Err(EccError::InvalidParameter {
                    what: "impulse snapshot",
                    reason: "duplicate or out-of-range impulse id".into(),
                });
            }
        }
        q.next_id = snap.next_id;
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_in_timestamp_order_up_to_now() {
        let mut q = ImpulseQueue::new(Namespace::new("q").unwrap(), 10);
        let t = |w, l| HlcTimestamp::new(w, l);
        q.push(t(30, 0), "c", None, b"").unwrap();
        q.push(t(10, 1), "b", None, b"").unwrap();
        q.push(t(10, 0), "a", None, b"").unwrap();
        q.push(t(10, 1), "b2", None, b"").unwrap();
        let got: Vec<_> = q
            .drain_ready(t(10, 1))
            .into_iter()
            .map(|i| i.topic)
            .collect();
        assert_eq!(got, ["a", "b", "b2"]);
        assert_eq!(q.pending(), 1);
        assert!(q.drain_ready(t(29, u32::MAX)).is_empty());
        assert_eq!(q.drain_ready(t(u64::MAX, u32::MAX)).len(), 1);
    }

    #[test]
    fn capacity_and_validation() {
        let mut q = ImpulseQueue::new(Namespace::new("q").unwrap(), 1);
        q.push(HlcTimestamp::new(1, 0), "x", None, b"").unwrap();
        let e = q.push(HlcTimestamp::new(2, 0), "x", None, b"").unwrap_err();
        assert!(matches!(e, EccError::QueueFull { cap: 1, .. }));
        let mut q = ImpulseQueue::new(Namespace::new("q").unwrap(), 10);
        assert!(q
            .push(HlcTimestamp::new(1, 0), "bad topic", None, b"")
            .is_err());
        let big = vec![0u8; MAX_PAYLOAD + 1];
        assert!(q.push(HlcTimestamp::new(1, 0), "x", None, &big).is_err());
        assert_eq!(q.pending(), 0);
        assert_eq!(q.next_id(), 0, "refused impulses use no id");
    }
}
