//! `weaver gov pending | approve | deny`: the kernel's escalation queue,
//! shown and decided through governance's control unit.

use serde_json::{json, Value};
use weft_kernel::control::cli::{cell, items, table};
use weft_kernel::control::{to_value, ControlCx, ControlReply};
use weft_kernel::escalation::{Decide, EscalationState};

/// Escalations, newest first: the pending ones, or all of them.
pub(super) async fn list(cx: &ControlCx<'_>, all: bool) -> ControlReply {
    cx.query("gov.pending").await?;
    let rows: Vec<_> = cx
        .kernel
        .escalations()
        .into_iter()
        .filter(|e| all || e.state == EscalationState::Pending)
        .collect();
    to_value(rows)
}

/// A person's decision, through the chokepoint.
pub(super) async fn decide(cx: &ControlCx<'_>, d: Decide) -> ControlReply {
    let seq = cx.kernel.act(cx.who, d).await?;
    Ok(json!({ "seq": seq }))
}

/// The human table of `gov pending`.
pub(super) fn print(v: &Value) {
    let now = weft_chain::now_ns();
    let rows: Vec<Vec<String>> = items(v)
        .iter()
        .map(|e| {
            let age = now.saturating_sub(e["opened_ns"].as_u64().unwrap_or(now)) / 1_000_000_000;
            let decided = match (&e["decided_by"], &e["decision_reason"]) {
                (Value::String(by), r) => format!("{by}: {}", cell(r)),
                _ => "-".into(),
            };
            vec![
                cell(&e["id"]),
                cell(&e["state"]),
                cell(&e["principal"]),
                cell(&e["action"]),
                format!("{age}s"),
                cell(&e["reason"]),
                decided,
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("no escalations waiting");
        return;
    }
    table(
        &["ID", "STATE", "WHO", "ACTION", "AGE", "REASON", "DECIDED"],
        &rows,
    );
}
