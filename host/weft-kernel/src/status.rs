//! The kernel's own unit: `weaver kernel status | logs | stop` and `weaver
//! tree ls`, each a gated query (or, for `stop`, a gated action), plus the
//! read-only [`TreeView`].

use std::any::Any;
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, FromArgMatches, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use weft_tree::{NodeView, TreeError, TreeManager, TreeStats};

use crate::act::Query;
use crate::console::LogLevel;
use crate::control::cli::{cell, items, output, table, CliCommand, CliContext};
use crate::control::{to_value, ControlCx, ControlError, ControlReply};
use crate::subsystem::{BoxFuture, Subsystem};

/// The resource tree, read-only (its changes are made by actions).
pub struct TreeView<'a>(pub(crate) &'a TreeManager);

impl TreeView<'_> {
    /// The node at `path`.
    pub fn get(&self, path: &str) -> Option<NodeView> {
        self.0.get(path)
    }

    /// The nodes under `prefix` (itself included).
    pub fn list(&self, prefix: &str) -> Result<Vec<NodeView>, TreeError> {
        self.0.list(prefix)
    }

    /// Node and mutation counts.
    pub fn stats(&self) -> TreeStats {
        self.0.stats()
    }
}

/// The kernel unit's control requests.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// State, uptime, processes, chain and subsystems.
    Status,
    /// The kernel log, from `level` up.
    Logs {
        /// `debug`, `info`, `warn` or `error`.
        level: Option<String>,
        /// Only lines from this source: an agent's name, or an app's name
        /// for all of its agents (`app` matches `app.*`).
        #[serde(default)]
        source: Option<String>,
        /// Only lines after this time (ns since the epoch): `--follow`.
        #[serde(default)]
        since_ns: Option<u64>,
    },
    /// Stop the kernel once this is answered.
    Stop,
    /// Tree nodes under `prefix`.
    Tree {
        /// Default `/`.
        prefix: Option<String>,
    },
}

pub(crate) struct KernelUnit;

impl Subsystem for KernelUnit {
    fn name(&self) -> &'static str {
        "kernel"
    }

    fn actions(&self) -> &'static [&'static str] {
        &["kernel.status", "kernel.logs", "kernel.stop", "tree.read"]
    }

    fn control_ops(&self) -> &'static [&'static str] {
        &["status", "logs", "stop", "tree"]
    }

    fn control<'a>(&'a self, cx: ControlCx<'a>) -> BoxFuture<'a, ControlReply> {
        Box::pin(serve(cx))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A stop requested through the control API (`kernel.stop`): recorded, then
/// `weaver run` stops the kernel once the answer is out.
struct StopKernel;

impl crate::act::Action for StopKernel {
    type Output = ();

    fn gate_action(&self) -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("kernel.stop")
    }

    fn gate_context(&self) -> Value {
        json!({})
    }

    async fn perform(self, cx: &mut crate::act::ActCx<'_>) -> crate::KernelResult<()> {
        cx.record("kernel.stop", &json!({}))?;
        cx.kernel().request_stop();
        Ok(())
    }
}

