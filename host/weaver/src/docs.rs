//! `weaver completions SHELL` and `weaver man DIR`: shell completions and
//! man pages made from the very command line this binary parses (units'
//! commands included), so they never drift from it. `just dist` ships them.
//! And `weaver wit`: the WIT contract guests are built against, from the
//! copy built into this binary (no source tree needed).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Arg, ArgMatches, Command};
use clap_complete::Shell;
use weft_kernel::control::protocol::exit;

/// `weaver completions SHELL`.
pub fn completions_command() -> Command {
    Command::new("completions")
        .about("Print shell completions (bash, zsh, fish, elvish, powershell)")
        .long_about(
            "Print shell completions to stdout, e.g.\n  \
             weaver completions bash > ~/.local/share/bash-completion/completions/weaver",
        )
        .arg(
            Arg::new("shell")
                .required(true)
                .value_parser(clap::value_parser!(Shell)),
        )
}

/// `weaver wit [-o DIR]`.
pub fn wit_command() -> Command {
    Command::new("wit")
        .about("Write the WIT contract (package weft:kernel) that guests build against")
        .long_about(
            "Write the WIT files of package weft:kernel into DIR (default: ./wit), for \
             wit-bindgen, componentize-py and componentize-js, e.g.\n  \
             weaver wit -o wit && componentize-py -d wit -w agent bindings .",
        )
        .arg(
            Arg::new("out")
                .short('o')
                .long("out")
                .value_name("DIR")
                .default_value("wit")
                .value_parser(clap::value_parser!(PathBuf)),
        )
}

/// Write `files` (name, text) into `-o DIR`.
pub fn write_wit(m: &ArgMatches, files: &[(&str, &str)]) -> ExitCode {
    let Some(dir) = m.get_one::<PathBuf>("out") else {
        return ExitCode::from(exit::USAGE);
    };
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for (name, text) in files {
            std::fs::write(dir.join(name), text)?;
        }
        Ok(())
    };
    match write() {
        Ok(()) => {
            println!(
                "wrote {} files of package weft:kernel@0.1.0 to {}",
                files.len(),
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("weaver: writing the WIT files to {}: {e}", dir.display());
            ExitCode::from(exit::FAILED)
        }
    }
}

/// `weaver man DIR` (hidden: for packagers).
pub fn man_command() -> Command {
    Command::new("man")
        .about("Write man pages (weaver.1, weaver-run.1, ...) into DIR")
        .hide(true)
        .arg(
            Arg::new("dir")
                .required(true)
                .value_parser(clap::value_parser!(PathBuf)),
        )
}

/// Run `name` (`completions` or `man`) against the full command line `cli`.
pub fn run(name: &str, m: &ArgMatches, mut cli: Command) -> ExitCode {
    if name == "completions" {
        let Some(shell) = m.get_one::<Shell>("shell").copied() else {
            return ExitCode::from(exit::USAGE);
        };
        // Generated into memory: clap_complete panics when its writer fails,
        // and `weaver completions bash | head` closes the pipe early.
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cli, "weaver", &mut out);
        return match std::io::Write::write_all(&mut std::io::stdout().lock(), &out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("weaver: writing completions: {e}");
                ExitCode::from(exit::FAILED)
            }
        };
    }
    let Some(dir) = m.get_one::<PathBuf>("dir") else {
        return ExitCode::from(exit::USAGE);
    };
    let made = std::fs::create_dir_all(dir).and_then(|()| clap_mangen::generate_to(cli, dir));
    match made {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weaver: writing man pages to {}: {e}", dir.display());
            ExitCode::from(exit::FAILED)
        }
    }
}
