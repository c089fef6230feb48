//! `weaver run`: boot a kernel in the foreground on a state dir, optionally
//! spawning agents and registering tools from component files, until
//! Ctrl-C or SIGTERM; then shut down cleanly.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use weft_kernel::tools::ToolEntry;
use weft_kernel::{Kernel, KernelConfig, SpawnRequest};

#[derive(Args)]
pub struct RunArgs {
    /// State directory (chain, keys, cache). Default: the user's data dir.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Kernel configuration file (weft.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Spawn an agent: NAME=FILE.wasm (trusted capabilities). Repeatable.
    #[arg(long = "spawn", value_name = "NAME=FILE.wasm")]
    pub spawn: Vec<String>,
    /// Register a tool: NAME=FILE.wasm. Repeatable.
    #[arg(long = "tool", value_name = "NAME=FILE.wasm")]
    pub tools: Vec<String>,
    /// Boot, do the above, print status and shut down at once.
    #[arg(long)]
    pub once: bool,
}

fn split(spec: &str) -> anyhow::Result<(String, PathBuf)> {
    match spec.split_once('=') {
        Some((n, f)) if !n.is_empty() && !f.is_empty() => Ok((n.to_string(), PathBuf::from(f))),
        _ => bail!("`{spec}`: expected NAME=FILE.wasm"),
    }
}

pub async fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let config = match &a.config {
        Some(p) => KernelConfig::load(p)?,
        None => KernelConfig::default(),
    };
    let state = a
        .state
        .clone()
        .or_else(|| config.kernel.state_dir.clone())
        .or_else(weft_kernel::default_state_dir)
        .context("no state dir: pass --state DIR")?;
    let kernel = Kernel::boot(config, &state)
        .await
        .with_context(|| format!("booting a kernel on {}", state.display()))?;
    // Governance, cron and health components; governance fails closed if
    // its component is missing (see weft_subsystems::install).
    let subsystems_cfg = kernel.config().subsystems.clone();
    let mut subsystems = weft_subsystems::install(&kernel, &subsystems_cfg)
        .await
        .context("installing the subsystem components")?;
    for p in &subsystems.problems {
        eprintln!("weaver: subsystem problem: {p}");
    }
    let result = setup(&kernel, &a).await;
    if let Err(e) = &result {
        eprintln!("weaver: {e:#}");
    }
    let s = kernel.stats();
    eprintln!(
        "weft kernel running on {} ({} agents, {} tools); chain: {} events, public key {}",
        state.display(),
        s.processes,
        s.tools,
        s.chain.len,
        s.chain.public_key
    );
    if result.is_ok() && !a.once {
        eprintln!("press Ctrl-C to stop");
        wait_for_signal().await?;
    }
    subsystems.stop();
    kernel.shutdown().await.context("shutting down")?;
    eprintln!("kernel halted; chain: {} events", kernel.chain().len());
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FAILED)
    })
}

async fn setup(kernel: &Kernel, a: &RunArgs) -> anyhow::Result<()> {
    for spec in &a.tools {
        let (name, file) = split(spec)?;
        let component = kernel.load_component(&file)?;
        kernel.register_tool(ToolEntry {
            name: name.clone(),
            component,
            limits: Default::default(),
            grants: Default::default(),
            description: String::new(),
        })?;
        eprintln!("registered tool {name} from {}", file.display());
    }
    for spec in &a.spawn {
        let (name, file) = split(spec)?;
        let component = kernel.load_component(&file)?;
        let mut req = SpawnRequest::new(&name, component);
        req.capabilities = Kernel::trusted_capabilities();
        let pid = kernel
            .spawn(req)
            .await
            .with_context(|| format!("spawning {name}"))?;
        eprintln!("spawned agent {name} as pid {pid}");
    }
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
