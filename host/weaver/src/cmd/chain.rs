//! `weaver chain ...` on a chain file, with no kernel: verify it (links,
//! payload hashes, checkpoint signatures, gate receipts) or export it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::exit;

#[derive(Subcommand)]
pub enum ChainCmd {
    /// Verify a chain file offline with only its public key.
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
pub struct FileArgs {
    /// The chain file (`<state>/chain/chain.log`), or a state dir.
    pub file: PathBuf,
    /// The chain's Ed25519 public key, hex (shown by `kernel status`).
    #[arg(long)]
    pub key: String,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
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

pub async fn run(cmd: ChainCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ChainCmd::Verify(a) => verify(&a),
        ChainCmd::Export(a) => print_events(&a, usize::MAX),
        ChainCmd::Tail { file, n } => print_events(&file, n),
    }
}

fn verify(a: &FileArgs) -> anyhow::Result<ExitCode> {
    let key = weft_chain::parse_public_key_hex(&a.key).context("--key")?;
    let path = chain_file(&a.file);
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
            "ok: {} — {} events, {} signed checkpoints, {} gate receipts verified",
            path.display(),
            report.events,
            report.checkpoints,
            receipts.map_or(0, |r| r.receipts)
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

fn print_events(a: &FileArgs, n: usize) -> anyhow::Result<ExitCode> {
    let key = weft_chain::parse_public_key_hex(&a.key).context("--key")?;
    let path = chain_file(&a.file);
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
