//! The kernel with real agent components: messaging, capabilities,
//! supervision, scale and preemption.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use weft_kernel::{
    AgentLimits, Capabilities, IpcScope, KernelError, KernelState, MessageTarget, Payload,
    ProcessState, RestartPolicy, SendOutcome,
};

async fn ping_pong(k: &weft_kernel::Kernel, tag: &str, rounds: u64) -> Duration {
    let topic = format!("{tag}.done");
    let mut done = k.subscribe(&topic).await;
    spawn(
        k,
        &format!("{tag}-pong"),
        json!({"mode": "pong"}),
        all_ipc(),
    )
    .await;
    let ping = spawn(
        k,
        &format!("{tag}-ping"),
        json!({"mode": "ping", "peer": format!("{tag}-pong"), "rounds": rounds, "done_topic": topic}),
        all_ipc(),
    )
    .await;
    let start = Instant::now();
    k.send(MessageTarget::Agent(ping), Payload::Text("start".into()))
        .await
        .unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(120), done.recv())
        .await
        .expect("ping-pong finished in time")
        .expect("topic open");
    assert_eq!(msg.payload, Payload::Text(rounds.to_string()));
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_pong_exchanges_100k_messages() {
    let t = boot().await;
    // 50k rounds: 100k messages, half each way.
    let took = ping_pong(&t.kernel, "pp", 50_000).await;
    let pong = t
        .kernel
        .inspect(t.kernel.pid_of("pp-pong").unwrap())
        .unwrap();
    assert_eq!(pong.usage.messages_received, 50_000);
    assert_eq!(pong.usage.messages_sent, 50_000);
    eprintln!("100k messages in {took:?}");
    // Every send is on the chain as metadata.
    let sends = t
        .kernel
        .chain()
        .range(..)
        .iter()
        .filter(|e| e.kind == "ipc.send")
        .count();
    assert!(sends >= 100_000, "{sends}");
    t.kernel.shutdown().await.unwrap();
}

#[tokio::test]
async fn ipc_scope_denial_is_an_error_not_a_crash() {
    let t = boot().await;
    let k = &t.kernel;
    spawn(k, "target", json!({}), all_ipc()).await;
    let quiet = spawn(k, "quiet", json!({}), Capabilities::default()).await;
    let r = op(
        k,
        "quiet",
        json!({"op": "send", "to": "target", "body": "hi"}),
    )
    .await;
    assert!(r["err"].as_str().unwrap().contains("Denied"), "{r}");
    let r = op(k, "quiet", json!({"op": "subscribe", "topic": "news"})).await;
    assert!(r["err"].as_str().unwrap().contains("Denied"), "{r}");
    let r = op(
        k,
        "quiet",
        json!({"op": "chain", "kind": "note", "body": {}}),
    )
    .await;
    assert!(r["err"].as_str().unwrap().contains("Denied"), "{r}");
    // Still alive and counting.
    assert_eq!(op(k, "quiet", json!({"op": "count"})).await["ok"], 4);
    let info = k.inspect(quiet).unwrap();
    assert_eq!(info.state, ProcessState::Running);
    assert_eq!(info.usage.denials, 3);

    // Named scope: may reach `target`, nobody else.
    spawn(k, "other", json!({}), all_ipc()).await;
    spawn(
        k,
        "picky",
        json!({}),
        Capabilities {
            ipc: IpcScope::Named(vec!["targ*".into()]),
            ..Default::default()
        },
    )
    .await;
    assert!(op(
        k,
        "picky",
        json!({"op": "send", "to": "target", "body": "hi"})
    )
    .await["ok"]
        .is_u64());
    assert!(op(
        k,
        "picky",
        json!({"op": "send", "to": "other", "body": "hi"})
    )
    .await["err"]
        .is_string());
}

