//! `gov-misbehave`: a governance component for failure tests. It permits
//! everything, except `test.trap` (panics) and `test.spin` (loops forever);
//! `load-policy` with the text `trap` panics too.

// The generated export glue takes one argument per flattened field.
#![allow(clippy::too_many_arguments)]

// Generated from the WIT, which documents it; private, so none of it is this crate's API.
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "governance" });
}
use bindings::*;

use std::hint::black_box;

use weft::kernel::governance_types::Decision;

struct Misbehave;

impl Guest for Misbehave {
    fn evaluate(req: Request) -> DecisionResult {
        match req.action.as_str() {
            "test.trap" => panic!("gov-misbehave asked to trap"),
            "test.spin" => {
                let mut i = 0u64;
                loop {
                    i = black_box(i + 1);
                }
            }
            _ => DecisionResult {
                decision: Decision::Permit,
                fired: Vec::new(),
                reason: "gov-misbehave permits".into(),
            },
        }
    }

    fn load_policy(toml: String) -> Result<PolicySummary, String> {
        if toml == "trap" {
            panic!("gov-misbehave asked to trap in load-policy");
        }
        Ok(PolicySummary {
            name: "misbehave".into(),
            rules: 0,
            active_rules: 0,
            environments: vec!["dev".into(), "staging".into(), "prod".into()],
            dimensions: Vec::new(),
        })
    }

    fn rules() -> Vec<RuleInfo> {
        Vec::new()
    }
}

export!(Misbehave);
