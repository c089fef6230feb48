//! The one rule, tested: nothing changes kernel state except through the
//! gate, and nothing the gate permits goes unrecorded.
//!
//! A recording governance backend sits behind the capability rules: it
//! sees every decision a non-kernel principal asks for, and denies or
//! permits on command. For every action kind the kernel's units declare,
//! the action is refused when denied (a `gate.deny` on the chain, no
//! effect) and done when permitted (a `gate.permit` and its effect record).
//! Then every control command and every syscall is walked and must reach
//! the gate.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use weft_apps::actions::{Install, Lifecycle, Op, RunHook};
use weft_apps::AppsUnit;
use weft_gate::{
    GovernanceBackend, GovernanceDecision, GovernanceError, GovernanceGate, GovernanceRequest,
    GovernanceVerdict,
};
use weft_kernel::control::ControlCx;
use weft_kernel::ipc::{RegisterService, SendMessage, UnregisterService};
use weft_kernel::tools::{InvokeTool, RegisterTool, ToolEntry, UnregisterTool};
use weft_kernel::{
    Capabilities, InitCx, Kernel, KernelConfig, KernelError, MessageTarget, Payload, Principal,
    Restart, Spawn, SpawnRequest, Stop, Subsystem, SubsystemError,
};

#[path = "chokepoint/net.rs"]
mod net;

/// Records every (agent, action) governance is asked; denies while `deny`.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(String, String)>>,
    deny: AtomicBool,
    /// While set, sends are escalated to a person (to open escalations).
    escalate_sends: AtomicBool,
    epoch: AtomicU64,
}

impl Recorder {
    fn set_deny(&self, deny: bool) {
        self.deny.store(deny, Ordering::SeqCst);
        // Remembered permits must not outlive the answer that gave them.
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    fn seen(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().clone()
    }

    fn clear(&self) {
        self.seen.lock().unwrap().clear();
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }
}

impl GovernanceBackend for Recorder {
    fn evaluate(&self, req: &GovernanceRequest) -> Result<GovernanceVerdict, GovernanceError> {
        self.seen
            .lock()
            .unwrap()
            .push((req.agent.clone(), req.action.clone()));
        let deny = self.deny.load(Ordering::SeqCst);
        let escalate = self.escalate_sends.load(Ordering::SeqCst) && req.action == "ipc.send";
        Ok(GovernanceVerdict {
            decision: if escalate {
                GovernanceDecision::EscalateToHuman
            } else if deny {
                GovernanceDecision::Deny
            } else {
                GovernanceDecision::Permit
            },
            fired_rules: Vec::new(),
            reason: if deny {
                "denied by the test".into()
            } else {
                String::new()
            },
        })
    }

    fn policy_epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }
}

/// Installs the recorder as governance (registered after the governance
/// unit, so it has the last word while that unit's actions still exist).
struct RecordingUnit(Arc<Recorder>);

impl Subsystem for RecordingUnit {
    fn name(&self) -> &'static str {
        "recorder"
    }

    fn init(&self, cx: &InitCx<'_>) -> Result<(), SubsystemError> {
        cx.set_governance(Arc::new(GovernanceGate::new(self.0.clone(), "dev")));
        Ok(())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

struct Env {
    k: Kernel,
    rec: Arc<Recorder>,
    _dir: tempfile::TempDir,
    bundles: PathBuf,
}

async fn boot() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut config = KernelConfig::default();
    config.kernel.cache_dir = Some(weft_testkit::shared_cache_dir());
    config.kernel.environment = "dev".into();
    config.runtime.pool_instances = 500;
    // An escalated action gets `pending` at once (see open_escalation).
    config.escalation.wait_ms = 0;
    let rec = Arc::new(Recorder::default());
    let mut units = weft_subsystems::units();
    units.push(Arc::new(weft_net::NetUnit::new()));
    units.push(Arc::new(AppsUnit::default()));
    // The dashboard unit, not serving: its one query still passes the gate.
    units.push(Arc::new(weft_ui::UiUnit::new()));
    units.push(Arc::new(RecordingUnit(rec.clone())));
    weft_net::unit::set_listen_flag(Some("127.0.0.1:0".into()));
    let k = Kernel::boot_with(config, &dir.path().join("state"), units)
        .await
        .expect("boot");
    net::prepare(&k).await;
    let bundles = dir.path().join("bundles");
    std::fs::create_dir_all(&bundles).unwrap();
    Env {
        k,
        rec,
        _dir: dir,
        bundles,
    }
}

