//! `weaver cron ls | add | rm`, and their server side (the operator's jobs
//! fire as the operator).

use std::path::Path;
use std::process::ExitCode;

use clap::{FromArgMatches, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use weft_kernel::control::cli::{cell, items, output, table, CliCommand, JsonFlag};
use weft_kernel::control::protocol::exit;
use weft_kernel::control::{to_value, ControlCx, ControlError, ControlReply};

use super::{CronAdd, CronJobSpec, CronRemove, CronUnit};

/// The cron unit's control requests.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Every job.
    Ls,
    /// Schedule a message to `target` as the operator.
    Add {
        /// Cron expression, `every <n><unit>` or `at <RFC 3339>`.
        schedule: String,
        /// The agent it goes to.
        target: String,
        /// The message body (JSON).
        payload: Option<Value>,
    },
    /// Remove a job.
    Rm {
        /// Its id.
        id: String,
    },
}

/// Serve one request.
pub async fn serve(unit: &CronUnit, cx: ControlCx<'_>) -> ControlReply {
    match cx.parse::<Request>("cron")? {
        Request::Ls => {
            cx.query("cron.list").await?;
            let cron = unit.require()?.clone();
            let jobs = tokio::task::spawn_blocking(move || cron.list())
                .await
                .map_err(|e| ControlError::kernel(e.to_string()))?
                .map_err(|e| ControlError::new(weft_kernel::control::kind::GUEST, e.to_string()))?;
            to_value(jobs)
        }
        Request::Add {
            schedule,
            target,
            payload,
        } => {
            let spec = CronJobSpec {
                schedule,
                target,
                payload: payload.unwrap_or(Value::Null),
            };
            to_value(cx.kernel.act(cx.who, CronAdd::new(spec)).await?)
        }
        Request::Rm { id } => {
            cx.kernel.act(cx.who, CronRemove::new(&id)).await?;
            Ok(json!({ "removed": id }))
        }
    }
}

#[derive(Subcommand)]
enum CronCmd {
    /// List the scheduled jobs.
    Ls(JsonFlag),
    /// Schedule a message to TARGET (cron expression, `every 5m`, `at <RFC 3339>`).
    Add {
        schedule: String,
        target: String,
        /// The message body, JSON.
        #[arg(long)]
        payload: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a job.
    Rm { id: String },
}

/// `weaver cron`.
pub fn cli() -> CliCommand {
    CliCommand {
        command: || {
            CronCmd::augment_subcommands(
                clap::Command::new("cron")
                    .about("Scheduled jobs")
                    .subcommand_required(true),
            )
        },
        run: |cx, m| Box::pin(run(cx.state, m)),
    }
}

async fn run(state: &Path, m: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    match CronCmd::from_arg_matches(m)? {
        CronCmd::Ls(f) => {
            let v = weft_kernel::ask!(state, "cron", &Request::Ls);
            Ok(output(f.json, &v, |v| {
                let rows: Vec<Vec<String>> = items(v)
                    .iter()
                    .map(|j| {
                        vec![
                            cell(&j["id"]),
                            cell(&j["schedule"]),
                            cell(&j["target"]),
                            cell(&j["owner"]),
                            cell(&j["payload"]),
                        ]
                    })
                    .collect();
                table(&["ID", "SCHEDULE", "TARGET", "OWNER", "PAYLOAD"], &rows);
            }))
        }
        CronCmd::Add {
            schedule,
            target,
            payload,
            json,
        } => {
            let payload = match payload.as_deref().map(serde_json::from_str::<Value>) {
                None => None,
                Some(Ok(v)) => Some(v),
                Some(Err(e)) => {
                    eprintln!("weaver: --payload is not JSON: {e}");
                    return Ok(ExitCode::from(exit::USAGE));
                }
            };
            let req = Request::Add {
                schedule,
                target,
                payload,
            };
            let v = weft_kernel::ask!(state, "cron", &req);
            Ok(output(json, &v, |v| println!("added {}", cell(&v["id"]))))
        }
        CronCmd::Rm { id } => {
            weft_kernel::ask!(state, "cron", &Request::Rm { id: id.clone() });
            println!("removed {id}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
