//! `weaver chain ...`: the running kernel's chain (`tail`, `export`,
//! `verify`, `prove`, `consistency`, `head`, each a gated read), a chain
//! directory verified and read offline with only its public key, and
//! receipts checked offline (`verify-receipt`).

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, FromArgMatches, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use weft_chain::{ChainEvent, ConsistencyProof, Receipt, SignedHead, VerifyOptions};

use crate::control::cli::{cell, CliCommand, CliContext};
use crate::control::protocol::exit;
use crate::control::{to_value, ControlCx, ControlError, ControlReply};

/// The chain unit's control requests.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// The last `n` events (all with `None`).
    Tail {
        /// How many.
        n: Option<u64>,
    },
    /// Every segment, leaf, signed head and index entry, then every gate
    /// record, up to the durable head.
    Verify,
    /// The receipt of event `seq`.
    Prove {
        /// The event.
        seq: u64,
    },
    /// A consistency proof between two tree sizes.
    Consistency {
        /// The older size.
        old: u64,
        /// The newer size.
        new: u64,
    },
    /// The newest durable signed head.
    Head,
}

/// Serve one request.
pub async fn serve(cx: ControlCx<'_>) -> ControlReply {
    let req = cx.parse::<Request>("chain")?;
    cx.query("chain.read").await?;
    let chain = cx.kernel.chain();
    let blocking = |f: Box<dyn FnOnce() -> ControlReply + Send>| async move {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| ControlError::kernel(format!("chain task: {e}")))?
    };
    match req {
        Request::Tail { n } => {
            let n = usize::try_from(n.unwrap_or(u64::MAX)).unwrap_or(usize::MAX);
            blocking(Box::new(move || {
                let events: Vec<Value> = chain.tail(n).iter().map(|e| e.to_json()).collect();
                Ok(Value::Array(events))
            }))
            .await
        }
        Request::Verify => {
            blocking(Box::new(move || {
                let m = chain.manager();
                m.sync().map_err(|e| ControlError::kernel(e.to_string()))?;
                let upto = m.durable_head().map(|h| h.tree_size);
                let key = m.public_key();
                let (report, receipts) = weft_gate::verify_chain_receipts(
                    m.path(),
                    &key,
                    VerifyOptions {
                        upto,
                        ..Default::default()
                    },
                );
                Ok(json!({
                    "ok": report.ok && receipts.ok,
                    "dir": m.path(),
                    "public_key": weft_chain::public_key_hex(&key),
                    "chain": report,
                    "receipts": receipts,
                }))
            }))
            .await
        }
        Request::Prove { seq } => {
            blocking(Box::new(move || {
                to_value(
                    chain
                        .prove(seq)
                        .map_err(|e| ControlError::kernel(e.to_string()))?,
                )
            }))
            .await
        }
        Request::Consistency { old, new } => {
            blocking(Box::new(move || {
                let m = chain.manager();
                m.sync().map_err(|e| ControlError::kernel(e.to_string()))?;
                let p = chain
                    .consistency(old, new)
                    .map_err(|e| ControlError::bad_request(e.to_string()))?;
                to_value(p)
            }))
            .await
        }
        Request::Head => {
            blocking(Box::new(move || {
                chain
                    .manager()
                    .sync()
                    .map_err(|e| ControlError::kernel(e.to_string()))?;
                to_value(chain.durable_head())
            }))
            .await
        }
    }
}

