//! Load: what the kernel holds when pushed, with real components and a
//! real socket. Each test asserts behaviour under the load (every client
//! answered, back-pressure instead of a growing queue, a looping guest
//! stopped, typed errors for oversized values) and prints its figures
//! (`--nocapture`) for docs/reliability.md; none asserts a speed.
//!
//! `just test` runs them at a size that fits the CI budget; `just load`
//! (`WEFT_LOAD=full`) at the sizes in docs/reliability.md.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use weft_e2e::{guest, start_kernel};
use weft_fuzz::program::{Body, Program, Str, Target};
use weft_kernel::ipc::SendMessage;
use weft_kernel::{
    AgentLimits, Capabilities, IpcScope, Kernel, KernelConfig, KernelError, MessageTarget, Payload,
    Principal, ProcessState, SendOutcome, Spawn, SpawnRequest,
};

/// `quick` in `just test`, `full` under `WEFT_LOAD=full` (`just load`).
fn size(quick: usize, full: usize) -> usize {
    match std::env::var("WEFT_LOAD").as_deref() {
        Ok("full") => full,
        _ => quick,
    }
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn a_thousand_control_clients_at_once_are_all_answered() {
    let clients_n = size(1_000, 1_000);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let echo = format!("echo={}", guest("probe").display());
    let kernel = start_kernel(&state, &["--spawn", &echo]);
    let pid = kernel.0.id();
    let before = fds(pid);
    let sock = state.join("control.sock");
    // Every client connects, then all send at once, then all read: the
    // kernel holds 1,000 open connections with a request in flight on each.
    let connected = Arc::new(Barrier::new(clients_n + 1));
    let start = Instant::now();
    let clients: Vec<_> = (0..clients_n)
        .map(|i| {
            let (sock, connected) = (sock.clone(), connected.clone());
            std::thread::Builder::new()
                .stack_size(128 << 10)
                .spawn(move || {
                    let mut s = UnixStream::connect(&sock).expect("connect");
                    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
                    connected.wait();
                    let req = json!({"id": i, "unit": "ipc",
                        "request": {"op": "send", "name": "echo", "text": format!("c{i}")}});
                    writeln!(s, "{req}").unwrap();
                    let mut line = String::new();
                    BufReader::new(&s).read_line(&mut line).expect("an answer");
                    let v: Value = serde_json::from_str(&line).expect("JSON");
                    (i, v)
                })
                .unwrap()
        })
        .collect();
    connected.wait();
    let open = fds(pid);
    let mut answered = 0;
    for c in clients {
        let (i, v) = c.join().expect("client thread");
        assert_eq!(v["id"], json!(i), "{v}");
        assert_eq!(v["ok"], json!(true), "client {i}: {v}");
        assert_eq!(v["result"]["text"], json!(format!("c{i}")), "{v}");
        answered += 1;
    }
    let took = start.elapsed();
    // The connections are gone from the kernel too (no descriptor kept).
    let deadline = Instant::now() + Duration::from_secs(10);
    while fds(pid) > before + 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = fds(pid);
    println!(
        "control socket: {answered} of {clients_n} concurrent clients answered in {:.2} s; \
         kernel fds {before} before, {open} with all connected, {after} after",
        took.as_secs_f64()
    );
    assert!(
        open >= before + clients_n / 2,
        "the connections were not concurrent: {open} fds"
    );
    assert!(
        after <= before + 2,
        "descriptors leaked: {before} before, {after} after"
    );
}

async fn boot(config: KernelConfig) -> (Kernel, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config;
    config.kernel.cache_dir = Some(weft_testkit::shared_cache_dir());
    let k = Kernel::boot(config, dir.path()).await.expect("boot");
    (k, dir)
}

async fn spawn(k: &Kernel, name: &str, component: &str, caps: Capabilities) -> u64 {
    let c = k.load_component(&guest(component)).unwrap();
    let mut req = SpawnRequest::new(name, c);
    req.capabilities = caps;
    k.act(&Principal::Operator, Spawn::new(req)).await.unwrap()
}

async fn request(k: &Kernel, to: &str, p: Payload, wait: Duration) -> Result<Payload, KernelError> {
    let send = SendMessage::new(MessageTarget::Named(to.into()), p).wait(wait);
    match k.act(&Principal::Operator, send).await? {
        SendOutcome::Replied(p) => Ok(p),
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn ipc_all() -> Capabilities {
    Capabilities {
        ipc: IpcScope::All,
        ..Capabilities::default()
    }
}

fn rss_mib() -> f64 {
    weft_testkit::memory::mib(weft_testkit::memory::resident_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_senders_meet_back_pressure_at_one_full_inbox() {
    let senders = size(1_000, 10_000);
    const CAPACITY: usize = 64;
    let mut config = KernelConfig::default();
    config.ipc.inbox_capacity = CAPACITY;
    config.ipc.send_timeout_ms = 2_000;
    let (k, _dir) = boot(config).await;
    spawn(&k, "sink", "probe", ipc_all()).await;
    spawn(&k, "echo", "probe", ipc_all()).await;
    // A suspended sink takes nothing from its inbox.
    request(
        &k,
        "sink",
        Payload::Json(json!({"op": "count"})),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let suspend = SendMessage::new(
        MessageTarget::Named("sink".into()),
        Payload::Json(json!({"cmd": "suspend"})),
    );
    k.act(&Principal::Operator, suspend).await.unwrap();
    let sink = k.pid_of("sink").unwrap();
    while k.inspect(sink).unwrap().state != ProcessState::Suspended {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rss0 = rss_mib();
    let probe = k.load_component(&guest("probe")).unwrap();
    for i in 0..senders {
        let mut req = SpawnRequest::new(format!("s{i}"), probe.clone());
        req.capabilities = ipc_all();
        k.act(&Principal::Operator, Spawn::new(req)).await.unwrap();
    }
    let rss1 = rss_mib();
    // Every sender sends to the sink at once.
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..senders {
        let k = k.clone();
        tasks.spawn(async move {
            let op = json!({"op": "send", "to": "sink", "body": format!("m{i}")});
            request(
                &k,
                &format!("s{i}"),
                Payload::Json(op),
                Duration::from_secs(600),
            )
            .await
        });
    }
    // The kernel answers others while 10,000 senders wait.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    let pong = request(
        &k,
        "echo",
        Payload::Text("ping".into()),
        Duration::from_secs(30),
    )
    .await;
    let ping_ms = t.elapsed().as_millis();
    assert_eq!(pong.unwrap(), Payload::Text("ping".into()));
    let (mut sent, mut timeouts) = (0usize, 0usize);
    while let Some(r) = tasks.join_next().await {
        let Payload::Json(v) = r.unwrap().unwrap() else {
            panic!("a sender answered something else")
        };
        if v.get("ok").is_some() {
            sent += 1;
        } else {
            let e = v["err"].as_str().unwrap_or_default();
            assert!(
                e.contains("Timeout") && e.contains("stayed full"),
                "not back-pressure: {v}"
            );
            timeouts += 1;
        }
    }
    let took = start.elapsed();
    let rss2 = rss_mib();
    // The inbox never held more than its capacity: the suspended sink
    // finds exactly what was accepted.
    assert!(
        sent <= CAPACITY,
        "{sent} sends accepted by an inbox of {CAPACITY}"
    );
    assert_eq!(sent + timeouts, senders);
    let resume = SendMessage::new(
        MessageTarget::Named("sink".into()),
        Payload::Json(json!({"cmd": "resume"})),
    );
    k.act(&Principal::Operator, resume).await.unwrap();
    let n = request(
        &k,
        "sink",
        Payload::Json(json!({"op": "count"})),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    // It handled the first count, every accepted send, and this count.
    assert_eq!(n, Payload::Json(json!({"ok": sent + 2})));
    println!(
        "full inbox: {senders} senders, inbox {CAPACITY}: {sent} accepted, {timeouts} timed out \
         after 2 s, all done in {:.1} s; echo answered in {ping_ms} ms meanwhile; \
         RSS {rss0:.0} MiB, {rss1:.0} with the senders, {rss2:.0} after",
        took.as_secs_f64()
    );
    k.shutdown().await.unwrap();
}

async fn spawn_hostile(k: &Kernel, name: &str, limits: AgentLimits) {
    let c = k.load_component(&guest("hostile")).unwrap();
    let mut req = SpawnRequest::new(name, c);
    req.capabilities = Capabilities {
        spawn: false,
        ..Capabilities::trusted()
    };
    req.limits = Some(limits);
    k.act(&Principal::Operator, Spawn::new(req)).await.unwrap();
}

/// Run `program` on a fresh `hostile` agent; its answer and why it died.
async fn run(
    k: &Kernel,
    name: &str,
    program: &Program,
) -> (Result<Payload, KernelError>, Option<String>) {
    let r = request(
        k,
        name,
        Payload::Binary(program.bytes()),
        Duration::from_secs(60),
    )
    .await;
    let p = k
        .processes()
        .into_iter()
        .filter(|p| p.name == name)
        .max_by_key(|p| p.pid)
        .unwrap();
    (r, p.last_failure)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_looping_on_a_host_call_is_stopped() {
    let (k, _dir) = boot(KernelConfig::default()).await;
    spawn(&k, "echo", "probe", ipc_all()).await;
    let lit = |s: &'static str| Str::Lit(s.as_bytes());
    let loops = [
        ("now", Program::new().now().looped()),
        ("self-name", Program::new().whoami().looped()),
        ("random(4096)", Program::new().random(4096).looped()),
        ("log", Program::new().log(lit("again")).looped()),
        (
            "chain-append",
            Program::new().chain(lit("spin"), lit("{}")).looped(),
        ),
        (
            "send to itself",
            Program::new()
                .send(Target::Named(lit("spinner-5")), Body::Text(lit("x")))
                .looped(),
        ),
    ];
    for (i, (what, program)) in loops.iter().enumerate() {
        let name = format!("spinner-{i}");
        spawn_hostile(
            &k,
            &name,
            AgentLimits {
                timeout_ms: 2_000,
                ..AgentLimits::default()
            },
        )
        .await;
        let events = k.chain().len();
        let start = Instant::now();
        // The rest of the kernel is served while it spins.
        let echo = {
            let k = k.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let t = Instant::now();
                let r = request(
                    &k,
                    "echo",
                    Payload::Text("ping".into()),
                    Duration::from_secs(10),
                )
                .await;
                (r, t.elapsed())
            })
        };
        let (answer, _) = run(&k, &name, program).await;
        let took = start.elapsed();
        let (pong, ping) = echo.await.unwrap();
        assert_eq!(pong.unwrap(), Payload::Text("ping".into()), "{what}");
        // The requester is told why: "agent `spinner-N` failed: out of fuel: ..."
        // or "...: timeout: ...".
        let failure = match answer {
            Err(e) => e.to_string(),
            Ok(p) => panic!("{what}: the loop ended by itself: {p:?}"),
        };
        let why = ["out of fuel", "timeout"]
            .into_iter()
            .find(|w| failure.contains(w))
            .unwrap_or_else(|| panic!("{what}: stopped by something else: {failure}"));
        println!(
            "looping on {what}: stopped after {:.2} s by {}; {} chain events; echo answered in {} ms meanwhile",
            took.as_secs_f64(),
            why,
            k.chain().len() - events,
            ping.as_millis()
        );
    }
    k.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_and_deeply_nested_values_from_a_guest_get_typed_errors() {
    let (k, _dir) = boot(KernelConfig::default()).await;
    spawn(&k, "echo", "probe", ipc_all()).await;
    let limit = KernelConfig::default().ipc.max_payload_bytes;
    let big = u32::try_from(limit + 1).unwrap();
    let wait = Duration::from_secs(30);
    let lit = |s: &'static str| Str::Lit(s.as_bytes());
    let fresh = |i: usize| format!("hostile-{i}");
    let cases: Vec<(&str, Program, &str)> = vec![
        (
            "a reply over the payload limit",
            Program::new().reply(Body::Text(Str::Repeat(big, b'x'))),
            "exceeds",
        ),
        (
            "a binary reply over the limit",
            Program::new().reply(Body::Binary(Str::Repeat(big, 1))),
            "exceeds",
        ),
        (
            "a JSON reply nested 100,000 deep",
            Program::new().reply(Body::Json(Str::Nested(100_000))),
            "recursion limit",
        ),
        (
            "a JSON reply that is not JSON",
            Program::new().reply(Body::Json(lit("{\"a\":"))),
            "json",
        ),
    ];
    // Fuel enough to build values of several MiB (the default budget
    // stops the guest first, which is not what is tested here).
    let roomy = AgentLimits {
        fuel_per_message: 20_000_000_000,
        timeout_ms: 60_000,
        ..AgentLimits::default()
    };
    let alive = Program::new().reply(Body::Text(lit("alive")));
    for (i, (what, program, says)) in cases.into_iter().enumerate() {
        spawn_hostile(&k, &fresh(i), roomy.clone()).await;
        let (answer, failure) = run(&k, &fresh(i), &program).await;
        let e = answer.expect_err(what).to_string();
        assert!(e.contains(says), "{what}: {e}");
        assert_eq!(
            failure, None,
            "{what}: the agent died instead of getting an error"
        );
        // And it goes on answering.
        let (again, _) = run(&k, &fresh(i), &alive).await;
        assert_eq!(again.unwrap(), Payload::Text("alive".into()), "{what}");
        println!("{what}: {e}");
    }
    // The same values sent by the guest: each send fails with a typed
    // error, echo receives nothing, the agent goes on and answers.
    let before = request(&k, "echo", Payload::Json(json!({"op": "count"})), wait)
        .await
        .unwrap();
    let echo = || Target::Named(Str::Lit(b"echo"));
    let sends = Program::new()
        .send(echo(), Body::Text(Str::Repeat(big, b'x')))
        .send(echo(), Body::Json(Str::Nested(100_000)))
        .send(echo(), Body::Json(lit("nope")))
        .chain(Str::Repeat(1 << 20, b'k'), lit("{}"))
        .chain(lit("k"), Str::Nested(100_000))
        .log(Str::Repeat(1 << 20, b'l'))
        .random(u32::MAX)
        .tool(Str::Repeat(1 << 20, b't'), Str::Nested(100_000))
        .subscribe(Str::Repeat(1 << 20, b's'))
        .reply(Body::Text(lit("still here")));
    spawn_hostile(&k, "sender", roomy).await;
    let (answer, failure) = run(&k, "sender", &sends).await;
    assert_eq!(answer.unwrap(), Payload::Text("still here".into()));
    assert_eq!(failure, None);
    let after = request(&k, "echo", Payload::Json(json!({"op": "count"})), wait)
        .await
        .unwrap();
    let n = |p: &Payload| match p {
        Payload::Json(v) => v["ok"].as_u64().unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(n(&after), n(&before) + 1, "echo received what was refused");
    // The operator is held to the same limit.
    let r = request(&k, "echo", Payload::Text("x".repeat(limit + 1)), wait).await;
    assert!(matches!(r, Err(KernelError::Invalid(_))), "{r:?}");
    println!("rss after the oversized values: {:.0} MiB", rss_mib());
    k.shutdown().await.unwrap();
}
