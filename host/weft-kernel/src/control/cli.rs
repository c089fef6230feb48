//! What a subsystem's command-line part is made of: a clap command, a
//! function that runs it, and helpers to call the kernel and print tables.
//! `weaver` builds its CLI from the registered units' [`CliCommand`]s.

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;
use serde_json::Value;

use super::client::{call, CallError};
use super::protocol::exit;
use crate::subsystem::BoxFuture;

/// Where a command runs: the state dir it talks to.
pub struct CliContext<'a> {
    /// The kernel's state dir (`--state`).
    pub state: &'a Path,
}

/// One top-level `weaver` command a unit brings.
pub struct CliCommand {
    /// The command's clap definition (its name is the subcommand name).
    pub command: fn() -> clap::Command,
    /// Run it with the parsed matches of that subcommand.
    pub run: for<'a> fn(
        &'a CliContext<'a>,
        &'a clap::ArgMatches,
    ) -> BoxFuture<'a, anyhow::Result<ExitCode>>,
}

/// Call `unit` of the kernel serving `state`; on failure print why (with a
/// hint when no kernel runs) and give the exit code.
pub async fn ask<R: Serialize>(state: &Path, unit: &str, request: &R) -> Result<Value, ExitCode> {
    ask_with_progress(state, unit, request, |_| {}).await
}

/// [`ask`], handing progress objects to `on_progress`.
pub async fn ask_with_progress<R: Serialize>(
    state: &Path,
    unit: &str,
    request: &R,
    on_progress: impl FnMut(&Value),
) -> Result<Value, ExitCode> {
    match call(state, unit, request, on_progress).await {
        Ok(v) => Ok(v),
        Err(CallError::NoKernel(s)) => {
            eprintln!(
                "weaver: no kernel is running on {} (start one with: weaver run --state {})",
                s.display(),
                s.display()
            );
            if unit == "chain" {
                // The chain is readable without a kernel: say how.
                eprintln!(
                    "weaver: or read its chain offline: weaver chain verify {} --key KEY \
                     (likewise `chain tail` and `chain export`); KEY is {}",
                    s.display(),
                    chain_key_hint(s.as_path())
                );
            }
            Err(ExitCode::from(exit::GUEST))
        }
        Err(CallError::Command(e)) => {
            eprintln!("weaver: {}", e.message);
            Err(ExitCode::from(e.exit_code()))
        }
        Err(CallError::Transport(e)) => {
            eprintln!("weaver: {e}");
            Err(ExitCode::from(exit::GUEST))
        }
    }
}

/// `ask!(state, unit, &request)`: the result, or return the exit code.
#[macro_export]
macro_rules! ask {
    ($state:expr, $unit:expr, $req:expr) => {
        match $crate::control::cli::ask($state, $unit, $req).await {
            Ok(v) => v,
            Err(code) => return Ok(code),
        }
    };
}

/// Print rows as a table with aligned columns (the last one unpadded).
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let n = cells.len();
        let mut s = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            if i + 1 == n {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(headers.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// A JSON value as a table cell: strings bare, null as `-`.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Print the raw result (`--json`), or a human rendering of it.
pub fn output(json_out: bool, v: &Value, human: impl FnOnce(&Value)) -> ExitCode {
    if json_out {
        println!("{v}");
    } else {
        human(v);
    }
    ExitCode::SUCCESS
}

/// The elements of a JSON array (none for anything else).
pub fn items(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// `--json` for listings.
#[derive(clap::Args, Debug)]
pub struct JsonFlag {
    /// Print the raw JSON result.
    #[arg(long)]
    pub json: bool,
}

/// Where the chain's public key comes from, for hints that must work with
/// no kernel: printed by `weaver run` at boot, and derived here from the
/// state dir's own signing key when it is readable.
pub fn chain_key_hint(dir: &Path) -> String {
    let candidates = [
        dir.join("chain").join(weft_chain::KEY_FILE),
        dir.join(weft_chain::KEY_FILE),
        dir.parent()
            .map(|p| p.join(weft_chain::KEY_FILE))
            .unwrap_or_default(),
    ];
    let derived = candidates
        .iter()
        .filter(|p| p.is_file())
        .find_map(|p| weft_chain::SigningKeyFile::load(p).ok());
    match derived {
        Some(k) => format!(
            "the public key `weaver run` printed at boot; this state dir's own key is {} \
             (derived from {}: for an audit, use the key you noted at boot)",
            weft_chain::public_key_hex(&k.verifying_key()),
            k.path().display()
        ),
        None => "the public key `weaver run` printed at boot (`public key ...`)".into(),
    }
}

/// Whether progress lines go to stderr: when it is a terminal, or when
/// `WEFT_PROGRESS=1` asks for them anyway (scripts and tests).
pub fn progress_enabled() -> bool {
    use std::io::IsTerminal;
    match std::env::var("WEFT_PROGRESS").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => std::io::stderr().is_terminal(),
    }
}

/// One progress line on stderr (`weaver: MESSAGE…`), if enabled.
pub fn progress(message: &str) {
    if progress_enabled() {
        eprintln!("weaver: {message}…");
    }
}

/// Where compiled components are cached between runs of `weaver tool run
/// FILE`: `$WEFT_CACHE_DIR`, or the user's cache dir.
pub fn cache_dir() -> Option<std::path::PathBuf> {
    if let Some(d) = std::env::var_os("WEFT_CACHE_DIR") {
        return Some(std::path::PathBuf::from(d));
    }
    dirs::cache_dir().map(|d| d.join("weft").join("components"))
}
