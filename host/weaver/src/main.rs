//! `weaver`: the Weft command line.
//!
//! `weaver run` boots a kernel; every other command is a subsystem's own
//! command-line part ([`units`]), talking to that kernel over its control
//! socket (or, for `tool run FILE`, `chain verify FILE`, `app pack` and
//! `trust ls`, working with no kernel). Exit codes are the same for every
//! command: 0 success, 1 the thing ran and reported failure (a tool's
//! error result, a refusal), 2 the guest or kernel failed (out of fuel,
//! trap, invalid component, no kernel running, ...), 64 bad usage. A WASI
//! command run by `weaver tool run` exits with its own code.

mod docs;
mod doctor;
mod new;
mod run;
mod units;

/// The subsystem components, embedded at build time (see `build.rs`).
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
    include!(concat!(env!("OUT_DIR"), "/wit.rs"));
}

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Arg, ArgAction, Command, FromArgMatches};
use weft_kernel::control::cli::CliContext;
use weft_kernel::control::protocol::exit;

fn cli(commands: &[weft_kernel::control::cli::CliCommand]) -> Command {
    let mut c = Command::new("weaver")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Run and manage Weft components and kernels")
        .subcommand_required(true)
        .arg(
            Arg::new("state")
                .long("state")
                .global(true)
                .value_name("DIR")
                .value_parser(clap::value_parser!(PathBuf))
                .action(ArgAction::Set)
                .help("State directory of the kernel (default: the user's data dir)"),
        )
        .subcommand(run::RunArgs::augment_args(Command::new("run").about(
            "Boot a kernel in the foreground until Ctrl-C or `weaver kernel stop`",
        )))
        .subcommand(docs::completions_command())
        .subcommand(docs::wit_command())
        .subcommand(docs::man_command())
        .subcommand(new::command())
        .subcommand(
            Command::new("doctor")
                .about("What this machine has and lacks for Weft, each with its fix")
                .arg(
                    Arg::new("json")
                        .long("json")
                        .action(ArgAction::SetTrue)
                        .help("Print the checks as JSON"),
                ),
        );
    for cmd in commands {
        c = c.subcommand((cmd.command)());
    }
    c
}

use clap::Args as _;

/// mimalloc rather than glibc's malloc: the kernel's hot paths (a message, a
/// spawn, a chain record) are many small allocations freed on other threads,
/// where glibc's arenas contend. Measured by the kernel bench, which runs with
/// it too: 4 ping-pong pairs 244k → 490k messages/s, a detached spawn 21.7 →
/// 13.0 µs.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    weft_kernel::components::embed(embedded::EMBEDDED);
    // Colour only for a person at a terminal, and never under NO_COLOR.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    let commands = units::commands();
    let matches = match cli(&commands).try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { 0 };
            // Printing the usage can only fail on a closed stderr.
            let _unprintable = e.print();
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
    let state_arg = matches.get_one::<PathBuf>("state").cloned();
    let Some((name, sub)) = matches.subcommand() else {
        eprintln!("weaver: a command is needed (weaver --help)");
        return ExitCode::from(exit::USAGE);
    };
    // `weaver run` also honours the config's state dir, so it resolves its own.
    if name == "run" {
        let a = match run::RunArgs::from_arg_matches(sub) {
            Ok(a) => a,
            Err(e) => {
                let _unprintable = e.print();
                return ExitCode::from(exit::USAGE);
            }
        };
        return finish(rt.block_on(run::run(state_arg, a)));
    }
    // Needs no kernel and no state dir.
    if name == "new" {
        return new::run(sub, embedded::WIT);
    }
    let Some(state) = state_arg.or_else(weft_kernel::default_state_dir) else {
        eprintln!("weaver: no state dir: pass --state DIR");
        return ExitCode::from(exit::USAGE);
    };
    if name == "wit" {
        return docs::write_wit(sub, embedded::WIT);
    }
    if name == "completions" || name == "man" {
        return docs::run(name, sub, cli(&commands));
    }
    if name == "doctor" {
        return rt.block_on(doctor::run(&state, sub.get_flag("json")));
    }
    let Some(cmd) = commands.iter().find(|c| (c.command)().get_name() == name) else {
        eprintln!("weaver: unknown command `{name}`");
        return ExitCode::from(exit::USAGE);
    };
    let cx = CliContext { state: &state };
    finish(rt.block_on((cmd.run)(&cx, sub)))
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
