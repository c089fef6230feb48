//! An agent written in Python (componentize-py, `components/polyglot/
//! python-agent/app.py`, built into `components/dist/agent-py.wasm` by
//! `components/polyglot/build.sh py`) in a real kernel: config, syscalls,
//! capabilities, and a trap followed by a restart.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use weft_kernel::{
    Capabilities, IpcScope, Kernel, KernelError, MessageTarget, Payload, Pid, ProcessState,
    RestartPolicy, SpawnRequest,
};

const TIMEOUT: Duration = Duration::from_secs(10);

async fn spawn_py(
    k: &Kernel,
    name: &str,
    config: Value,
    caps: Capabilities,
    restart: RestartPolicy,
) -> Pid {
    let component = k
        .load_component(&weft_testkit::dist_guest("agent-py.wasm"))
        .expect("agent-py.wasm loads");
    let mut req = SpawnRequest::new(name, component);
    req.config = config;
    req.capabilities = caps;
    req.restart = restart;
    k.spawn(req)
        .await
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"))
}

async fn ask(k: &Kernel, name: &str, p: Payload) -> Result<Payload, KernelError> {
    k.request(MessageTarget::Named(name.into()), p, TIMEOUT)
        .await
}

async fn text(k: &Kernel, name: &str, t: &str) -> String {
    match ask(k, name, Payload::Text(t.into())).await {
        Ok(Payload::Text(s)) => s,
        other => panic!("expected text from {name}, got {other:?}"),
    }
}

async fn json_op(k: &Kernel, name: &str, op: Value) -> Value {
    match ask(k, name, Payload::Json(op)).await {
        Ok(Payload::Json(v)) => v,
        other => panic!("expected json from {name}, got {other:?}"),
    }
}

#[tokio::test]
async fn python_agent_greets_and_knows_itself() {
    let t = boot().await;
    let k = &t.kernel;
    let pid = spawn_py(
        k,
        "py",
        json!({"greeting": "hi"}),
        all_ipc(),
        RestartPolicy::Never,
    )
    .await;
    assert_eq!(text(k, "py", "world").await, "hi, world");
    assert_eq!(
        json_op(k, "py", json!({"op": "whoami"})).await,
        json!({"pid": pid, "name": "py", "lang": "python"})
    );

    // No greeting configured: the default.
    spawn_py(k, "py-default", json!({}), all_ipc(), RestartPolicy::Never).await;
    assert_eq!(text(k, "py-default", "there").await, "hello, there");

    // Anything else is handle's `err` arm: reported to the sender and
    // counted, the agent goes on.
    for bad in [json!({"op": "dance"}), json!([1, 2]), json!({"op": "send"})] {
        let r = ask(k, "py", Payload::Json(bad.clone())).await;
        assert!(r.is_err(), "{bad} -> {r:?}");
    }
    let r = ask(k, "py", Payload::Binary(vec![1, 2, 3])).await;
    assert!(r.is_err(), "{r:?}");
    let r = ask(k, "py", Payload::Json(json!({"op": "dance"}))).await;
    assert!(
        format!("{r:?}").contains("unknown op \\\"dance\\\""),
        "{r:?}"
    );
    assert_eq!(text(k, "py", "again").await, "hi, again");
    let info = k.inspect(pid).unwrap();
    assert_eq!(info.state, ProcessState::Running);
    assert_eq!(info.usage.handler_errors, 5);
    assert_eq!(info.usage.restarts, 0);
    eprintln!("python agent usage: {:?}", info.usage);

    // A bad config stops the agent before it gets anything.
    let component = k
        .load_component(&weft_testkit::dist_guest("agent-py.wasm"))
        .unwrap();
    let mut req = SpawnRequest::new("py-bad", component);
    req.config = json!({"greeting": 7});
    let r = k.spawn(req).await;
    assert!(
        format!("{}", r.as_ref().unwrap_err()).contains("greeting"),
        "{r:?}"
    );
    t.kernel.shutdown().await.unwrap();
}