#[derive(Subcommand)]
enum ChainCmd {
    /// Verify a chain directory offline with only its public key (or, with
    /// no DIR, the running kernel's chain).
    Verify {
        #[command(flatten)]
        file: FileArgs,
        /// A trusted signed head (JSON, from `weaver chain head -o` or a
        /// receipt): the log must contain exactly its tree.
        #[arg(long, value_name = "HEAD_FILE")]
        from: Option<PathBuf>,
    },
    /// Print every event as JSON lines.
    Export(FileArgs),
    /// Print the last N events.
    Tail {
        #[command(flatten)]
        file: FileArgs,
        #[arg(short = 'n', long, default_value_t = 10)]
        n: usize,
    },
    /// Write the receipt of event SEQ: the event, its inclusion proof and
    /// the durable signed tree head covering it.
    Prove {
        /// The event's seq.
        seq: u64,
        /// Write the receipt here instead of standard output.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
    /// Check a receipt offline with only the chain's public key.
    VerifyReceipt {
        /// The receipt file (`weaver chain prove SEQ -o FILE`).
        receipt: PathBuf,
        /// The chain's Ed25519 public key, hex.
        #[arg(long)]
        key: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Prove that the log between two tree sizes only grew (RFC 9162
    /// consistency proof), and check the proof.
    Consistency {
        /// The older tree size.
        old: u64,
        /// The newer tree size (at most the durable head's).
        new: u64,
        /// Write the proof here instead of standard output.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
    /// Print (or write) the newest durable signed tree head.
    Head {
        /// Write it here instead of standard output.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
}

#[derive(Args)]
struct FileArgs {
    /// The chain directory (`<state>/chain`), or a state dir; none means
    /// the running kernel's chain.
    file: Option<PathBuf>,
    /// The chain's Ed25519 public key, hex (shown by `kernel status` and
    /// printed by `weaver run` at boot); needed with DIR.
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
                    .about(
                        "Inspect, prove and verify the chain (a DIR works with no kernel running)",
                    )
                    .subcommand_required(true),
            )
        },
        run: |cx, m| Box::pin(run(cx, m)),
    }
}

/// The chain directory for a path naming a state dir, a chain dir or a
/// segment file in one.
fn chain_dir(p: &Path) -> PathBuf {
    if p.is_file() {
        return p
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    }
    let nested = p.join("chain");
    if nested.join("00000000000000000000.seg").exists() || nested.join("chain.key").exists() {
        return nested;
    }
    p.to_path_buf()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn write_out(output: &Option<PathBuf>, v: &Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(v)? + "\n";
    match output {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display())),
        None => Ok(std::io::stdout().lock().write_all(text.as_bytes())?),
    }
}

async fn run(cx: &CliContext<'_>, m: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    let cmd = ChainCmd::from_arg_matches(m)?;
    let state = cx.state;
    match cmd {
        ChainCmd::Prove { seq, output } => {
            let v = crate::ask!(state, "chain", &Request::Prove { seq });
            write_out(&output, &v)?;
            if let Some(p) = &output {
                eprintln!(
                    "receipt of event {seq} under the signed head of size {} written to {}",
                    v["head"]["tree_size"],
                    p.display()
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        ChainCmd::Consistency { old, new, output } => {
            let v = crate::ask!(state, "chain", &Request::Consistency { old, new });
            let p: ConsistencyProof = serde_json::from_value(v.clone())?;
            if let Err(e) = p.verify() {
                eprintln!("weaver: the kernel's consistency proof does NOT verify: {e}");
                return Ok(ExitCode::from(exit::GUEST));
            }
            write_out(&output, &v)?;
            eprintln!(
                "ok: the tree of {new} events (root {}) extends the tree of {old} events (root {}); {} proof hashes",
                hex(&p.new_root),
                hex(&p.old_root),
                p.proof.len()
            );
            return Ok(ExitCode::SUCCESS);
        }
        ChainCmd::Head { output } => {
            let v = crate::ask!(state, "chain", &Request::Head);
            write_out(&output, &v)?;
            return Ok(ExitCode::SUCCESS);
        }
        ChainCmd::VerifyReceipt { receipt, key, json } => {
            return verify_receipt(&receipt, &key, json);
        }
        _ => {}
    }
    let a = match &cmd {
        ChainCmd::Verify { file, .. } | ChainCmd::Export(file) => file,
        ChainCmd::Tail { file, .. } => file,
        _ => unreachable!("handled above"),
    };
    let offline = match (&a.file, &a.key) {
        (Some(f), Some(k)) => Some((f.clone(), k.clone())),
        (None, None) => None,
        (Some(_), None) => {
            eprintln!(
                "weaver: a chain DIR needs --key KEY, KEY being {}",
                crate::control::cli::chain_key_hint(a.file.as_deref().unwrap_or(state))
            );
            return Ok(ExitCode::from(exit::USAGE));
        }
        (None, Some(_)) => {
            eprintln!(
                "weaver: --key goes with a chain DIR; with no DIR the running kernel is asked"
            );
            return Ok(ExitCode::from(exit::USAGE));
        }
    };
    match (cmd, offline) {
        (ChainCmd::Verify { file, from }, Some((f, k))) => verify(&file, &f, &k, from.as_deref()),
        (ChainCmd::Export(a), Some((f, k))) => print_events(&a, &f, &k, usize::MAX),
        (ChainCmd::Tail { file, n }, Some((f, k))) => print_events(&file, &f, &k, n),
        (ChainCmd::Verify { file, from: None }, None) => verify_live(state, file.json).await,
        (ChainCmd::Verify { from: Some(_), .. }, None) => {
            eprintln!("weaver: --from checks a chain DIR offline: give the DIR and --key");
            Ok(ExitCode::from(exit::USAGE))
        }
        (ChainCmd::Export(_), None) => live_events(state, true, usize::MAX).await,
        (ChainCmd::Tail { file, n }, None) => live_events(state, file.json, n).await,
        _ => unreachable!("handled above"),
    }
}

fn verify_receipt(path: &Path, key: &str, json_out: bool) -> anyhow::Result<ExitCode> {
    let key = weft_chain::parse_public_key_hex(key).context("--key")?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let result = serde_json::from_str::<Receipt>(&text)
        .map_err(|e| format!("not a receipt: {e}"))
        .and_then(|r| r.verify(&key).map(|()| r));
    match result {
        Ok(r) => {
            let decision = weft_gate::verify_decision_receipt(&r, &key).ok();
            if json_out {
                println!(
                    "{}",
                    json!({ "ok": true, "seq": r.event.seq, "kind": r.event.kind, "source": r.event.source,
                        "head": r.head, "decision": decision.as_ref().map(|d| json!({
                            "decision": d.decision.as_str(), "agent": d.agent, "action": d.action })) })
                );
            } else {
                println!(
                    "ok: event {} ({} by {}) is in chain {} under the signed head of size {} (root {})",
                    r.event.seq,
                    r.event.kind,
                    r.event.source,
                    r.head.chain_id,
                    r.head.tree_size,
                    hex(&r.head.root)
                );
                if let Some(d) = decision {
                    println!(
                        "   gate decision: {} `{}` for {}",
                        d.decision.as_str(),
                        d.action,
                        d.agent
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            if json_out {
                println!("{}", json!({ "ok": false, "error": why }));
            }
            eprintln!("weaver: receipt {} is NOT valid: {why}", path.display());
            Ok(ExitCode::from(exit::GUEST))
        }
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
            "ok: {} — {} events in {} segments, {} signed heads, {} gate decisions, each provable (public key {})",
            cell(&v["dir"]),
            c["events"],
            c["segments"],
            c["heads"],
            r["receipts"],
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

fn verify(a: &FileArgs, file: &Path, key: &str, from: Option<&Path>) -> anyhow::Result<ExitCode> {
    let key = weft_chain::parse_public_key_hex(key).context("--key")?;
    let dir = chain_dir(file);
    let from = match from {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            // A head file, or a receipt (whose head is taken).
            let v: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", p.display()))?;
            let head = if v.get("head").is_some() {
                v["head"].clone()
            } else {
                v
            };
            Some(
                serde_json::from_value::<SignedHead>(head)
                    .with_context(|| format!("{} holds no signed head", p.display()))?,
            )
        }
        None => None,
    };
    let (report, receipts) = weft_gate::verify_chain_receipts(
        &dir,
        &key,
        VerifyOptions {
            from,
            ..Default::default()
        },
    );
    let ok = report.ok && receipts.ok;
    if a.json {
        println!(
            "{}",
            json!({ "ok": ok, "dir": dir, "chain": report, "receipts": receipts })
        );
    } else if ok {
        let trusted = match report.matched_trusted_head {
            Some(true) => " (extends the trusted head)",
            _ => "",
        };
        println!(
            "ok: {} — {} events from seq {} in {} segments, {} signed heads, {} gate decisions{trusted}",
            dir.display(),
            report.events,
            report.first_seq,
            report.segments,
            report.heads,
            receipts.receipts,
        );
    } else {
        let (seq, why) = report
            .first_bad
            .clone()
            .or_else(|| receipts.first_bad.clone())
            .unwrap_or((report.first_seq + report.events, "unknown problem".into()));
        eprintln!(
            "weaver: chain {} is NOT valid: at seq {seq}: {why} ({} events verified before it)",
            dir.display(),
            report.events
        );
    }
    Ok(ExitCode::from(if ok { 0 } else { exit::GUEST }))
}

/// Streams the directory through the verifier, printing the last `n`
/// events (all of them as JSON lines with `usize::MAX`).
fn print_events(a: &FileArgs, file: &Path, key: &str, n: usize) -> anyhow::Result<ExitCode> {
    let key = weft_chain::parse_public_key_hex(key).context("--key")?;
    let dir = chain_dir(file);
    let mut out = std::io::stdout().lock();
    let mut ring: VecDeque<ChainEvent> = VecDeque::new();
    let all = n == usize::MAX;
    let mut write_err = None;
    let mut cb = |e: &weft_chain::EventRef<'_>| {
        let ev = ChainEvent {
            seq: e.seq,
            chain_id: 0,
            timestamp_ns: e.timestamp_ns,
            hash: weft_chain::leaf_hash(e.timestamp_ns, e.source, e.kind, e.payload),
            source: e.source.to_owned(),
            kind: e.kind.to_owned(),
            payload: e.payload.to_vec(),
        };
        if all {
            if let Err(err) = writeln!(out, "{}", ev.to_json()) {
                write_err = Some(err);
                return Err("output closed".to_string());
            }
        } else {
            if ring.len() == n {
                ring.pop_front();
            }
            ring.push_back(ev);
        }
        Ok(())
    };
    let report = weft_chain::verify_dir_opts(
        &dir,
        &key,
        VerifyOptions {
            on_event: Some(&mut cb),
            ..Default::default()
        },
    );
    if let Some(e) = write_err {
        return Err(e.into());
    }
    for ev in &ring {
        if a.json {
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
    if !report.ok {
        let (seq, why) = report.first_bad.unwrap_or((0, "unknown problem".into()));
        eprintln!(
            "weaver: chain {} is NOT valid: at seq {seq}: {why}",
            dir.display()
        );
        return Ok(ExitCode::from(exit::GUEST));
    }
    Ok(ExitCode::SUCCESS)
}
