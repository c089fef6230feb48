//! `weaver ps` and `weaver agent spawn | stop | restart | inspect`: the
//! agents unit, every request an action or a gated query.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, FromArgMatches, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::control::cli::{cell, items, output, table, CliCommand, JsonFlag};
use crate::control::protocol::exit;
use crate::control::{to_value, ControlCx, ControlError, ControlReply};
use crate::subsystem::{BoxFuture, Subsystem};
use crate::{Capabilities, Kernel, Pid, Restart, Spawn, SpawnRequest, Stop};

/// The agents unit's control requests.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Every process with its state and usage.
    Ps,
    /// Start an agent as the operator.
    Spawn {
        /// Its name.
        name: String,
        /// Its component (an absolute path the kernel can read).
        component: PathBuf,
        /// Handed to its `init`.
        config: Option<Value>,
        /// What it may do (the keys of an agent's `capabilities` in
        /// `weftapp.toml`); none when absent.
        capabilities: Option<Box<Capabilities>>,
    },
    /// Stop an agent (and its descendants).
    Stop {
        /// Its name.
        name: String,
    },
    /// A fresh instance of an agent: same pid, inbox and capabilities.
    Restart {
        /// Its name.
        name: String,
    },
    /// One agent: state, owner, lineage, capabilities, usage.
    Inspect {
        /// Its name.
        name: String,
    },
}

fn pid_of(k: &Kernel, name: &str) -> Result<Pid, ControlError> {
    k.pid_of(name).ok_or_else(|| {
        let all = k.processes();
        let hint = crate::suggest::hint(name, all.iter().map(|p| p.name.as_str()));
        crate::KernelError::NotFound(format!("no agent named `{name}`{hint}")).into()
    })
}

