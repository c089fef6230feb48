//! `weaver ps`: the process table, a gated query; the agents unit.

use std::any::Any;

use clap::{Args, FromArgMatches};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::control::cli::{cell, items, output, table, CliCommand, JsonFlag};
use crate::control::{to_value, ControlCx, ControlReply};
use crate::subsystem::{BoxFuture, Subsystem};

/// The agents unit's control requests.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Every process with its state and usage.
    Ps,
}

pub(crate) struct AgentsUnit;

impl Subsystem for AgentsUnit {
    fn name(&self) -> &'static str {
        "agents"
    }

    fn actions(&self) -> &'static [&'static str] {
        &[
            "agent.spawn",
            "agent.stop",
            "agent.restart",
            "agent.list",
            "kernel.self",
            "kernel.now",
            "kernel.random",
            "kernel.log",
        ]
    }

    fn control_ops(&self) -> &'static [&'static str] {
        &["ps"]
    }

    fn control<'a>(&'a self, cx: ControlCx<'a>) -> BoxFuture<'a, ControlReply> {
        Box::pin(async move {
            match cx.parse::<Request>("agents")? {
                Request::Ps => {
                    cx.query("agent.list").await?;
                    let mut rows = match to_value(cx.kernel.processes())? {
                        Value::Array(rows) => rows,
                        _ => Vec::new(),
                    };
                    for r in &mut rows {
                        if let Value::Object(o) = r {
                            o.insert("kind".into(), Value::from("agent"));
                        }
                    }
                    for u in cx.kernel.units() {
                        rows.extend(u.ps_rows());
                    }
                    Ok(Value::Array(rows))
                }
            }
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[derive(Args)]
struct PsArgs {
    #[command(flatten)]
    json: JsonFlag,
}

/// `weaver ps`.
pub fn cli() -> CliCommand {
    CliCommand {
        command: || {
            PsArgs::augment_args(clap::Command::new("ps")).about("List the kernel's processes")
        },
        run: |cx, m| {
            Box::pin(async move {
                let a = PsArgs::from_arg_matches(m)?;
                let v = crate::ask!(cx.state, "agents", &Request::Ps);
                Ok(output(a.json.json, &v, |v| {
                    let all = items(v);
                    let (agents, others): (Vec<&Value>, Vec<&Value>) =
                        all.iter().partition(|p| p["kind"] == "agent");
                    let rows: Vec<Vec<String>> = agents
                        .iter()
                        .map(|p| {
                            let u = &p["usage"];
                            vec![
                                cell(&p["pid"]),
                                cell(&p["name"]),
                                cell(&p["state"]),
                                cell(&p["owner"]),
                                cell(&p["parent"]),
                                cell(&u["messages_received"]),
                                cell(&u["messages_sent"]),
                                cell(&u["tool_calls"]),
                                cell(&u["fuel_consumed"]),
                                cell(&u["restarts"]),
                                cell(&p["last_failure"]),
                            ]
                        })
                        .collect();
                    table(
                        &[
                            "PID",
                            "NAME",
                            "STATE",
                            "OWNER",
                            "PARENT",
                            "IN",
                            "OUT",
                            "TOOLS",
                            "FUEL",
                            "RESTARTS",
                            "LAST FAILURE",
                        ],
                        &rows,
                    );
                    if !others.is_empty() {
                        println!();
                        let rows: Vec<Vec<String>> = others
                            .iter()
                            .map(|p| {
                                vec![
                                    cell(&p["id"]),
                                    cell(&p["name"]),
                                    cell(&p["kind"]),
                                    cell(&p["state"]),
                                    cell(&p["health"]),
                                    cell(&p["owner"]),
                                    cell(&p["image"]),
                                    cell(&p["ports"]),
                                    cell(&p["restarts"]),
                                    cell(&p["last_failure"]),
                                ]
                            })
                            .collect();
                        table(
                            &[
                                "ID",
                                "NAME",
                                "KIND",
                                "STATE",
                                "HEALTH",
                                "OWNER",
                                "IMAGE",
                                "PORTS",
                                "RESTARTS",
                                "LAST FAILURE",
                            ],
                            &rows,
                        );
                    }
                }))
            })
        },
    }
}
