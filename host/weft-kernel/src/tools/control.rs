//! `weaver tool ...`: run a tool or WASI command component directly, with
//! no kernel (`tool run FILE.wasm`), or an installed tool through the
//! running kernel (`tool run NAME`, `tool ls`), and the server side of
//! the latter.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, FromArgMatches, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use weft_runtime::{
    ComponentKind, DirGrant, Failure, Grants, Limits, RunError, Runtime, RuntimeConfig,
};

use super::InvokeTool;
use crate::control::cli::{cell, table, CliCommand, CliContext, JsonFlag};
use crate::control::protocol::{exit, kind};
use crate::control::{to_value, ControlCx, ControlError, ControlReply};

/// The tools unit's control requests.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// The registered tools.
    Ls,
    /// Run a registered tool as the operator.
    Run {
        /// The tool's name.
        name: String,
        /// Its JSON input (`{}` when absent).
        input: Option<String>,
    },
}

/// Serve one request.
pub async fn serve(cx: ControlCx<'_>) -> ControlReply {
    match cx.parse::<Request>("tools")? {
        Request::Ls => {
            cx.query("tool.list").await?;
            to_value(cx.kernel.tools())
        }
        Request::Run { name, input } => {
            let input = input.unwrap_or_else(|| "{}".into());
            cx.kernel
                .act(cx.who, InvokeTool::new(name, input))
                .await
                .map_err(|e| {
                    // A tool that ran and returned an error is a failure, not a crash.
                    let w = ControlError::from(e);
                    if w.kind == kind::FAILED {
                        ControlError::new(kind::TOOL, w.message)
                    } else {
                        w
                    }
                })
        }
    }
}

#[derive(Subcommand)]
enum ToolCmd {
    /// Run a component file: a `weft:kernel` tool (the first ARG is its JSON
    /// input, or stdin if none) or a WASI 0.2 command (ARGS are its argv).
    Run(RunArgs),
    /// List the tools installed in the running kernel.
    Ls(JsonFlag),
}

