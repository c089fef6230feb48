//! `weaver run`: boot a kernel in the foreground on a state dir with every
//! registered subsystem, optionally spawning agents and registering tools
//! from component files (as the operator, through the gate), and serve the
//! control socket until Ctrl-C, SIGTERM or `weaver kernel stop`; then shut
//! down cleanly.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use weft_kernel::control::protocol::exit;
use weft_kernel::control::server::{claim, Server};
use weft_kernel::tools::{RegisterTool, ToolEntry};
use weft_kernel::{Capabilities, Kernel, KernelConfig, Principal, Spawn, SpawnRequest};

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
    /// Join a cluster: its etcd endpoints (comma-separated URLs). Overrides
    /// `[cluster] endpoints`; needs `--node` and `--mesh` (or the config's).
    #[arg(long, value_name = "URLS")]
    pub cluster: Option<String>,
    /// This node's name in the cluster (overrides `[cluster] node`).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// Where this node's mesh listens, IP:PORT (overrides `[cluster] mesh`).
    #[arg(long, value_name = "ADDR")]
    pub mesh: Option<String>,
    /// Serve the dashboard at IP:PORT (loopback only unless --ui-public;
    /// port 0 picks a free one). Overrides `[ui] listen`.
    #[arg(long, value_name = "ADDR")]
    pub ui: Option<String>,
    /// Allow the dashboard on a non-loopback address (plain HTTP: only the
    /// token guards it).
    #[arg(long)]
    pub ui_public: bool,
    /// Serve apps' `[[routes]]` on IP:PORT (overrides `[net] listen`).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
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
    let _lock = match claim(&state) {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!("weaver: {e}");
            return Ok(ExitCode::from(exit::GUEST));
        }
    };
    weft_cluster::unit::set_cli_flags(weft_cluster::unit::CliFlags {
        endpoints: a.cluster.clone(),
        node: a.node.clone(),
        mesh: a.mesh.clone(),
    });
    weft_ui::set_cli_flags(weft_ui::CliFlags {
        listen: a.ui.clone(),
        public: a.ui_public,
    });
    weft_net::unit::set_listen_flag(a.http.clone());
    let kernel = Kernel::boot_with(config, &state, crate::units::subsystems())
        .await
        .with_context(|| format!("booting a kernel on {}", state.display()))?;
    for line in kernel.logs() {
        if line.level >= weft_kernel::console::LogLevel::Warn {
            eprintln!("weaver: {}", line.message);
        }
    }
    let result = setup(&kernel, &a).await;
    if let Err(e) = &result {
        eprintln!("weaver: {e:#}");
    }
    let mut server = None;
    let mut serving = None;
    if result.is_ok() && !a.once {
        match Server::bind(&state) {
            Ok(mut s) => {
                serving = Some(s.serve(kernel.clone()));
                server = Some(s);
            }
            Err(e) => eprintln!("weaver: no control socket: {e}"),
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
    if let Some(url) = kernel.subsystem::<weft_ui::UiUnit>().and_then(|u| u.url()) {
        eprintln!(
            "dashboard: {url} (token also in {})",
            state.join(weft_ui::TOKEN_FILE).display()
        );
    }
    if result.is_ok() && !a.once {
        eprintln!(
            "press Ctrl-C to stop (or run: weaver kernel stop --state {})",
            state.display()
        );
        tokio::select! {
            r = wait_for_signal() => r?,
            _ = kernel.stopped() => eprintln!("stop requested through the control socket"),
        }
    }
    if let Some(t) = serving {
        t.abort();
    }
    let halted = kernel.shutdown().await.context("shutting down");
    // The socket goes only once the chain is closed; the state lock last.
    drop(server);
    halted?;
    eprintln!("kernel halted; chain: {} events", kernel.chain().len());
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::FAILED)
    })
}

/// `--tool` and `--spawn`, as the operator (gated and recorded).
async fn setup(kernel: &Kernel, a: &RunArgs) -> anyhow::Result<()> {
    let op = Principal::Operator;
    for spec in &a.tools {
        let (name, file) = split(spec)?;
        let component = kernel.load_component(&file)?;
        kernel
            .act(&op, RegisterTool(ToolEntry::new(&name, component)))
            .await
            .with_context(|| format!("registering tool {name}"))?;
        eprintln!("registered tool {name} from {}", file.display());
    }
    for spec in &a.spawn {
        let (name, file) = split(spec)?;
        let component = kernel.load_component(&file)?;
        let mut req = SpawnRequest::new(&name, component);
        req.capabilities = Capabilities::trusted();
        let pid = kernel
            .act(&op, Spawn::new(req))
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