async fn serve(cx: ControlCx<'_>) -> ControlReply {
    let k = cx.kernel;
    match cx.parse::<Request>("kernel")? {
        Request::Status => {
            cx.query("kernel.status").await?;
            let s = k.stats();
            let subsystems: Map<String, Value> = k
                .unit_names()
                .into_iter()
                .filter_map(|n| k.unit(n).map(|u| (n.to_string(), u.status())))
                .filter(|(_, v)| !v.is_null())
                .collect();
            Ok(json!({
                "state": s.state,
                "state_dir": k.state_dir(),
                "environment": k.config().kernel.environment,
                "processes": s.processes,
                "services": s.services,
                "tools": s.tools,
                "topics": s.topics,
                "lost_records": s.lost_records,
                "chain": {
                    "len": s.chain.len,
                    "last_seq": s.chain.last_seq,
                    "public_key": s.chain.public_key,
                    "heads": s.chain.heads,
                    "durable_head": s.chain.durable_head,
                    "segments": s.chain.segments,
                    "first_seq": s.chain.first_seq,
                },
                "units": k.unit_names(),
                "subsystems": subsystems,
            }))
        }
        Request::Logs {
            level,
            source,
            since_ns,
        } => {
            cx.query("kernel.logs").await?;
            let min = match level.as_deref() {
                None | Some("debug") => LogLevel::Debug,
                Some("info") => LogLevel::Info,
                Some("warn") => LogLevel::Warn,
                Some("error") => LogLevel::Error,
                Some(other) => {
                    return Err(ControlError::bad_request(format!(
                        "unknown level `{other}` (debug, info, warn, error)"
                    )))
                }
            };
            let from = |e: &crate::console::BootEvent| match (&source, &e.source) {
                (None, _) => true,
                (Some(want), Some(s)) => {
                    s == want
                        || s.strip_prefix(want.as_str())
                            .is_some_and(|r| r.starts_with('.'))
                }
                (Some(_), None) => false,
            };
            to_value(
                k.logs()
                    .into_iter()
                    .filter(|e| e.level >= min && from(e))
                    .filter(|e| since_ns.is_none_or(|t| e.timestamp_ns > t))
                    .collect::<Vec<_>>(),
            )
        }
        Request::Stop => {
            k.act(cx.who, StopKernel).await?;
            Ok(json!({ "stopping": true }))
        }
        Request::Tree { prefix } => {
            k.act(cx.who, Query("tree.read")).await?;
            let nodes = k
                .tree()
                .list(prefix.as_deref().unwrap_or("/"))
                .map_err(|e| ControlError::new(crate::control::kind::NOT_FOUND, e.to_string()))?;
            to_value(nodes)
        }
    }
}

#[derive(Subcommand)]
enum KernelCmd {
    /// State, processes, chain and subsystems.
    Status(StatusArgs),
    /// The kernel's log: its own lines, and each agent's `log` calls and
    /// stdout (info) / stderr (warn) lines under the agent's name.
    Logs(LogsArgs),
    /// Stop the kernel cleanly.
    Stop,
}

/// `weaver kernel status`.
#[derive(Args)]
struct StatusArgs {
    /// Print the raw JSON result.
    #[arg(long)]
    json: bool,
    /// Wait up to SECONDS for a kernel that is still booting to answer
    /// (for scripts that start `weaver run` in the background).
    #[arg(long, value_name = "SECONDS")]
    wait: Option<u64>,
}

/// `weaver kernel logs`. (`weaver logs APP/SERVICE` is a container's.)
#[derive(Args)]
struct LogsArgs {
    /// Lowest level shown: debug, info, warn, error.
    #[arg(long)]
    level: Option<String>,
    /// Only what this agent said (an app's name: all of its agents).
    #[arg(long, value_name = "AGENT|APP", conflicts_with_all = ["agent", "app"])]
    source: Option<String>,
    /// Only what this agent said.
    #[arg(long, conflicts_with = "app")]
    agent: Option<String>,
    /// Only what this app's agents said.
    #[arg(long)]
    app: Option<String>,
    /// Keep printing new lines until the kernel stops (or Ctrl-C).
    #[arg(short, long)]
    follow: bool,
    /// JSON: an array, or one entry per line with --follow.
    #[arg(long)]
    json: bool,
}

