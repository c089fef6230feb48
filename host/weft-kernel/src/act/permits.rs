//! Remembered permits: a permit for a repeatable action (a send to the
//! same agent, a syscall, a control query) is reused until policy changes,
//! so hot paths ask the gate once per (action, object) and policy epoch.

use std::collections::HashMap;

/// Where the gate's policy stands: the kernel's own changes (governance
/// installed or replaced) and the governance backend's (policy reloaded,
/// component swapped). A remembered permit is valid for one value.
pub type PolicyEpoch = (u64, u64);

/// One principal's remembered permits: action -> object -> epoch. Nested
/// so a lookup borrows `&str` and allocates nothing.
#[derive(Debug, Default)]
pub struct PermitCache {
    by_action: HashMap<String, HashMap<String, PolicyEpoch>>,
}

impl PermitCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Is a permit for (`action`, `object`) remembered under `epoch`?
    pub fn holds(&self, action: &str, object: &str, epoch: PolicyEpoch) -> bool {
        self.by_action
            .get(action)
            .and_then(|m| m.get(object))
            .is_some_and(|e| *e == epoch)
    }

    /// Remember a permit.
    pub fn insert(&mut self, action: &str, object: &str, epoch: PolicyEpoch) {
        match self.by_action.get_mut(action) {
            Some(m) => {
                m.insert(object.to_string(), epoch);
            }
            None => {
                self.by_action.insert(
                    action.to_string(),
                    HashMap::from([(object.to_string(), epoch)]),
                );
            }
        }
    }
}