/// A detached spawn answers once the process is gated, recorded and
/// registered: a message sent at once waits in the inbox for `init`, and a
/// failing `init` is a crash its restart policy handles, on the chain after
/// the spawn.
#[tokio::test]
async fn a_detached_spawn_runs_init_in_the_agents_task() {
    let t = boot().await;
    let k = &t.kernel;
    let mut req = weft_kernel::SpawnRequest::new("quick", probe(k));
    req.config = json!({"mode": "echo"});
    let pid = k
        .act(
            &weft_kernel::Principal::Operator,
            weft_kernel::Spawn::detached(req),
        )
        .await
        .unwrap();
    let reply = k
        .request(
            MessageTarget::Agent(pid),
            Payload::Text("hi".into()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(reply, Payload::Text("hi".into()));
    assert_eq!(k.inspect(pid).unwrap().state, ProcessState::Running);

    let mut req = weft_kernel::SpawnRequest::new("doomed", probe(k));
    req.config = json!({"fail_init": true});
    req.restart = RestartPolicy::OnFailure {
        max_retries: 1,
        backoff: Duration::from_millis(10),
    };
    let pid = k
        .act(
            &weft_kernel::Principal::Operator,
            weft_kernel::Spawn::detached(req),
        )
        .await
        .expect("a detached spawn does not wait for init");
    eventually("give up", || {
        k.inspect(pid)
            .is_some_and(|i| i.state == ProcessState::Stopped)
    })
    .await;
    let events = chain_kinds(k);
    let of = |kind: &str| {
        events
            .iter()
            .position(|(k, p)| k == kind && (p["pid"] == pid))
            .unwrap_or_else(|| panic!("no {kind} for {pid}"))
    };
    assert!(of("agent.spawn") < of("agent.crash"));
    assert!(of("agent.crash") < of("agent.give_up"));
    let crash = events
        .iter()
        .find(|(k, p)| k == "agent.crash" && p["pid"] == pid)
        .unwrap();
    assert_eq!(crash.1["kind"], "init error");
    assert!(crash.1["error"]
        .as_str()
        .unwrap()
        .contains("asked to fail init"));
}

#[tokio::test]
async fn trapping_agent_restarts_with_backoff_then_gives_up() {
    let t = boot().await;
    let k = &t.kernel;
    let pid = spawn_with(
        k,
        "crashy",
        json!({"mode": "trap"}),
        all_ipc(),
        RestartPolicy::OnFailure {
            max_retries: 3,
            backoff: Duration::from_millis(20),
        },
        None,
    )
    .await;
    let start = Instant::now();
    for _ in 0..4 {
        let _ = k
            .send(MessageTarget::Agent(pid), Payload::Text("boom".into()))
            .await;
    }
    eventually("give up", || {
        k.chain()
            .range(..)
            .iter()
            .any(|e| e.kind == "agent.give_up")
    })
    .await;
    assert!(start.elapsed() >= Duration::from_millis(20 + 40 + 80));
    let info = k.inspect(pid).expect("a failed agent stays inspectable");
    assert_eq!(info.state, ProcessState::Stopped);
    assert_eq!(info.usage.restarts, 3);
    assert!(info.last_failure.unwrap().starts_with("trap"));
    let events = chain_kinds(k);
    let crashes: Vec<_> = events
        .iter()
        .filter(|(kind, _)| kind == "agent.crash")
        .collect();
    assert_eq!(crashes.len(), 4);
    assert!(crashes.iter().all(|(_, p)| p["kind"] == "trap"));
    let backoffs: Vec<u64> = events
        .iter()
        .filter(|(kind, p)| kind == "agent.restart" && p["pid"] == pid)
        .map(|(_, p)| p["backoff_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(backoffs, [20, 40, 80]);
    // The name is free again, and stopping the failed entry removes it.
    assert_eq!(k.pid_of("crashy"), None);
    k.stop(pid).await.unwrap();
    assert!(k.inspect(pid).is_none());
}

#[tokio::test]
async fn suspend_and_resume() {
    let t = boot().await;
    let k = &t.kernel;
    let pid = spawn(k, "sleepy", json!({}), all_ipc()).await;
    k.send(
        MessageTarget::Agent(pid),
        Payload::Json(json!({"cmd": "suspend"})),
    )
    .await
    .unwrap();
    eventually("suspended", || {
        k.inspect(pid).unwrap().state == ProcessState::Suspended
    })
    .await;
    let r = k
        .request(
            MessageTarget::Agent(pid),
            Payload::Text("hello".into()),
            Duration::from_millis(200),
        )
        .await;
    assert!(matches!(r, Err(KernelError::Timeout(_))), "{r:?}");
    k.send(
        MessageTarget::Agent(pid),
        Payload::Json(json!({"cmd": "resume"})),
    )
    .await
    .unwrap();
    eventually("running", || {
        k.inspect(pid).unwrap().state == ProcessState::Running
    })
    .await;
    let r = k
        .request(
            MessageTarget::Agent(pid),
            Payload::Text("again".into()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(r, Payload::Text("again".into()));
    let kinds: Vec<String> = chain_kinds(k).into_iter().map(|(k, _)| k).collect();
    assert!(
        kinds.contains(&"agent.suspend".to_string()) && kinds.contains(&"agent.resume".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_agents_spawn_and_stop_without_leaks() {
    let t = boot().await;
    let k = &t.kernel;
    let mut pids = Vec::new();
    for i in 0..1000 {
        pids.push(spawn(k, &format!("a{i}"), json!({}), Capabilities::default()).await);
    }
    let s = k.stats();
    assert_eq!(
        (s.processes, s.live_tasks, s.live_stores),
        (1000, 1000, 1000)
    );
    let r = k
        .request(
            MessageTarget::Named("a999".into()),
            Payload::Text("x".into()),
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(r.unwrap(), Payload::Text("x".into()));
    for pid in pids {
        k.stop(pid).await.unwrap();
    }
    eventually("all released", || {
        let s = k.stats();
        (s.processes, s.live_tasks, s.live_stores) == (0, 0, 0)
    })
    .await;
    assert_eq!(k.tree().list("/kernel/agents").unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spinning_agents_do_not_starve_a_ping_pong_pair() {
    let t = boot().await;
    let k = &t.kernel;
    let baseline = ping_pong(k, "base", 1_000).await;
    let spin_limits = AgentLimits {
        fuel_per_message: u64::MAX / 4,
        timeout_ms: 60_000,
        ..AgentLimits::default()
    };
    let mut spinners = Vec::new();
    for i in 0..100 {
        let pid = spawn_with(
            k,
            &format!("spin{i}"),
            json!({"mode": "spin"}),
            all_ipc(),
            RestartPolicy::Never,
            Some(spin_limits.clone()),
        )
        .await;
        k.send(MessageTarget::Agent(pid), Payload::Text("go".into()))
            .await
            .unwrap();
        spinners.push(pid);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let busy = ping_pong(k, "busy", 1_000).await;
    eprintln!("1000 round trips: {baseline:?} alone, {busy:?} beside 100 spinning agents");
    assert!(
        busy < Duration::from_secs(10),
        "ping-pong starved: {busy:?}"
    );
    // The spinners were preempted, not killed.
    assert!(spinners
        .iter()
        .all(|p| k.inspect(*p).unwrap().state == ProcessState::Running));
    let stop = Instant::now();
    for p in spinners {
        k.stop(p).await.unwrap();
    }
    assert!(stop.elapsed() < Duration::from_secs(60));
}

#[tokio::test]
async fn request_reply_topics_and_services() {
    let t = boot().await;
    let k = &t.kernel;
    spawn(k, "pong", json!({"mode": "pong"}), all_ipc()).await;
    spawn(k, "asker", json!({}), all_ipc()).await;
    let r = op(
        k,
        "asker",
        json!({"op": "request", "to": "pong", "body": "marco", "timeout_ms": 2000}),
    )
    .await;
    assert_eq!(r["ok"], "marco");

    // Topics: subscribe two agents, publish from a third; count deliveries.
    spawn(k, "sub1", json!({}), all_ipc()).await;
    spawn(k, "sub2", json!({}), all_ipc()).await;
    for s in ["sub1", "sub2"] {
        assert_eq!(
            op(k, s, json!({"op": "subscribe", "topic": "news"})).await["ok"],
            json!(null)
        );
    }
    let r = op(
        k,
        "asker",
        json!({"op": "send", "to": "topic:news", "body": "extra"}),
    )
    .await;
    assert_eq!(r["ok"], 2);
    eventually("delivered", || {
        ["sub1", "sub2"].iter().all(|s| {
            k.inspect(k.pid_of(s).unwrap())
                .unwrap()
                .usage
                .messages_received
                >= 2
        })
    })
    .await;
    assert_eq!(
        op(k, "sub2", json!({"op": "unsubscribe", "topic": "news"})).await["ok"],
        json!(null)
    );
    match k
        .send(
            MessageTarget::Topic("news".into()),
            Payload::Text("x".into()),
        )
        .await
        .unwrap()
    {
        SendOutcome::Delivered(n) => assert_eq!(n, 1),
        other => panic!("{other:?}"),
    }

    // Services: ServiceMethod routes to the owner with `method` set.
    let owner = k.pid_of("sub1").unwrap();
    k.act(
        &weft_kernel::Principal::Operator,
        weft_kernel::ipc::RegisterService {
            name: "echo".into(),
            endpoint: weft_kernel::ipc::service::ServiceEndpoint::AgentInbox(owner),
            audit_level: Default::default(),
            native: None,
        },
    )
    .await
    .unwrap();
    let r = k
        .request(
            MessageTarget::ServiceMethod {
                service: "echo".into(),
                method: "shout".into(),
            },
            Payload::Text("hey".into()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(r, Payload::Json(json!({"method": "shout", "body": "hey"})));
    assert!(k.tree().get("/kernel/services/echo").is_some());
    assert!(chain_kinds(k)
        .iter()
        .any(|(kind, p)| kind == "service.register" && p["name"] == "echo"));
}

#[tokio::test]
async fn stopping_a_parent_stops_its_children() {
    let t = boot().await;
    let k = &t.kernel;
    let parent = spawn(k, "parent", json!({}), Kernel_trusted()).await;
    let mut req = weft_kernel::SpawnRequest::new("child", probe(k));
    req.parent = Some(parent);
    req.capabilities = Kernel_trusted();
    let child = k.spawn(req).await.unwrap();
    let mut req = weft_kernel::SpawnRequest::new("grandchild", probe(k));
    req.parent = Some(child);
    let grandchild = k.spawn(req).await.unwrap();
    assert_eq!(k.inspect(parent).unwrap().children, vec![child]);
    k.stop(parent).await.unwrap();
    for p in [parent, child, grandchild] {
        assert!(k.inspect(p).is_none(), "{p} still there");
    }
}

#[allow(non_snake_case)]
fn Kernel_trusted() -> Capabilities {
    Capabilities::trusted()
}

#[tokio::test]
async fn lifecycle_and_limits() {
    let mut config = weft_kernel::KernelConfig::default();
    config.kernel.max_processes = 2;
    let t = boot_with(config).await;
    let k = &t.kernel;
    assert_eq!(k.state(), KernelState::Running);
    spawn(k, "one", json!({}), all_ipc()).await;
    let two = spawn(k, "two", json!({}), all_ipc()).await;
    let e = k
        .spawn(weft_kernel::SpawnRequest::new("three", probe(k)))
        .await
        .unwrap_err();
    assert!(matches!(e, KernelError::ProcessLimit { max: 2 }), "{e}");
    k.stop(two).await.unwrap();
    let e = k
        .spawn(weft_kernel::SpawnRequest::new("bad name!", probe(k)))
        .await
        .unwrap_err();
    assert!(matches!(e, KernelError::Invalid(_)), "{e}");

    // A tool is not an agent: the error names the missing export.
    let calc = k.load_component(&weft_testkit::guest("calc")).unwrap();
    let e = k
        .spawn(weft_kernel::SpawnRequest::new("calc", calc))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not a weft:kernel agent"), "{e}");

    // init failure: spawn fails, nothing is left behind.
    let mut req = weft_kernel::SpawnRequest::new("nope", probe(k));
    req.config = json!({"fail_init": true});
    let e = k.spawn(req).await.unwrap_err();
    assert!(e.to_string().contains("asked to fail init"), "{e}");

    k.shutdown().await.unwrap();
    assert_eq!(k.state(), KernelState::Halted);
    assert!(matches!(
        k.shutdown().await,
        Err(KernelError::IllegalKernelTransition { .. })
    ));
    let kinds: Vec<String> = chain_kinds(k).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds.first().map(String::as_str), Some("chain.genesis"));
    assert!(kinds.contains(&"kernel.boot".into()) && kinds.contains(&"kernel.shutdown".into()));
}

/// An app's spawn is held to its ceiling in the kernel too (the manifest
/// check is the first line, not the only one): more is refused as a denial
/// on the chain, and what fits is granted.
#[tokio::test]
async fn an_apps_spawn_beyond_its_ceiling_is_denied() {
    let t = boot().await;
    let k = &t.kernel;
    let ceiling = Capabilities::default();
    let app = weft_kernel::Principal::app("tight", Some(ceiling));
    let mut req = weft_kernel::SpawnRequest::new("tight.greedy", probe(k));
    req.capabilities = all_ipc();
    let e = k.act(&app, weft_kernel::Spawn::new(req)).await.unwrap_err();
    assert!(matches!(e, KernelError::Denied(_)), "{e}");
    assert!(
        e.to_string()
            .contains("agent `tight.greedy` exceeds the ceiling of app `tight`"),
        "{e}"
    );
    assert!(chain_kinds(k)
        .iter()
        .any(|(kind, p)| kind == "gate.deny" && p["action"] == "agent.spawn"));
    let req = weft_kernel::SpawnRequest::new("tight.modest", probe(k));
    k.act(&app, weft_kernel::Spawn::new(req)).await.unwrap();
}
