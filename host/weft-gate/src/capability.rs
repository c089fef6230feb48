//! Deny-by-default capability rules: agent pattern → allowed and denied
//! action patterns. Deny wins over allow.

use std::collections::HashMap;
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::glob::{ActionPattern, AgentPattern};
use crate::{GateBackend, GateDecision, GateError};

/// One rule as written in configuration (e.g. an app manifest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityRule {
    /// Exact agent name or glob (`*`, `worker-*`).
    pub agent: String,
    /// Action patterns the agent may perform.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Action patterns refused even when an `allow` pattern matches.
    #[serde(default)]
    pub deny: Vec<String>,
}

#[derive(Debug, Default)]
struct Patterns {
    allow: Vec<(ActionPattern, Box<str>)>,
    deny: Vec<(ActionPattern, Box<str>)>,
}

impl Patterns {
    fn add(&mut self, rule: &CapabilityRule) -> Result<(), GateError> {
        for a in &rule.allow {
            self.allow
                .push((ActionPattern::compile(a)?, a.as_str().into()));
        }
        for d in &rule.deny {
            self.deny
                .push((ActionPattern::compile(d)?, d.as_str().into()));
        }
        Ok(())
    }

    fn denied_by(&self, action: &str) -> Option<&str> {
        self.deny
            .iter()
            .find(|(p, _)| p.matches(action))
            .map(|(_, s)| &**s)
    }

    fn allows(&self, action: &str) -> bool {
        self.allow.iter().any(|(p, _)| p.matches(action))
    }
}

/// Compiled rule set, updated in place under the gate's write lock: adding
/// or revoking one agent's rules touches only that agent's entry, so
/// spawning the n-th agent costs O(1), not a rebuild of n rules.
#[derive(Debug, Default)]
struct Compiled {
    /// Exact agent names: their rules as written, and merged patterns.
    exact: HashMap<Box<str>, (Vec<CapabilityRule>, Patterns)>,
    /// Agent globs, in rule order.
    wild: Vec<(CapabilityRule, AgentPattern, Patterns)>,
}

impl Compiled {
    fn build(rules: Vec<CapabilityRule>) -> Result<Self, GateError> {
        let mut c = Compiled::default();
        for r in rules {
            c.add(r)?;
        }
        Ok(c)
    }

    /// Compiles `rule` and adds it; on an invalid pattern nothing changes.
    fn add(&mut self, rule: CapabilityRule) -> Result<(), GateError> {
        let mut p = Patterns::default();
        p.add(&rule)?;
        match AgentPattern::compile(&rule.agent)? {
            AgentPattern::Exact(name) => {
                let e = self.exact.entry(name).or_default();
                e.1.allow.extend(p.allow);
                e.1.deny.extend(p.deny);
                e.0.push(rule);
            }
            pat => self.wild.push((rule, pat, p)),
        }
        Ok(())
    }

    fn revoke(&mut self, agent: &str) {
        self.exact.remove(agent);
        self.wild.retain(|(r, _, _)| r.agent != agent);
    }

    fn source(&self) -> Vec<CapabilityRule> {
        let mut v: Vec<CapabilityRule> = self
            .exact
            .values()
            .flat_map(|(r, _)| r.iter().cloned())
            .collect();
        v.sort_by(|a, b| a.agent.cmp(&b.agent));
        v.extend(self.wild.iter().map(|(r, _, _)| r.clone()));
        v
    }

    /// Every pattern set that applies to `agent`, exact first.
    fn for_agent<'a>(&'a self, agent: &'a str) -> impl Iterator<Item = &'a Patterns> + 'a {
        self.exact.get(agent).map(|(_, p)| p).into_iter().chain(
            self.wild
                .iter()
                .filter(move |(_, a, _)| a.matches(agent))
                .map(|(_, _, p)| p),
        )
    }
}

/// The fast, local gate: permits an action only if some allow pattern for
/// the agent matches and no deny pattern does. Rules can be changed at
/// runtime (e.g. when an agent spawns or an app is installed).
#[derive(Debug, Default)]
pub struct CapabilityGate {
    rules: RwLock<Compiled>,
}

