//! `weaver`: the Weft command line.
//!
//! Exit codes are the same for every command: 0 success, 1 the thing ran
//! and reported failure (a tool's error result), 2 the guest or kernel
//! failed (out of fuel, trap, invalid component, ...), 64 bad usage. A WASI
//! command run by `weaver tool run` exits with its own code.

mod cmd;
mod control;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "weaver",
    version,
    about = "Run and manage Weft components and kernels"
)]
struct Cli {
    /// State directory of the kernel (default: the user's data dir).
    #[arg(long, global = true, value_name = "DIR")]
    state: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run and inspect tools.
    #[command(subcommand)]
    Tool(cmd::tool::ToolCmd),
    /// Boot a kernel in the foreground until Ctrl-C or `weaver kernel stop`.
    Run(cmd::run::RunArgs),
    /// Inspect and verify the chain (a FILE works with no kernel running).
    #[command(subcommand)]
    Chain(cmd::chain::ChainCmd),
    /// The running kernel: status, logs, stop.
    #[command(subcommand)]
    Kernel(cmd::ctl::KernelCmd),
    /// List the kernel's processes.
    Ps(cmd::ctl::JsonFlag),
    /// Talk to agents.
    #[command(subcommand)]
    Agent(cmd::ctl::AgentCmd),
    /// The resource tree.
    #[command(subcommand)]
    Tree(cmd::ctl::TreeCmd),
    /// Governance: rules in force, ask the gate.
    #[command(subcommand)]
    Gov(cmd::ctl::GovCmd),
    /// Scheduled jobs.
    #[command(subcommand)]
    Cron(cmd::ctl::CronCmd),
    /// Health of the kernel and its probes.
    Health(cmd::ctl::JsonFlag),
    /// Apps in the running kernel; `app pack` works with no kernel.
    #[command(subcommand)]
    App(cmd::app::AppCmd),
    /// Keys trusted to sign app bundles (works with no kernel running).
    #[command(subcommand)]
    Trust(cmd::trust::TrustCmd),
}

/// Exit codes shared by every subcommand.
pub mod exit {
    pub const FAILED: u8 = 1;
    pub const GUEST: u8 = 2;
    pub const USAGE: u8 = 64;
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("weaver: cannot start the async runtime: {e}");
            return ExitCode::from(exit::GUEST);
        }
    };
    // `weaver run` also honours the config's state dir, so it resolves its own.
    if let Command::Run(a) = cli.command {
        return finish(rt.block_on(cmd::run::run(cli.state, a)));
    }
    let Some(state) = cli.state.or_else(weft_kernel::default_state_dir) else {
        eprintln!("weaver: no state dir: pass --state DIR");
        return ExitCode::from(exit::USAGE);
    };
    let state = state.as_path();
    finish(rt.block_on(async {
        match cli.command {
            Command::Tool(c) => cmd::tool::run(state, c).await,
            Command::Run(_) => unreachable!("handled above"),
            Command::Chain(c) => cmd::chain::run(state, c).await,
            Command::Kernel(c) => cmd::ctl::kernel(state, c).await,
            Command::Ps(f) => cmd::ctl::ps(state, f).await,
            Command::Agent(c) => cmd::ctl::agent(state, c).await,
            Command::Tree(c) => cmd::ctl::tree(state, c).await,
            Command::Gov(c) => cmd::ctl::gov(state, c).await,
            Command::Cron(c) => cmd::ctl::cron(state, c).await,
            Command::Health(f) => cmd::ctl::health(state, f).await,
            Command::Trust(c) => cmd::trust::run(state, c),
            Command::App(c) => cmd::app::run(state, c).await,
        }
    }))
}

fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("weaver: {e:#}");
            ExitCode::from(exit::FAILED)
        }
    }
}
