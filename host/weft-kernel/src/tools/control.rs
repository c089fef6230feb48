//! `weaver tool ...`: run a tool, a WASI command component or a WASI
//! preview1 program directly, with no kernel (`tool run FILE.wasm`, `tool
//! run --file PATH`), or an installed tool through the running kernel
//! (`tool run NAME`, `tool ls`), and the server side of the latter.
//!
//! Which is which is decided by the argument alone, never by what happens
//! to be in the current directory: `--file PATH` is a file; an argument
//! with a `/` or ending in `.wasm` is a file; anything else is the name of
//! an installed tool.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, FromArgMatches, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use weft_runtime::{
    ComponentKind, DirGrant, Failure, Grants, Limits, LoadedComponent, RunError, Runtime,
    RuntimeConfig, Usage,
};

use super::actions::{InvokeToolReport, ToolReport, ToolRunError};
use super::InvokeTool;
use crate::control::cli::{cell, table, CliCommand, CliContext, JsonFlag};
use crate::control::client::{call, CallError};
use crate::control::protocol::{exit, kind};
use crate::control::{to_value, ControlCx, ControlReply};

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
            // A run that happened is answered with its whole report (result
            // or error, and usage); refusals and unknown tools are errors.
            let input = input.unwrap_or_else(|| "{}".into());
            let report = cx
                .kernel
                .act(cx.who, InvokeToolReport(InvokeTool::new(name, input)))
                .await?;
            to_value(report)
        }
    }
}

#[derive(Subcommand)]
enum ToolCmd {
    /// Run a tool: an installed tool by NAME (through the running kernel:
    /// gate, limits and chain apply), or a component file with no kernel —
    /// a `weft:kernel` tool (the first ARG is its JSON input, else stdin), a
    /// WASI 0.2 command or a WASI preview1 program (ARGS are its argv).
    /// NAME with a `/` or ending in `.wasm` is a file; `--file` forces one.
    Run(RunArgs),
    /// List the tools installed in the running kernel.
    Ls(JsonFlag),
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["target", "file"])))]
struct RunArgs {
    /// An installed tool's NAME, or a FILE.wasm (a path: contains `/` or
    /// ends in `.wasm`).
    #[arg(value_name = "NAME|FILE.wasm")]
    target: Option<String>,
    /// Run this component or preview1 module file with no kernel, whatever
    /// its name.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
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
    /// Print a JSON report (result or error, and usage: fuel, wall time,
    /// peak memory).
    #[arg(long)]
    json: bool,
    /// Arguments: the JSON input of a tool, or a command's argv.
    #[arg(last = true)]
    args: Vec<String>,
}

/// What `tool run` runs.
enum Target {
    File(PathBuf),
    Installed(String),
}

impl RunArgs {
    fn target(&self) -> Target {
        match (&self.file, &self.target) {
            (Some(f), _) => Target::File(f.clone()),
            (None, Some(t)) if looks_like_file(t) => Target::File(PathBuf::from(t)),
            (None, Some(t)) => Target::Installed(t.clone()),
            // clap's group requires one of them.
            (None, None) => Target::Installed(String::new()),
        }
    }
}