impl CapabilityGate {
    /// A gate with no rules: denies everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// A gate with `rules`; fails on the first invalid pattern.
    pub fn with_rules(rules: Vec<CapabilityRule>) -> Result<Self, GateError> {
        Ok(CapabilityGate {
            rules: RwLock::new(Compiled::build(rules)?),
        })
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Compiled> {
        self.rules.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a rule (validated before anything changes).
    pub fn add_rule(&self, rule: CapabilityRule) -> Result<(), GateError> {
        self.write().add(rule)
    }

    /// Convenience for `add_rule` with allow patterns only.
    pub fn allow(&self, agent: &str, actions: &[&str]) -> Result<(), GateError> {
        self.add_rule(CapabilityRule {
            agent: agent.into(),
            allow: actions.iter().map(|s| s.to_string()).collect(),
            deny: Vec::new(),
        })
    }

    /// Convenience for `add_rule` with deny patterns only.
    pub fn deny(&self, agent: &str, actions: &[&str]) -> Result<(), GateError> {
        self.add_rule(CapabilityRule {
            agent: agent.into(),
            allow: Vec::new(),
            deny: actions.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// Replaces every rule (validated before anything changes).
    pub fn set_rules(&self, rules: Vec<CapabilityRule>) -> Result<(), GateError> {
        let c = Compiled::build(rules)?;
        *self.write() = c;
        Ok(())
    }

    /// Removes every rule naming exactly `agent` (e.g. on agent exit).
    pub fn revoke_agent(&self, agent: &str) {
        self.write().revoke(agent);
    }

    /// The rules as written: exact agents sorted by name, then globs in order.
    pub fn rules(&self) -> Vec<CapabilityRule> {
        self.rules
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .source()
    }

    /// The decision without building a `GateDecision`: `Ok(())` if permitted,
    /// else the denial reason.
    pub fn evaluate(&self, agent: &str, action: &str) -> Result<(), String> {
        let rules = self.rules.read().unwrap_or_else(|p| p.into_inner());
        let mut allowed = false;
        for p in rules.for_agent(agent) {
            if let Some(pat) = p.denied_by(action) {
                return Err(format!(
                    "action '{action}' denied for agent '{agent}' by deny rule '{pat}'"
                ));
            }
            allowed = allowed || p.allows(action);
        }
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "action '{action}' denied for agent '{agent}': no allow rule matches"
            ))
        }
    }
}

impl GateBackend for CapabilityGate {
    fn check(&self, agent: &str, action: &str, context: &Value) -> GateDecision {
        match self.evaluate(agent, action) {
            Ok(()) => GateDecision::permit(agent, action, Vec::new()),
            Err(reason) => GateDecision::deny(agent, action, context, reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DecisionKind;
    use serde_json::json;

    fn rule(agent: &str, allow: &[&str], deny: &[&str]) -> CapabilityRule {
        CapabilityRule {
            agent: agent.into(),
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn deny_by_default() {
        let g = CapabilityGate::new();
        let d = g.check("a", "ipc.send", &json!({}));
        match d {
            GateDecision::Deny { reason, receipt } => {
                assert!(
                    reason.contains("ipc.send") && reason.contains("'a'"),
                    "{reason}"
                );
                assert_eq!(receipt.decision, DecisionKind::Deny);
                assert!(receipt.chain_seq.is_none());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn allow_and_deny_precedence() {
        let g = CapabilityGate::with_rules(vec![
            rule("worker", &["tool.exec.*", "ipc.send"], &["tool.exec.rm"]),
            rule("*", &["health.**"], &["kernel.**"]),
            rule("admin", &["kernel.**"], &[]),
        ])
        .unwrap();
        let ok = |a: &str, act: &str| g.check(a, act, &Value::Null).is_permit();
        assert!(ok("worker", "tool.exec.ls"));
        assert!(ok("worker", "ipc.send"));
        assert!(!ok("worker", "tool.exec.rm"), "deny wins");
        assert!(!ok("worker", "tool.exec"));
        assert!(ok("worker", "health.ping"));
        assert!(ok("anyone", "health.ping"));
        assert!(!ok("anyone", "ipc.send"));
        // The wildcard deny applies to admin too: deny wins across rules.
        assert!(!ok("admin", "kernel.shutdown"));
        let reason = g.evaluate("admin", "kernel.shutdown").unwrap_err();
        assert!(reason.contains("kernel.**"), "{reason}");
    }

    #[test]
    fn runtime_updates() {
        let g = CapabilityGate::new();
        assert!(!g.check("x", "a.b", &Value::Null).is_permit());
        g.allow("x", &["a.*"]).unwrap();
        assert!(g.check("x", "a.b", &Value::Null).is_permit());
        g.deny("x", &["a.b"]).unwrap();
        assert!(!g.check("x", "a.b", &Value::Null).is_permit());
        assert!(g.allow("x", &["bad..pattern"]).is_err());
        assert_eq!(g.rules().len(), 2, "failed add leaves rules unchanged");
        g.revoke_agent("x");
        assert!(g.rules().is_empty());
        g.set_rules(vec![rule("y", &["**"], &[])]).unwrap();
        assert!(g.check("y", "anything", &Value::Null).is_permit());
    }

    #[test]
    fn permit_token_names_agent_and_action() {
        let g = CapabilityGate::with_rules(vec![rule("a", &["x.y"], &[])]).unwrap();
        match g.check("a", "x.y", &Value::Null) {
            GateDecision::Permit { token } => {
                assert_eq!((token.agent.as_str(), token.action.as_str()), ("a", "x.y"));
                assert!(token.issued_ns > 0 && token.receipt.is_none());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rules_deserialize_from_json() {
        let rules: Vec<CapabilityRule> =
            serde_json::from_value(json!([{"agent": "w", "allow": ["ipc.send"]}])).unwrap();
        let g = CapabilityGate::with_rules(rules).unwrap();
        assert!(g.check("w", "ipc.send", &Value::Null).is_permit());
    }
}
