//! Commands that talk to a running kernel through its control socket:
//! `kernel`, `ps`, `agent`, `tree`, `gov`, `cron`, `health` (and the kernel
//! forms of `tool` and `chain`, in their own modules).

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::control::client::{call, CallError};
use crate::exit;

/// Call the kernel; on failure print why and give the exit code.
pub async fn ask(state: &Path, cmd: &str, args: Value) -> Result<Value, ExitCode> {
    ask_with_progress(state, cmd, args, |_| {}).await
}

pub async fn ask_with_progress(
    state: &Path,
    cmd: &str,
    args: Value,
    on_progress: impl FnMut(&Value),
) -> Result<Value, ExitCode> {
    match call(state, cmd, args, on_progress).await {
        Ok(v) => Ok(v),
        Err(CallError::NoKernel(s)) => {
            eprintln!(
                "weaver: no kernel is running on {} (start one with: weaver run --state {})",
                s.display(),
                s.display()
            );
            Err(ExitCode::from(exit::GUEST))
        }
        Err(CallError::Command(e)) => {
            eprintln!("weaver: {}", e.message);
            Err(ExitCode::from(e.exit_code()))
        }
        Err(CallError::Transport(e)) => {
            eprintln!("weaver: {e:#}");
            Err(ExitCode::from(exit::GUEST))
        }
    }
}