/// The one rule: a path has a `/` or ends in `.wasm`.
fn looks_like_file(arg: &str) -> bool {
    arg.contains('/') || arg.ends_with(".wasm")
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
        ToolCmd::Run(a) => match a.target() {
            Target::File(f) => run_file(&f, a).await,
            Target::Installed(name) => run_installed(cx.state, &name, a).await,
        },
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

/// A tool's JSON input: the one argument after `--`, else stdin, else `{}`.
fn tool_input(a: &RunArgs) -> anyhow::Result<Result<String, ExitCode>> {
    let input = match a.args.as_slice() {
        [] => String::from_utf8(stdin_bytes()?).context("stdin is not UTF-8")?,
        [one] => one.clone(),
        more => {
            eprintln!(
                "weaver: a tool takes one JSON input after `--`, got {} arguments",
                more.len()
            );
            return Ok(Err(ExitCode::from(exit::USAGE)));
        }
    };
    let input = input.trim();
    Ok(Ok(if input.is_empty() {
        "{}".to_string()
    } else {
        input.to_string()
    }))
}

async fn run_installed(state: &Path, name: &str, a: RunArgs) -> anyhow::Result<ExitCode> {
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
    let input = match tool_input(&a)? {
        Ok(i) => i,
        Err(code) => return Ok(code),
    };
    let req = Request::Run {
        name: name.to_string(),
        input: Some(input),
    };
    // A local file or directory of that name is never run silently; say how.
    let local = Path::new(name).exists().then(|| {
        format!(
            "(`{name}` here is a file or directory, not an installed tool: to run a component \
             file use `weaver tool run --file {name}` or `./{name}`)"
        )
    });
    let v = match call(state, "tools", &req, |_| {}).await {
        Ok(v) => v,
        Err(CallError::NoKernel(s)) => {
            eprintln!(
                "weaver: `{name}` names an installed tool, and no kernel is running on {} \
                 (start one with: weaver run --state {}; to run a component file with no \
                 kernel: weaver tool run --file PATH)",
                s.display(),
                s.display()
            );
            if let Some(l) = &local {
                eprintln!("weaver: {l}");
            }
            return Ok(ExitCode::from(exit::GUEST));
        }
        Err(CallError::Command(e)) => {
            eprintln!("weaver: {}", e.message);
            if e.kind == kind::NOT_FOUND {
                if let Some(l) = &local {
                    eprintln!("weaver: {l}");
                }
            }
            return Ok(ExitCode::from(e.exit_code()));
        }
        Err(CallError::Transport(e)) => {
            eprintln!("weaver: {e}");
            return Ok(ExitCode::from(exit::GUEST));
        }
    };
    let report: ToolReport =
        serde_json::from_value(v).context("the kernel's tool report is malformed")?;
    Ok(print_tool_report(
        a.json,
        Some(&report.tool),
        report.result.as_ref(),
        report.error.as_ref(),
        &report.usage,
        "",
    ))
}

/// The one way a tool's outcome is shown, local or through the kernel:
/// the result on stdout; `weaver: tool error: <kind>: <message>` (exit 1)
/// or `weaver: <guest failure>` (exit 2) on stderr; or, with `--json`, a
/// report `{kind, tool, ok, result, error: {kind, message}, usage}`.
fn print_tool_report(
    json_out: bool,
    tool: Option<&str>,
    result: Option<&Value>,
    error: Option<&ToolRunError>,
    usage: &Usage,
    stderr: &str,
) -> ExitCode {
    if json_out {
        let mut report = json!({
            "kind": "tool",
            "ok": error.is_none(),
            "result": result,
            "error": error.map(|e| json!({"kind": e.kind, "message": e.message})),
            "usage": usage,
        });
        if let Some(t) = tool {
            report["tool"] = json!(t);
        }
        if !stderr.is_empty() {
            report["stderr"] = json!(stderr);
        }
        println!("{report}");
    } else {
        if !stderr.is_empty() {
            eprint!("{stderr}");
        }
        match (result, error) {
            (_, Some(e)) if e.guest => eprintln!("weaver: {}", e.message),
            (_, Some(e)) => eprintln!("weaver: tool error: {}", e.message_with_kind()),
            (Some(v), None) => println!("{v}"),
            (None, None) => println!("null"),
        }
    }
    ExitCode::from(match error {
        None => 0,
        Some(e) if e.guest => exit::GUEST,
        Some(_) => exit::FAILED,
    })
}

async fn run_file(file: &Path, a: RunArgs) -> anyhow::Result<ExitCode> {
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
        // One guest in this process: its file reads need no blocking pool,
        // and it shares its thread with nobody, so it yields 10x less often
        // (still about every 0.5 ms: that is when its deadline is checked).
        blocking_fs: true,
        fuel_yield_interval: RuntimeConfig::default().fuel_yield_interval * 10,
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(config).context("starting the runtime")?;
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => {
            anyhow::bail!(
                "{} is a directory, not a component file (build it first; the .wasm is usually \
                 under target/)",
                file.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let component = match load_with_progress(&runtime, bytes, file).await {
        Ok(c) => c,
        Err(e) => return Ok(guest_failed(&a, None, &Failure::before_start(e))),
    };
    match component.kind {
        ComponentKind::Tool => run_tool(&runtime, &component, &a, &limits).await,
        ComponentKind::Command | ComponentKind::Preview1 => {
            run_command(&runtime, &component, file, &a, &limits).await
        }
        ComponentKind::Other => {
            let e = RunError::InvalidComponent {
                reason: format!(
                    "{} is neither a weft:kernel tool (exports `describe`, `invoke`), a WASI \
                     command (exports `wasi:cli/run`) nor a WASI preview1 program (exports \
                     `_start`); it exports: {}",
                    file.display(),
                    if component.exports.is_empty() {
                        "nothing".into()
                    } else {
                        component.exports.join(", ")
                    }
                ),
            };
            Ok(guest_failed(&a, None, &Failure::before_start(e)))
        }
    }
}

/// Compile (or fetch from the cache) off the async threads, saying what is
/// going on when it takes long enough for a person to wonder.
pub async fn load_with_progress(
    runtime: &Runtime,
    bytes: Vec<u8>,
    file: &Path,
) -> Result<LoadedComponent, RunError> {
    let size = bytes.len();
    let rt = runtime.clone();
    let mut task = tokio::task::spawn_blocking(move || rt.load(&bytes));
    let joined = tokio::select! {
        r = &mut task => r,
        () = tokio::time::sleep(Duration::from_millis(400)) => {
            crate::control::cli::progress(&format!(
                "compiling {} ({:.1} MB) to native code; later runs load it from the cache",
                file.display(),
                size as f64 / 1e6
            ));
            task.await
        }
    };
    joined.map_err(|e| RunError::Host(format!("compiling: {e}")))?
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
    c: &LoadedComponent,
    a: &RunArgs,
    limits: &Limits,
) -> anyhow::Result<ExitCode> {
    let input = match tool_input(a)? {
        Ok(i) => i,
        Err(code) => return Ok(code),
    };
    let g = grants(a, Vec::new(), Vec::new());
    let out = match rt.run_tool(c, &input, limits, &g).await {
        Ok(o) => o,
        Err(e) => return Ok(guest_failed(a, Some("tool"), &e)),
    };
    let error = out.result.as_ref().err().map(ToolRunError::from);
    Ok(print_tool_report(
        a.json,
        None,
        out.result.as_ref().ok(),
        error.as_ref(),
        &out.usage,
        &out.stderr,
    ))
}

async fn run_command(
    rt: &Runtime,
    c: &LoadedComponent,
    file: &Path,
    a: &RunArgs,
    limits: &Limits,
) -> anyhow::Result<ExitCode> {
    // argv[0] is the file as given, as a shell (and wasmtime) would pass it.
    let argv = std::iter::once(file.display().to_string())
        .chain(a.args.iter().cloned())
        .collect();
    let g = grants(a, argv, stdin_bytes()?);
    let out = match rt.run_command(c, limits, &g).await {
        Ok(o) => o,
        Err(e) => return Ok(guest_failed(a, Some("command"), &e)),
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
fn guest_failed(a: &RunArgs, what: Option<&str>, f: &Failure) -> ExitCode {
    if a.json {
        let report = json!({
            "kind": what,
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
