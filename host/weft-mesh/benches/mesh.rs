//! Mesh transport benchmark (plain main, no criterion). Two "nodes" on two OS threads, each
//! with its own single-threaded tokio runtime, talk over loopback TCP. Prints a markdown table:
//! handshake latency (Noise-only vs hybrid), one-way 1 KiB messages/s, request/reply round trip.

use std::thread;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use weft_mesh::{accept, connect, MeshConfig, MeshError, MeshIdentity};

const HANDSHAKES: usize = 200;
const STREAM_MESSAGES: u32 = 400_000;
const ROUND_TRIPS: usize = 20_000;
const PAYLOAD: usize = 1024;

fn config(kem: bool) -> MeshConfig {
    MeshConfig {
        require_pq: kem,
        kem_supported: kem,
        ..MeshConfig::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The server node: accepts connections; the first frame of each says what to do.
fn server(listener: std::net::TcpListener, id: MeshIdentity, kem: bool) {
    runtime().block_on(async move {
        let listener = TcpListener::from_std(listener).expect("listener");
        loop {
            let (sock, _) = listener.accept().await.expect("accept");
            sock.set_nodelay(true).expect("nodelay");
            let id = id.clone();
            tokio::spawn(async move {
                let Ok(mut ch) = accept(sock, &id, &config(kem), |_| true).await else {
                    return;
                };
                let Ok(mode) = ch.recv().await else { return };
                match mode.as_slice() {
                    b"sink" => {
                        let mut n = 0u64;
                        let (mut tx, mut rx) = ch.split();
                        let mut buf = Vec::with_capacity(PAYLOAD);
                        loop {
                            buf.clear();
                            match rx.recv_into(&mut buf).await {
                                Ok(_) => n += 1,
                                Err(_) => break,
                            }
                        }
                        let _ = tx.send(&n.to_be_bytes()).await;
                    }
                    b"echo" => {
                        while let Ok(m) = ch.recv().await {
                            if ch.send(&m).await.is_err() {
                                break;
                            }
                        }
                    }
                    _ => {}
                }
            });
        }
    });
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn p99(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() * 99 / 100]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    // Two server nodes: one hybrid, one Noise-only.
    let server_id = MeshIdentity::generate().expect("identity");
    let mut addrs = Vec::new();
    for kem in [true, false] {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        addrs.push(l.local_addr().expect("addr"));
        let id = server_id.clone();
        thread::spawn(move || server(l, id, kem));
    }
    let (hybrid_addr, classical_addr) = (addrs[0], addrs[1]);
    let client_id = MeshIdentity::generate().expect("identity");

    let rows = runtime().block_on(async move {
        let mut rows: Vec<(String, String, String)> = Vec::new();
        for (name, addr, kem) in [
            ("Noise-only (XX)", classical_addr, false),
            ("hybrid (XX + ML-KEM-768)", hybrid_addr, true),
        ] {
            let mut times = Vec::with_capacity(HANDSHAKES);
            for _ in 0..HANDSHAKES + 10 {
                let sock = TcpStream::connect(addr).await.expect("connect");
                sock.set_nodelay(true).expect("nodelay");
                let t = Instant::now();
                let mut ch = connect(sock, &client_id, &config(kem), |_| true)
                    .await
                    .expect("handshake");
                times.push(t.elapsed());
                assert_eq!(ch.pq(), kem);
                ch.send(b"bye").await.expect("send");
                ch.close().await.expect("close");
            }
            let mut times = times.split_off(10);
            rows.push((
                format!("handshake, {name}, median of {HANDSHAKES}"),
                format!("{} (p99 {})", us(median(&mut times)), us(p99(&mut times))),
                "-".into(),
            ));
        }

        // One-way stream of 1 KiB frames.
        for batch in [1usize, 16] {
            let sock = TcpStream::connect(hybrid_addr).await.expect("connect");
            sock.set_nodelay(true).expect("nodelay");
            let ch = connect(sock, &client_id, &config(true), |_| true)
                .await
                .expect("handshake");
            let (mut tx, mut rx) = ch.split();
            tx.send(b"sink").await.expect("mode");
            let payload = vec![0x5au8; PAYLOAD];
            let frames: Vec<&[u8]> = vec![&payload[..]; batch];
            let t = Instant::now();
            let mut sent = 0u32;
            while sent < STREAM_MESSAGES {
                if batch == 1 {
                    tx.send(&payload).await.expect("send");
                } else {
                    tx.send_many(&frames).await.expect("send");
                }
                sent += batch as u32;
            }
            tx.close().await.expect("close");
            let got = rx.recv().await.expect("count");
            let elapsed = t.elapsed();
            let n = u64::from_be_bytes(got.as_slice().try_into().expect("u64"));
            assert_eq!(n, u64::from(sent));
            let rate = n as f64 / elapsed.as_secs_f64();
            let how = if batch == 1 {
                "`send` per frame".to_string()
            } else {
                format!("`send_many` of {batch}")
            };
            rows.push((
                format!("1 KiB frames one way, hybrid, {how}"),
                format!(
                    "{:.0} msg/s ({:.0} MB/s)",
                    rate,
                    rate * PAYLOAD as f64 / 1e6
                ),
                "≥ 100,000 msg/s".into(),
            ));
        }

        // Request/reply.
        for size in [64usize, PAYLOAD] {
            let sock = TcpStream::connect(hybrid_addr).await.expect("connect");
            sock.set_nodelay(true).expect("nodelay");
            let mut ch = connect(sock, &client_id, &config(true), |_| true)
                .await
                .expect("handshake");
            ch.send(b"echo").await.expect("mode");
            let req = vec![1u8; size];
            let mut times = Vec::with_capacity(ROUND_TRIPS);
            for i in 0..ROUND_TRIPS + 1000 {
                let t = Instant::now();
                ch.send(&req).await.expect("send");
                let r = ch.recv().await.expect("recv");
                if i >= 1000 {
                    times.push(t.elapsed());
                }
                assert_eq!(r.len(), size);
            }
            ch.close().await.expect("close");
            rows.push((
                format!("request/reply round trip, hybrid, {size} B, median of {ROUND_TRIPS}"),
                format!("{} (p99 {})", us(median(&mut times)), us(p99(&mut times))),
                "≤ 100 µs".into(),
            ));
        }
        Ok::<_, MeshError>(rows)
    });
    let rows = rows.expect("bench");
    println!("\n| weft-mesh (loopback TCP, 2 nodes = 2 threads) | result | goal |");
    println!("|---|---|---|");
    for (a, b, c) in rows {
        println!("| {a} | {b} | {c} |");
    }
}
