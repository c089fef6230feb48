//! End-to-end tests of the mesh transport, over real TCP on 127.0.0.1 where it matters.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::future::pending;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use weft_mesh::{accept, connect, Channel, MeshConfig, MeshError, MeshIdentity, PeerKey};

fn config(kem: bool, require_pq: bool) -> MeshConfig {
    MeshConfig {
        require_pq,
        kem_supported: kem,
        max_frame: 64 * 1024,
        rekey_after_messages: 1 << 20,
        rekey_after: Duration::from_secs(600),
        handshake_timeout: Duration::from_secs(5),
    }
}

fn ids() -> (MeshIdentity, MeshIdentity) {
    (
        MeshIdentity::generate().unwrap(),
        MeshIdentity::generate().unwrap(),
    )
}

/// Two ends of one loopback TCP connection.
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (s, _) = l.accept().await.unwrap();
    c.set_nodelay(true).unwrap();
    s.set_nodelay(true).unwrap();
    (c, s)
}

type Pair = (
    Result<Channel<TcpStream>, MeshError>,
    Result<Channel<TcpStream>, MeshError>,
);

/// Runs connect (on `c`) and accept (on `s`) concurrently; each trusts exactly the other's key.
async fn handshake(
    c: TcpStream,
    s: TcpStream,
    (a, b): (&MeshIdentity, &MeshIdentity),
    (ca, cb): (&MeshConfig, &MeshConfig),
    (a_trusts, b_trusts): (Option<PeerKey>, Option<PeerKey>),
) -> Pair {
    tokio::join!(
        connect(c, a, ca, move |k| Some(*k) == a_trusts),
        accept(s, b, cb, move |k| Some(*k) == b_trusts),
    )
}

async fn established(ca: &MeshConfig, cb: &MeshConfig) -> (Channel<TcpStream>, Channel<TcpStream>) {
    let (a, b) = ids();
    let (c, s) = tcp_pair().await;
    let (x, y) = handshake(
        c,
        s,
        (&a, &b),
        (ca, cb),
        (Some(b.public_key()), Some(a.public_key())),
    )
    .await;
    (x.unwrap(), y.unwrap())
}

/// How the relay between initiator and responder misbehaves.
#[derive(Default, Clone)]
struct Tamper {
    /// Flip the lowest bit of this byte of the initiator-to-responder stream.
    i2r_flip_at: Option<usize>,
    /// Flip the lowest bit of this byte of the responder-to-initiator stream.
    r2i_flip_at: Option<usize>,
}

struct Relay {
    /// When set, the next chunk relayed towards the responder gets one byte flipped.
    flip_next_i2r: Arc<AtomicBool>,
    /// Raw bytes to write towards the responder.
    inject_i2r: mpsc::UnboundedSender<Vec<u8>>,
}

