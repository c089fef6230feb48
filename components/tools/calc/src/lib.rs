//! `calc`: a `weft:kernel` tool that evaluates arithmetic expressions.
//!
//! Input `{"expr": "2 * (x + 1)", "vars": {"x": 3}}` gives `{"value": 8}`.
//! Operators `+ - * / % ^`, parentheses, unary minus, constants `pi` and
//! `e`, functions `sqrt abs ln log10 sin cos tan floor ceil round min max`.

mod expr;

// Generated from the WIT, which documents it; private, so none of it is this crate's API.
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "tool" });
}
use bindings::*;

struct Calc;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    expr: String,
    #[serde(default)]
    vars: std::collections::BTreeMap<String, f64>,
}

impl Guest for Calc {
    fn describe() -> ToolInfo {
        ToolInfo {
            name: "calc".into(),
            description: "Evaluate an arithmetic expression (+ - * / % ^, parentheses, \
                          pi, e, sqrt, abs, ln, log10, sin, cos, tan, floor, ceil, round, \
                          min, max) with optional named variables."
                .into(),
            params_schema: serde_json::json!({
                "type": "object",
                "properties": {
                    "expr": {"type": "string", "description": "the expression"},
                    "vars": {"type": "object", "additionalProperties": {"type": "number"}}
                },
                "required": ["expr"],
                "additionalProperties": false
            })
            .to_string(),
        }
    }

    fn invoke(input: String) -> Result<String, ToolError> {
        let input: Input = serde_json::from_str(&input).map_err(|e| {
            ToolError::InvalidInput(format!(
                "expected {{\"expr\": string, \"vars\"?: object}}: {e}"
            ))
        })?;
        let value = expr::eval(&input.expr, &input.vars).map_err(ToolError::InvalidInput)?;
        if !value.is_finite() {
            return Err(ToolError::Failed(format!(
                "result is not a finite number ({value})"
            )));
        }
        Ok(serde_json::json!({ "value": value }).to_string())
    }
}

export!(Calc);