#[tokio::test]
async fn python_agent_syscalls_obey_capabilities() {
    let t = boot().await;
    let k = &t.kernel;
    // A Rust probe (echo mode) to send to.
    let target = spawn(k, "target", json!({}), all_ipc()).await;
    let py = spawn_py(k, "py", json!({}), all_ipc(), RestartPolicy::Never).await;
    let scribe = spawn_py(
        k,
        "py-scribe",
        json!({}),
        Capabilities {
            chain_append: true,
            ..all_ipc()
        },
        RestartPolicy::Never,
    )
    .await;
    let quiet = spawn_py(
        k,
        "py-quiet",
        json!({}),
        Capabilities {
            ipc: IpcScope::None,
            ..Capabilities::default()
        },
        RestartPolicy::Never,
    )
    .await;

    // send: allowed with `IpcScope::All`, the probe gets it.
    let r = json_op(
        k,
        "py",
        json!({"op": "send", "to": "target", "body": "from python"}),
    )
    .await;
    assert!(r["ok"].is_u64(), "{r}");
    eventually("target received", || {
        k.inspect(target).unwrap().usage.messages_received >= 1
    })
    .await;
    assert_eq!(k.inspect(py).unwrap().usage.messages_sent, 1);
    // The returned id is the message's, as recorded on the chain.
    assert!(k.chain().range(..).iter().any(|e| {
        let p = e.payload_json().unwrap_or(Value::Null);
        e.kind == "ipc.send" && e.source == "py" && p["id"] == r["ok"] && p["to_pid"] == target
    }));

    // ... denied with `IpcScope::None`, as an error, not a crash.
    let r = json_op(
        k,
        "py-quiet",
        json!({"op": "send", "to": "target", "body": "hi"}),
    )
    .await;
    assert!(r["err"].as_str().unwrap().starts_with("Denied("), "{r}");
    // A name that does not exist.
    let r = json_op(k, "py", json!({"op": "send", "to": "nobody", "body": "hi"})).await;
    assert!(r["err"].is_string(), "{r}");

    // chain-append: denied without the capability ...
    let r = json_op(
        k,
        "py",
        json!({"op": "chain", "kind": "note", "body": {"n": 1}}),
    )
    .await;
    assert!(r["err"].as_str().unwrap().starts_with("Denied("), "{r}");
    // ... allowed with it, as `agent.<kind>` from the agent.
    let r = json_op(
        k,
        "py-scribe",
        json!({"op": "chain", "kind": "note", "body": {"n": 1, "lang": "python"}}),
    )
    .await;
    let seq = r["ok"].as_u64().unwrap_or_else(|| panic!("a seq: {r}"));
    let ev = k.chain().get(seq).unwrap();
    assert_eq!(
        (ev.kind.as_str(), ev.source.as_str()),
        ("agent.note", "py-scribe")
    );
    assert_eq!(
        ev.payload_json().unwrap()["body"],
        json!({"n": 1, "lang": "python"})
    );
    // A kind the kernel refuses.
    let r = json_op(
        k,
        "py-scribe",
        json!({"op": "chain", "kind": "bad kind!", "body": {}}),
    )
    .await;
    assert!(r["err"].as_str().unwrap().starts_with("Invalid("), "{r}");
    assert!(k.chain().verify_integrity().ok);

    // Denials are counted; everyone is still running.
    assert_eq!(k.inspect(quiet).unwrap().usage.denials, 1);
    assert_eq!(k.inspect(py).unwrap().usage.denials, 1);
    for pid in [py, scribe, quiet] {
        assert_eq!(k.inspect(pid).unwrap().state, ProcessState::Running);
    }
    t.kernel.shutdown().await.unwrap();
}

#[tokio::test]
async fn python_agent_trap_restarts_and_answers_again() {
    let t = boot().await;
    let k = &t.kernel;
    let pid = spawn_py(
        k,
        "py-crashy",
        json!({"greeting": "hi"}),
        all_ipc(),
        RestartPolicy::OnFailure {
            max_retries: 1,
            backoff: Duration::from_millis(10),
        },
    )
    .await;
    assert_eq!(text(k, "py-crashy", "before").await, "hi, before");
    let r = ask(k, "py-crashy", Payload::Json(json!({"op": "trap"}))).await;
    assert!(r.is_err(), "{r:?}");
    eventually("crash and restart on the chain", || {
        let events = chain_kinds(k);
        events
            .iter()
            .any(|(kind, p)| kind == "agent.crash" && p["pid"] == pid && p["kind"] == "trap")
            && events
                .iter()
                .any(|(kind, p)| kind == "agent.restart" && p["pid"] == pid)
    })
    .await;
    // The new instance ran `init` with the same config and answers.
    assert_eq!(text(k, "py-crashy", "after").await, "hi, after");
    let info = k.inspect(pid).unwrap();
    assert_eq!(info.state, ProcessState::Running);
    assert_eq!(info.usage.restarts, 1);
    assert!(info.last_failure.unwrap().starts_with("trap"));
    assert_eq!(k.pid_of("py-crashy"), Some(pid));
    t.kernel.shutdown().await.unwrap();
}