async fn serve(cx: ControlCx<'_>) -> ControlReply {
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
        Request::Spawn {
            name,
            component,
            config,
            capabilities,
        } => {
            if !component.is_absolute() {
                return Err(ControlError::bad_request(
                    "`component` must be an absolute path",
                ));
            }
            let c = cx
                .kernel
                .load_component(&component)
                .map_err(|e| ControlError::bad_request(e.to_string()))?;
            let mut req = SpawnRequest::new(name, c);
            req.config = config.unwrap_or_else(|| json!({}));
            req.capabilities = capabilities.map(|c| *c).unwrap_or_default();
            let pid = cx.kernel.act(cx.who, Spawn::new(req)).await?;
            Ok(json!({ "pid": pid }))
        }
        Request::Stop { name } => {
            let pid = pid_of(cx.kernel, &name)?;
            cx.kernel.act(cx.who, Stop::new(pid)).await?;
            Ok(json!({ "pid": pid }))
        }
        Request::Restart { name } => {
            let pid = pid_of(cx.kernel, &name)?;
            cx.kernel.act(cx.who, Restart::new(pid)).await?;
            Ok(json!({ "pid": pid }))
        }
        Request::Inspect { name } => {
            cx.query("agent.list").await?;
            let pid = pid_of(cx.kernel, &name)?;
            let info = cx
                .kernel
                .inspect(pid)
                .ok_or_else(|| ControlError::from(crate::KernelError::NoSuchProcess(pid)))?;
            let mut v = to_value(info)?;
            if let Some(caps) = cx.kernel.capabilities_of(pid) {
                v["capabilities"] = to_value(caps)?;
            }
            // Its interfaces: the services it serves, the topics it hears.
            let services: Vec<String> = cx
                .kernel
                .services()
                .into_iter()
                .filter(|s| s.owner_pid == Some(pid))
                .map(|s| s.name)
                .collect();
            let topics: Vec<String> = cx
                .kernel
                .topics()
                .into_iter()
                .filter(|t| cx.kernel.subscribers(t).contains(&pid))
                .collect();
            v["services"] = json!(services);
            v["topics"] = json!(topics);
            Ok(v)
        }
    }
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
        &["ps", "spawn", "stop", "restart", "inspect"]
    }

    fn control<'a>(&'a self, cx: ControlCx<'a>) -> BoxFuture<'a, ControlReply> {
        Box::pin(serve(cx))
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

#[derive(Subcommand)]
enum AgentCmd {
    /// Send a message and print the reply.
    Send {
        /// The agent (`APP.ID` for an app's agent); with `--method`, a service.
        name: String,
        message: String,
        /// Call this method of the service NAME (a service-method message:
        /// the service sees `method` set) instead of messaging an agent.
        #[arg(long, value_name = "METHOD")]
        method: Option<String>,
        /// MESSAGE is JSON (sent as a JSON payload, not text).
        #[arg(long)]
        json: bool,
        /// How long to wait for the reply.
        #[arg(long = "wait-ms", default_value_t = 5000)]
        wait_ms: u64,
    },
    /// Start an agent from COMPONENT (an `agent`-world component), as you.
    Spawn {
        name: String,
        component: PathBuf,
        /// JSON handed to its `init`.
        #[arg(long)]
        config: Option<String>,
        /// A TOML file with its capabilities (the keys of an agent's
        /// `capabilities` in weftapp.toml); none without it.
        #[arg(long)]
        caps: Option<PathBuf>,
    },
    /// Stop an agent and its descendants.
    Stop { name: String },
    /// Restart an agent: a fresh instance, same pid, inbox and capabilities.
    Restart { name: String },
    /// Show an agent: state, owner, parent and children, capabilities, usage.
    Inspect {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

/// `weaver agent`.
pub fn agent_cli() -> CliCommand {
    CliCommand {
        command: || {
            AgentCmd::augment_subcommands(
                clap::Command::new("agent")
                    .about("Talk to, start, stop, restart and inspect agents")
                    .subcommand_required(true),
            )
        },
        run: |cx, m| Box::pin(run_agent(cx.state, m)),
    }
}

/// A usage error, said before anything reaches the kernel.
fn usage(msg: String) -> anyhow::Result<ExitCode> {
    eprintln!("weaver: {msg}");
    Ok(ExitCode::from(exit::USAGE))
}

async fn run_agent(state: &Path, m: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    match AgentCmd::from_arg_matches(m)? {
        AgentCmd::Send {
            name,
            message,
            method,
            json,
            wait_ms,
        } => {
            let (text, json) = if json {
                match serde_json::from_str::<Value>(&message) {
                    Ok(v) => (None, Some(v)),
                    Err(e) => return usage(format!("MESSAGE is not JSON: {e}")),
                }
            } else {
                (Some(message), None)
            };
            let req = crate::ipc::control::Request::Send {
                name,
                method,
                text,
                json,
                wait_ms: Some(wait_ms),
            };
            let v = crate::ask!(state, "ipc", &req);
            match (&v["text"], &v["json"]) {
                (Value::String(s), _) => println!("{s}"),
                (_, j) if !j.is_null() => println!("{j}"),
                _ => println!("{v}"),
            }
        }
        AgentCmd::Spawn {
            name,
            component,
            config,
            caps,
        } => {
            let config = match config.map(|c| serde_json::from_str::<Value>(&c)) {
                None => None,
                Some(Ok(v)) => Some(v),
                Some(Err(e)) => return usage(format!("--config is not JSON: {e}")),
            };
            let capabilities = match caps {
                None => None,
                Some(path) => match read_caps(&path) {
                    Ok(c) => Some(c),
                    Err(e) => return usage(e),
                },
            };
            let component = match std::path::absolute(&component) {
                Ok(p) if p.is_file() => p,
                _ => return usage(format!("{}: no such component file", component.display())),
            };
            let req = Request::Spawn {
                name: name.clone(),
                component,
                config,
                capabilities: capabilities.map(Box::new),
            };
            let v = crate::ask!(state, "agents", &req);
            println!("spawned {name} (pid {})", cell(&v["pid"]));
        }
        AgentCmd::Stop { name } => {
            crate::ask!(state, "agents", &Request::Stop { name: name.clone() });
            println!("stopped {name}");
        }
        AgentCmd::Restart { name } => {
            crate::ask!(state, "agents", &Request::Restart { name: name.clone() });
            println!("restarted {name}");
        }
        AgentCmd::Inspect { name, json } => {
            let v = crate::ask!(state, "agents", &Request::Inspect { name });
            return Ok(output(json, &v, print_inspect));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Capabilities from a TOML file, errors at `file:line:col`.
fn read_caps(path: &Path) -> Result<Capabilities, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let before = &text[..s.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!(":{line}:{col}")
            })
            .unwrap_or_default();
        format!("{}{at}: {}", path.display(), e.message())
    })
}

fn list(v: &Value) -> String {
    let items: Vec<String> = items(v).iter().map(cell).collect();
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

fn print_inspect(v: &Value) {
    let u = &v["usage"];
    let children: Vec<String> = items(&v["children"]).iter().map(cell).collect();
    let rows = [
        ("name", cell(&v["name"])),
        ("pid", cell(&v["pid"])),
        ("state", cell(&v["state"])),
        ("owner", cell(&v["owner"])),
        ("role", cell(&v["role"])),
        ("priority", cell(&v["priority"])),
        ("lineage", cell(&v["lineage"])),
        ("parent", cell(&v["parent"])),
        ("children", children.join(", ")),
        ("services", list(&v["services"])),
        ("topics", list(&v["topics"])),
        ("component", cell(&v["component"])),
        ("restarts", cell(&u["restarts"])),
        ("last failure", cell(&v["last_failure"])),
        (
            "usage",
            format!(
                "in {} out {} tools {} fuel {}",
                cell(&u["messages_received"]),
                cell(&u["messages_sent"]),
                cell(&u["tool_calls"]),
                cell(&u["fuel_consumed"])
            ),
        ),
        (
            "limits",
            format!(
                "fuel/msg {} timeout {} ms memory {} messages {} tool calls {}",
                cell(&v["limits"]["fuel_per_message"]),
                cell(&v["limits"]["timeout_ms"]),
                cell(&v["limits"]["max_memory_bytes"]),
                cell(&v["limits"]["max_messages"]),
                cell(&v["limits"]["max_tool_calls"])
            ),
        ),
        ("capabilities", v["capabilities"].to_string()),
    ];
    for (k, val) in rows {
        println!("{k:<13} {val}");
    }
}
