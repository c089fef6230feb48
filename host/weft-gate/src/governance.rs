//! Governance gate: maps an external rule engine's verdict onto the gate.
//! The engine is a WebAssembly component in production; any error from it
//! (trap, out of fuel) denies the action (fail closed).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{GateBackend, GateDecision};

pub use weft_model::effect::DEFAULT_DIMENSIONS;

/// What the governance engine is asked to judge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GovernanceRequest {
    /// The agent asking.
    pub agent: String,
    /// The action it wants to perform.
    pub action: String,
    /// Named effect dimensions (risk, fairness, privacy, novelty, security…).
    pub effect: BTreeMap<String, f64>,
    /// The request context as the gate received it.
    pub context: Value,
    /// The environment the gate is scoped to (`dev`, `staging`, `prod`).
    pub environment: String,
}

/// The engine's four-way decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GovernanceDecision {
    /// Allowed.
    Permit,
    /// Allowed; the verdict's explanation becomes a warning on the permit.
    PermitWithWarning,
    /// Needs a human: the gate defers.
    EscalateToHuman,
    /// Refused.
    Deny,
}

/// Severity of a fired rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleSeverity {
    /// Noted; does not change the decision.
    Informational,
    /// Permits with a warning.
    Warning,
    /// Denies.
    Blocking,
}

/// A rule that contributed to a verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiredRule {
    /// The rule's id in the policy.
    pub id: String,
    /// How much the rule weighs.
    pub severity: RuleSeverity,
    /// Why it fired.
    pub reason: String,
}

/// The engine's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GovernanceVerdict {
    /// The decision.
    pub decision: GovernanceDecision,
    /// The rules behind it.
    pub fired_rules: Vec<FiredRule>,
    /// An explanation; when empty the gate explains with the fired rules.
    pub reason: String,
}

/// Why the engine could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GovernanceError {
    /// The engine trapped.
    #[error("governance component trapped: {0}")]
    Trapped(String),
    /// The engine used up its fuel.
    #[error("governance component ran out of fuel")]
    OutOfFuel,
    /// Any other failure of the engine or its host.
    #[error("governance backend error: {0}")]
    Backend(String),
}

/// A governance rule engine.
pub trait GovernanceBackend: Send + Sync {
    /// Judges one request. An error denies the action (fail closed).
    fn evaluate(&self, req: &GovernanceRequest) -> Result<GovernanceVerdict, GovernanceError>;

    /// Moves forward on every policy reload or engine swap
    /// (see [`GateBackend::policy_epoch`]).
    fn policy_epoch(&self) -> u64 {
        0
    }
}

/// Gate backed by a governance engine, scoped to one environment.
#[derive(Clone)]
pub struct GovernanceGate {
    backend: Arc<dyn GovernanceBackend>,
    environment: String,
    dimensions: Vec<String>,
}

impl std::fmt::Debug for GovernanceGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernanceGate")
            .field("environment", &self.environment)
            .field("dimensions", &self.dimensions)
            .finish()
    }
}

impl GovernanceGate {
    /// A gate over `backend` for `environment`, with the default effect dimensions.
    pub fn new(backend: Arc<dyn GovernanceBackend>, environment: impl Into<String>) -> Self {
        GovernanceGate {
            backend,
            environment: environment.into(),
            dimensions: DEFAULT_DIMENSIONS.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Uses another dimension schema (e.g. a compact 3-D one on edge nodes).
    pub fn with_dimensions(mut self, dims: &[&str]) -> Self {
        self.dimensions = dims.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Reads `context["effect"]`: an object of name → number, or an array of
    /// numbers in dimension order. Missing dimensions are 0.
    pub fn effect_from_context(&self, context: &Value) -> Result<BTreeMap<String, f64>, String> {
        let mut effect: BTreeMap<String, f64> =
            self.dimensions.iter().map(|d| (d.clone(), 0.0)).collect();
        match context.get("effect") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let x = v
                        .as_f64()
                        .filter(|x| x.is_finite())
                        .ok_or_else(|| format!("effect dimension '{k}' is not a finite number"))?;
                    effect.insert(k.clone(), x);
                }
            }
            Some(Value::Array(items)) => {
                if items.len() > self.dimensions.len() {
                    return Err(format!(
                        "effect vector has {} values for {} dimensions",
                        items.len(),
                        self.dimensions.len()
                    ));
                }
                for (d, v) in self.dimensions.iter().zip(items) {
                    let x = v
                        .as_f64()
                        .filter(|x| x.is_finite())
                        .ok_or_else(|| format!("effect dimension '{d}' is not a finite number"))?;
                    effect.insert(d.clone(), x);
                }
            }
            Some(_) => return Err("context.effect must be an object or an array".into()),
        }
        Ok(effect)
    }
}

fn explain(v: &GovernanceVerdict) -> String {
    if !v.reason.is_empty() {
        return v.reason.clone();
    }
    let rules: Vec<String> = v
        .fired_rules
        .iter()
        .map(|r| format!("{} ({:?}): {}", r.id, r.severity, r.reason))
        .collect();
    if rules.is_empty() {
        format!("governance decision {:?}", v.decision)
    } else {
        rules.join("; ")
    }
}

impl GateBackend for GovernanceGate {
    fn policy_epoch(&self) -> u64 {
        self.backend.policy_epoch()
    }

