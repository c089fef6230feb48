//! `weaver tool ...`: run a tool or WASI command component directly, with
//! no kernel.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;
use weft_runtime::{
    ComponentKind, DirGrant, Failure, Grants, Limits, RunError, Runtime, RuntimeConfig,
};

use crate::exit;

#[derive(Subcommand)]
pub enum ToolCmd {
    /// Run a component file: a `weft:kernel` tool (the first ARG is its JSON
    /// input, or stdin if none) or a WASI 0.2 command (ARGS are its argv).
    Run(RunArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// The component (.wasm) to run.
    pub file: PathBuf,
    /// Fuel budget (roughly wasm instructions).
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Wall-clock limit in milliseconds.
    #[arg(long = "timeout-ms")]
    pub timeout_ms: Option<u64>,
    /// Largest linear memory, in bytes.
    #[arg(long = "max-memory")]
    pub max_memory: Option<usize>,
    /// Preopen a host directory: HOST::GUEST, or HOST::GUEST:ro for read-only.
    #[arg(long = "dir", value_name = "HOST::GUEST[:ro]", value_parser = DirGrant::parse)]
    pub dirs: Vec<DirGrant>,
    /// Set an environment variable in the guest.
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Print a JSON report (result, fuel used, wall time, error kind).
    #[arg(long)]
    pub json: bool,
    /// Arguments: the JSON input of a tool, or a command's argv.
    #[arg(last = true)]
    pub args: Vec<String>,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}`: expected K=V")),
    }
}

pub async fn run(cmd: ToolCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ToolCmd::Run(a) => run_file(a).await,
    }
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
        cache_dir: super::cache_dir(),
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
