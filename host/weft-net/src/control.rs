//! `weaver secret set|ls|rm` and `weaver net ls`: the operator's side of
//! the unit, through the control socket (each request an action).

use std::io::Read as _;
use std::path::Path;
use std::process::ExitCode;

use clap::{FromArgMatches, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use weft_kernel::control::cli::{cell, items, output, table, CliCommand};
use weft_kernel::control::{to_value, ControlCx, ControlError, ControlReply};
use weft_kernel::Kernel;

use crate::secrets::{self, SecretRemove, SecretSet};
use crate::unit::NetUnit;

/// The control ops of the unit.
pub const OPS: &[&str] = &["secret-set", "secret-ls", "secret-rm", "ls"];

/// The unit's control requests.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Store secret `name` of `app`.
    SecretSet {
        /// The app.
        app: String,
        /// The secret's name.
        name: String,
        /// Its value.
        value: String,
    },
    /// The names of `app`'s secrets.
    SecretLs {
        /// The app.
        app: String,
    },
    /// Remove secret `name` of `app`.
    SecretRm {
        /// The app.
        app: String,
        /// The secret's name.
        name: String,
    },
    /// Routes and outbound grants per app.
    Ls,
}

/// Serve one request.
pub(crate) async fn serve(unit: &NetUnit, cx: ControlCx<'_>) -> ControlReply {
    match cx.parse::<Request>("net")? {
        Request::SecretSet { app, name, value } => {
            cx.kernel
                .act(cx.who, SecretSet { app, name, value })
                .await?;
            Ok(json!({ "ok": true }))
        }
        Request::SecretRm { app, name } => {
            cx.kernel.act(cx.who, SecretRemove { app, name }).await?;
            Ok(json!({ "ok": true }))
        }
        Request::SecretLs { app } => {
            cx.query("secret.list").await?;
            let names = secrets::list(cx.kernel.state_dir(), &app).map_err(ControlError::from)?;
            to_value(names)
        }
        Request::Ls => {
            cx.query("net.list").await?;
            Ok(listing(unit, cx.kernel))
        }
    }
}

/// Every app's routes and its agents' and tools' outbound grants (agents
/// started by hand under their owner).
fn listing(unit: &NetUnit, kernel: &Kernel) -> Value {
    let mut apps: std::collections::BTreeMap<String, (Vec<Value>, Vec<Value>)> = Default::default();
    for p in kernel.processes() {
        // Agents started by hand are listed under their owner (`operator`).
        let app = p.owner.strip_prefix("app:").unwrap_or(&p.owner);
        let Some(caps) = kernel.capabilities_of(p.pid) else {
            continue;
        };
        if caps.network.outbound.is_empty() {
            continue;
        }
        apps.entry(app.to_string()).or_default().1.push(json!({
            "agent": p.name, "outbound": caps.network.outbound,
            "secrets": caps.network.secrets.iter().map(|s| &s.secret).collect::<Vec<_>>(),
        }));
    }
    for t in kernel.tools() {
        if t.outbound.is_empty() {
            continue;
        }
        let app = t.owner.strip_prefix("app:").unwrap_or(&t.owner);
        apps.entry(app.to_string()).or_default().1.push(json!({
            "tool": t.name, "outbound": t.outbound,
        }));
    }
    for r in unit.routes().all() {
        apps.entry(r.app.clone()).or_default().0.push(json!({
            "path": r.route.path, "agent": r.route.agent, "component": r.route.component,
            "running": r.running,
            "max_body_bytes": r.route.max_body_bytes, "timeout_ms": r.route.timeout_ms,
            "token": r.route.token_secret.is_some(),
        }));
    }
    let apps: Vec<Value> = apps
        .into_iter()
        .map(|(app, (routes, agents))| json!({ "app": app, "routes": routes, "agents": agents }))
        .collect();
    json!({ "listen": unit.listening(), "apps": apps })
}

