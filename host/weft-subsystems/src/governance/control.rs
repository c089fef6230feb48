//! `weaver gov rules | check | reload | swap | pending | approve | deny`,
//! and their server side.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{FromArgMatches, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use weft_kernel::control::cli::{cell, items, output, table, CliCommand, JsonFlag};
use weft_kernel::control::protocol::exit;
use weft_kernel::control::{ControlCx, ControlError, ControlReply};
use weft_kernel::Query;

use weft_kernel::escalation::Decide;

use super::{escalations, GovernanceUnit, Reload, Swap};

/// The governance unit's control requests.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// The rules in force.
    Rules,
    /// Would `agent` be allowed `action`? (The decision is recorded.)
    Check {
        /// The agent (or principal) to ask for.
        agent: String,
        /// The gate action.
        action: String,
        /// Context for the decision (an object).
        context: Option<Value>,
        /// Effect vector, dimension -> value.
        effect: Option<Map<String, Value>>,
    },
    /// Replace the policy (its TOML text).
    Reload {
        /// The policy file's contents.
        policy: String,
    },
    /// Replace the component (an absolute path the kernel can read).
    Swap {
        /// The component file.
        component: PathBuf,
    },
    /// Escalations: actions governance sent to a person.
    Pending {
        /// Decided and expired ones too.
        all: Option<bool>,
    },
    /// Let escalation `id` through (once).
    Approve {
        /// The escalation.
        id: u64,
        /// Why (recorded).
        reason: String,
    },
    /// Refuse escalation `id`.
    Deny {
        /// The escalation.
        id: u64,
        /// Why (recorded).
        reason: String,
    },
    /// Every environment.
    EnvLs,
    /// One environment.
    EnvShow {
        /// Its name.
        name: String,
    },
    /// Give an environment its own policy.
    EnvSetPolicy {
        /// The environment.
        name: String,
        /// The policy file's contents.
        policy: String,
    },
}

/// A WIT enum case by name: `Branch::Judicial` (Debug) -> `judicial`.
fn variant(v: &impl std::fmt::Debug) -> String {
    let s = format!("{v:?}");
    s.rsplit("::").next().unwrap_or(&s).to_lowercase()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ControlError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ControlError::kernel(format!("handler panicked: {e}")))
}

/// Serve one request.
pub async fn serve(unit: &GovernanceUnit, cx: ControlCx<'_>) -> ControlReply {
    match cx.parse::<Request>("governance")? {
        Request::Rules => {
            cx.query("governance.rules").await?;
            let gov = unit.require()?;
            let rules = blocking(move || gov.rules())
                .await?
                .map_err(|e| ControlError::new(weft_kernel::control::kind::GUEST, e.to_string()))?;
            Ok(rules
                .into_iter()
                .map(|r| {
                    json!({
                        "id": r.id,
                        "description": r.description,
                        "branch": variant(&r.branch),
                        "severity": variant(&r.severity),
                        "active": r.active,
                        "actions": r.actions,
                        "thresholds": r.thresholds.into_iter().map(|(k, v)| (k, json!(v)))
                            .collect::<Map<_, _>>(),
                    })
                })
                .collect())
        }
        Request::Check {
            agent,
            action,
            context,
            effect,
        } => {
            cx.kernel.act(cx.who, Query("governance.check")).await?;
            let mut context = context.unwrap_or_else(|| json!({}));
            if !context.is_object() {
                return Err(ControlError::bad_request("`context` must be an object"));
            }
            if let Some(effect) = effect {
                context["effect"] = Value::Object(effect);
            }
            let kernel = cx.kernel.clone();
            let decision = blocking(move || kernel.ask_gate(&agent, &action, &context)).await?;
            Ok(match decision {
                weft_gate::GateDecision::Permit { .. } => {
                    json!({ "decision": "permit", "reason": null })
                }
                weft_gate::GateDecision::Defer { reason } => {
                    json!({ "decision": "defer", "reason": reason })
                }
                weft_gate::GateDecision::Deny { reason, .. } => {
                    json!({ "decision": "deny", "reason": reason })
                }
            })
        }
        Request::Reload { policy } => {
            let rec = cx.kernel.act(cx.who, Reload::new(policy)).await?;
            Ok(json!(rec))
        }
        Request::Swap { component } => {
            if !component.is_absolute() {
                return Err(ControlError::bad_request(
                    "`component` must be an absolute path",
                ));
            }
            let c = unit
                .runtime()?
                .load_file(&component)
                .map_err(|e| ControlError::bad_request(e.to_string()))?;
            let rec = cx.kernel.act(cx.who, Swap::new(c)).await?;
            Ok(json!(rec))
        }
        Request::Pending { all } => escalations::list(&cx, all.unwrap_or(false)).await,
        Request::Approve { id, reason } => {
            escalations::decide(&cx, Decide::approve(id, reason)).await
        }
        Request::Deny { id, reason } => escalations::decide(&cx, Decide::deny(id, reason)).await,
        r @ (Request::EnvLs | Request::EnvShow { .. } | Request::EnvSetPolicy { .. }) => {
            super::env_control::serve(unit, &cx, r).await
        }
    }
}

