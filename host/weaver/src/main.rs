//! `weaver`: the Weft command line.
//!
//! Exit codes are the same for every command: 0 success, 1 the thing ran
//! and reported failure (a tool's error result), 2 the guest or kernel
//! failed (out of fuel, trap, invalid component, ...), 64 bad usage. A WASI
//! command run by `weaver tool run` exits with its own code.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "weaver",
    version,
    about = "Run and manage Weft components and kernels"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run and inspect tools.
    #[command(subcommand)]
    Tool(cmd::tool::ToolCmd),
    /// Boot a kernel in the foreground until Ctrl-C.
    Run(cmd::run::RunArgs),
    /// Inspect and verify chain files (works with no kernel running).
    #[command(subcommand)]
    Chain(cmd::chain::ChainCmd),
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
    let result = rt.block_on(async {
        match cli.command {
            Command::Tool(c) => cmd::tool::run(c).await,
            Command::Run(a) => cmd::run::run(a).await,
            Command::Chain(c) => cmd::chain::run(c).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("weaver: {e:#}");
            ExitCode::from(exit::FAILED)
        }
    }
}
