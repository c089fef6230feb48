//! `cargo bench -p weft-net`: what the net unit costs, against a local
//! HTTP server this bench starts, in one process with a real kernel and the
//! real `fetcher` component (build the guests first: `just components`).
//!
//! Prints, per request (the median of 10 batches of N/10 sequential
//! requests; the server runs on its own thread and runtime):
//! * outbound: a plain hyper client (a new connection each time, and one
//!   kept connection as reqwest's pool would) and the unit's wire code alone
//!   vs an agent's `wasi:http` request through the kernel (gate, chain
//!   record, address check, kept connection), minus the message round trip
//!   it rides on, and the ratios;
//! * tools: the `http-get` command making one request per run, as a
//!   governed Weft tool vs raw wasmtime-wasi-http calling the same wire code
//!   (what the gate, grants and record cost, and what `wasi:http` costs);
//! * inbound: requests/s through a route to an echo agent vs the same
//!   agent reached by a kernel send (what `weaver agent send` does, without
//!   the CLI process).
//!
//! `NET_BENCH_PROFILE_AGENT=N` makes only N agent requests and prints
//! nothing, for a profiler (`perf record`).

#[path = "support/raw_http.rs"]
mod raw_http;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;
use serde_json::json;
use weft_kernel::ipc::SendMessage;
use weft_kernel::tools::{InvokeTool, RegisterTool, ToolEntry};
use weft_kernel::{
    Capabilities, Kernel, KernelConfig, MessageTarget, Payload, Principal, Spawn, SpawnRequest,
};
use weft_model::net::{NetCaps, Route};
use weft_net::NetUnit;

const N: u32 = 300;

/// The local server, on its own thread and runtime as another process
/// would be: its wake-ups never share the scheduler the clients measured use.
fn server() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    l.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).expect("listener");
            loop {
                let Ok((s, _)) = l.accept().await else {
                    continue;
                };
                let _ = s.set_nodelay(true);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from_static(b"ok"),
                        )))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
    });
    addr
}

async fn plain_get(addr: std::net::SocketAddr) {
    let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = http::Request::get("/x")
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())
        .expect("req");
    let resp = tx.send_request(req).await.expect("send");
    let _ = resp.into_body().collect().await.expect("body");
}

/// A plain hyper client that keeps its connection (as reqwest does).
struct KeepAlive(tokio::sync::Mutex<Option<hyper::client::conn::http1::SendRequest<Empty<Bytes>>>>);

impl KeepAlive {
    async fn get(&self, addr: std::net::SocketAddr) {
        let mut slot = self.0.lock().await;
        if slot.is_none() {
            let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let _ = s.set_nodelay(true);
            let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            *slot = Some(tx);
        }
        let tx = slot.as_mut().expect("connection");
        tx.ready().await.expect("ready");
        let req = http::Request::get("/x")
            .header("host", addr.to_string())
            .body(Empty::<Bytes>::new())
            .expect("req");
        let resp = tx.send_request(req).await.expect("send");
        let _ = resp.into_body().collect().await.expect("body");
    }
}

/// The unit's wire code alone (resolve, address check, connect or reuse,
/// read): no kernel, no guest.
async fn wire(addr: std::net::SocketAddr, pool: Option<&weft_net::pool::Pool<Empty<Bytes>>>) {
    let url = format!("http://{addr}/x?q=1");
    let t = weft_net::fetch::Target::of(&url.parse().expect("url")).expect("target");
    let caps = NetCaps {
        outbound: vec![format!("http://{addr}")],
        secrets: vec![],
    };
    let grants = t.grants(&caps);
    let a = weft_net::fetch::resolve(&t, &grants)
        .await
        .expect("resolve");
    let req = http::Request::get(url)
        .body(Empty::<Bytes>::new())
        .expect("req");
    let f = weft_net::fetch::send(a, &t, None, pool, req, 1 << 20)
        .await
        .expect("send");
    assert_eq!(f.parts.status, 200);
}

async fn send(k: &Kernel, msg: serde_json::Value) -> Payload {
    let s = SendMessage::new(MessageTarget::Named("bench.f".into()), Payload::Json(msg))
        .wait(Duration::from_secs(10));
    match k.act(&Principal::Operator, s).await.expect("send") {
        weft_kernel::SendOutcome::Replied(p) => p,
        other => panic!("no reply: {other:?}"),
    }
}