async fn logs(state: &Path, a: LogsArgs) -> anyhow::Result<ExitCode> {
    let source = a.source.or(a.agent).or(a.app);
    let mut since_ns = None;
    loop {
        let req = Request::Logs {
            level: a.level.clone(),
            source: source.clone(),
            since_ns,
        };
        let v = match crate::control::cli::ask(state, "kernel", &req).await {
            Ok(v) => v,
            // Following a kernel that stopped: the end of its log.
            Err(_) if since_ns.is_some() => return Ok(ExitCode::SUCCESS),
            Err(code) => return Ok(code),
        };
        if a.json && !a.follow {
            println!("{v}");
            return Ok(ExitCode::SUCCESS);
        }
        for e in items(&v) {
            if let Some(t) = e["timestamp_ns"].as_u64() {
                since_ns = Some(since_ns.unwrap_or(0).max(t));
            }
            if a.json {
                println!("{e}");
                continue;
            }
            match serde_json::from_value::<crate::console::BootEvent>(e.clone()) {
                Ok(ev) => println!("{}", ev.render()),
                Err(_) => println!("{}", cell(&e["message"])),
            }
        }
        if !a.follow {
            return Ok(ExitCode::SUCCESS);
        }
        since_ns.get_or_insert(0);
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[derive(Subcommand)]
enum TreeCmd {
    /// List nodes under PREFIX (default `/`).
    Ls {
        prefix: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// `weaver kernel` and `weaver tree`.
pub fn cli() -> Vec<CliCommand> {
    vec![
        CliCommand {
            command: || {
                KernelCmd::augment_subcommands(
                    clap::Command::new("kernel")
                        .about("The running kernel: status, logs, stop")
                        .subcommand_required(true),
                )
            },
            run: |cx, m| Box::pin(kernel(cx, m)),
        },
        CliCommand {
            command: || {
                TreeCmd::augment_subcommands(
                    clap::Command::new("tree")
                        .about("The resource tree")
                        .subcommand_required(true),
                )
            },
            run: |cx, m| Box::pin(tree(cx.state, m)),
        },
    ]
}

async fn kernel(cx: &CliContext<'_>, m: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    let state = cx.state;
    match KernelCmd::from_arg_matches(m)? {
        KernelCmd::Status(f) => {
            if let Some(secs) = f.wait {
                wait_for_kernel(state, secs).await;
            }
            let v = crate::ask!(state, "kernel", &Request::Status);
            Ok(output(f.json, &v, |v| {
                let mut rows = vec![
                    ("state".to_string(), cell(&v["state"])),
                    ("state dir".into(), cell(&v["state_dir"])),
                    ("environment".into(), cell(&v["environment"])),
                    ("processes".into(), cell(&v["processes"])),
                    ("tools".into(), cell(&v["tools"])),
                    ("services".into(), cell(&v["services"])),
                    ("chain length".into(), cell(&v["chain"]["len"])),
                    ("chain last seq".into(), cell(&v["chain"]["last_seq"])),
                    ("chain public key".into(), cell(&v["chain"]["public_key"])),
                ];
                if let Some(subs) = v["subsystems"].as_object() {
                    for (name, s) in subs {
                        rows.push((name.clone(), cell(s)));
                    }
                }
                if v["lost_records"].as_u64().unwrap_or(0) > 0 {
                    rows.push(("LOST RECORDS".into(), cell(&v["lost_records"])));
                }
                for (k, val) in rows {
                    println!("{:<17} {val}", format!("{k}:"));
                }
            }))
        }
        KernelCmd::Logs(a) => logs(state, a).await,
        KernelCmd::Stop => {
            crate::ask!(state, "kernel", &Request::Stop);
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

/// Poll until a kernel answers on `state` or `secs` pass; the status call
/// that follows reports either way.
async fn wait_for_kernel(state: &Path, secs: u64) {
    use crate::control::client::{call, CallError};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        match call(state, "kernel", &Request::Status, |_| {}).await {
            Err(CallError::NoKernel(_)) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            _ => return,
        }
    }
}

async fn tree(state: &Path, m: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    let TreeCmd::Ls { prefix, json } = TreeCmd::from_arg_matches(m)?;
    let v = crate::ask!(state, "kernel", &Request::Tree { prefix });
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
