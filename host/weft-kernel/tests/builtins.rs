//! Tools, built-in commands, chain appends and native services, as agents
//! and the host see them.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::json;
use weft_kernel::ipc::service::{AuditLevel, ServiceEndpoint, SystemService};
use weft_kernel::ipc::{RegisterService, UnregisterService};
use weft_kernel::tools::{RegisterTool, ToolEntry};
use weft_kernel::{Capabilities, IpcScope, MessageTarget, Payload, Principal, ToolPermissions};

async fn register_calc(k: &weft_kernel::Kernel) {
    let calc = k.load_component(&weft_testkit::guest("calc")).unwrap();
    let mut entry = ToolEntry::new("calc", calc);
    entry.description = "calculator".into();
    k.act(&Principal::Operator, RegisterTool(entry))
        .await
        .unwrap();
}

fn calc_user() -> Capabilities {
    Capabilities {
        ipc: IpcScope::All,
        tools: ToolPermissions {
            allow: vec!["calc".into()],
            deny: vec![],
        },
        ..Capabilities::default()
    }
}

#[tokio::test]
async fn agents_invoke_tools_through_capabilities_gate_and_chain() {
    let t = boot().await;
    let k = &t.kernel;
    register_calc(k).await;
    spawn(k, "user", json!({}), calc_user()).await;
    spawn(k, "stranger", json!({}), all_ipc()).await;
    let r = op(
        k,
        "user",
        json!({"op": "tool", "name": "calc", "input": {"expr": "6*7"}}),
    )
    .await;
    assert_eq!(r["ok"]["value"], 42.0, "{r}");
    let r = op(
        k,
        "stranger",
        json!({"op": "tool", "name": "calc", "input": {"expr": "1"}}),
    )
    .await;
    assert!(r["err"].as_str().unwrap().contains("Denied"), "{r}");
    let r = op(
        k,
        "user",
        json!({"op": "tool", "name": "nope", "input": {}}),
    )
    .await;
    assert!(
        r["err"].as_str().unwrap().contains("Denied"),
        "not in the allow list: {r}"
    );
    // A tool error comes back as an error, recorded with its outcome.
    let r = op(
        k,
        "user",
        json!({"op": "tool", "name": "calc", "input": {"expr": "1/0"}}),
    )
    .await;
    assert!(
        r["err"].as_str().unwrap().contains("division by zero"),
        "{r}"
    );

    let execs: Vec<_> = chain_kinds(k)
        .into_iter()
        .filter(|(kind, _)| kind == "tool.exec")
        .collect();
    assert_eq!(execs.len(), 2);
    assert_eq!(execs[0].1["outcome"], "ok");
    assert!(execs[0].1["fuel_used"].as_u64().unwrap() > 0);
    assert!(execs[1].1["outcome"]
        .as_str()
        .unwrap()
        .starts_with("tool error"));
    assert_eq!(
        k.inspect(k.pid_of("user").unwrap())
            .unwrap()
            .usage
            .tool_calls,
        2
    );
    assert!(chain_kinds(k)
        .iter()
        .any(|(kind, p)| kind == "gate.permit" && p["action"] == "tool.exec.calc"));
}

