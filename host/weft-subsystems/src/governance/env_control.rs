//! Environments at boot (their own policies) and `weaver env ls | show |
//! set-policy`, served by the governance unit (it holds the policies).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{FromArgMatches, Subcommand};
use serde_json::{json, Value};
use weft_kernel::control::cli::{cell, items, output, table, CliCommand, JsonFlag};
use weft_kernel::control::protocol::exit;
use weft_kernel::control::{ControlCx, ControlError, ControlReply};
use weft_kernel::environment::Environment;
use weft_kernel::{InitCx, SubsystemError};

use super::component::{default_limits, ComponentGovernance};
use super::control::Request;
use super::envs::{EnvGovernance, SetEnvPolicy};
use super::GovernanceUnit;

/// Give every environment with `policy = FILE` its own instance of the
/// shared component. A policy that cannot be read or that the component
/// rejects stops the boot, naming the environment and the file.
pub(super) fn install_own(
    cx: &InitCx<'_>,
    shared: &Arc<ComponentGovernance>,
    envs: &EnvGovernance,
) -> Result<(), SubsystemError> {
    for e in cx.environments().list() {
        let Some(path) = &e.policy else { continue };
        let bad = |why: String| {
            SubsystemError::new(
                "governance",
                format!("environments.{}.policy: {}: {why}", e.name, path.display()),
            )
        };
        let text = std::fs::read_to_string(path).map_err(|err| bad(err.to_string()))?;
        let pool = super::component::pool_size(2);
        let g = ComponentGovernance::new(
            cx.runtime(),
            shared.component(),
            Some(&text),
            default_limits(),
            pool,
        )
        .map_err(|err| bad(err.to_string()))?;
        cx.note(
            "governance.install",
            &json!({ "component": g.component_digest(), "policy": g.policy_digest(),
                     "environment": e.name }),
        )
        .map_err(|err| bad(err.to_string()))?;
        envs.set_own(&e.name, Arc::new(g));
    }
    Ok(())
}

/// What `env ls` and `env show` say about one environment.
fn describe(unit: &GovernanceUnit, cx: &ControlCx<'_>, e: &Environment) -> Value {
    let envs = cx.kernel.environments();
    let (policy, digest) = match unit.envs().ok().and_then(|g| g.own(&e.name)) {
        Some(g) => (g.policy_summary().name, g.policy_digest()),
        None => match unit.governance() {
            Some(g) => (
                format!("{} (shared)", g.policy_summary().name),
                g.policy_digest(),
            ),
            None => ("none".to_string(), None),
        },
    };
    json!({
        "name": e.name,
        "default": envs.default_env().name == e.name,
        "unsigned": e.unsigned,
        "audit": e.audit,
        "learning": e.learning,
        "policy": policy,
        "policy_digest": digest,
        "policy_file": e.policy,
        "apps": envs.apps_in(&e.name),
    })
}

/// Serve `env-ls`, `env-show` and `env-set-policy`.
pub(super) async fn serve(unit: &GovernanceUnit, cx: &ControlCx<'_>, r: Request) -> ControlReply {
    match r {
        Request::EnvLs => {
            cx.query("env.list").await?;
            let list = cx.kernel.environments().list();
            Ok(Value::Array(
                list.iter().map(|e| describe(unit, cx, e)).collect(),
            ))
        }
        Request::EnvShow { name } => {
            cx.query("env.list").await?;
            let envs = cx.kernel.environments();
            match envs.get(&name) {
                Some(e) => Ok(describe(unit, cx, e)),
                None => Err(ControlError::new(
                    weft_kernel::control::kind::NOT_FOUND,
                    envs.unknown(&name),
                )),
            }
        }
        Request::EnvSetPolicy { name, policy } => {
            let rec = cx
                .kernel
                .act(cx.who, SetEnvPolicy::new(name, policy))
                .await?;
            Ok(json!(rec))
        }
        _ => Err(ControlError::bad_request("not an environment request")),
    }
}

#[derive(Subcommand)]
enum EnvCmd {
    /// Every environment: install rule, audit level, learning mode, policy, apps.
    Ls(JsonFlag),
    /// One environment.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Give environment NAME the governance policy in FILE (checked by the
    /// component first; a policy it rejects changes nothing). Recorded as
    /// env.policy; lasts until the kernel stops (`policy =` under
    /// `[environments.NAME]` in weft.toml keeps it).
    SetPolicy { name: String, file: PathBuf },
}

/// `weaver env`.
pub fn cli() -> CliCommand {
    CliCommand {
        command: || {
            EnvCmd::augment_subcommands(
                clap::Command::new("env")
                    .about(
                        "Environments: their install rule, audit level, learning mode and policy",
                    )
                    .subcommand_required(true),
            )
        },
        run: |cx, m| Box::pin(run(cx.state, m)),
    }
}

fn print_one(v: &Value) {
    let apps: Vec<String> = items(&v["apps"]).iter().map(cell).collect();
    for (k, x) in [
        ("name", cell(&v["name"])),
        ("default", cell(&v["default"])),
        ("unsigned bundles", cell(&v["unsigned"])),
        ("audit", cell(&v["audit"])),
        ("learning", cell(&v["learning"])),
        ("policy", cell(&v["policy"])),
        ("policy digest", cell(&v["policy_digest"])),
        ("policy file", cell(&v["policy_file"])),
        ("apps", apps.join(", ")),
    ] {
        println!("{k:<17} {x}");
    }
}

async fn run(state: &Path, m: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    match EnvCmd::from_arg_matches(m)? {
        EnvCmd::Ls(f) => {
            let v = weft_kernel::ask!(state, "governance", &Request::EnvLs);
            Ok(output(f.json, &v, |v| {
                let rows: Vec<Vec<String>> = items(v)
                    .iter()
                    .map(|e| {
                        let name = cell(&e["name"]);
                        vec![
                            if e["default"] == true {
                                format!("{name} (default)")
                            } else {
                                name
                            },
                            if e["unsigned"] == true { "yes" } else { "no" }.into(),
                            cell(&e["audit"]),
                            if e["learning"] == true { "yes" } else { "no" }.into(),
                            cell(&e["policy"]),
                            items(&e["apps"]).len().to_string(),
                        ]
                    })
                    .collect();
                table(
                    &["NAME", "UNSIGNED", "AUDIT", "LEARNING", "POLICY", "APPS"],
                    &rows,
                );
            }))
        }
        EnvCmd::Show { name, json } => {
            let v = weft_kernel::ask!(state, "governance", &Request::EnvShow { name });
            Ok(output(json, &v, print_one))
        }
        EnvCmd::SetPolicy { name, file } => {
            let policy = match std::fs::read_to_string(&file) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("weaver: cannot read {}: {e}", file.display());
                    return Ok(ExitCode::from(exit::USAGE));
                }
            };
            let v = weft_kernel::ask!(
                state,
                "governance",
                &Request::EnvSetPolicy {
                    name: name.clone(),
                    policy
                }
            );
            println!(
                "environment `{name}` now has policy {}",
                cell(&v["new_policy"])
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
