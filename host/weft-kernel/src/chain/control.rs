//! `weaver chain ...`: the running kernel's chain (`tail`, `export`,
//! `verify`, each a gated read), or a chain FILE verified and read offline
//! with only its public key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, FromArgMatches, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::control::cli::{cell, CliCommand, CliContext};
use crate::control::protocol::exit;
use crate::control::{ControlCx, ControlError, ControlReply};

/// The chain unit's control requests.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// The last `n` events (all with `None`).
    Tail {
        /// How many.
        n: Option<u64>,
    },
    /// Links, hashes, checkpoints, then every gate receipt.
    Verify,
}

/// Serve one request.
pub async fn serve(cx: ControlCx<'_>) -> ControlReply {
    match cx.parse::<Request>("chain")? {
        Request::Tail { n } => {
            cx.query("chain.read").await?;
            let n = usize::try_from(n.unwrap_or(u64::MAX)).unwrap_or(usize::MAX);
            let events: Vec<Value> = cx
                .kernel
                .chain()
                .tail(n)
                .iter()
                .map(|e| e.to_json())
                .collect();
            Ok(Value::Array(events))
        }
        Request::Verify => {
            cx.query("chain.read").await?;
            let chain = cx.kernel.chain();
            let report = chain.verify_integrity();
            let public_key = chain.status().public_key;
            let key = weft_chain::parse_public_key_hex(&public_key)
                .map_err(|e| ControlError::kernel(format!("chain public key: {e}")))?;
            let events = chain.range(..);
            let receipts = weft_gate::verify_receipts(events.iter().map(|e| &**e), &key);
            Ok(json!({
                "ok": report.ok && receipts.ok,
                "file": chain.path(),
                "public_key": public_key,
                "chain": report,
                "receipts": receipts,
            }))
        }
    }
}

#[derive(Subcommand)]
enum ChainCmd {
    /// Verify a chain file offline with only its public key (or, with no
    /// FILE, the running kernel's chain).
    Verify(FileArgs),
    /// Print every event as JSON lines.
    Export(FileArgs),
    /// Print the last N events.
    Tail {
        #[command(flatten)]
        file: FileArgs,
        #[arg(short = 'n', long, default_value_t = 10)]
        n: usize,
    },
}

