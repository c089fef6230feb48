//! `weaver app ...`: apps in the running kernel (install, start, stop,
//! upgrade, remove, list) and `app pack`, which needs no kernel.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::ctl::{ask, ask_with_progress, cell, table, JsonFlag};
use crate::exit;

#[derive(Subcommand)]
pub enum AppCmd {
    /// Install a bundle (a directory or a .weftapp archive).
    Install {
        bundle: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// List installed apps.
    Ls(JsonFlag),
    /// Start an installed app.
    Start { name: String },
    /// Stop a running app.
    Stop { name: String },
    /// Replace an app with a newer version of its bundle.
    Upgrade {
        name: String,
        bundle: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Stop and remove an app.
    Rm { name: String },
    /// Write the lock (and signature) of a bundle directory; no kernel needed.
    Pack {
        dir: PathBuf,
        /// Ed25519 secret key file: 64 hex characters (or 32 raw bytes).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Also write a .weftapp archive here.
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
    },
}

pub async fn run(state: &Path, c: AppCmd) -> anyhow::Result<ExitCode> {
    let (cmd, args, json_out) = match c {
        AppCmd::Pack { dir, key, out } => return pack(&dir, key.as_deref(), out.as_deref()).await,
        AppCmd::Ls(f) => return list(state, f.json).await,
        AppCmd::Install { bundle, json } => {
            ("app.install", json!({ "bundle": abs(&bundle)? }), json)
        }
        AppCmd::Upgrade { name, bundle, json } => (
            "app.upgrade",
            json!({ "name": name, "bundle": abs(&bundle)? }),
            json,
        ),
        AppCmd::Start { name } => ("app.start", json!({ "name": name }), false),
        AppCmd::Stop { name } => ("app.stop", json!({ "name": name }), false),
        AppCmd::Rm { name } => ("app.rm", json!({ "name": name }), false),
    };
    let mut bar: Option<ProgressBar> = None;
    let result = ask_with_progress(state, cmd, args, |p| {
        let b = bar.get_or_insert_with(|| {
            let b = ProgressBar::new(0);
            if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}") {
                b.set_style(style);
            }
            b
        });
        b.set_length(p["total"].as_u64().unwrap_or(0));
        b.set_position(p["done"].as_u64().unwrap_or(0));
        b.set_message(cell(&p["step"]));
    })
    .await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let v = match result {
        Ok(v) => v,
        Err(code) => return Ok(code),
    };
    if json_out {
        println!("{v}");
    } else if cmd == "app.rm" {
        println!("removed {}", cell(&v["removed"]));
    } else {
        println!(
            "{} {} {}",
            cell(&v["name"]),
            cell(&v["version"]),
            cell(&v["state"]).to_lowercase()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn abs(p: &Path) -> anyhow::Result<String> {
    let p = std::fs::canonicalize(p).with_context(|| format!("bundle {}", p.display()))?;
    Ok(p.to_string_lossy().into_owned())
}

async fn list(state: &Path, json_out: bool) -> anyhow::Result<ExitCode> {
    let v = match ask(state, "app.ls", json!({})).await {
        Ok(v) => v,
        Err(code) => return Ok(code),
    };
    if json_out {
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = v
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|a| {
            vec![
                cell(&a["name"]),
                cell(&a["version"]),
                cell(&a["state"]),
                cell(&a["environment"]),
                cell(&a["signer"]),
                cell(&a["error"]),
            ]
        })
        .collect();
    table(
        &["NAME", "VERSION", "STATE", "ENV", "SIGNER", "ERROR"],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read_key(path: &Path) -> anyhow::Result<weft_apps::SigningKey> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let bytes: [u8; 32] = match raw.len() {
        32 => raw.as_slice().try_into()?,
        _ => {
            let text = String::from_utf8_lossy(&raw);
            let text = text.trim();
            let mut out = [0u8; 32];
            if text.len() != 64 || !text.is_ascii() {
                anyhow::bail!("{}: expected 64 hex characters", path.display());
            }
            for (i, b) in out.iter_mut().enumerate() {
                *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                    .with_context(|| format!("{}: not hex", path.display()))?;
            }
            out
        }
    };
    Ok(weft_apps::SigningKey::from_bytes(&bytes))
}

async fn pack(dir: &Path, key: Option<&Path>, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let key = key.map(read_key).transpose()?;
    let rt = weft_runtime::Runtime::new(weft_runtime::RuntimeConfig {
        cache_dir: super::cache_dir(),
        ..Default::default()
    })
    .context("starting the runtime")?;
    let path = weft_subsystems::components_dir(&Default::default()).join("apps.wasm");
    let wasm = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let checker = weft_apps::AppsChecker::new(&rt, &wasm)
        .with_context(|| format!("loading {}", path.display()))?;
    match weft_apps::pack(&checker, dir, out, key.as_ref()).await {
        Ok(p) => {
            println!(
                "packed {}: {} components{}{}",
                dir.display(),
                p.lock.components.len(),
                match &key {
                    Some(k) => format!(", signed by {}", hex(&k.verifying_key().to_bytes())),
                    None => ", unsigned".into(),
                },
                p.archive
                    .map(|a| format!(", archive {}", a.display()))
                    .unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("weaver: {e}");
            Ok(ExitCode::from(exit::FAILED))
        }
    }
}
