//! One function per control command. Handlers take their arguments from the
//! request's `args` object and never trust them: every field is checked.

use std::time::Duration;

use serde_json::{json, Value};
use weft_kernel::console::LogLevel;
use weft_kernel::cron::{CronJobSpec, CronService};
use weft_kernel::{MessageTarget, Payload};

use super::protocol::{kind, WireError};
use super::server::Ctl;

pub(super) type Reply = Result<Value, WireError>;

/// Where a long command sends its progress objects.
pub type ProgressTx = tokio::sync::mpsc::UnboundedSender<Value>;

pub async fn dispatch(ctl: &Ctl, cmd: &str, args: &Value, progress: ProgressTx) -> Reply {
    if !(args.is_null() || args.is_object()) {
        return Err(WireError::bad_request("`args` must be an object"));
    }
    match cmd {
        "status" => Ok(status(ctl)),
        "logs" => logs(ctl, args),
        "shutdown" => Ok(json!({ "stopping": true })),
        "ps" => to_value(ctl.kernel.processes()),
        "tool.ls" => to_value(ctl.kernel.tools()),
        "tool.run" => tool_run(ctl, args).await,
        "agent.send" => agent_send(ctl, args).await,
        "chain.tail" => chain_tail(ctl, args),
        "chain.export" => chain_tail(ctl, &json!({ "n": u64::MAX })),
        "chain.verify" => chain_verify(ctl),
        "tree.ls" => tree_ls(ctl, args),
        "gov.rules" => gov_rules(ctl).await,
        "gov.check" => gov_check(ctl, args).await,
        "cron.ls" => Ok(cron(ctl)?.list().into_iter().map(job_json).collect()),
        "cron.add" => cron_add(ctl, args).await,
        "cron.rm" => cron_rm(ctl, args).await,
        "health" => health(ctl).await,
        c if c.starts_with("app.") => super::apps::dispatch(ctl, c, args, progress).await,
        other => Err(WireError::new(
            kind::UNKNOWN_COMMAND,
            format!("unknown command `{other}`"),
        )),
    }
}

pub(super) fn to_value<T: serde::Serialize>(v: T) -> Reply {
    serde_json::to_value(v).map_err(|e| WireError::new(kind::KERNEL, e.to_string()))
}

pub(super) fn str_arg<'a>(args: &'a Value, name: &str) -> Result<&'a str, WireError> {
    args.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| WireError::bad_request(format!("missing string argument `{name}`")))
}

fn opt_u64(args: &Value, name: &str) -> Result<Option<u64>, WireError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| WireError::bad_request(format!("`{name}` must be a whole number"))),
    }
}

/// Subsystem calls run a component synchronously; keep them off the workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WireError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WireError::new(kind::KERNEL, format!("handler panicked: {e}")))
}

/// A WIT enum case by name: `Branch::Judicial` (Debug) -> `judicial`.
fn variant(v: &impl std::fmt::Debug) -> String {
    let s = format!("{v:?}");
    s.rsplit("::").next().unwrap_or(&s).to_lowercase()
}

fn status(ctl: &Ctl) -> Value {
    let s = ctl.kernel.stats();
    json!({
        "state": s.state,
        "state_dir": ctl.kernel.state_dir(),
        "uptime_ms": ctl.started.elapsed().as_millis() as u64,
        "processes": s.processes,
        "services": s.services,
        "tools": s.tools,
        "topics": s.topics,
        "chain": {
            "len": s.chain.len,
            "last_seq": s.chain.last_seq,
            "public_key": s.chain.public_key,
            "checkpoints": s.chain.checkpoints,
        },
        "subsystems": {
            "governance": ctl.governance.as_ref().map(|g| {
                let p = g.policy_summary();
                json!({ "policy": p.name, "rules": p.rules, "active_rules": p.active_rules })
            }),
            "cron": ctl.cron.is_some(),
            "health": ctl.health.is_some(),
        },
    })
}

