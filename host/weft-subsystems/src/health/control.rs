//! `weaver health`, and its server side (a gated query).

use std::process::ExitCode;

use clap::{Args, FromArgMatches};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use weft_kernel::control::cli::{cell, items, output, table, CliCommand, JsonFlag};
use weft_kernel::control::{kind, ControlCx, ControlError, ControlReply};

use super::{HealthUnit, Overall};

/// The health unit's control requests.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// The aggregate and every probe.
    Status,
}

/// A WIT enum case by name: `ProbeKind::Liveness` (Debug) -> `liveness`.
fn variant(v: &impl std::fmt::Debug) -> String {
    let s = format!("{v:?}");
    s.rsplit("::").next().unwrap_or(&s).to_lowercase()
}

/// Serve one request.
pub async fn serve(unit: &HealthUnit, cx: ControlCx<'_>) -> ControlReply {
    match cx.parse::<Request>("health")? {
        Request::Status => {
            cx.query("health.status").await?;
            let h = unit
                .health()
                .cloned()
                .ok_or_else(|| ControlError::kernel("the health subsystem is not installed"))?;
            let r = tokio::task::spawn_blocking(move || h.status())
                .await
                .map_err(|e| ControlError::kernel(e.to_string()))?
                .map_err(|e| ControlError::new(kind::GUEST, e.to_string()))?;
            let (overall, detail) = match r.overall {
                Overall::Healthy => ("healthy", Value::Null),
                Overall::Degraded(items) => (
                    "degraded",
                    items
                        .into_iter()
                        .map(|i| json!({ "which": i.which, "why": i.why }))
                        .collect(),
                ),
                Overall::Down(why) => ("down", json!(why)),
            };
            let probes: Vec<Value> = r
                .probes
                .into_iter()
                .map(|p| {
                    json!({
                        "name": p.name,
                        "kind": variant(&p.kind),
                        "passing": p.passing,
                        "consecutive_failures": p.consecutive_failures,
                        "last_detail": p.last_detail,
                        "last_ns": p.last_ns,
                    })
                })
                .collect();
            Ok(json!({ "overall": overall, "detail": detail, "probes": probes }))
        }
    }
}

#[derive(Args)]
struct HealthArgs {
    #[command(flatten)]
    json: JsonFlag,
}

/// `weaver health`.
pub fn cli() -> CliCommand {
    CliCommand {
        command: || {
            HealthArgs::augment_args(clap::Command::new("health"))
                .about("Health of the kernel and its probes")
        },
        run: |cx, m| {
            Box::pin(async move {
                let a = HealthArgs::from_arg_matches(m)?;
                let v = weft_kernel::ask!(cx.state, "health", &Request::Status);
                Ok::<ExitCode, anyhow::Error>(output(a.json.json, &v, |v| {
                    println!("overall: {}", cell(&v["overall"]));
                    let rows: Vec<Vec<String>> = items(&v["probes"])
                        .iter()
                        .map(|p| {
                            vec![
                                cell(&p["name"]),
                                cell(&p["kind"]),
                                if p["passing"] == true { "pass" } else { "FAIL" }.into(),
                                cell(&p["last_detail"]),
                            ]
                        })
                        .collect();
                    table(&["PROBE", "KIND", "STATUS", "DETAIL"], &rows);
                }))
            })
        },
    }
}
