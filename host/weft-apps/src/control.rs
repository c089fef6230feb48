//! `weaver app ...` and `weaver trust ...`, and their server side. `app
//! pack` and `trust ls` need no kernel; every change goes through the
//! running kernel (gated, recorded).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{FromArgMatches, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use weft_kernel::control::cli::{ask, ask_with_progress, cell, table, CliCommand, JsonFlag};
use weft_kernel::control::protocol::exit;
use weft_kernel::control::{kind, to_value, ControlCx, ControlError, ControlReply};

use crate::actions::{Install, Lifecycle, Op, Report, Trust, Upgrade};
use crate::app_error::AppError;
use crate::unit::AppsUnit;
use crate::TrustStore;

/// The apps unit's control requests.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Every installed app.
    Ls,
    /// Install a bundle (an absolute path the kernel can read).
    Install {
        /// A directory or `.weftapp` archive.
        bundle: PathBuf,
    },
    /// Upgrade `name` to a bundle.
    Upgrade {
        /// The installed app.
        name: String,
        /// The new bundle (absolute).
        bundle: PathBuf,
    },
    /// Start an installed app.
    Start {
        /// The app.
        name: String,
    },
    /// Stop a running app.
    Stop {
        /// The app.
        name: String,
    },
    /// Stop and remove an app.
    Rm {
        /// The app.
        name: String,
    },
    /// The trusted signer keys.
    TrustLs,
    /// Trust a key.
    TrustAdd {
        /// A name for the signer.
        name: String,
        /// Hex Ed25519 public key.
        key: String,
    },
    /// Stop trusting a key.
    TrustRm {
        /// The signer's name.
        name: String,
    },
}

/// An app error on the wire, with its kind.
fn app_error(e: AppError) -> ControlError {
    let k = match e.kind() {
        "kernel" | "chain" | "io" | "registry" => kind::KERNEL,
        "not-found" => kind::NOT_FOUND,
        "denied" => kind::DENIED,
        _ => kind::FAILED,
    };
    ControlError::new(k, e.to_string())
}

fn absolute(p: PathBuf) -> Result<PathBuf, ControlError> {
    if p.is_absolute() {
        Ok(p)
    } else {
        Err(ControlError::bad_request(
            "`bundle` must be an absolute path",
        ))
    }
}

/// Serve one request.
pub async fn serve(unit: &AppsUnit, cx: ControlCx<'_>) -> ControlReply {
    let m = unit.manager().ok_or_else(|| {
        ControlError::kernel(format!(
            "apps are not available in this kernel: {}",
            unit.problem().unwrap_or("no app manager")
        ))
    })?;
    let report: Report = {
        let tx = cx.progress_sender();
        Arc::new(move |p| {
            if let Some(tx) = &tx {
                // The client may be gone; progress is best effort.
                let _gone = tx.send(serde_json::to_value(p).unwrap_or(Value::Null));
            }
        })
    };
    let k = cx.kernel;
    match cx.parse::<Request>("apps")? {
        Request::Ls => {
            cx.query("app.list").await?;
            to_value(m.list())
        }
        Request::Install { bundle } => {
            let prepared = m.prepare(&absolute(bundle)?).await.map_err(app_error)?;
            to_value(k.act(cx.who, Install::new(prepared, Some(report))).await?)
        }
        Request::Upgrade { name, bundle } => {
            let prepared = m.prepare(&absolute(bundle)?).await.map_err(app_error)?;
            to_value(
                k.act(cx.who, Upgrade::new(&name, prepared, Some(report)))
                    .await?,
            )
        }
        Request::Start { name } => to_value(k.act(cx.who, Lifecycle::new(Op::Start, &name)).await?),
        Request::Stop { name } => to_value(k.act(cx.who, Lifecycle::new(Op::Stop, &name)).await?),
        Request::Rm { name } => {
            k.act(cx.who, Lifecycle::new(Op::Remove, &name)).await?;
            Ok(json!({ "removed": name }))
        }
        Request::TrustLs => {
            cx.query("trust.list").await?;
            let store = m.trust_store().map_err(app_error)?;
            Ok(trust_json(&store))
        }
        Request::TrustAdd { name, key } => {
            k.act(cx.who, Trust::add(&name, &key)).await?;
            Ok(json!({ "trusted": name }))
        }
        Request::TrustRm { name } => {
            k.act(cx.who, Trust::remove(&name)).await?;
            Ok(json!({ "removed": name }))
        }
    }
}

