//! `governance`: Weft's governance engine as a component. Rules with a
//! branch and a severity match dotted actions by glob; effect vectors are
//! measured against per-environment thresholds (see `eval.rs`). The policy
//! is TOML, parsed here; `default-policy.toml` is built in.

// The generated export glue takes one argument per flattened field.
#![allow(clippy::too_many_arguments)]

// Generated from the WIT, which documents it; private, so none of it is this crate's API.
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "governance" });
}
use bindings::*;

mod eval;
mod policy;

use std::cell::RefCell;

use policy::{Branch as B, Policy, Severity as S, Verdict};
use weft::kernel::governance_types::{Branch, Decision, FiredRule, Severity};

const DEFAULT_POLICY: &str = include_str!("../default-policy.toml");

thread_local! {
    static POLICY: RefCell<Option<Result<Policy, String>>> = const { RefCell::new(None) };
}

/// Run `f` on the policy in force, loading the built-in one on first use.
fn with_policy<R>(f: impl FnOnce(Result<&Policy, &str>) -> R) -> R {
    POLICY.with_borrow_mut(|p| {
        let p = p.get_or_insert_with(|| Policy::parse(DEFAULT_POLICY));
        f(p.as_ref().map_err(String::as_str))
    })
}

fn branch(b: B) -> Branch {
    match b {
        B::Legislative => Branch::Legislative,
        B::Executive => Branch::Executive,
        B::Judicial => Branch::Judicial,
    }
}

fn severity(s: S) -> Severity {
    match s {
        S::Advisory => Severity::Advisory,
        S::Warning => Severity::Warning,
        S::Blocking => Severity::Blocking,
        S::Critical => Severity::Critical,
    }
}

fn decision(v: Verdict) -> Decision {
    match v {
        Verdict::Permit => Decision::Permit,
        Verdict::PermitWithWarning => Decision::PermitWithWarning,
        Verdict::EscalateToHuman => Decision::EscalateToHuman,
        Verdict::Deny => Decision::Deny,
    }
}

fn summary(p: &Policy) -> PolicySummary {
    PolicySummary {
        name: p.name.clone(),
        rules: p.rules.len() as u32,
        active_rules: p.rules.iter().filter(|r| r.active).count() as u32,
        environments: p.envs.iter().map(|e| e.name.clone()).collect(),
        dimensions: p.dimensions.clone(),
    }
}

struct Governance;

impl Guest for Governance {
    fn evaluate(req: Request) -> DecisionResult {
        with_policy(|p| match p {
            Err(e) => DecisionResult {
                decision: Decision::Deny,
                fired: Vec::new(),
                reason: format!("no usable policy: {e}"),
            },
            Ok(p) => {
                let o = eval::evaluate(p, &req.action, &req.effect, &req.environment);
                DecisionResult {
                    decision: decision(o.verdict),
                    fired: o
                        .fired
                        .iter()
                        .map(|f| FiredRule {
                            id: f.rule.id.clone(),
                            severity: severity(f.rule.severity),
                            branch: branch(f.rule.branch),
                            reason: f.reason.clone(),
                        })
                        .collect(),
                    reason: o.reason,
                }
            }
        })
    }

    fn load_policy(toml: String) -> Result<PolicySummary, String> {
        let p = Policy::parse(&toml)?;
        let s = summary(&p);
        POLICY.with_borrow_mut(|cur| *cur = Some(Ok(p)));
        Ok(s)
    }

    fn rules() -> Vec<RuleInfo> {
        with_policy(|p| {
            p.map(|p| {
                p.rules
                    .iter()
                    .map(|r| RuleInfo {
                        id: r.id.clone(),
                        description: r.description.clone(),
                        branch: branch(r.branch),
                        severity: severity(r.severity),
                        active: r.active,
                        actions: r.actions.clone(),
                        thresholds: r.thresholds.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
        })
    }
}

export!(Governance);