    fn check(&self, agent: &str, action: &str, context: &Value) -> GateDecision {
        let effect = match self.effect_from_context(context) {
            Ok(e) => e,
            Err(why) => {
                return GateDecision::deny(
                    agent,
                    action,
                    context,
                    format!("malformed request: {why}"),
                )
            }
        };
        let req = GovernanceRequest {
            agent: agent.to_owned(),
            action: action.to_owned(),
            effect,
            context: context.clone(),
            // The kernel names the environment when it is not the gate's own.
            environment: context
                .get("environment")
                .and_then(Value::as_str)
                .unwrap_or(&self.environment)
                .to_owned(),
        };
        match self.backend.evaluate(&req) {
            Ok(v) => match v.decision {
                GovernanceDecision::Permit => GateDecision::permit(agent, action, Vec::new()),
                GovernanceDecision::PermitWithWarning => {
                    GateDecision::permit(agent, action, vec![explain(&v)])
                }
                GovernanceDecision::EscalateToHuman => GateDecision::Defer {
                    reason: explain(&v),
                },
                GovernanceDecision::Deny => GateDecision::deny(agent, action, context, explain(&v)),
            },
            Err(e) => GateDecision::deny(
                agent,
                action,
                context,
                format!("governance failed, denying (fail closed): {e}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DecisionKind;
    use serde_json::json;
    use std::sync::Mutex;

    /// Test engine: thresholds on the effect magnitude, plus scripted failures.
    struct Engine {
        fail: Option<GovernanceError>,
        seen: Mutex<Vec<GovernanceRequest>>,
    }

    impl GovernanceBackend for Engine {
        fn evaluate(&self, req: &GovernanceRequest) -> Result<GovernanceVerdict, GovernanceError> {
            self.seen.lock().unwrap().push(req.clone());
            if let Some(e) = &self.fail {
                return Err(e.clone());
            }
            let mag = req.effect.values().map(|x| x * x).sum::<f64>().sqrt();
            let (decision, id, severity) = match mag {
                m if m < 0.3 => (
                    GovernanceDecision::Permit,
                    "low",
                    RuleSeverity::Informational,
                ),
                m if m < 0.6 => (
                    GovernanceDecision::PermitWithWarning,
                    "mid",
                    RuleSeverity::Warning,
                ),
                m if m < 0.9 => (
                    GovernanceDecision::EscalateToHuman,
                    "high",
                    RuleSeverity::Warning,
                ),
                _ => (GovernanceDecision::Deny, "block", RuleSeverity::Blocking),
            };
            Ok(GovernanceVerdict {
                decision,
                fired_rules: vec![FiredRule {
                    id: id.into(),
                    severity,
                    reason: format!("magnitude {mag:.2}"),
                }],
                reason: String::new(),
            })
        }
    }

    fn gate(fail: Option<GovernanceError>) -> (Arc<Engine>, GovernanceGate) {
        let e = Arc::new(Engine {
            fail,
            seen: Mutex::new(Vec::new()),
        });
        (e.clone(), GovernanceGate::new(e, "production"))
    }

    #[test]
    fn verdicts_map_to_decisions() {
        let (_, g) = gate(None);
        let check = |risk: f64| g.check("a", "tool.exec", &json!({"effect": {"risk": risk}}));
        assert!(check(0.1).is_permit());
        match check(0.5) {
            GateDecision::Permit { token } => assert!(token.warnings[0].contains("mid")),
            other => panic!("{other:?}"),
        }
        assert_eq!(check(0.7).kind(), DecisionKind::Defer);
        assert!(check(0.7).reason().contains("high"));
        assert_eq!(check(2.0).kind(), DecisionKind::Deny);
        assert!(check(2.0).reason().contains("block"));
    }

    #[test]
    fn backend_failure_fails_closed() {
        for err in [
            GovernanceError::OutOfFuel,
            GovernanceError::Trapped("unreachable".into()),
            GovernanceError::Backend("boom".into()),
        ] {
            let (_, g) = gate(Some(err));
            let d = g.check("a", "tool.exec", &json!({}));
            assert_eq!(d.kind(), DecisionKind::Deny);
            assert!(d.reason().contains("governance failed"), "{}", d.reason());
        }
    }

    #[test]
    fn effect_vector_parsing() {
        let (engine, g) = gate(None);
        g.check("a", "x", &json!({"effect": [0.1, 0.2], "other": 1}));
        let req = engine.seen.lock().unwrap().pop().unwrap();
        assert_eq!(req.effect.len(), 5);
        assert_eq!(req.effect["risk"], 0.1);
        assert_eq!(req.effect["fairness"], 0.2);
        assert_eq!(req.effect["security"], 0.0);
        assert_eq!(req.environment, "production");
        assert_eq!(req.context["other"], 1);
        g.check("a", "x", &json!({"effect": {"custom": 0.05}}));
        let req = engine.seen.lock().unwrap().pop().unwrap();
        assert_eq!(req.effect["custom"], 0.05);
        // No effect at all: all-zero default vector.
        g.check("a", "x", &Value::Null);
        let req = engine.seen.lock().unwrap().pop().unwrap();
        assert!(req.effect.values().all(|v| *v == 0.0));
        for bad in [
            json!({"effect": "high"}),
            json!({"effect": {"risk": "x"}}),
            json!({"effect": [1, 2, 3, 4, 5, 6]}),
        ] {
            let d = g.check("a", "x", &bad);
            assert_eq!(d.kind(), DecisionKind::Deny, "{bad}");
        }
        let g3 = GovernanceGate::new(engine.clone(), "edge")
            .with_dimensions(&["risk", "privacy", "security"]);
        g3.check("a", "x", &json!({"effect": [0.1, 0.1, 0.1]}));
        assert_eq!(engine.seen.lock().unwrap().pop().unwrap().effect.len(), 3);
    }
}