fn trust_json(store: &TrustStore) -> Value {
    store
        .list()
        .into_iter()
        .map(|(n, k)| json!({ "name": n, "key": k }))
        .collect()
}

#[derive(Subcommand)]
enum AppCmd {
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
    /// Check a bundle (a directory, its weftapp.toml, or a .weftapp archive)
    /// as an install would, with file:line:col errors; no kernel, no packing.
    Check {
        path: PathBuf,
        /// Print `{ok, file, app, errors, notes}` as JSON.
        #[arg(long)]
        json: bool,
    },
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

#[derive(Subcommand)]
enum TrustCmd {
    /// Trust an Ed25519 public key (hex) under NAME (through the running
    /// kernel, gated and recorded; with none running, queued for its next
    /// boot).
    Add { name: String, pubkey_hex: String },
    /// List the trusted keys (works with no kernel running).
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Stop trusting NAME (like `add`: now, or queued for the next boot).
    Rm { name: String },
}

/// `weaver app` and `weaver trust`.
pub fn cli() -> Vec<CliCommand> {
    vec![
        CliCommand {
            command: || {
                AppCmd::augment_subcommands(
                    clap::Command::new("app")
                        .about("Apps in the running kernel; `app pack` works with no kernel")
                        .subcommand_required(true),
                )
            },
            run: |cx, m| Box::pin(app(cx.state, m)),
        },
        CliCommand {
            command: || {
                TrustCmd::augment_subcommands(
                    clap::Command::new("trust")
                        .about("Keys trusted to sign app bundles")
                        .subcommand_required(true),
                )
            },
            run: |cx, m| Box::pin(trust(cx.state, m)),
        },
        crate::keys::cli(),
    ]
}

async fn app(state: &Path, m: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    let (req, json_out) = match AppCmd::from_arg_matches(m)? {
        AppCmd::Pack { dir, key, out } => return pack(&dir, key.as_deref(), out.as_deref()).await,
        AppCmd::Check { path, json } => return crate::check::run_cli(&path, json).await,
        AppCmd::Ls(f) => return list(state, f.json).await,
        AppCmd::Install { bundle, json } => (
            Request::Install {
                bundle: abs(&bundle)?,
            },
            json,
        ),
        AppCmd::Upgrade { name, bundle, json } => (
            Request::Upgrade {
                name,
                bundle: abs(&bundle)?,
            },
            json,
        ),
        AppCmd::Start { name } => (Request::Start { name }, false),
        AppCmd::Stop { name } => (Request::Stop { name }, false),
        AppCmd::Rm { name } => (Request::Rm { name }, false),
    };
    let removing = matches!(req, Request::Rm { .. });
    let mut bar: Option<ProgressBar> = None;
    let result = ask_with_progress(state, "apps", &req, |p| {
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
    } else if removing {
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

fn abs(p: &Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(p).with_context(|| format!("bundle {}", p.display()))
}

async fn list(state: &Path, json_out: bool) -> anyhow::Result<ExitCode> {
    let v = match ask(state, "apps", &Request::Ls).await {
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

async fn trust(state: &Path, m: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    let req = match TrustCmd::from_arg_matches(m)? {
        TrustCmd::Ls { json } => return trust_ls(state, json).await,
        TrustCmd::Add { name, pubkey_hex } => Request::TrustAdd {
            name,
            key: pubkey_hex,
        },
        TrustCmd::Rm { name } => Request::TrustRm { name },
    };
    let v = match weft_kernel::control::client::call(state, "apps", &req, |_| {}).await {
        Ok(v) => v,
        Err(weft_kernel::control::client::CallError::NoKernel(_)) => return queue(state, req),
        Err(weft_kernel::control::client::CallError::Command(e)) => {
            eprintln!("weaver: {}", e.message);
            return Ok(ExitCode::from(e.exit_code()));
        }
        Err(weft_kernel::control::client::CallError::Transport(e)) => {
            eprintln!("weaver: {e}");
            return Ok(ExitCode::from(exit::GUEST));
        }
    };
    match (&v["trusted"], &v["removed"]) {
        (Value::String(n), _) => println!("trusted {n}"),
        (_, Value::String(n)) => println!("removed {n}"),
        _ => println!("{v}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// With no kernel running, queue the change for the next boot (holding the
/// state lock, so no kernel starts meanwhile).
fn queue(state: &Path, req: Request) -> anyhow::Result<ExitCode> {
    let _lock = match weft_kernel::control::server::claim(state) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("weaver: {e}");
            return Ok(ExitCode::from(exit::GUEST));
        }
    };
    let (op, what) = match req {
        Request::TrustAdd { name, key } => (
            crate::pending::PendingTrust::Add {
                name: name.clone(),
                key,
            },
            format!("trusting {name}"),
        ),
        Request::TrustRm { name } => (
            crate::pending::PendingTrust::Remove { name: name.clone() },
            format!("removing {name}"),
        ),
        _ => anyhow::bail!("not a trust change"),
    };
    match crate::pending::queue(state, op) {
        Ok(()) => {
            println!(
                "queued {what}: no kernel runs on {}; the change is made (gated and recorded) \
                 when it next starts",
                state.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ (crate::TrustError::Io { .. } | crate::TrustError::Malformed { .. })) => {
            Err(anyhow::Error::new(e).context("queueing a trust change"))
        }
        Err(e) => {
            eprintln!("weaver: {e}");
            Ok(ExitCode::from(exit::FAILED))
        }
    }
}

/// Through the kernel when one runs (a gated query), else from the file
/// (with the changes queued for the next boot).
async fn trust_ls(state: &Path, json_out: bool) -> anyhow::Result<ExitCode> {
    let v = match weft_kernel::control::client::call(state, "apps", &Request::TrustLs, |_| {}).await
    {
        Ok(v) => v,
        Err(weft_kernel::control::client::CallError::NoKernel(_)) => {
            let store = TrustStore::open(state)
                .with_context(|| format!("opening the trust store in {}", state.display()))?;
            let mut v = trust_json(&store);
            let queued = crate::pending::pending(state).with_context(|| {
                format!("reading the queued trust changes in {}", state.display())
            })?;
            if let Value::Array(rows) = &mut v {
                for q in queued {
                    rows.push(match q {
                        crate::pending::PendingTrust::Add { name, key } => {
                            json!({ "name": name, "key": key, "queued": "add" })
                        }
                        crate::pending::PendingTrust::Remove { name } => {
                            json!({ "name": name, "queued": "remove" })
                        }
                    });
                }
            }
            v
        }
        Err(weft_kernel::control::client::CallError::Command(e)) => {
            eprintln!("weaver: {}", e.message);
            return Ok(ExitCode::from(e.exit_code()));
        }
        Err(weft_kernel::control::client::CallError::Transport(e)) => {
            eprintln!("weaver: {e}");
            return Ok(ExitCode::from(exit::GUEST));
        }
    };
    if json_out {
        println!("{v}");
    } else {
        let rows: Vec<Vec<String>> = v
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(|t| vec![cell(&t["name"]), cell(&t["key"]), cell(&t["queued"])])
            .collect();
        table(&["NAME", "KEY", "QUEUED"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The built-in manifest checker, for commands that need no kernel.
pub(crate) fn offline_checker(rt: &weft_runtime::Runtime) -> anyhow::Result<crate::AppsChecker> {
    let path = weft_kernel::components::builtin("apps.wasm");
    path.bytes()
        .map_err(crate::checker::CheckError::Load)
        .and_then(|b| crate::AppsChecker::new(rt, &b))
        .with_context(|| format!("loading the manifest checker {path}"))
}

async fn pack(dir: &Path, key: Option<&Path>, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let key = key.map(crate::keys::read_key).transpose()?;
    let rt = weft_runtime::Runtime::new(weft_runtime::RuntimeConfig {
        cache_dir: weft_kernel::control::cli::cache_dir(),
        ..Default::default()
    })
    .context("starting the runtime")?;
    let checker = offline_checker(&rt)?;
    match crate::pack(&checker, dir, out, key.as_ref()).await {
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
