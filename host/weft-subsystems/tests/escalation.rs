//! The escalation queue with the real governance component: a rule whose
//! verdict is `escalate` makes an agent's action wait for a person.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use weft_kernel::escalation::{Decide, EscalationState};
use weft_kernel::{Kernel, Principal};

const DEFAULT: &str = include_str!("../../../components/subsystems/governance/default-policy.toml");

/// Boots on `dir` with a policy that sends every `ipc.publish` to a person.
async fn boot(dir: &Path, escalation: &str) -> Kernel {
    let policy = format!(
        "{DEFAULT}\n[[rules]]\nid = \"ask-first\"\ndescription = \"publishing needs a person\"\n\
         branch = \"executive\"\nseverity = \"blocking\"\nactions = [\"ipc.publish\"]\n\
         verdict = \"escalate\"\n"
    );
    std::fs::write(dir.join("policy.toml"), policy).unwrap();
    common::boot_on_with(
        dir,
        &format!("[governance]\npolicy = \"policy.toml\"\n[escalation]\n{escalation}\n"),
    )
    .await
}

async fn publish(k: &Kernel) -> Value {
    common::op(
        k,
        "talker",
        json!({ "op": "send", "to": "topic:news", "body": "hi" }),
    )
    .await
}

fn err(v: &Value) -> String {
    v.get("err")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

async fn pending_one(k: &Kernel) -> u64 {
    common::eventually("an escalation", Duration::from_secs(5), || {
        k.escalations()
            .iter()
            .any(|e| e.state == EscalationState::Pending)
    })
    .await;
    let e = k
        .escalations()
        .into_iter()
        .find(|e| e.state == EscalationState::Pending)
        .unwrap();
    assert_eq!(
        (e.principal.as_str(), e.action.as_str()),
        ("talker", "ipc.publish")
    );
    assert!(
        e.reason.contains("ask-first") || e.reason.contains("ipc.publish"),
        "{}",
        e.reason
    );
    e.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_waits_for_a_person_who_approves_or_denies() {
    let dir = tempfile::tempdir().unwrap();
    let k = boot(dir.path(), "wait_ms = 4000").await;
    common::spawn_probe(&k, "talker").await;

    // Approved while the agent waits: its publish goes through.
    let k2 = k.clone();
    let waiting = tokio::spawn(async move { publish(&k2).await });
    let id = pending_one(&k).await;
    // The agent cannot decide its own escalation.
    let me = k.principal_of("talker").unwrap();
    let e = k.act(&me, Decide::approve(id, "mine")).await.unwrap_err();
    assert!(e.to_string().contains("its own"), "{e}");
    // A decision needs a reason.
    assert!(k
        .act(&Principal::Operator, Decide::approve(id, " "))
        .await
        .is_err());
    k.act(&Principal::Operator, Decide::approve(id, "looks fine"))
        .await
        .unwrap();
    let r = waiting.await.unwrap();
    assert!(r.get("ok").is_some(), "{r}");
    // Decided once only.
    let again = k.act(&Principal::Operator, Decide::deny(id, "late")).await;
    assert!(again.unwrap_err().to_string().contains("not pending"));

    // The next publish is a new escalation; denied, the agent is told who
    // and why.
    let k2 = k.clone();
    let waiting = tokio::spawn(async move { publish(&k2).await });
    let id2 = pending_one(&k).await;
    assert_ne!(id, id2);
    k.act(&Principal::Operator, Decide::deny(id2, "not today"))
        .await
        .unwrap();
    let r = waiting.await.unwrap();
    let why = err(&r);
    assert!(why.contains("denied by operator: not today"), "{r}");

    // All of it is on the chain, with the decider and the reason.
    assert_eq!(common::events(&k, "escalation.open").len(), 2);
    let approved = common::events(&k, "escalation.approve");
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0]["id"], json!(id));
    assert_eq!(approved[0]["by"], "operator");
    assert_eq!(approved[0]["reason"], "looks fine");
    assert_eq!(common::events(&k, "escalation.deny").len(), 1);
    assert_eq!(common::events(&k, "escalation.use").len(), 1);
    assert_eq!(common::events(&k, "gate.defer").len(), 2);
    k.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_escalation_survives_a_restart_and_an_approval_is_used_once() {
    let dir = tempfile::tempdir().unwrap();
    let k = boot(dir.path(), "wait_ms = 50").await;
    common::spawn_probe(&k, "talker").await;
    // Nobody decides in time: the agent is told it is pending, and asking
    // again joins the same escalation.
    let r = publish(&k).await;
    assert!(err(&r).contains("pending: escalation #"), "{r}");
    let id = pending_one(&k).await;
    let r = publish(&k).await;
    assert!(err(&r).contains(&format!("#{id}")), "{r}");
    assert_eq!(common::events(&k, "escalation.open").len(), 1);
    k.shutdown().await.unwrap();

    // After a restart the queue is still there; approved, the agent's next
    // identical request goes through — once.
    let k = boot(dir.path(), "wait_ms = 50").await;
    let e = k.escalations();
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].id, e[0].state), (id, EscalationState::Pending));
    common::spawn_probe(&k, "talker").await;
    k.act(
        &Principal::Operator,
        Decide::approve(id, "after the restart"),
    )
    .await
    .unwrap();
    let r = publish(&k).await;
    assert!(r.get("ok").is_some(), "{r}");
    let r = publish(&k).await;
    assert!(err(&r).contains("pending"), "{r}");
    let states: Vec<_> = k.escalations().iter().map(|e| e.state).collect();
    assert_eq!(
        states,
        [EscalationState::Pending, EscalationState::Used],
        "newest first"
    );
    k.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecided_escalation_expires_and_ttl_zero_turns_the_queue_off() {
    let dir = tempfile::tempdir().unwrap();
    let k = boot(dir.path(), "wait_ms = 5000\nttl_s = 1").await;
    common::spawn_probe(&k, "talker").await;
    let r = publish(&k).await;
    assert!(err(&r).contains("expired"), "{r}");
    assert_eq!(k.escalations()[0].state, EscalationState::Expired);
    k.shutdown().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let k = boot(dir.path(), "ttl_s = 0").await;
    common::spawn_probe(&k, "talker").await;
    let r = publish(&k).await;
    assert!(err(&r).contains("ipc.publish"), "{r}");
    assert!(k.escalations().is_empty());
    k.shutdown().await.unwrap();
}