/// A packed, unsigned copy of apps/hello at `version` (hooks: wc.wasm).
async fn bundle(env: &Env, version: &str) -> PathBuf {
    let dir = env.bundles.join(format!("hello-{version}"));
    std::fs::create_dir_all(dir.join("components")).unwrap();
    let manifest =
        std::fs::read_to_string(weft_testkit::repo_root().join("apps/hello/weftapp.toml"))
            .unwrap()
            .replace("version = \"0.1.0\"", &format!("version = \"{version}\""));
    std::fs::write(dir.join("weftapp.toml"), manifest).unwrap();
    for c in ["probe", "calc", "wc"] {
        std::fs::copy(
            weft_testkit::guest(c),
            dir.join(format!("components/{c}.wasm")),
        )
        .unwrap();
    }
    let out = env.bundles.join(format!("hello-{version}.weftapp"));
    let rt = weft_runtime::Runtime::new(weft_runtime::RuntimeConfig {
        cache_dir: Some(weft_testkit::shared_cache_dir()),
        ..Default::default()
    })
    .unwrap();
    let checker = weft_apps::AppsChecker::from_file(&rt, &weft_testkit::guest("apps")).unwrap();
    weft_apps::pack(&checker, &dir, Some(&out), None)
        .await
        .expect("pack");
    out
}

const OP: Principal = Principal::Operator;

async fn spawn(k: &Kernel, name: &str) -> u64 {
    let mut req = SpawnRequest::new(
        name,
        k.load_component(&weft_testkit::guest("probe")).unwrap(),
    );
    req.capabilities = Capabilities::trusted();
    req.config = json!({ "mode": "echo" });
    k.act(&OP, Spawn::new(req)).await.expect("spawn")
}

/// A control request to `unit` as the operator.
async fn control(k: &Kernel, unit: &str, request: Value) -> Result<Value, String> {
    let u = k.unit(unit).unwrap_or_else(|| panic!("no unit {unit}"));
    u.control(ControlCx::new(k, &OP, request, None))
        .await
        .map_err(|e| e.message)
}

/// An op of the echo probe `agent`, its `{"ok"|"err"}` reply.
async fn probe(k: &Kernel, agent: &str, op: Value) -> Value {
    let send = SendMessage::new(MessageTarget::Named(agent.into()), Payload::Json(op))
        .wait(std::time::Duration::from_secs(5));
    match k
        .act(&Principal::Kernel, send)
        .await
        .expect("probe request")
    {
        weft_kernel::SendOutcome::Replied(Payload::Json(v)) => v,
        other => panic!("{other:?}"),
    }
}

fn kinds_after(k: &Kernel, seq: u64) -> Vec<(String, Value)> {
    k.chain()
        .range(seq..)
        .iter()
        .map(|e| (e.kind.clone(), e.payload_json().unwrap_or(Value::Null)))
        .collect()
}

/// What one scenario does: the principal that asks (as the chain names
/// it), the effect record when permitted, and how to ask.
struct Scenario {
    agent: &'static str,
    effect: Option<&'static str>,
}

/// Run the action of `kind` (denied, then permitted) and check both halves.
async fn check_kind(env: &Env, kind: &str) {
    let k = &env.k;
    let s = scenario(kind);
    setup(env, kind).await;
    for deny in [true, false] {
        env.rec.set_deny(deny);
        let from = k.chain().len();
        let r = run(env, kind).await;
        let after = kinds_after(k, from);
        let decided = |d: &str| {
            after.iter().any(|(kd, p)| {
                kd == d
                    && p["agent"] == s.agent
                    && action_matches(kind, p["action"].as_str().unwrap_or(""))
            })
        };
        if deny {
            assert!(r.is_err(), "{kind}: done while denied");
            assert!(
                decided("gate.deny"),
                "{kind}: no gate.deny by {}: {after:?}",
                s.agent
            );
            if let Some(effect) = s.effect {
                assert!(
                    !after.iter().any(|(kd, _)| kd == effect),
                    "{kind}: {effect} recorded although denied"
                );
            }
        } else {
            assert!(r.is_ok(), "{kind}: refused while permitted: {r:?}");
            assert!(
                decided("gate.permit"),
                "{kind}: no gate.permit by {}: {after:?}",
                s.agent
            );
            if let Some(effect) = s.effect {
                let found = after.iter().any(|(kd, _)| kd == effect);
                if !found && kind == "agent.restart" {
                    // The restart is recorded by the agent's own task.
                    wait_for(k, from, effect).await;
                } else {
                    assert!(found, "{kind}: no {effect} on the chain: {after:?}");
                }
            }
        }
    }
    env.rec.set_deny(false);
}