async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    flip_at: Option<usize>,
    armed: Arc<AtomicBool>,
    mut inject: Option<mpsc::UnboundedReceiver<Vec<u8>>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = 0usize;
    loop {
        let injected = async {
            match inject.as_mut() {
                Some(rx) => rx.recv().await,
                None => pending().await,
            }
        };
        tokio::select! {
            n = from.read(&mut buf) => {
                let n = n.unwrap_or(0);
                if n == 0 {
                    let _ = to.shutdown().await;
                    return;
                }
                if let Some(at) = flip_at {
                    if (pos..pos + n).contains(&at) {
                        buf[at - pos] ^= 0x01;
                    }
                }
                if armed.swap(false, Ordering::SeqCst) {
                    // Past the length prefix and the flags: inside the ciphertext.
                    buf[(n - 1).min(10)] ^= 0x01;
                }
                pos += n;
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
            Some(bytes) = injected => {
                if to.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// initiator <-> relay <-> responder over loopback TCP.
async fn relayed(tamper: Tamper) -> (TcpStream, TcpStream, Relay) {
    let (init, front) = tcp_pair().await;
    let (back, resp) = tcp_pair().await;
    let (fr, fw) = front.into_split();
    let (br, bw) = back.into_split();
    let armed = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(pump(fr, bw, tamper.i2r_flip_at, armed.clone(), Some(rx)));
    tokio::spawn(pump(
        br,
        fw,
        tamper.r2i_flip_at,
        Arc::new(AtomicBool::new(false)),
        None,
    ));
    (
        init,
        resp,
        Relay {
            flip_next_i2r: armed,
            inject_i2r: tx,
        },
    )
}

#[tokio::test]
async fn hybrid_keys_agree_over_tcp() {
    let (a, b) = ids();
    let (c, s) = tcp_pair().await;
    let cfg = config(true, true);
    let (x, y) = handshake(
        c,
        s,
        (&a, &b),
        (&cfg, &cfg),
        (Some(b.public_key()), Some(a.public_key())),
    )
    .await;
    let (mut x, mut y) = (x.unwrap(), y.unwrap());
    assert!(x.pq() && y.pq());
    assert_eq!(x.downgrade(), None);
    assert_eq!(x.peer(), b.public_key());
    assert_eq!(y.peer(), a.public_key());
    assert_eq!(x.handshake_hash(), y.handshake_hash());
    assert!(x.info().initiator && !y.info().initiator);
    // Each direction's keys agree, and the two directions differ.
    assert_eq!(x.send_key(), y.recv_key());
    assert_eq!(y.send_key(), x.recv_key());
    assert_ne!(x.send_key().id, x.recv_key().id);
    x.send(b"ping").await.unwrap();
    assert_eq!(y.recv().await.unwrap(), b"ping");
    y.send(b"pong").await.unwrap();
    assert_eq!(x.recv().await.unwrap(), b"pong");
    x.send(b"").await.unwrap();
    assert_eq!(y.recv().await.unwrap(), b"");
}

#[tokio::test]
async fn classical_and_hybrid_sessions_use_different_keys() {
    let (h1, _h2) = established(&config(true, true), &config(true, true)).await;
    let (c1, _c2) = established(&config(false, false), &config(false, false)).await;
    assert!(h1.pq() && !c1.pq());
    assert_ne!(h1.send_key().id, c1.send_key().id);
    assert_ne!(h1.handshake_hash(), c1.handshake_hash());
}

#[tokio::test]
async fn untrusted_initiator_is_refused_by_the_responder() {
    let (a, b) = ids();
    let (c, s) = tcp_pair().await;
    let cfg = config(true, true);
    let (x, y) = handshake(c, s, (&a, &b), (&cfg, &cfg), (Some(b.public_key()), None)).await;
    match y {
        Err(MeshError::UntrustedPeer { key }) => assert_eq!(key, a.public_key()),
        other => panic!("responder: {:?}", other.err()),
    }
    // The initiator finished its part; its first read sees the connection dropped.
    if let Ok(mut x) = x {
        assert!(x.recv().await.is_err());
    }
}

#[tokio::test]
async fn untrusted_responder_is_refused_by_the_initiator() {
    let (a, b) = ids();
    let (c, s) = tcp_pair().await;
    let cfg = config(true, true);
    let (x, y) = handshake(c, s, (&a, &b), (&cfg, &cfg), (None, Some(a.public_key()))).await;
    match x {
        Err(MeshError::UntrustedPeer { key }) => assert_eq!(key, b.public_key()),
        other => panic!("initiator: {:?}", other.err()),
    }
    assert!(
        matches!(y, Err(MeshError::HandshakeClosed)),
        "{:?}",
        y.err()
    );
}

#[tokio::test]
async fn flipped_byte_in_a_frame_drops_the_connection() {
    let (a, b) = ids();
    let (c, s, relay) = relayed(Tamper::default()).await;
    let cfg = config(true, true);
    let (x, y) = handshake(
        c,
        s,
        (&a, &b),
        (&cfg, &cfg),
        (Some(b.public_key()), Some(a.public_key())),
    )
    .await;
    let (mut x, mut y) = (x.unwrap(), y.unwrap());
    x.send(b"intact").await.unwrap();
    assert_eq!(y.recv().await.unwrap(), b"intact");
    relay.flip_next_i2r.store(true, Ordering::SeqCst);
    x.send(b"this frame gets a flipped bit").await.unwrap();
    assert!(matches!(
        y.recv().await,
        Err(MeshError::Authentication { stage: "transport" })
    ));
    // Dropped: later receives and sends fail, and the peer sees the stream end.
    assert!(matches!(y.recv().await, Err(MeshError::Dropped)));
    assert!(matches!(y.send(b"x").await, Err(MeshError::Dropped)));
    let seen = tokio::time::timeout(Duration::from_secs(5), x.recv())
        .await
        .unwrap();
    assert!(matches!(seen, Err(MeshError::Io(_))), "{seen:?}");
}

#[tokio::test]
async fn oversized_frames_are_refused() {
    let (a, b) = ids();
    let (c, s, relay) = relayed(Tamper::default()).await;
    let cfg = config(true, true);
    let (x, y) = handshake(
        c,
        s,
        (&a, &b),
        (&cfg, &cfg),
        (Some(b.public_key()), Some(a.public_key())),
    )
    .await;
    let (mut x, mut y) = (x.unwrap(), y.unwrap());
    // Sending: refused locally, the channel stays usable.
    let max = x.max_payload();
    assert_eq!(max, 64 * 1024);
    let big = vec![7u8; max + 1];
    assert!(matches!(
        x.send(&big).await,
        Err(MeshError::FrameTooLarge { len, max: 65536 }) if len == max + 1
    ));
    x.send(&big[..max]).await.unwrap();
    assert_eq!(y.recv().await.unwrap().len(), max);
    // Receiving: a length prefix claiming ~4 GiB, and nothing after it. The receiver must
    // refuse from the 4 header bytes alone (it would hang waiting for the body otherwise).
    relay.inject_i2r.send(vec![0xff, 0xff, 0xff, 0xf0]).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), y.recv())
        .await
        .expect("refused before reading a body");
    match got {
        Err(MeshError::FrameTooLarge { len, max }) => {
            assert_eq!(max, 65536);
            assert_eq!(len, 0xffff_fff0 - 17);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(y.recv().await, Err(MeshError::Dropped)));
}

#[tokio::test]
async fn peer_without_kem_is_refused_under_require_pq() {
    // Responder requires PQ; the initiator has no KEM.
    let (a, b) = ids();
    let (c, s) = tcp_pair().await;
    let (x, y) = handshake(
        c,
        s,
        (&a, &b),
        (&config(false, false), &config(true, true)),
        (Some(b.public_key()), Some(a.public_key())),
    )
    .await;
    match y {
        Err(MeshError::DowngradeRefused { downgrade }) => {
            assert_eq!(downgrade.peer, a.public_key());
            assert!(downgrade.local_kem && !downgrade.peer_kem);
        }
        other => panic!("responder: {:?}", other.err()),
    }
    match x {
        Err(MeshError::PeerRequiresPq { peer }) => assert_eq!(peer, Some(b.public_key())),
        other => panic!("initiator: {:?}", other.err()),
    }

    // Initiator requires PQ; the responder has no KEM.
    let (c, s) = tcp_pair().await;
    let (x, y) = handshake(
        c,
        s,
        (&a, &b),
        (&config(true, true), &config(false, false)),
        (Some(b.public_key()), Some(a.public_key())),
    )
    .await;
    match x {
        Err(MeshError::DowngradeRefused { downgrade }) => {
            assert_eq!(downgrade.peer, b.public_key());
            assert!(downgrade.local_kem && !downgrade.peer_kem);
        }
        other => panic!("initiator: {:?}", other.err()),
    }
    assert!(
        matches!(y, Err(MeshError::PeerRequiresPq { peer: None })),
        "{:?}",
        y.err()
    );
}

#[tokio::test]
async fn peer_without_kem_is_accepted_as_classical_otherwise() {
    let (a, b) = ids();
    let (c, s) = tcp_pair().await;
    let (x, y) = handshake(
        c,
        s,
        (&a, &b),
        (&config(false, false), &config(true, false)),
        (Some(b.public_key()), Some(a.public_key())),
    )
    .await;
    let (mut x, mut y) = (x.unwrap(), y.unwrap());
    assert!(!x.pq() && !y.pq());
    let d = y.downgrade().expect("downgrade report");
    assert_eq!(d.peer, a.public_key());
    assert!(d.local_kem && !d.peer_kem);
    assert!(d.to_string().contains(&a.public_key_hex()));
    let d = x.downgrade().expect("downgrade report");
    assert!(!d.local_kem && d.peer_kem);
    assert_eq!(x.send_key(), y.recv_key());
    x.send(b"classical").await.unwrap();
    assert_eq!(y.recv().await.unwrap(), b"classical");
}

#[tokio::test]
async fn mitm_stripping_the_kem_flag_breaks_the_handshake() {
    // msg1 on the wire: len(2) || e(32) || version(1) || flags(1) ...: flags is byte 35.
    let (a, b) = ids();
    let (c, s, _relay) = relayed(Tamper {
        i2r_flip_at: Some(35),
        ..Tamper::default()
    })
    .await;
    let cfg = config(true, false);
    let (x, y) = handshake(
        c,
        s,
        (&a, &b),
        (&cfg, &cfg),
        (Some(b.public_key()), Some(a.public_key())),
    )
    .await;
    // The responder saw "no KEM" and answered classically, but the initiator's transcript
    // says it offered the KEM: message 2 fails to authenticate.
    assert!(
        matches!(x, Err(MeshError::Authentication { stage: "handshake" })),
        "{:?}",
        x.err()
    );
    assert!(y.is_err());
}

#[tokio::test]
async fn mitm_tampering_with_message_2_breaks_the_handshake() {
    // A byte of the responder's encrypted payload (its hello and ML-KEM key).
    let (a, b) = ids();
    let (c, s, _relay) = relayed(Tamper {
        r2i_flip_at: Some(2 + 32 + 48 + 1),
        ..Tamper::default()
    })
    .await;
    let cfg = config(true, true);
    let (x, y) = handshake(
        c,
        s,
        (&a, &b),
        (&cfg, &cfg),
        (Some(b.public_key()), Some(a.public_key())),
    )
    .await;
    assert!(matches!(
        x,
        Err(MeshError::Authentication { stage: "handshake" })
    ));
    assert!(y.is_err());
}

#[tokio::test]
async fn rekey_after_n_messages_in_both_directions() {
    let mut cfg = config(true, true);
    cfg.rekey_after_messages = 3;
    let (mut x, mut y) = established(&cfg, &cfg).await;
    let (x0, y0) = (x.send_key(), y.send_key());
    for i in 0..10u32 {
        x.send(&i.to_be_bytes()).await.unwrap();
        assert_eq!(y.recv().await.unwrap(), i.to_be_bytes());
        y.send(&(i + 100).to_be_bytes()).await.unwrap();
        assert_eq!(x.recv().await.unwrap(), (i + 100).to_be_bytes());
        assert_eq!(x.send_key(), y.recv_key());
        assert_eq!(y.send_key(), x.recv_key());
    }
    // Rekeyed after messages 3, 6 and 9 in each direction.
    assert_eq!(x.send_key().epoch, 3);
    assert_eq!(y.send_key().epoch, 3);
    assert_ne!(x.send_key().id, x0.id);
    assert_ne!(y.send_key().id, y0.id);
}

#[tokio::test]
async fn rekey_after_time() {
    let mut cfg = config(true, true);
    cfg.rekey_after = Duration::from_millis(200);
    let (mut x, mut y) = established(&cfg, &cfg).await;
    let k0 = x.send_key();
    x.send(b"early").await.unwrap();
    assert_eq!(y.recv().await.unwrap(), b"early");
    // On a loaded machine the first frame may already be late; count from here.
    let before = x.send_key();
    assert!(before.epoch <= 1);
    tokio::time::sleep(Duration::from_millis(250)).await;
    // This frame carries the rekey flag; the next one uses the new key.
    x.send(b"late").await.unwrap();
    assert_eq!(y.recv().await.unwrap(), b"late");
    assert_eq!(x.send_key().epoch, before.epoch + 1);
    assert_ne!(x.send_key().id, before.id);
    x.send(b"after").await.unwrap();
    assert_eq!(y.recv().await.unwrap(), b"after");
    assert_eq!(y.recv_key(), x.send_key());
    assert_ne!(x.send_key().id, k0.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_halves_send_and_receive_concurrently() {
    let mut cfg = config(true, true);
    cfg.rekey_after_messages = 1000;
    let (x, y) = established(&cfg, &cfg).await;
    let (mut xs, mut xr) = x.split();
    let (mut ys, mut yr) = y.split();
    const N: u32 = 20_000;
    let payload = |i: u32, tag: u8| {
        let mut p = vec![tag; 64 + (i % 512) as usize];
        p[..4].copy_from_slice(&i.to_be_bytes());
        p
    };
    let send_x = tokio::spawn(async move {
        for i in 0..N {
            xs.send(&payload(i, 1)).await.unwrap();
        }
        xs
    });
    let send_y = tokio::spawn(async move {
        for i in 0..N {
            ys.send(&payload(i, 2)).await.unwrap();
        }
        ys
    });
    let recv_y = tokio::spawn(async move {
        for i in 0..N {
            assert_eq!(yr.recv().await.unwrap(), payload(i, 1));
        }
        yr
    });
    let recv_x = tokio::spawn(async move {
        let mut buf = Vec::new();
        for i in 0..N {
            buf.clear();
            xr.recv_into(&mut buf).await.unwrap();
            assert_eq!(buf, payload(i, 2));
        }
        xr
    });
    let (mut xs, yr) = (send_x.await.unwrap(), recv_y.await.unwrap());
    let (_ys, xr) = (send_y.await.unwrap(), recv_x.await.unwrap());
    assert_eq!(xs.key(), yr.key());
    assert_eq!(xs.key().epoch, u64::from(N) / 1000);
    assert!(xr.key().epoch > 0);
    xs.close().await.unwrap();
    let mut yr = yr;
    assert!(matches!(yr.recv().await, Err(MeshError::Closed)));
    assert!(matches!(yr.recv().await, Err(MeshError::Closed)));
    assert!(matches!(xs.send(b"late").await, Err(MeshError::Closed)));
}

#[tokio::test]
async fn send_waits_for_a_slow_reader() {
    // A 4 KiB pipe: without back-pressure the sends below would all complete at once.
    let (a, b) = ids();
    let (p, q) = tokio::io::duplex(4096);
    let cfg = config(true, true);
    let (pa, pb) = (a.public_key(), b.public_key());
    let (x, y) = tokio::join!(
        connect(p, &a, &cfg, move |k| *k == pb),
        accept(q, &b, &cfg, move |k| *k == pa),
    );
    let (mut x, mut y) = (x.unwrap(), y.unwrap());
    let chunk = vec![0u8; 1024];
    let mut sent = 0;
    while tokio::time::timeout(Duration::from_millis(100), x.send(&chunk))
        .await
        .is_ok()
    {
        sent += 1;
        assert!(sent < 16, "send never waited");
    }
    // The timed-out send was cancelled half-way: the channel is dropped, and says so.
    assert!(sent >= 3, "sent {sent}");
    assert!(matches!(x.send(&chunk).await, Err(MeshError::Dropped)));
    for _ in 0..sent {
        assert_eq!(y.recv().await.unwrap(), chunk);
    }
}

#[tokio::test]
async fn handshake_times_out_against_a_silent_peer() {
    let (a, _) = ids();
    let mut cfg = config(true, true);
    cfg.handshake_timeout = Duration::from_millis(200);
    // Silent responder: accepts TCP, never speaks.
    let (c, _silent) = tcp_pair().await;
    let started = std::time::Instant::now();
    let r = connect(c, &a, &cfg, |_| true).await;
    assert!(matches!(r, Err(MeshError::Timeout { after }) if after == cfg.handshake_timeout));
    assert!(started.elapsed() < Duration::from_secs(2));
    // Silent initiator.
    let (_silent, s) = tcp_pair().await;
    let r = accept(s, &a, &cfg, |_| true).await;
    assert!(matches!(r, Err(MeshError::Timeout { .. })));
}

#[tokio::test]
async fn end_of_stream_without_close_is_an_error_and_close_is_clean() {
    let cfg = config(true, true);
    let (x, mut y) = established(&cfg, &cfg).await;
    drop(x);
    assert!(matches!(y.recv().await, Err(MeshError::Io(_))));
    let (mut x, mut y) = established(&cfg, &cfg).await;
    x.send(b"last").await.unwrap();
    x.close().await.unwrap();
    assert_eq!(y.recv().await.unwrap(), b"last");
    assert!(matches!(y.recv().await, Err(MeshError::Closed)));
}

#[tokio::test]
async fn invalid_configs_are_refused() {
    let (a, _) = ids();
    let (c, _s) = tcp_pair().await;
    let mut cfg = config(false, true);
    assert!(matches!(
        connect(c, &a, &cfg, |_| true).await,
        Err(MeshError::InvalidConfig(_))
    ));
    cfg = config(true, true);
    cfg.max_frame = weft_mesh::MAX_FRAME_LIMIT + 1;
    assert!(cfg.validate().is_err());
    cfg.max_frame = 1;
    cfg.rekey_after_messages = 0;
    assert!(cfg.validate().is_err());
}