/// Print rows as a table with aligned columns (the last one unpadded).
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let n = cells.len();
        let mut s = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            if i + 1 == n {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(headers.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// A JSON value as a table cell: strings bare, null as `-`.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Print the raw result, or a table built from it.
fn output(json_out: bool, v: &Value, human: impl FnOnce(&Value)) -> ExitCode {
    if json_out {
        println!("{v}");
    } else {
        human(v);
    }
    ExitCode::SUCCESS
}

fn items(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

macro_rules! ask {
    ($state:expr, $cmd:expr, $args:expr) => {
        match ask($state, $cmd, $args).await {
            Ok(v) => v,
            Err(code) => return Ok(code),
        }
    };
}

#[derive(Args)]
pub struct JsonFlag {
    /// Print the raw JSON result.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum KernelCmd {
    /// State, uptime, processes, chain and subsystems.
    Status(JsonFlag),
    /// The kernel's log.
    Logs {
        /// Lowest level shown: debug, info, warn, error.
        #[arg(long)]
        level: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Stop the kernel cleanly.
    Stop,
}

pub async fn kernel(state: &Path, c: KernelCmd) -> anyhow::Result<ExitCode> {
    match c {
        KernelCmd::Status(f) => {
            let v = ask!(state, "status", json!({}));
            Ok(output(f.json, &v, |v| {
                let sub = &v["subsystems"];
                let gov = match &sub["governance"] {
                    Value::Null => "not installed".to_string(),
                    g => format!("{} ({} rules)", cell(&g["policy"]), cell(&g["rules"])),
                };
                let rows = [
                    ("state", cell(&v["state"])),
                    ("state dir", cell(&v["state_dir"])),
                    (
                        "uptime",
                        format!(
                            "{:.1}s",
                            v["uptime_ms"].as_u64().unwrap_or(0) as f64 / 1000.0
                        ),
                    ),
                    ("processes", cell(&v["processes"])),
                    ("tools", cell(&v["tools"])),
                    ("services", cell(&v["services"])),
                    ("chain length", cell(&v["chain"]["len"])),
                    ("chain last seq", cell(&v["chain"]["last_seq"])),
                    ("chain public key", cell(&v["chain"]["public_key"])),
                    ("governance", gov),
                    (
                        "cron",
                        if sub["cron"] == true {
                            "installed"
                        } else {
                            "not installed"
                        }
                        .into(),
                    ),
                    (
                        "health",
                        if sub["health"] == true {
                            "installed"
                        } else {
                            "not installed"
                        }
                        .into(),
                    ),
                ];
                for (k, val) in rows {
                    println!("{:<17} {val}", format!("{k}:"));
                }
            }))
        }
        KernelCmd::Logs { level, json } => {
            let v = ask!(state, "logs", json!({ "level": level }));
            Ok(output(json, &v, |v| {
                for e in items(v) {
                    println!(
                        "{:<5} {:<8} {}",
                        cell(&e["level"]),
                        cell(&e["phase"]).to_lowercase(),
                        cell(&e["message"])
                    );
                }
            }))
        }
        KernelCmd::Stop => {
            ask!(state, "shutdown", json!({}));
            // The socket goes once the kernel stops serving; wait for that so
            // a script can start another kernel right after.
            let sock = crate::control::protocol::socket_path(state);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while sock.exists() && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            println!("kernel on {} stopped", state.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub async fn ps(state: &Path, f: JsonFlag) -> anyhow::Result<ExitCode> {
    let v = ask!(state, "ps", json!({}));
    Ok(output(f.json, &v, |v| {
        let rows: Vec<Vec<String>> = items(v)
            .iter()
            .map(|p| {
                let u = &p["usage"];
                vec![
                    cell(&p["pid"]),
                    cell(&p["name"]),
                    cell(&p["state"]),
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
    }))
}

#[derive(Subcommand)]
pub enum AgentCmd {
    /// Send a message and print the reply.
    Send {
        name: String,
        message: String,
        /// MESSAGE is JSON (sent as a JSON payload, not text).
        #[arg(long)]
        json: bool,
        /// How long to wait for the reply.
        #[arg(long = "wait-ms", default_value_t = 5000)]
        wait_ms: u64,
    },
}

pub async fn agent(state: &Path, c: AgentCmd) -> anyhow::Result<ExitCode> {
    let AgentCmd::Send {
        name,
        message,
        json,
        wait_ms,
    } = c;
    let mut args = json!({ "name": name, "wait_ms": wait_ms });
    if json {
        match serde_json::from_str::<Value>(&message) {
            Ok(v) => args["json"] = v,
            Err(e) => {
                eprintln!("weaver: MESSAGE is not JSON: {e}");
                return Ok(ExitCode::from(exit::USAGE));
            }
        }
    } else {
        args["text"] = json!(message);
    }
    let v = ask!(state, "agent.send", args);
    match (&v["text"], &v["json"]) {
        (Value::String(s), _) => println!("{s}"),
        (_, j) if !j.is_null() => println!("{j}"),
        _ => println!("{v}"),
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum TreeCmd {
    /// List nodes under PREFIX (default `/`).
    Ls {
        prefix: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn tree(state: &Path, c: TreeCmd) -> anyhow::Result<ExitCode> {
    let TreeCmd::Ls { prefix, json } = c;
    let v = ask!(state, "tree.ls", json!({ "prefix": prefix }));
    Ok(output(json, &v, |v| {
        let rows: Vec<Vec<String>> = items(v)
            .iter()
            .map(|n| {
                vec![
                    cell(&n["path"]),
                    cell(&n["children"]),
                    cell(&n["chain_seq"]),
                ]
            })
            .collect();
        table(&["PATH", "CHILDREN", "SEQ"], &rows);
    }))
}

#[derive(Subcommand)]
pub enum GovCmd {
    /// The governance rules in force.
    Rules(JsonFlag),
    /// Ask the gate whether AGENT may do ACTION; exit 1 unless permitted.
    Check {
        agent: String,
        action: String,
        /// Effect vector: DIM=VALUE,... (e.g. risk=0.2,privacy=0.1).
        #[arg(long, value_parser = parse_effect)]
        effect: Option<serde_json::Map<String, Value>>,
        #[arg(long)]
        json: bool,
    },
}

fn parse_effect(s: &str) -> Result<serde_json::Map<String, Value>, String> {
    let mut m = serde_json::Map::new();
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

pub async fn gov(state: &Path, c: GovCmd) -> anyhow::Result<ExitCode> {
    match c {
        GovCmd::Rules(f) => {
            let v = ask!(state, "gov.rules", json!({}));
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
            let v = ask!(
                state,
                "gov.check",
                json!({ "agent": agent, "action": action, "effect": effect })
            );
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
    }
}

#[derive(Subcommand)]
pub enum CronCmd {
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

pub async fn cron(state: &Path, c: CronCmd) -> anyhow::Result<ExitCode> {
    match c {
        CronCmd::Ls(f) => {
            let v = ask!(state, "cron.ls", json!({}));
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
                None => Value::Null,
                Some(Ok(v)) => v,
                Some(Err(e)) => {
                    eprintln!("weaver: --payload is not JSON: {e}");
                    return Ok(ExitCode::from(exit::USAGE));
                }
            };
            let v = ask!(
                state,
                "cron.add",
                json!({ "schedule": schedule, "target": target, "payload": payload })
            );
            Ok(output(json, &v, |v| println!("added {}", cell(&v["id"]))))
        }
        CronCmd::Rm { id } => {
            ask!(state, "cron.rm", json!({ "id": id }));
            println!("removed {id}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub async fn health(state: &Path, f: JsonFlag) -> anyhow::Result<ExitCode> {
    let v = ask!(state, "health", json!({}));
    Ok(output(f.json, &v, |v| {
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
}
