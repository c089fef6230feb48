//! Publish/subscribe: topic name -> subscribers. Agents subscribe by pid;
//! the host can subscribe too (tests, `weaver`), receiving on a channel.

use std::collections::BTreeSet;

use dashmap::DashMap;
use tokio::sync::mpsc;

use crate::ipc::KernelMessage;
use crate::process::Pid;

/// A subscriber outside the agents (the host side).
pub type HostSubscription = mpsc::Receiver<KernelMessage>;

/// Who is subscribed to which topic.
#[derive(Default)]
pub struct TopicRouter {
    agents: DashMap<String, BTreeSet<Pid>>,
    hosts: DashMap<String, Vec<mpsc::Sender<KernelMessage>>>,
}

impl TopicRouter {
    /// Subscribes agent `pid` to `topic` (idempotent).
    pub fn subscribe(&self, topic: &str, pid: Pid) {
        self.agents
            .entry(topic.to_string())
            .or_default()
            .insert(pid);
    }

    /// Returns whether `pid` was subscribed.
    pub fn unsubscribe(&self, topic: &str, pid: Pid) -> bool {
        let removed = self
            .agents
            .get_mut(topic)
            .map(|mut s| s.remove(&pid))
            .unwrap_or(false);
        self.agents.remove_if(topic, |_, s| s.is_empty());
        removed
    }

    /// Drop every subscription of a stopped agent.
    pub fn unsubscribe_all(&self, pid: Pid) {
        self.agents.retain(|_, s| {
            s.remove(&pid);
            !s.is_empty()
        });
    }

    /// Subscribe from the host; messages arrive on the returned channel.
    pub fn subscribe_host(&self, topic: &str, capacity: usize) -> HostSubscription {
        let (tx, rx) = mpsc::channel(capacity);
        self.hosts.entry(topic.to_string()).or_default().push(tx);
        rx
    }

    /// The agents subscribed to `topic`.
    pub fn subscribers(&self, topic: &str) -> Vec<Pid> {
        self.agents
            .get(topic)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Hand `msg` to host subscribers; returns how many took it.
    pub fn deliver_hosts(&self, topic: &str, msg: &KernelMessage) -> usize {
        let Some(mut subs) = self.hosts.get_mut(topic) else {
            return 0;
        };
        subs.retain(|tx| !tx.is_closed());
        subs.iter()
            .filter(|tx| tx.try_send(msg.clone()).is_ok())
            .count()
    }

    /// Every topic with a subscriber, agent or host, sorted.
    pub fn list_topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self.agents.iter().map(|e| e.key().clone()).collect();
        t.extend(self.hosts.iter().map(|e| e.key().clone()));
        t.sort();
        t.dedup();
        t
    }
}