#[derive(Args)]
struct RunArgs {
    /// The component (.wasm) to run with no kernel, or the NAME of a tool
    /// installed in the running kernel (gate, limits and chain apply).
    file: PathBuf,
    /// Fuel budget (roughly wasm instructions).
    #[arg(long)]
    fuel: Option<u64>,
    /// Wall-clock limit in milliseconds.
    #[arg(long = "timeout-ms")]
    timeout_ms: Option<u64>,
    /// Largest linear memory, in bytes.
    #[arg(long = "max-memory")]
    max_memory: Option<usize>,
    /// Preopen a host directory: HOST::GUEST, or HOST::GUEST:ro for read-only.
    #[arg(long = "dir", value_name = "HOST::GUEST[:ro]", value_parser = DirGrant::parse)]
    dirs: Vec<DirGrant>,
    /// Set an environment variable in the guest.
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Print a JSON report (result, fuel used, wall time, error kind).
    #[arg(long)]
    json: bool,
    /// Arguments: the JSON input of a tool, or a command's argv.
    #[arg(last = true)]
    args: Vec<String>,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}`: expected K=V")),
    }
}

/// `weaver tool`.
pub fn cli() -> CliCommand {
    CliCommand {
        command: || {
            ToolCmd::augment_subcommands(
                clap::Command::new("tool")
                    .about("Run and inspect tools")
                    .subcommand_required(true),
            )
        },
        run: |cx, m| Box::pin(run(cx, m)),
    }
}

async fn run(cx: &CliContext<'_>, m: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    match ToolCmd::from_arg_matches(m)? {
        // A path that exists or names a .wasm file runs locally; anything
        // else is a tool name for the kernel.
        ToolCmd::Run(a) if a.file.exists() || a.file.extension().is_some_and(|e| e == "wasm") => {
            run_file(a).await
        }
        ToolCmd::Run(a) => run_installed(cx.state, a).await,
        ToolCmd::Ls(f) => list(cx.state, f.json).await,
    }
}

async fn list(state: &Path, json_out: bool) -> anyhow::Result<ExitCode> {
    let v = crate::ask!(state, "tools", &Request::Ls);
    if json_out {
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = v
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|t| {
            let digest = cell(&t["digest"]);
            vec![
                cell(&t["name"]),
                cell(&t["kind"]),
                digest.chars().take(16).collect(),
                cell(&t["owner"]),
                cell(&t["description"]),
            ]
        })
        .collect();
    table(&["NAME", "KIND", "DIGEST", "OWNER", "DESCRIPTION"], &rows);
    Ok(ExitCode::SUCCESS)
}

async fn run_installed(state: &Path, a: RunArgs) -> anyhow::Result<ExitCode> {
    if a.fuel.is_some()
        || a.timeout_ms.is_some()
        || a.max_memory.is_some()
        || !a.dirs.is_empty()
        || !a.env.is_empty()
    {
        eprintln!(
            "weaver: --fuel, --timeout-ms, --max-memory, --dir and --env apply to a FILE.wasm; \
             an installed tool runs with the limits and grants it was installed with"
        );
        return Ok(ExitCode::from(exit::USAGE));
    }
    let input = match a.args.as_slice() {
        [] => String::from_utf8(stdin_bytes()?).context("stdin is not UTF-8")?,
        [one] => one.clone(),
        more => {
            eprintln!(
                "weaver: a tool takes one JSON input after `--`, got {} arguments",
                more.len()
            );
            return Ok(ExitCode::from(exit::USAGE));
        }
    };
    let input = if input.trim().is_empty() {
        "{}".to_string()
    } else {
        input.trim().to_string()
    };
    let name = a.file.to_string_lossy().into_owned();
    let v: Value = crate::ask!(
        state,
        "tools",
        &Request::Run {
            name,
            input: Some(input)
        }
    );
    if a.json {
        println!("{}", json!({ "kind": "tool", "ok": true, "result": v }));
    } else {
        println!("{v}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_file(a: RunArgs) -> anyhow::Result<ExitCode> {
    let mut limits = Limits::default();
    if let Some(f) = a.fuel {
        limits.fuel = f;
    }
    if let Some(t) = a.timeout_ms {
        limits.timeout = Duration::from_millis(t);
    }
    if let Some(m) = a.max_memory {
        limits.max_memory_bytes = m;
    }
    let config = RuntimeConfig {
        cache_dir: crate::control::cli::cache_dir(),
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(config).context("starting the runtime")?;
    let bytes =
        std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    let component = match runtime.load(&bytes) {
        Ok(c) => c,
        Err(e) => return Ok(guest_failed(&a, &Failure::before_start(e))),
    };
    match component.kind {
        ComponentKind::Tool => run_tool(&runtime, &component, &a, &limits).await,
        ComponentKind::Command => run_command(&runtime, &component, &a, &limits).await,
        ComponentKind::Other => {
            let e = RunError::InvalidComponent {
                reason: format!(
                    "{} is neither a weft:kernel tool (exports `describe`, `invoke`) nor a WASI \
                     command (exports `wasi:cli/run`); it exports: {}",
                    a.file.display(),
                    if component.exports.is_empty() {
                        "nothing".into()
                    } else {
                        component.exports.join(", ")
                    }
                ),
            };
            Ok(guest_failed(&a, &Failure::before_start(e)))
        }
    }
}

fn stdin_bytes() -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let stdin = std::io::stdin();
    // Never wait on an interactive terminal: the guest just sees empty stdin.
    if !stdin.is_terminal() {
        stdin
            .lock()
            .read_to_end(&mut buf)
            .context("reading stdin")?;
    }
    Ok(buf)
}

fn grants(a: &RunArgs, args: Vec<String>, stdin: Vec<u8>) -> Grants {
    Grants {
        dirs: a.dirs.clone(),
        env: a.env.clone(),
        args,
        stdin,
    }
}

async fn run_tool(
    rt: &Runtime,
    c: &weft_runtime::LoadedComponent,
    a: &RunArgs,
    limits: &Limits,
) -> anyhow::Result<ExitCode> {
    let input = match a.args.as_slice() {
        [] => String::from_utf8(stdin_bytes()?).context("stdin is not UTF-8")?,
        [one] => one.clone(),
        more => {
            eprintln!(
                "weaver: a tool takes one JSON input after `--`, got {} arguments",
                more.len()
            );
            return Ok(ExitCode::from(exit::USAGE));
        }
    };
    let g = grants(a, Vec::new(), Vec::new());
    let out = match rt.run_tool(c, input.trim(), limits, &g).await {
        Ok(o) => o,
        Err(e) => return Ok(guest_failed(a, &e)),
    };
    if a.json {
        let report = json!({
            "kind": "tool",
            "ok": out.result.is_ok(),
            "result": out.result.as_ref().ok(),
            "error": out.result.as_ref().err().map(|e| json!({"kind": "tool error", "message": e.to_string()})),
            "usage": out.usage,
        });
        println!("{report}");
    } else {
        if !out.stderr.is_empty() {
            eprint!("{}", out.stderr);
        }
        match &out.result {
            Ok(v) => println!("{v}"),
            Err(e) => eprintln!("weaver: tool error: {e}"),
        }
    }
    Ok(ExitCode::from(if out.result.is_ok() {
        0
    } else {
        exit::FAILED
    }))
}

async fn run_command(
    rt: &Runtime,
    c: &weft_runtime::LoadedComponent,
    a: &RunArgs,
    limits: &Limits,
) -> anyhow::Result<ExitCode> {
    let name = a
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "command".into());
    let argv = std::iter::once(name)
        .chain(a.args.iter().cloned())
        .collect();
    let g = grants(a, argv, stdin_bytes()?);
    let out = match rt.run_command(c, limits, &g).await {
        Ok(o) => o,
        Err(e) => return Ok(guest_failed(a, &e)),
    };
    if a.json {
        let report = json!({
            "kind": "command",
            "ok": out.exit_code == 0,
            "exit_code": out.exit_code,
            "stdout": String::from_utf8_lossy(&out.stdout),
            "stderr": String::from_utf8_lossy(&out.stderr),
            "usage": out.usage,
        });
        println!("{report}");
    } else {
        std::io::stdout().write_all(&out.stdout)?;
        std::io::stderr().write_all(&out.stderr)?;
    }
    std::io::stdout().flush()?;
    Ok(ExitCode::from(out.exit_code.clamp(0, 255) as u8))
}

/// Report a guest failure: one line on stderr (or a JSON report) and exit 2.
fn guest_failed(a: &RunArgs, f: &Failure) -> ExitCode {
    if a.json {
        let report = json!({
            "ok": false,
            "error": {"kind": f.kind(), "message": f.to_string()},
            "usage": f.usage,
        });
        println!("{report}");
    } else {
        eprintln!("weaver: {f}");
    }
    ExitCode::from(exit::GUEST)
}