fn logs(ctl: &Ctl, args: &Value) -> Reply {
    let min = match args.get("level").and_then(Value::as_str) {
        None => LogLevel::Debug,
        Some("debug") => LogLevel::Debug,
        Some("info") => LogLevel::Info,
        Some("warn") => LogLevel::Warn,
        Some("error") => LogLevel::Error,
        Some(other) => {
            return Err(WireError::bad_request(format!(
                "unknown level `{other}` (debug, info, warn, error)"
            )))
        }
    };
    let events: Vec<_> = ctl
        .kernel
        .logs()
        .into_iter()
        .filter(|e| e.level >= min)
        .collect();
    to_value(events)
}

async fn tool_run(ctl: &Ctl, args: &Value) -> Reply {
    let name = str_arg(args, "name")?;
    let input = match args.get("input") {
        None | Some(Value::Null) => "{}".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    ctl.kernel.invoke_tool(name, &input).await.map_err(|e| {
        // A tool that ran and returned an error is a failure, not a crash.
        let w = WireError::from(e);
        if w.kind == kind::FAILED {
            WireError::new(kind::TOOL, w.message)
        } else {
            w
        }
    })
}

fn payload_json(p: Payload) -> Value {
    match p {
        Payload::Text(s) => json!({ "text": s }),
        Payload::Json(v) => json!({ "json": v }),
        Payload::Binary(b) => json!({ "binary_bytes": b.len() }),
    }
}

async fn agent_send(ctl: &Ctl, args: &Value) -> Reply {
    let name = str_arg(args, "name")?;
    let payload = match args.get("json") {
        Some(v) if !v.is_null() => Payload::Json(v.clone()),
        _ => Payload::Text(str_arg(args, "text")?.to_string()),
    };
    let wait = opt_u64(args, "wait_ms")?.unwrap_or(5_000).min(600_000);
    let reply = ctl
        .kernel
        .request(
            MessageTarget::Named(name.to_string()),
            payload,
            Duration::from_millis(wait),
        )
        .await?;
    Ok(payload_json(reply))
}

fn chain_tail(ctl: &Ctl, args: &Value) -> Reply {
    let n = opt_u64(args, "n")?.unwrap_or(10);
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    let events: Vec<Value> = ctl
        .kernel
        .chain()
        .tail(n)
        .iter()
        .map(|e| e.to_json())
        .collect();
    Ok(Value::Array(events))
}

/// Links, hashes and checkpoints, then every gate receipt (signatures and
/// citations), as the offline `weaver chain verify FILE --key K` does.
fn chain_verify(ctl: &Ctl) -> Reply {
    let chain = ctl.kernel.chain();
    let report = chain.verify_integrity();
    let public_key = chain.status().public_key;
    let key = weft_chain::parse_public_key_hex(&public_key)
        .map_err(|e| WireError::new(kind::KERNEL, format!("chain public key: {e}")))?;
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

fn tree_ls(ctl: &Ctl, args: &Value) -> Reply {
    let prefix = args.get("prefix").and_then(Value::as_str).unwrap_or("/");
    let nodes = ctl
        .kernel
        .tree()
        .list(prefix)
        .map_err(|e| WireError::new(kind::NOT_FOUND, e.to_string()))?;
    to_value(nodes)
}

fn governance(
    ctl: &Ctl,
) -> Result<std::sync::Arc<weft_subsystems::ComponentGovernance>, WireError> {
    ctl.governance
        .clone()
        .ok_or_else(|| WireError::new(kind::KERNEL, "the governance subsystem is not installed"))
}

async fn gov_rules(ctl: &Ctl) -> Reply {
    let gov = governance(ctl)?;
    let rules = blocking(move || gov.rules())
        .await?
        .map_err(|e| WireError::new(kind::GUEST, e.to_string()))?;
    Ok(rules
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id,
                "description": r.description,
                "branch": variant(&r.branch),
                "severity": variant(&r.severity),
                "active": r.active,
                "actions": r.actions,
                "thresholds": r.thresholds.into_iter().map(|(k, v)| (k, json!(v)))
                    .collect::<serde_json::Map<_, _>>(),
            })
        })
        .collect())
}