#[derive(Args)]
struct FileArgs {
    /// The chain file (`<state>/chain/chain.log`), or a state dir; none
    /// means the running kernel's chain.
    file: Option<PathBuf>,
    /// The chain's Ed25519 public key, hex (shown by `kernel status` and
    /// printed by `weaver run` at boot); needed with FILE.
    #[arg(long)]
    key: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

/// `weaver chain`.
pub fn cli() -> CliCommand {
    CliCommand {
        command: || {
            ChainCmd::augment_subcommands(
                clap::Command::new("chain")
                    .about("Inspect and verify the chain (a FILE works with no kernel running)")
                    .subcommand_required(true),
            )
        },
        run: |cx, m| Box::pin(run(cx, m)),
    }
}

fn chain_file(p: &Path) -> PathBuf {
    if p.is_dir() {
        let nested = p.join("chain").join("chain.log");
        if nested.exists() {
            return nested;
        }
        return p.join("chain.log");
    }
    p.to_path_buf()
}

async fn run(cx: &CliContext<'_>, m: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    let cmd = ChainCmd::from_arg_matches(m)?;
    let state = cx.state;
    let a = match &cmd {
        ChainCmd::Verify(a) | ChainCmd::Export(a) => a,
        ChainCmd::Tail { file, .. } => file,
    };
    let offline = match (&a.file, &a.key) {
        (Some(f), Some(k)) => Some((f.clone(), k.clone())),
        (None, None) => None,
        (Some(_), None) => {
            eprintln!(
                "weaver: a chain FILE needs --key (the public key shown by `weaver kernel status`)"
            );
            return Ok(ExitCode::from(exit::USAGE));
        }
        (None, Some(_)) => {
            eprintln!(
                "weaver: --key goes with a chain FILE; with no FILE the running kernel is asked"
            );
            return Ok(ExitCode::from(exit::USAGE));
        }
    };
    match (cmd, offline) {
        (ChainCmd::Verify(a), Some((f, k))) => verify(&a, &f, &k),
        (ChainCmd::Export(a), Some((f, k))) => print_events(&a, &f, &k, usize::MAX),
        (ChainCmd::Tail { file, n }, Some((f, k))) => print_events(&file, &f, &k, n),
        (ChainCmd::Verify(a), None) => verify_live(state, a.json).await,
        (ChainCmd::Export(_), None) => live_events(state, true, usize::MAX).await,
        (ChainCmd::Tail { file, n }, None) => live_events(state, file.json, n).await,
    }
}

async fn verify_live(state: &Path, json_out: bool) -> anyhow::Result<ExitCode> {
    let v = crate::ask!(state, "chain", &Request::Verify);
    let ok = v["ok"] == true;
    let (c, r) = (&v["chain"], &v["receipts"]);
    if json_out {
        println!("{v}");
    } else if ok {
        println!(
            "ok: {} — {} events, {} signed checkpoints, {} gate receipts verified ({} citing an earlier signed receipt; public key {})",
            cell(&v["file"]),
            c["events"],
            c["checkpoints"],
            r["receipts"],
            r["cited"],
            cell(&v["public_key"])
        );
    } else {
        let bad = if c["ok"] == true {
            &r["first_bad"]
        } else {
            &c["first_bad"]
        };
        eprintln!(
            "weaver: the running kernel's chain is NOT valid: {bad} ({} events verified)",
            c["events"]
        );
    }
    Ok(ExitCode::from(if ok { 0 } else { exit::GUEST }))
}

async fn live_events(state: &Path, json_lines: bool, n: usize) -> anyhow::Result<ExitCode> {
    let n = u64::try_from(n).unwrap_or(u64::MAX);
    let v = crate::ask!(state, "chain", &Request::Tail { n: Some(n) });
    let mut out = std::io::stdout().lock();
    for ev in v.as_array().map(Vec::as_slice).unwrap_or(&[]) {
        if json_lines {
            writeln!(out, "{ev}")?;
        } else {
            writeln!(
                out,
                "{:>6}  {:<16} {:<14} {}",
                ev["seq"],
                cell(&ev["kind"]),
                cell(&ev["source"]),
                ev["payload"]
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(a: &FileArgs, file: &Path, key: &str) -> anyhow::Result<ExitCode> {
    let key = weft_chain::parse_public_key_hex(key).context("--key")?;
    let path = chain_file(file);
    let report = weft_chain::verify_file(&path, &key)
        .with_context(|| format!("reading {}", path.display()))?;
    let receipts = if report.ok {
        Some(weft_gate::verify_chain_receipts(&path, &key).context("checking gate receipts")?)
    } else {
        None
    };
    let ok = report.ok && receipts.as_ref().is_some_and(|r| r.ok);
    if a.json {
        println!(
            "{}",
            json!({ "ok": ok, "file": path, "chain": report, "receipts": receipts })
        );
    } else if ok {
        println!(
            "ok: {} — {} events, {} signed checkpoints, {} gate receipts verified ({} citing an earlier signed receipt)",
            path.display(),
            report.events,
            report.checkpoints,
            receipts.as_ref().map_or(0, |r| r.receipts),
            receipts.as_ref().map_or(0, |r| r.cited)
        );
    } else {
        let (seq, why) = report
            .first_bad
            .clone()
            .or_else(|| receipts.and_then(|r| r.first_bad))
            .unwrap_or((report.events, "unknown problem".into()));
        eprintln!(
            "weaver: chain {} is NOT valid: at seq {seq}: {why} ({} events verified before it)",
            path.display(),
            report.events
        );
    }
    Ok(ExitCode::from(if ok { 0 } else { exit::GUEST }))
}

fn print_events(a: &FileArgs, file: &Path, key: &str, n: usize) -> anyhow::Result<ExitCode> {
    let key = weft_chain::parse_public_key_hex(key).context("--key")?;
    let path = chain_file(file);
    let file = weft_chain::read_file(&path, &key)
        .with_context(|| format!("reading {}", path.display()))?;
    let skip = file.events.len().saturating_sub(n);
    let mut out = std::io::stdout().lock();
    for ev in &file.events[skip..] {
        if a.json || n == usize::MAX {
            writeln!(out, "{}", ev.to_json())?;
        } else {
            let payload = ev.payload_json().map(|v| v.to_string()).unwrap_or_default();
            writeln!(
                out,
                "{:>6}  {:<16} {:<14} {}",
                ev.seq, ev.kind, ev.source, payload
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
