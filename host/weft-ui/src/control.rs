//! `weaver ui`: the running kernel's dashboard address with its token,
//! asked over the control socket (the socket is owner-only, like the
//! token file).

use std::process::ExitCode;

use clap::{Args, FromArgMatches};
use serde::{Deserialize, Serialize};
use weft_kernel::control::cli::{cell, CliCommand, JsonFlag};
use weft_kernel::control::protocol::exit;

/// The ui unit's control requests.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// The page's URL with the token (`enabled: false` when not serving).
    Url,
}

#[derive(Args)]
struct UiArgs {
    #[command(flatten)]
    json: JsonFlag,
}

/// `weaver ui`.
pub fn cli() -> CliCommand {
    CliCommand {
        command: || {
            UiArgs::augment_args(clap::Command::new("ui")).about(
                "The running kernel's dashboard URL, with its token \
                 (serve one with: weaver run --ui 127.0.0.1:PORT)",
            )
        },
        run: |cx, m| {
            Box::pin(async move {
                let a = UiArgs::from_arg_matches(m)?;
                let v = weft_kernel::ask!(cx.state, "ui", &Request::Url);
                if a.json.json {
                    println!("{v}");
                    return Ok(ExitCode::SUCCESS);
                }
                if v["enabled"] != true {
                    eprintln!(
                        "weaver: the kernel on {} serves no dashboard (start it with: \
                         weaver run --state {} --ui 127.0.0.1:8080, or set [ui] listen \
                         in weft.toml)",
                        cx.state.display(),
                        cx.state.display()
                    );
                    return Ok(ExitCode::from(exit::FAILED));
                }
                println!("{}", cell(&v["url"]));
                Ok::<ExitCode, anyhow::Error>(ExitCode::SUCCESS)
            })
        },
    }
}