/// Per request: the median over 10 batches of N/10 sequential requests
/// (after 20 to warm up), so one batch unlucky with the scheduler does not
/// move the figure.
async fn mean<F, Fut>(mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..20 {
        f().await;
    }
    let mut batches = Vec::with_capacity(10);
    for _ in 0..10 {
        let t = Instant::now();
        for _ in 0..N / 10 {
            f().await;
        }
        batches.push(t.elapsed() / (N / 10));
    }
    batches.sort();
    batches[5]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let wasm = root.join("components/target/wasm32-wasip2/release/fetcher.wasm");
    assert!(
        wasm.exists(),
        "build the guests first (just components): {}",
        wasm.display()
    );
    let addr = server();
    let dir = tempfile::tempdir().expect("tempdir");
    weft_net::unit::set_listen_flag(Some("127.0.0.1:0".into()));
    let mut config = KernelConfig::default();
    config.kernel.cache_dir = Some(dir.path().join("cache"));
    let k = Kernel::boot_with(
        config,
        &dir.path().join("state"),
        vec![Arc::new(NetUnit::new())],
    )
    .await
    .expect("boot");
    let component = k.load_component(&wasm).expect("load fetcher");
    let mut req = SpawnRequest::new("bench.f", component);
    req.capabilities = Capabilities {
        network: NetCaps {
            outbound: vec![format!("http://{addr}")],
            secrets: vec![],
        },
        ..Capabilities::default()
    };
    req.config = json!({ "mode": "echo" });
    let app = Principal::app("bench", None);
    k.act(&app, Spawn::new(req)).await.expect("spawn");
    let unit = k.subsystem::<NetUnit>().expect("net unit");
    let route = Route {
        path: "/echo".into(),
        agent: "f".into(),
        ..Route::default()
    };
    unit.routes().add("bench", route, None).expect("route");
    let listen: std::net::SocketAddr = unit.listening().expect("listening").parse().expect("addr");

    if let Ok(n) = std::env::var("NET_BENCH_PROFILE_AGENT") {
        // Only the agent's requests, N of them, for a profiler.
        let url = format!("http://{addr}/x?q=1");
        for _ in 0..n.parse::<u32>().unwrap_or(10_000) {
            let _ = send(&k, json!({ "fetch": url })).await;
        }
        return;
    }
    let plain = mean(|| plain_get(addr)).await;
    let keep = KeepAlive(tokio::sync::Mutex::new(None));
    let plain_keep = mean(|| keep.get(addr)).await;
    let wire_new = mean(|| wire(addr, None)).await;
    let pool = weft_net::pool::Pool::default();
    let wire_kept = mean(|| wire(addr, Some(&pool))).await;
    let url = format!("http://{addr}/x?q=1");
    let through = mean(|| {
        let (k, url) = (&k, url.clone());
        async move {
            let _ = send(k, json!({ "fetch": url })).await;
        }
    })
    .await;
    let message = mean(|| async {
        let _ = send(&k, json!({ "method": "GET", "path": "/" })).await;
    })
    .await;
    let overhead = through.saturating_sub(message);
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("outbound, {N} sequential GETs to a local server (median of 10 batches):");
    println!(
        "  plain hyper client, new connection each:   {:>9.1} µs",
        us(plain)
    );
    println!(
        "  plain hyper client, kept connection:       {:>9.1} µs",
        us(plain_keep)
    );
    println!(
        "  unit's wire code alone, new connection:    {:>9.1} µs",
        us(wire_new)
    );
    println!(
        "  unit's wire code alone, kept connection:   {:>9.1} µs",
        us(wire_kept)
    );
    println!(
        "  agent fetch through the kernel, total:     {:>9.1} µs",
        us(through)
    );
    println!(
        "  the message round trip alone:              {:>9.1} µs",
        us(message)
    );
    println!(
        "  outbound request (total - message):        {:>9.1} µs",
        us(overhead)
    );
    println!(
        "    of which kernel, wasi:http, guest:       {:>9.1} µs",
        us(overhead.saturating_sub(wire_kept))
    );
    println!(
        "  ratio outbound / plain kept connection:    {:>9.2}x (goal <= 1.3x)",
        overhead.as_secs_f64() / plain_keep.as_secs_f64()
    );
    println!(
        "  ratio outbound / plain new connection:     {:>9.2}x",
        overhead.as_secs_f64() / plain.as_secs_f64()
    );

    // Tools: one request per run of the `http-get` command.
    let get_wasm = root.join("components/target/wasm32-wasip2/release/http-get.wasm");
    let raw = raw_http::RawCommand::new(&get_wasm);
    let input = json!({ "url": url }).to_string();
    let raw_tool = mean(|| async {
        let _ = raw.run(&input).await;
    })
    .await;
    let mut entry = ToolEntry::new("get", k.load_component(&get_wasm).expect("load http-get"));
    entry.network = NetCaps {
        outbound: vec![format!("http://{addr}")],
        secrets: vec![],
    };
    k.act(&app, RegisterTool(entry)).await.expect("register");
    let tool = mean(|| async {
        let v = k
            .act(&Principal::Operator, InvokeTool::new("get", input.clone()))
            .await
            .expect("tool");
        assert_eq!(v["status"], 200, "{v}");
    })
    .await;
    println!(
        "tools, {N} sequential runs of http-get (instantiate, one GET), median of 10 batches:"
    );
    println!(
        "  raw wasmtime-wasi-http, the same wire code: {:>8.1} µs",
        us(raw_tool)
    );
    println!(
        "  governed Weft tool (gate, grants, record):  {:>8.1} µs",
        us(tool)
    );
    println!(
        "  ratio Weft tool / raw:                      {:>8.2}x",
        tool.as_secs_f64() / raw_tool.as_secs_f64()
    );

    // Inbound: one keep-alive connection, sequential requests.
    let s = tokio::net::TcpStream::connect(listen)
        .await
        .expect("connect route");
    let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let tx = tokio::sync::Mutex::new(tx);
    let route = mean(|| async {
        let req = http::Request::post("/echo")
            .header("host", "bench")
            .body(Full::new(Bytes::from_static(b"hi")))
            .expect("req");
        let mut tx = tx.lock().await;
        tx.ready().await.expect("route connection");
        let resp = tx.send_request(req).await.expect("route");
        assert_eq!(resp.status(), 200);
        let _ = resp.into_body().collect().await;
    })
    .await;
    println!("inbound, {N} sequential requests to an echo agent (median of 10 batches):");
    println!(
        "  through the route (HTTP, gate, record):    {:>9.1} µs  {:>8.0} req/s",
        route.as_secs_f64() * 1e6,
        1.0 / route.as_secs_f64()
    );
    println!(
        "  kernel send (as `agent send` does):        {:>9.1} µs  {:>8.0} req/s",
        message.as_secs_f64() * 1e6,
        1.0 / message.as_secs_f64()
    );
    println!(
        "  ratio route / send:                        {:>9.2}x",
        route.as_secs_f64() / message.as_secs_f64()
    );
    let _ = k.shutdown().await;
}