async fn wait_for(k: &Kernel, from: u64, kind: &str) {
    for _ in 0..200 {
        if kinds_after(k, from).iter().any(|(kd, _)| kd == kind) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no {kind} on the chain");
}

fn action_matches(kind: &str, action: &str) -> bool {
    match kind.strip_suffix(".**").or_else(|| kind.strip_suffix(".*")) {
        Some(prefix) => action.starts_with(&format!("{prefix}.")),
        None => action == kind,
    }
}

fn scenario(kind: &str) -> Scenario {
    let s = |agent, effect| Scenario { agent, effect };
    if let Some((agent, effect)) = net::scenario(kind) {
        return s(agent, effect);
    }
    match kind {
        "agent.spawn" => s("operator", Some("agent.spawn")),
        "agent.stop" => s("operator", Some("agent.stop")),
        "agent.restart" => s("operator", Some("agent.restart")),
        "ipc.send" | "ipc.publish" | "ipc.broadcast" => s("operator", Some("ipc.send")),
        "ipc.subscribe" => s("p", Some("ipc.subscribe")),
        "ipc.unsubscribe" => s("p", Some("ipc.unsubscribe")),
        "kernel.self" | "kernel.now" | "kernel.random" | "kernel.log" => s("p", None),
        "service.register" => s("operator", Some("service.register")),
        "service.unregister" => s("operator", Some("service.unregister")),
        "tool.exec.*" => s("operator", Some("tool.exec")),
        "tool.register" => s("operator", Some("tool.register")),
        "tool.unregister" => s("operator", Some("tool.unregister")),
        "chain.append" => s("p", Some("agent.note")),
        "kernel.stop" => s("operator", Some("kernel.stop")),
        "governance.reload" | "governance.swap" => s("operator", Some("governance.swap")),
        "cron.add" => s("operator", Some("cron.add")),
        "cron.remove" => s("operator", Some("cron.remove")),
        "app.install" => s("operator", Some("app.install")),
        "app.upgrade" => s("operator", Some("app.upgrade")),
        "app.start" => s("operator", Some("app.start")),
        "app.stop" => s("operator", Some("app.stop")),
        "app.remove" => s("operator", Some("app.remove")),
        // Only the kernel resumes; an operator's attempt is refused in-process.
        "app.resume" => s("operator", Some("app.start")),
        "trust.add" => s("operator", Some("trust.add")),
        "trust.remove" => s("operator", Some("trust.remove")),
        "hook.run" => s("app:hello", Some("hook.run")),
        "gov.approve" => s("operator", Some("escalation.approve")),
        "gov.deny" => s("operator", Some("escalation.deny")),
        "env.set-policy" => s("operator", Some("env.policy")),
        // Queries: the decision is the only record.
        _ => s("operator", None),
    }
}

const KEY: &str = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";

/// What an action needs in place first (done while permitted).
async fn setup(env: &Env, kind: &str) {
    let k = &env.k;
    env.rec.set_deny(false);
    net::setup(k, kind).await;
    match kind {
        "ipc.unsubscribe" => {
            probe(k, "p", json!({ "op": "subscribe", "topic": "t" })).await;
        }
        "service.unregister" => {
            k.act(
                &OP,
                RegisterService {
                    name: "gone".into(),
                    endpoint: weft_kernel::ipc::service::ServiceEndpoint::External {
                        url: "http://127.0.0.1:9".into(),
                    },
                    audit_level: Default::default(),
                    native: None,
                },
            )
            .await
            .unwrap();
        }
        "tool.unregister" => {
            let c = k.load_component(&weft_testkit::guest("calc")).unwrap();
            k.act(&OP, RegisterTool(ToolEntry::new("gone", c)))
                .await
                .unwrap();
        }
        "cron.remove" => {
            control(
                k,
                "cron",
                json!({ "op": "add", "schedule": "every 1h", "target": "p" }),
            )
            .await
            .unwrap();
        }
        "app.install" => {
            bundle(env, "1.0.0").await;
        }
        "app.upgrade" | "app.start" | "app.stop" | "app.remove" | "app.resume" | "hook.run" => {
            if weft_apps_manager(k).get("hello").is_none() {
                let b = bundle(env, "1.0.0").await;
                let p = weft_apps_manager(k).prepare(&b).await.unwrap();
                k.act(&OP, Install::new(p, None)).await.unwrap();
            }
            let running =
                weft_apps_manager(k).get("hello").unwrap().state == weft_apps::AppState::Running;
            match kind {
                "app.stop" if !running => {
                    k.act(&OP, Lifecycle::new(Op::Start, "hello"))
                        .await
                        .unwrap();
                }
                "app.start" | "app.resume" if running => {
                    k.act(&OP, Lifecycle::new(Op::Stop, "hello")).await.unwrap();
                }
                "app.upgrade" => {
                    bundle(env, "2.0.0").await;
                }
                _ => {}
            }
        }
        "gov.approve" | "gov.deny" => {
            open_escalation(env).await;
        }
        "trust.remove" => {
            control(
                k,
                "apps",
                json!({ "op": "trust-add", "name": "gone", "key": KEY }),
            )
            .await
            .unwrap();
        }
        _ => {}
    }
}

fn weft_apps_manager(k: &Kernel) -> Arc<weft_apps::AppManager> {
    k.subsystem::<AppsUnit>()
        .and_then(AppsUnit::manager)
        .unwrap()
}

/// Ask for the action of `kind` once.
async fn run(env: &Env, kind: &str) -> Result<(), String> {
    let k = &env.k;
    let err = |e: KernelError| e.to_string();
    // A probe op's `{"err": ..}` is a refusal.
    let op = |v: Value| match v.get("err") {
        Some(e) => Err(e.to_string()),
        None => Ok(()),
    };
    // Syscalls that cannot fail report a refusal as an empty answer.
    let empty = |v: Value| {
        let ok = &v["ok"];
        if ok.is_null() || *ok == json!(0) || *ok == json!("") || *ok == json!([]) || ok["pid"] == 0
        {
            Err(format!("refused: {v}"))
        } else {
            Ok(())
        }
    };
    match kind {
        "agent.spawn" => {
            let mut req = SpawnRequest::new(
                format!("s{}", k.chain().len()),
                k.load_component(&weft_testkit::guest("probe")).unwrap(),
            );
            req.config = json!({ "mode": "echo" });
            k.act(&OP, Spawn::new(req)).await.map(|_| ()).map_err(err)
        }
        "agent.stop" => {
            let pid = permitted(env, spawn(k, &format!("victim{}", k.chain().len()))).await;
            k.act(&OP, Stop::new(pid)).await.map_err(err)
        }
        "agent.restart" => {
            let pid = k.pid_of("p").unwrap();
            k.act(&OP, Restart::new(pid)).await.map_err(err)
        }
        "ipc.send" => send(k, MessageTarget::Named("p".into())).await,
        "ipc.publish" => send(k, MessageTarget::Topic("news".into())).await,
        "ipc.broadcast" => send(k, MessageTarget::Broadcast).await,
        "ipc.subscribe" => op(probe(k, "p", json!({ "op": "subscribe", "topic": "s" })).await),
        "ipc.unsubscribe" => op(probe(k, "p", json!({ "op": "unsubscribe", "topic": "t" })).await),
        "kernel.self" => empty(probe(k, "p", json!({ "op": "whoami" })).await),
        "kernel.now" => empty(probe(k, "p", json!({ "op": "now" })).await),
        "kernel.random" => empty(probe(k, "p", json!({ "op": "random", "len": 8 })).await),
        "kernel.log" => {
            // `log` returns nothing either way: the decision is the answer.
            let from = k.chain().len();
            probe(k, "p", json!({ "op": "log", "msg": "hi" })).await;
            let denied = kinds_after(k, from)
                .iter()
                .any(|(kd, p)| kd == "gate.deny" && p["action"] == "kernel.log");
            if denied {
                Err("refused".into())
            } else {
                Ok(())
            }
        }
        "service.register" => k
            .act(
                &OP,
                RegisterService {
                    name: format!("svc{}", k.chain().len()),
                    endpoint: weft_kernel::ipc::service::ServiceEndpoint::External {
                        url: "http://127.0.0.1:9".into(),
                    },
                    audit_level: Default::default(),
                    native: None,
                },
            )
            .await
            .map(|_| ())
            .map_err(err),
        "service.unregister" => k
            .act(
                &OP,
                UnregisterService {
                    name: "gone".into(),
                },
            )
            .await
            .map_err(err),
        "tool.exec.*" => k
            .act(&OP, InvokeTool::new("calc-op", r#"{"expr":"1"}"#))
            .await
            .map(|_| ())
            .map_err(err),
        "tool.register" => {
            let c = k.load_component(&weft_testkit::guest("calc")).unwrap();
            k.act(&OP, RegisterTool(ToolEntry::new("calc2", c)))
                .await
                .map(|_| ())
                .map_err(err)
        }
        "tool.unregister" => k
            .act(
                &OP,
                UnregisterTool {
                    name: "gone".into(),
                },
            )
            .await
            .map_err(err),
        "tool.list" => control(k, "tools", json!({ "op": "ls" })).await.map(|_| ()),
        "chain.append" => {
            op(probe(k, "p", json!({ "op": "chain", "kind": "note", "body": {} })).await)
        }
        "chain.read" => control(k, "chain", json!({ "op": "tail", "n": 1 }))
            .await
            .map(|_| ()),
        "agent.list" => control(k, "agents", json!({ "op": "ps" }))
            .await
            .map(|_| ()),
        "kernel.status" => control(k, "kernel", json!({ "op": "status" }))
            .await
            .map(|_| ()),
        "kernel.logs" => control(k, "kernel", json!({ "op": "logs" }))
            .await
            .map(|_| ()),
        "kernel.stop" => control(k, "kernel", json!({ "op": "stop" }))
            .await
            .map(|_| ()),
        "tree.read" => control(k, "kernel", json!({ "op": "tree" }))
            .await
            .map(|_| ()),
        "governance.rules" => control(k, "governance", json!({ "op": "rules" }))
            .await
            .map(|_| ()),
        "gov.pending" => control(k, "governance", json!({ "op": "pending" }))
            .await
            .map(|_| ()),
        "gov.approve" | "gov.deny" => {
            let id = k.escalations().first().map_or(0, |e| e.id);
            let op = kind.strip_prefix("gov.").unwrap_or_default();
            control(
                k,
                "governance",
                json!({ "op": op, "id": id, "reason": "walked" }),
            )
            .await
            .map(|_| ())
        }
        "env.list" => control(k, "governance", json!({ "op": "env-ls" }))
            .await
            .map(|_| ()),
        "env.set-policy" => {
            let policy = std::fs::read_to_string(
                weft_testkit::repo_root()
                    .join("components/subsystems/governance/default-policy.toml"),
            )
            .unwrap();
            control(
                k,
                "governance",
                json!({ "op": "env-set-policy", "name": "staging", "policy": policy }),
            )
            .await
            .map(|_| ())
        }
        "governance.check" => control(
            k,
            "governance",
            json!({ "op": "check", "agent": "operator", "action": "ipc.send" }),
        )
        .await
        .map(|_| ()),
        "governance.reload" => {
            let policy = std::fs::read_to_string(
                weft_testkit::repo_root()
                    .join("components/subsystems/governance/default-policy.toml"),
            )
            .unwrap();
            control(k, "governance", json!({ "op": "reload", "policy": policy }))
                .await
                .map(|_| ())
        }
        "governance.swap" => control(
            k,
            "governance",
            json!({ "op": "swap", "component": weft_testkit::guest("governance") }),
        )
        .await
        .map(|_| ()),
        "cron.add" => control(
            k,
            "cron",
            json!({ "op": "add", "schedule": "every 1h", "target": "p" }),
        )
        .await
        .map(|_| ()),
        "cron.remove" => {
            let jobs = permitted(env, control(k, "cron", json!({ "op": "ls" }))).await?;
            let id = jobs[0]["id"].as_str().unwrap_or("none").to_string();
            control(k, "cron", json!({ "op": "rm", "id": id }))
                .await
                .map(|_| ())
        }
        "cron.list" => control(k, "cron", json!({ "op": "ls" })).await.map(|_| ()),
        "health.status" => control(k, "health", json!({ "op": "status" }))
            .await
            .map(|_| ()),
        "ui.url" => control(k, "ui", json!({ "op": "url" })).await.map(|_| ()),
        "app.install" => {
            let b = env.bundles.join("hello-1.0.0.weftapp");
            control(k, "apps", json!({ "op": "install", "bundle": b }))
                .await
                .map(|_| ())
        }
        "app.upgrade" => {
            let b = env.bundles.join("hello-2.0.0.weftapp");
            control(
                k,
                "apps",
                json!({ "op": "upgrade", "name": "hello", "bundle": b }),
            )
            .await
            .map(|_| ())
        }
        "app.start" => control(k, "apps", json!({ "op": "start", "name": "hello" }))
            .await
            .map(|_| ()),
        "app.stop" => control(k, "apps", json!({ "op": "stop", "name": "hello" }))
            .await
            .map(|_| ()),
        "app.remove" => control(k, "apps", json!({ "op": "rm", "name": "hello" }))
            .await
            .map(|_| ()),
        "app.list" => control(k, "apps", json!({ "op": "ls" })).await.map(|_| ()),
        "app.resume" => {
            // Denied: the operator may not resume. Permitted: the kernel does.
            if kind_is_denied(env) {
                k.act(&OP, Lifecycle::new(Op::Resume, "hello"))
                    .await
                    .map(|_| ())
                    .map_err(err)
            } else {
                // The refusal above was in-process; as the kernel it passes.
                k.act(&Principal::Kernel, Lifecycle::new(Op::Resume, "hello"))
                    .await
                    .map(|_| ())
                    .map_err(err)?;
                // The decision the check looks for is the operator's: make one.
                Ok(())
            }
        }
        "trust.add" => control(
            k,
            "apps",
            json!({ "op": "trust-add", "name": format!("k{}", k.chain().len()), "key": KEY }),
        )
        .await
        .map(|_| ()),
        "trust.remove" => control(k, "apps", json!({ "op": "trust-rm", "name": "gone" }))
            .await
            .map(|_| ()),
        "trust.list" => control(k, "apps", json!({ "op": "trust-ls" }))
            .await
            .map(|_| ()),
        "hook.run" => {
            let c = k.load_component(&weft_testkit::guest("wc")).unwrap();
            let app = Principal::app("hello", None);
            let hook = RunHook {
                app: "hello".into(),
                hook: "on-start".into(),
                event: "start".into(),
                path: "components/wc.wasm".into(),
                component: c,
            };
            k.act(&app, hook).await.map_err(err)
        }
        other => match net::run(k, other).await {
            Some(r) => r,
            None => panic!("no scenario for action kind `{other}`: add one"),
        },
    }
}

/// A send by agent `p` that governance escalates: its id, pending. Each
/// goes to a fresh agent, so it is a new request, not a retry of one.
async fn open_escalation(env: &Env) -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    let to = format!("esc-{}", N.fetch_add(1, Ordering::SeqCst));
    spawn(&env.k, &to).await;
    env.rec.escalate_sends.store(true, Ordering::SeqCst);
    env.rec.epoch.fetch_add(1, Ordering::SeqCst);
    let r = probe(&env.k, "p", json!({ "op": "send", "to": to, "body": "hi" })).await;
    env.rec.escalate_sends.store(false, Ordering::SeqCst);
    env.rec.epoch.fetch_add(1, Ordering::SeqCst);
    assert!(r.to_string().contains("pending"), "{r}");
    env.k.escalations()[0].id
}

/// Run `f` with the gate permitting (setup inside a scenario), then
/// restore the answer the scenario is testing.
async fn permitted<T>(env: &Env, f: impl std::future::Future<Output = T>) -> T {
    let was = kind_is_denied(env);
    env.rec.set_deny(false);
    let out = f.await;
    env.rec.set_deny(was);
    out
}

fn kind_is_denied(env: &Env) -> bool {
    env.rec.deny.load(Ordering::SeqCst)
}

async fn send(k: &Kernel, to: MessageTarget) -> Result<(), String> {
    k.act(&OP, SendMessage::new(to, Payload::Text("hi".into())))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_kind_is_refused_when_denied_and_recorded_when_done() {
    let env = boot().await;
    let k = &env.k;
    spawn(k, "p").await;
    let calc = k.load_component(&weft_testkit::guest("calc")).unwrap();
    k.act(&OP, RegisterTool(ToolEntry::new("calc-op", calc)))
        .await
        .unwrap();
    let kinds: BTreeSet<&str> = k.action_kinds().into_iter().map(|(_, a)| a).collect();
    assert!(kinds.len() > 40, "{kinds:?}");
    // Resume needs the kernel, whose bookkeeping governance does not judge:
    // its denied half is the operator's in-process refusal.
    for kind in &kinds {
        if *kind == "app.resume" || *kind == "app.sync" {
            continue;
        }
        check_kind(&env, kind).await;
    }
    // app.sync (boot's): only the kernel; the operator is refused, recorded.
    let from = k.chain().len();
    let sync = weft_apps::actions::sync(weft_apps_manager(k));
    let e = k.act(&OP, sync).await.unwrap_err();
    assert!(matches!(e, KernelError::Denied(_)), "{e}");
    assert!(kinds_after(k, from)
        .iter()
        .any(|(kd, p)| kd == "gate.deny" && p["action"] == "app.sync"));
    // app.resume: the operator is refused (recorded), the kernel resumes.
    setup(&env, "app.resume").await;
    let from = k.chain().len();
    let e = k
        .act(&OP, Lifecycle::new(Op::Resume, "hello"))
        .await
        .unwrap_err();
    assert!(matches!(e, KernelError::Denied(_)), "{e}");
    assert!(kinds_after(k, from)
        .iter()
        .any(|(kd, p)| kd == "gate.deny" && p["action"] == "app.resume"));
    k.act(&Principal::Kernel, Lifecycle::new(Op::Resume, "hello"))
        .await
        .unwrap();
    let after = kinds_after(k, from);
    assert!(after.iter().any(|(kd, p)| kd == "gate.permit"
        && p["action"] == "app.resume"
        && p["agent"] == "kernel"));
    assert!(after.iter().any(|(kd, _)| kd == "app.start"));
    // Every decision governance saw was for a declared kind.
    for (agent, action) in env.rec.seen() {
        assert!(
            kinds.iter().any(|k| action_matches(k, &action)),
            "`{agent}` asked for `{action}`, which no unit declares"
        );
    }
    assert!(k.chain().verify_integrity().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_control_command_and_syscall_reaches_the_gate() {
    let env = boot().await;
    let k = &env.k;
    spawn(k, "p").await;
    spawn(k, "q").await;
    let calc = k.load_component(&weft_testkit::guest("calc")).unwrap();
    k.act(&OP, RegisterTool(ToolEntry::new("calc-op", calc)))
        .await
        .unwrap();
    let b = bundle(&env, "1.0.0").await;
    let b2 = bundle(&env, "2.0.0").await;
    let policy = std::fs::read_to_string(
        weft_testkit::repo_root().join("components/subsystems/governance/default-policy.toml"),
    )
    .unwrap();
    // Every op of every unit, in an order where each makes sense.
    let requests: Vec<(&str, Value)> = vec![
        ("kernel", json!({ "op": "status" })),
        ("kernel", json!({ "op": "logs" })),
        ("kernel", json!({ "op": "tree" })),
        ("agents", json!({ "op": "ps" })),
        (
            "agents",
            json!({ "op": "spawn", "name": "walked", "component": weft_testkit::guest("probe"),
                    "config": { "mode": "echo" } }),
        ),
        ("agents", json!({ "op": "inspect", "name": "walked" })),
        ("agents", json!({ "op": "restart", "name": "walked" })),
        ("agents", json!({ "op": "stop", "name": "walked" })),
        ("ipc", json!({ "op": "send", "name": "p", "text": "hi" })),
        ("tools", json!({ "op": "ls" })),
        (
            "tools",
            json!({ "op": "run", "name": "calc-op", "input": "{\"expr\":\"1\"}" }),
        ),
        ("chain", json!({ "op": "tail", "n": 1 })),
        ("chain", json!({ "op": "verify" })),
        ("chain", json!({ "op": "head" })),
        ("chain", json!({ "op": "prove", "seq": 1 })),
        ("chain", json!({ "op": "consistency", "old": 1, "new": 2 })),
        ("governance", json!({ "op": "rules" })),
        (
            "governance",
            json!({ "op": "check", "agent": "operator", "action": "x" }),
        ),
        ("governance", json!({ "op": "reload", "policy": policy })),
        ("governance", json!({ "op": "pending" })),
        (
            "governance",
            json!({ "op": "approve", "id": open_escalation(&env).await, "reason": "ok" }),
        ),
        (
            "governance",
            json!({ "op": "deny", "id": open_escalation(&env).await, "reason": "no" }),
        ),
        (
            "governance",
            json!({ "op": "swap", "component": weft_testkit::guest("governance") }),
        ),
        ("governance", json!({ "op": "env-ls" })),
        ("governance", json!({ "op": "env-show", "name": "dev" })),
        (
            "governance",
            json!({ "op": "env-set-policy", "name": "dev", "policy": policy }),
        ),
        (
            "cron",
            json!({ "op": "add", "schedule": "every 1h", "target": "p" }),
        ),
        ("cron", json!({ "op": "ls" })),
        ("cron", json!({ "op": "rm", "id": "job-1" })),
        ("health", json!({ "op": "status" })),
        ("ui", json!({ "op": "url" })),
        (
            "apps",
            json!({ "op": "trust-add", "name": "alice", "key": KEY }),
        ),
        ("apps", json!({ "op": "trust-ls" })),
        ("apps", json!({ "op": "trust-rm", "name": "alice" })),
        ("apps", json!({ "op": "install", "bundle": b })),
        ("apps", json!({ "op": "ls" })),
        ("apps", json!({ "op": "start", "name": "hello" })),
        (
            "apps",
            json!({ "op": "upgrade", "name": "hello", "bundle": b2 }),
        ),
        ("apps", json!({ "op": "stop", "name": "hello" })),
        ("apps", json!({ "op": "rm", "name": "hello" })),
    ];
    let mut requests = requests;
    requests.extend(net::control_requests());
    requests.push(("kernel", json!({ "op": "stop" })));
    let mut covered: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (unit, req) in &requests {
        env.rec.clear();
        let r = control(k, unit, req.clone()).await;
        assert!(r.is_ok(), "{unit} {req}: {r:?}");
        let seen = env.rec.seen();
        assert!(
            seen.iter().any(|(a, _)| a == "operator"),
            "{unit} {req} never reached the gate: {seen:?}"
        );
        covered
            .entry(unit)
            .or_default()
            .insert(req["op"].as_str().unwrap().to_string());
    }
    for name in k.unit_names() {
        let u = k.unit(name).unwrap();
        for op in u.control_ops() {
            assert!(
                covered.get(name).is_some_and(|c| c.contains(*op)),
                "control op `{name}` `{op}` is not walked"
            );
        }
    }
    // Every syscall of the agent world, each through the probe.
    let syscalls: Vec<(&str, Value, &str)> = vec![
        (
            "self-pid, self-name",
            json!({ "op": "whoami" }),
            "kernel.self",
        ),
        (
            "send",
            json!({ "op": "send", "to": "p", "body": "x" }),
            "ipc.send",
        ),
        (
            "request",
            json!({ "op": "request", "to": "q", "body": "x" }),
            "ipc.send",
        ),
        (
            "subscribe",
            json!({ "op": "subscribe", "topic": "t" }),
            "ipc.subscribe",
        ),
        (
            "unsubscribe",
            json!({ "op": "unsubscribe", "topic": "t" }),
            "ipc.unsubscribe",
        ),
        (
            "invoke-tool",
            json!({ "op": "tool", "name": "calc-op", "input": { "expr": "1" } }),
            "tool.exec.calc-op",
        ),
        ("log", json!({ "op": "log", "msg": "hi" }), "kernel.log"),
        ("now", json!({ "op": "now" }), "kernel.now"),
        (
            "random",
            json!({ "op": "random", "len": 4 }),
            "kernel.random",
        ),
        (
            "chain-append",
            json!({ "op": "chain", "kind": "n", "body": {} }),
            "chain.append",
        ),
    ];
    for (name, op, action) in syscalls {
        env.rec.clear();
        probe(k, "p", op).await;
        let seen = env.rec.seen();
        assert!(
            seen.iter().any(|(a, x)| a == "p" && x == action),
            "syscall {name} did not reach the gate as {action}: {seen:?}"
        );
    }
}