async fn gov_check(ctl: &Ctl, args: &Value) -> Reply {
    let agent = str_arg(args, "agent")?.to_string();
    let action = str_arg(args, "action")?.to_string();
    let mut context = args.get("context").cloned().unwrap_or_else(|| json!({}));
    if !context.is_object() {
        return Err(WireError::bad_request("`context` must be an object"));
    }
    if let Some(effect) = args.get("effect").filter(|v| !v.is_null()) {
        context["effect"] = effect.clone();
    }
    let kernel = ctl.kernel.clone();
    let decision = blocking(move || kernel.check(&agent, &action, &context)).await?;
    Ok(match decision {
        weft_gate::GateDecision::Permit { .. } => json!({ "decision": "permit", "reason": null }),
        weft_gate::GateDecision::Defer { reason } => {
            json!({ "decision": "defer", "reason": reason })
        }
        weft_gate::GateDecision::Deny { reason, .. } => {
            json!({ "decision": "deny", "reason": reason })
        }
    })
}

fn cron(ctl: &Ctl) -> Result<weft_subsystems::ComponentCron, WireError> {
    ctl.cron
        .clone()
        .ok_or_else(|| WireError::new(kind::KERNEL, "the cron subsystem is not installed"))
}

fn job_json(j: weft_kernel::cron::CronJob) -> Value {
    serde_json::to_value(j).unwrap_or(Value::Null)
}

/// Jobs added from the CLI are owned by the operator, like kernel sends.
const OWNER: &str = "kernel";

async fn cron_add(ctl: &Ctl, args: &Value) -> Reply {
    let spec = CronJobSpec {
        schedule: str_arg(args, "schedule")?.to_string(),
        target: str_arg(args, "target")?.to_string(),
        payload: args.get("payload").cloned().unwrap_or(Value::Null),
    };
    let cron = cron(ctl)?;
    let job = blocking(move || cron.add(OWNER, spec))
        .await?
        .map_err(|e| WireError::new(kind::FAILED, e))?;
    Ok(job_json(job))
}

async fn cron_rm(ctl: &Ctl, args: &Value) -> Reply {
    let id = str_arg(args, "id")?.to_string();
    let cron = cron(ctl)?;
    let id2 = id.clone();
    blocking(move || cron.remove(OWNER, &id2))
        .await?
        .map_err(|e| WireError::new(kind::FAILED, e))?;
    Ok(json!({ "removed": id }))
}

async fn health(ctl: &Ctl) -> Reply {
    let h = ctl
        .health
        .clone()
        .ok_or_else(|| WireError::new(kind::KERNEL, "the health subsystem is not installed"))?;
    let r = blocking(move || h.status())
        .await?
        .map_err(|e| WireError::new(kind::GUEST, e.to_string()))?;
    use weft_subsystems::health::Overall;
    let (overall, detail) = match r.overall {
        Overall::Healthy => ("healthy", Value::Null),
        Overall::Degraded(items) => (
            "degraded",
            items
                .into_iter()
                .map(|i| json!({ "which": i.which, "why": i.why }))
                .collect(),
        ),
        Overall::Down(why) => ("down", json!(why)),
    };
    let probes: Vec<Value> = r
        .probes
        .into_iter()
        .map(|p| {
            json!({
                "name": p.name,
                "kind": variant(&p.kind),
                "passing": p.passing,
                "consecutive_failures": p.consecutive_failures,
                "last_detail": p.last_detail,
                "last_ns": p.last_ns,
            })
        })
        .collect();
    Ok(json!({ "overall": overall, "detail": detail, "probes": probes }))
}