#[tokio::test]
async fn exec_builtin_runs_with_the_receiving_agents_capabilities() {
    let t = boot().await;
    let k = &t.kernel;
    register_calc(k).await;
    spawn(k, "worker", json!({}), calc_user()).await;
    spawn(k, "idle", json!({}), all_ipc()).await;
    let cmd = json!({"cmd": "exec", "tool": "calc", "input": {"expr": "2^10"}});
    let r = k
        .request(
            MessageTarget::Named("worker".into()),
            Payload::Json(cmd.clone()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(r, Payload::Json(json!({"value": 1024.0})));
    let e = k
        .request(
            MessageTarget::Named("idle".into()),
            Payload::Json(cmd),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("may not use tool"), "{e}");
    // The guest never saw either command.
    assert_eq!(op(k, "worker", json!({"op": "count"})).await["ok"], 1);
}

#[tokio::test]
async fn exec_for_a_sender_needs_the_senders_authority_too() {
    // The confused deputy: `mallory` may not use calc, `worker` may. Asking
    // `worker` to run calc must not lend mallory worker's rights.
    let t = boot().await;
    let k = &t.kernel;
    register_calc(k).await;
    spawn(k, "worker", json!({}), calc_user()).await;
    spawn(k, "mallory", json!({}), all_ipc()).await;
    let cmd = json!({"cmd": "exec", "tool": "calc", "input": {"expr": "6*7"}});
    let r = op(
        k,
        "mallory",
        json!({"op": "request", "to": "worker", "body": cmd, "timeout_ms": 5000}),
    )
    .await;
    let err = r["err"].as_str().unwrap_or_default();
    assert!(err.contains("`mallory` may not use tool `calc`"), "{r}");
    // The refusal is on the chain, naming mallory and the tool.
    assert!(
        chain_kinds(k).iter().any(|(kind, p)| kind == "gate.deny"
            && p["agent"] == "mallory"
            && p["action"] == "tool.exec.calc"),
        "no recorded refusal"
    );
    assert!(!chain_kinds(k).iter().any(|(kind, _)| kind == "tool.exec"));
    // A sender that may use calc gets it through worker, recorded as via worker.
    spawn(k, "friend", json!({}), calc_user()).await;
    let r = op(
        k,
        "friend",
        json!({"op": "request", "to": "worker", "body": cmd, "timeout_ms": 5000}),
    )
    .await;
    assert_eq!(r["ok"]["value"], 42.0, "{r}");
    let exec = chain_kinds(k)
        .into_iter()
        .find(|(kind, _)| kind == "tool.exec")
        .expect("tool.exec");
    assert_eq!(exec.1["via"], "worker");
}

#[tokio::test]
async fn chain_append_syscall_records_the_agents_own_kind() {
    let t = boot().await;
    let k = &t.kernel;
    spawn(
        k,
        "scribe",
        json!({}),
        Capabilities {
            chain_append: true,
            ..all_ipc()
        },
    )
    .await;
    let r = op(
        k,
        "scribe",
        json!({"op": "chain", "kind": "note", "body": {"n": 1}}),
    )
    .await;
    let seq = r["ok"].as_u64().expect("a seq");
    let ev = k.chain().get(seq).unwrap();
    assert_eq!(
        (ev.kind.as_str(), ev.source.as_str()),
        ("agent.note", "scribe")
    );
    assert_eq!(ev.payload_json().unwrap()["body"], json!({"n": 1}));
    let r = op(
        k,
        "scribe",
        json!({"op": "chain", "kind": "bad kind!", "body": {}}),
    )
    .await;
    assert!(r["err"].as_str().unwrap().contains("Invalid"), "{r}");
    assert!(k.chain().verify_integrity().ok);
}

struct Flaky(Mutex<bool>);
impl SystemService for Flaky {
    fn health_check(&self) -> Result<(), String> {
        if *self.0.lock().unwrap() {
            Ok(())
        } else {
            Err("disk full".into())
        }
    }
}

#[tokio::test]
async fn native_services_report_health() {
    let t = boot().await;
    let k = &t.kernel;
    let svc = Arc::new(Flaky(Mutex::new(true)));
    k.act(
        &Principal::Operator,
        RegisterService {
            name: "store".into(),
            endpoint: ServiceEndpoint::External {
                url: "http://127.0.0.1:1".into(),
            },
            audit_level: AuditLevel::GateOnly,
            native: Some(svc.clone()),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        k.health_check_services(),
        vec![("store".to_string(), Ok(()))]
    );
    *svc.0.lock().unwrap() = false;
    assert_eq!(
        k.health_check_services(),
        vec![("store".to_string(), Err("disk full".to_string()))]
    );
    assert!(k
        .act(
            &Principal::Operator,
            RegisterService {
                name: "store".into(),
                endpoint: ServiceEndpoint::Container { id: "x".into() },
                audit_level: AuditLevel::Full,
                native: None,
            },
        )
        .await
        .is_err());
    k.act(
        &Principal::Operator,
        UnregisterService {
            name: "store".into(),
        },
    )
    .await
    .unwrap();
    assert!(k.services().is_empty());
}
