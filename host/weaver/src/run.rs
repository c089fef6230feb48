//! `weaver run`: boot a kernel in the foreground on a state dir, optionally
//! spawning agents and registering tools from component files, and serve
//! the control socket until Ctrl-C, SIGTERM or `weaver kernel stop`; then
//! shut down cleanly.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use weft_kernel::tools::ToolEntry;
use weft_kernel::{Kernel, KernelConfig, SpawnRequest};

#[derive(Args)]
pub struct RunArgs {
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

pub async fn run(state: Option<PathBuf>, a: RunArgs) -> anyhow::Result<ExitCode> {
    let mut config = match &a.config {
        Some(p) => KernelConfig::load(p)?,
        None => KernelConfig::default(),
    };
    // Share compiled components with `weaver tool run` (and between test
    // kernels) unless the config says otherwise.
    if config.kernel.cache_dir.is_none() {
        config.kernel.cache_dir = std::env::var_os("WEFT_CACHE_DIR").map(PathBuf::from);
    }
    let state = state
        .or_else(|| config.kernel.state_dir.clone())
        .or_else(weft_kernel::default_state_dir)
        .context("no state dir: pass --state DIR")?;
    let _lock = match crate::control::server::claim(&state) {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!("weaver: {e:#}");
            return Ok(ExitCode::from(crate::exit::GUEST));
        }
    };
    let started = Instant::now();
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
    let (apps, apps_problem) = match open_apps(&kernel, &subsystems_cfg).await {
        Ok(m) => (Some(Arc::new(m)), None),
        Err(e) => {
            eprintln!("weaver: apps unavailable: {e:#}");
            (None, Some(format!("{e:#}")))
        }
    };
    let result = setup(&kernel, &a).await;
    if let Err(e) = &result {
        eprintln!("weaver: {e:#}");
    }
    let shutdown = Arc::new(tokio::sync::Notify::new());
    let mut server = None;
    let mut serving = None;
    if result.is_ok() && !a.once {
        let ctl = Arc::new(crate::control::server::Ctl {
            kernel: kernel.clone(),
            governance: subsystems.governance.clone(),
            cron: subsystems.cron.clone(),
            health: subsystems.health.clone(),
            apps,
            apps_problem,
            started,
            shutdown: shutdown.clone(),
        });
        match crate::control::server::Server::bind(&state) {
            Ok(mut s) => {
                serving = Some(s.serve(ctl));
                server = Some(s);
            }
            Err(e) => eprintln!("weaver: no control socket: {e:#}"),
        }
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
        eprintln!(
            "press Ctrl-C to stop (or run: weaver kernel stop --state {})",
            state.display()
        );
        tokio::select! {
            r = wait_for_signal() => r?,
            _ = shutdown.notified() => eprintln!("stop requested through the control socket"),
        }
    }
    if let Some(t) = serving {
        t.abort();
    }
    subsystems.stop();
    let halted = kernel.shutdown().await.context("shutting down");
    // The socket goes only once the chain is closed; the state lock last.
    drop(server);
    halted?;
    eprintln!("kernel halted; chain: {} events", kernel.chain().len());
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FAILED)
    })
}

/// The app manager, with the `apps` checker component found where the
/// subsystem components are.
async fn open_apps(
    kernel: &Kernel,
    cfg: &weft_subsystems::SubsystemsConfig,
) -> anyhow::Result<weft_apps::AppManager> {
    let path = weft_subsystems::components_dir(cfg).join("apps.wasm");
    let wasm = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let checker = weft_apps::AppsChecker::new(kernel.runtime(), &wasm)
        .with_context(|| format!("loading {}", path.display()))?;
    let environment: weft_apps::Environment = cfg
        .environment
        .as_deref()
        .unwrap_or("prod")
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    weft_apps::AppManager::open(kernel.clone(), checker, environment)
        .await
        .context("opening the app registry")
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