#[derive(Subcommand)]
enum SecretCmd {
    /// Store a secret of an app; the value is read from stdin (one trailing
    /// newline dropped).
    Set {
        /// The app.
        app: String,
        /// The secret's name.
        name: String,
    },
    /// The names of an app's secrets (never values).
    Ls {
        /// The app.
        app: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a secret of an app.
    Rm {
        /// The app.
        app: String,
        /// The secret's name.
        name: String,
    },
}

#[derive(Subcommand)]
enum NetCmd {
    /// Routes and outbound grants per app.
    Ls {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `weaver secret ...`.
pub fn secret_cli() -> CliCommand {
    CliCommand {
        command: || {
            SecretCmd::augment_subcommands(
                clap::Command::new("secret")
                    .about("Per-app secrets, added by the host to outbound requests")
                    .subcommand_required(true),
            )
        },
        run: |cx, m| Box::pin(run_secret(cx.state, m)),
    }
}

/// `weaver net ...`.
pub fn net_cli() -> CliCommand {
    CliCommand {
        command: || {
            NetCmd::augment_subcommands(
                clap::Command::new("net")
                    .about("Network: inbound routes and outbound grants")
                    .subcommand_required(true),
            )
        },
        run: |cx, m| Box::pin(run_net(cx.state, m)),
    }
}

async fn run_secret(state: &Path, m: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    match SecretCmd::from_arg_matches(m)? {
        SecretCmd::Set { app, name } => {
            let mut value = String::new();
            std::io::stdin().read_to_string(&mut value)?;
            let value = value
                .strip_suffix('\n')
                .map(|v| v.strip_suffix('\r').unwrap_or(v))
                .unwrap_or(&value)
                .to_string();
            let req = Request::SecretSet {
                app: app.clone(),
                name: name.clone(),
                value,
            };
            weft_kernel::ask!(state, "net", &req);
            println!("secret `{name}` of app `{app}` set");
            Ok(ExitCode::SUCCESS)
        }
        SecretCmd::Ls { app, json } => {
            let v = weft_kernel::ask!(state, "net", &Request::SecretLs { app });
            Ok(output(json, &v, |v| {
                for n in items(v) {
                    println!("{}", cell(n));
                }
            }))
        }
        SecretCmd::Rm { app, name } => {
            let req = Request::SecretRm {
                app: app.clone(),
                name: name.clone(),
            };
            weft_kernel::ask!(state, "net", &req);
            println!("secret `{name}` of app `{app}` removed");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn run_net(state: &Path, m: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    match NetCmd::from_arg_matches(m)? {
        NetCmd::Ls { json } => {
            let v = weft_kernel::ask!(state, "net", &Request::Ls);
            Ok(output(json, &v, |v| {
                match v["listen"].as_str() {
                    Some(a) => println!("routes served on http://{a}"),
                    None => println!("routes not served (weaver run --http ADDR or [net] listen)"),
                }
                let mut rows = Vec::new();
                for a in items(&v["apps"]) {
                    for r in items(&a["routes"]) {
                        let run = if r["running"] == json!(true) {
                            "running"
                        } else {
                            "stopped"
                        };
                        let to = match r["component"].as_str() {
                            Some(c) => format!("component {c}"),
                            None => cell(&r["agent"]),
                        };
                        rows.push(vec![
                            cell(&a["app"]),
                            format!("route {}", cell(&r["path"])),
                            format!("-> {to} ({run})"),
                        ]);
                    }
                    for g in items(&a["agents"]) {
                        let list: Vec<String> = items(&g["outbound"]).iter().map(cell).collect();
                        let who = match g["tool"].as_str() {
                            Some(t) => format!("tool {t}"),
                            None => format!("agent {}", cell(&g["agent"])),
                        };
                        rows.push(vec![
                            cell(&a["app"]),
                            who,
                            format!("outbound {}", list.join(" ")),
                        ]);
                    }
                }
                table(&["APP", "WHAT", "DETAIL"], &rows);
            }))
        }
    }
}