#[derive(Subcommand)]
enum GovCmd {
    /// The governance rules in force.
    Rules(JsonFlag),
    /// Ask the gate whether AGENT may do ACTION; exit 1 unless permitted.
    Check {
        agent: String,
        action: String,
        /// Effect vector: DIM=VALUE,... (e.g. risk=0.2,privacy=0.1).
        #[arg(long, value_parser = parse_effect)]
        effect: Option<Map<String, Value>>,
        #[arg(long)]
        json: bool,
    },
    /// Replace the policy with FILE (the component checks it first; a
    /// policy it rejects changes nothing). Recorded as governance.swap.
    Reload { file: PathBuf },
    /// Replace the governance component, keeping the policy.
    Swap { component: PathBuf },
    /// Actions governance sent to a person, waiting for a decision.
    Pending {
        /// Decided and expired ones too.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Let escalation ID through (once); recorded with you and REASON.
    Approve {
        id: u64,
        #[arg(long)]
        reason: String,
    },
    /// Refuse escalation ID; recorded with you and REASON.
    Deny {
        id: u64,
        #[arg(long)]
        reason: String,
    },
}

fn parse_effect(s: &str) -> Result<Map<String, Value>, String> {
    let mut m = Map::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}`: expected DIM=VALUE"))?;
        let x: f64 = v
            .trim()
            .parse()
            .map_err(|_| format!("`{part}`: `{v}` is not a number"))?;
        m.insert(k.trim().to_string(), json!(x));
    }
    Ok(m)
}

/// `weaver gov`.
pub fn cli() -> CliCommand {
    CliCommand {
        command: || {
            GovCmd::augment_subcommands(
                clap::Command::new("gov")
                    .about("Governance: rules in force, ask the gate, reload, swap, escalations")
                    .subcommand_required(true),
            )
        },
        run: |cx, m| Box::pin(run(cx.state, m)),
    }
}

async fn run(state: &Path, m: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    match GovCmd::from_arg_matches(m)? {
        GovCmd::Rules(f) => {
            let v = weft_kernel::ask!(state, "governance", &Request::Rules);
            Ok(output(f.json, &v, |v| {
                let rows: Vec<Vec<String>> = items(v)
                    .iter()
                    .map(|r| {
                        let actions: Vec<String> = items(&r["actions"]).iter().map(cell).collect();
                        let th: Vec<String> = r["thresholds"]
                            .as_object()
                            .map(|m| m.iter().map(|(k, x)| format!("{k}={x}")).collect())
                            .unwrap_or_default();
                        vec![
                            cell(&r["id"]),
                            cell(&r["branch"]),
                            cell(&r["severity"]),
                            if r["active"] == true { "yes" } else { "no" }.into(),
                            actions.join(","),
                            th.join(","),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "ID",
                        "BRANCH",
                        "SEVERITY",
                        "ACTIVE",
                        "ACTIONS",
                        "THRESHOLDS",
                    ],
                    &rows,
                );
            }))
        }
        GovCmd::Check {
            agent,
            action,
            effect,
            json,
        } => {
            let req = Request::Check {
                agent,
                action,
                context: None,
                effect,
            };
            let v = weft_kernel::ask!(state, "governance", &req);
            let permitted = v["decision"] == "permit";
            if json {
                println!("{v}");
            } else if permitted {
                println!("permit");
            } else {
                println!("{}: {}", cell(&v["decision"]), cell(&v["reason"]));
            }
            Ok(ExitCode::from(if permitted { 0 } else { exit::FAILED }))
        }
        GovCmd::Reload { file } => {
            let policy = match std::fs::read_to_string(&file) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("weaver: cannot read {}: {e}", file.display());
                    return Ok(ExitCode::from(exit::USAGE));
                }
            };
            let v = weft_kernel::ask!(state, "governance", &Request::Reload { policy });
            println!("policy reloaded (policy {})", cell(&v["new_policy"]));
            Ok(ExitCode::SUCCESS)
        }
        GovCmd::Swap { component } => {
            let component = std::path::absolute(&component)?;
            let v = weft_kernel::ask!(state, "governance", &Request::Swap { component });
            println!(
                "component swapped (component {})",
                cell(&v["new_component"])
            );
            Ok(ExitCode::SUCCESS)
        }
        GovCmd::Pending { all, json } => {
            let v = weft_kernel::ask!(state, "governance", &Request::Pending { all: Some(all) });
            Ok(output(json, &v, escalations::print))
        }
        GovCmd::Approve { id, reason } => {
            weft_kernel::ask!(state, "governance", &Request::Approve { id, reason });
            println!("escalation #{id} approved");
            Ok(ExitCode::SUCCESS)
        }
        GovCmd::Deny { id, reason } => {
            weft_kernel::ask!(state, "governance", &Request::Deny { id, reason });
            println!("escalation #{id} denied");
            Ok(ExitCode::SUCCESS)
        }
    }
}
