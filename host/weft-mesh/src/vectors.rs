//! Test vectors: `tests/vectors/mesh-v1.json` (format in docs/mesh.md, "Test vectors").
//!
//! The generator is the test `vectors::file_matches_generator`: run
//! `WEFT_MESH_WRITE_VECTORS=1 cargo test -p weft-mesh --lib vectors::file_matches_generator` to rewrite the file after a
//! deliberate change of the wire format. Without the variable the test fails on any difference.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

use crate::frame::{Opener, Sealer, FLAG_CLOSE, FLAG_REKEY, LEN_BYTES, TAG_BYTES};
use crate::handshake::{Entropy, Initiator, Responder, NOISE_PARAMS, PROLOGUE};
use crate::{MeshConfig, MeshIdentity};

const REKEY_AFTER: u64 = 2;

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct File {
    format: String,
    noise_params: String,
    prologue: String,
    regenerate: String,
    cases: Vec<Case>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Side {
    static_private: String,
    static_public: String,
    ephemeral_private: String,
    kem_supported: bool,
    require_pq: bool,
    max_frame: u32,
    /// Responder: ML-KEM-768 key generation seed d || z. Initiator: encapsulation randomness m.
    kem_randomness: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Message {
    from: String,
    payload: String,
    noise: String,
    wire: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Split {
    i2r: String,
    r2i: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Kem {
    encapsulation_key: String,
    ciphertext: String,
    shared_secret: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Frame {
    direction: String,
    epoch: u64,
    counter: u64,
    key: String,
    flags: u8,
    payload: String,
    wire: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Case {
    name: String,
    pq: bool,
    rekey_after_messages: u64,
    initiator: Side,
    responder: Side,
    handshake: Vec<Message>,
    handshake_hash: String,
    noise_split: Split,
    kem: Option<Kem>,
    traffic_keys: Split,
    frames: Vec<Frame>,
}

fn seq<const N: usize>(start: u8) -> [u8; N] {
    std::array::from_fn(|i| start.wrapping_add(i as u8))
}

struct Inputs {
    i_static: [u8; 32],
    r_static: [u8; 32],
    i_eph: [u8; 32],
    r_eph: [u8; 32],
    kem_seed: [u8; 64],
    encaps_m: [u8; 32],
    i_config: MeshConfig,
    r_config: MeshConfig,
}

fn inputs(initiator_kem: bool) -> Inputs {
    let config = |kem: bool| MeshConfig {
        require_pq: false,
        kem_supported: kem,
        max_frame: 65536,
        rekey_after_messages: REKEY_AFTER,
        rekey_after: Duration::from_secs(3600),
        handshake_timeout: Duration::from_secs(10),
    };
    Inputs {
        i_static: seq(0x01),
        r_static: seq(0x21),
        i_eph: seq(0x41),
        r_eph: seq(0x61),
        kem_seed: seq(0x81),
        encaps_m: seq(0xc1),
        i_config: config(initiator_kem),
        r_config: config(true),
    }
}

fn entropy(eph: [u8; 32], inp: &Inputs) -> Entropy {
    Entropy {
        ephemeral: Some(Zeroizing::new(eph)),
        kem_seed: Zeroizing::new(inp.kem_seed),
        encaps_m: Zeroizing::new(inp.encaps_m),
    }
}

fn wire(noise: &[u8]) -> Vec<u8> {
    let mut w = (noise.len() as u16).to_be_bytes().to_vec();
    w.extend_from_slice(noise);
    w
}

/// The frames each case carries: (direction is i2r, payload, close).
fn frame_script() -> Vec<(bool, Vec<u8>, bool)> {
    vec![
        (true, b"frame 0 from the initiator".to_vec(), false),
        (
            true,
            b"frame 1: the sender rekeys after this one".to_vec(),
            false,
        ),
        (true, b"frame 2: under the next key".to_vec(), false),
        (false, Vec::new(), false),
        (false, b"reply 1: rekey".to_vec(), false),
        (false, b"reply 2: next key".to_vec(), false),
        (true, Vec::new(), true),
    ]
}

fn generate_case(name: &str, initiator_kem: bool) -> Case {
    let inp = inputs(initiator_kem);
    let (ia, ra) = (
        MeshIdentity::from_secret_bytes(inp.i_static),
        MeshIdentity::from_secret_bytes(inp.r_static),
    );
    let admit = |_: &crate::PeerKey| true;
    let mut i = Initiator::new(&ia, &inp.i_config, entropy(inp.i_eph, &inp)).unwrap();
    let mut r = Responder::new(&ra, &inp.r_config, entropy(inp.r_eph, &inp)).unwrap();
    let m1 = i.write_msg1().unwrap();
    r.read_msg1(&m1).unwrap();
    let m2 = r.write_msg2().unwrap();
    i.read_msg2(&m2, &admit).unwrap();
    let m3 = i.write_msg3().unwrap();
    r.read_msg3(&m3, &admit).unwrap();
    let (ie, re) = (i.finish().unwrap(), r.finish().unwrap());
    assert_eq!(ie.handshake_hash, re.handshake_hash);
    assert_eq!(*ie.keys.i2r, *re.keys.i2r);
    assert_eq!(*ie.keys.r2i, *re.keys.r2i);
    assert_eq!(ie.trace.kem_shared, re.trace.kem_shared);
    assert_eq!(ie.trace.payloads, re.trace.payloads);
    let pq = ie.negotiation.pq;

    let now = Instant::now();
    let long = Duration::from_secs(3600);
    let mut i2r = Sealer::new(ie.keys.i2r.clone(), 65536, REKEY_AFTER, long, now);
    let mut r2i = Sealer::new(re.keys.r2i.clone(), 65536, REKEY_AFTER, long, now);
    let mut i2r_open = Opener::new(re.keys.i2r.clone(), 65536);
    let mut r2i_open = Opener::new(ie.keys.r2i.clone(), 65536);
    let mut frames = Vec::new();
    for (to_responder, payload, close) in frame_script() {
        let (sealer, opener) = if to_responder {
            (&mut i2r, &mut i2r_open)
        } else {
            (&mut r2i, &mut r2i_open)
        };
        let (epoch, counter, key) = (sealer.dir.epoch(), sealer.dir.counter(), *sealer.dir.key());
        let mut out = Vec::new();
        sealer.seal_into(&payload, close, now, &mut out).unwrap();
        let len: [u8; 4] = out[..4].try_into().unwrap();
        let mut body = out[4..].to_vec();
        opener.check_len(u32::from_be_bytes(len)).unwrap();
        let opened = opener.open_in_place(len, &mut body).unwrap();
        assert_eq!(opened.close, close);
        assert_eq!(&body[1..body.len() - TAG_BYTES], &payload[..]);
        frames.push(Frame {
            direction: if to_responder { "i2r" } else { "r2i" }.into(),
            epoch,
            counter,
            key: hex::encode(key),
            flags: body[0],
            payload: hex::encode(&payload),
            wire: hex::encode(&out),
        });
    }

    let side = |sk: [u8; 32], eph: [u8; 32], c: &MeshConfig, kem: &[u8]| Side {
        static_private: hex::encode(sk),
        static_public: MeshIdentity::from_secret_bytes(sk).public_key_hex(),
        ephemeral_private: hex::encode(eph),
        kem_supported: c.kem_supported,
        require_pq: c.require_pq,
        max_frame: c.max_frame as u32,
        kem_randomness: hex::encode(kem),
    };
    let t = &ie.trace;
    let msg = |from: &str, payload: &[u8], noise: &[u8]| Message {
        from: from.into(),
        payload: hex::encode(payload),
        noise: hex::encode(noise),
        wire: hex::encode(wire(noise)),
    };
    Case {
        name: name.into(),
        pq,
        rekey_after_messages: REKEY_AFTER,
        initiator: side(inp.i_static, inp.i_eph, &inp.i_config, &inp.encaps_m),
        responder: side(inp.r_static, inp.r_eph, &inp.r_config, &inp.kem_seed),
        handshake: vec![
            msg("initiator", &t.payloads[0], &m1),
            msg("responder", &t.payloads[1], &m2),
            msg("initiator", &t.payloads[2], &m3),
        ],
        handshake_hash: hex::encode(ie.handshake_hash),
        noise_split: Split {
            i2r: hex::encode(t.split.0),
            r2i: hex::encode(t.split.1),
        },
        kem: t.kem_shared.map(|ss| Kem {
            encapsulation_key: hex::encode(t.kem_ek.as_deref().unwrap_or_default()),
            ciphertext: hex::encode(t.kem_ct.as_deref().unwrap_or_default()),
            shared_secret: hex::encode(ss),
        }),
        traffic_keys: Split {
            i2r: hex::encode(*ie.keys.i2r),
            r2i: hex::encode(*ie.keys.r2i),
        },
        frames,
    }
}

fn generate() -> File {
    File {
        format: "weft-mesh test vectors v1 (docs/mesh.md)".into(),
        noise_params: NOISE_PARAMS.into(),
        prologue: hex::encode(PROLOGUE),
        regenerate: "WEFT_MESH_WRITE_VECTORS=1 cargo test -p weft-mesh --lib vectors::file_matches_generator".into(),
        cases: vec![
            generate_case("hybrid", true),
            generate_case("classical", false),
        ],
    }
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/mesh-v1.json")
}

fn load() -> File {
    serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn arr32(s: &str) -> [u8; 32] {
    unhex(s).try_into().unwrap()
}

#[test]
fn file_matches_generator() {
    let generated = generate();
    if std::env::var_os("WEFT_MESH_WRITE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        std::fs::write(path(), text).unwrap();
    }
    let file = load();
    assert_eq!(file.cases.len(), generated.cases.len());
    for (f, g) in file.cases.iter().zip(&generated.cases) {
        assert_eq!(f, g, "case {} differs from the generator", f.name);
    }
    assert_eq!(file, generated);
}

/// Re-derives the keys and opens the frames from the file's values alone, with HKDF and
/// ChaCha20-Poly1305 called directly: what another implementation would do.
#[test]
fn file_is_self_consistent() {
    use hkdf::Hkdf;
    use sha2::Sha256;
    let file = load();
    assert_eq!(file.noise_params, "Noise_XX_25519_ChaChaPoly_BLAKE2s");
    assert_eq!(unhex(&file.prologue), b"weft-mesh/1");
    assert!(file.cases.iter().any(|c| c.pq) && file.cases.iter().any(|c| !c.pq));
    for case in &file.cases {
        for side in [&case.initiator, &case.responder] {
            let id = MeshIdentity::from_secret_bytes(arr32(&side.static_private));
            assert_eq!(id.public_key_hex(), side.static_public);
        }
        // Message 1 is e || hello in clear.
        let m1 = unhex(&case.handshake[0].noise);
        assert_eq!(&m1[32..], &unhex(&case.handshake[0].payload)[..]);
        assert_eq!(m1[32], 1, "version");
        assert_eq!(m1[33] & 1 == 1, case.initiator.kem_supported);

        let mut ikm = unhex(&case.noise_split.i2r);
        ikm.extend(unhex(&case.noise_split.r2i));
        let mode = match &case.kem {
            Some(kem) => {
                assert!(case.pq);
                assert_eq!(unhex(&kem.encapsulation_key).len(), 1184);
                assert_eq!(unhex(&kem.ciphertext).len(), 1088);
                assert!(case.handshake[1].payload.ends_with(&kem.encapsulation_key));
                assert_eq!(case.handshake[2].payload, kem.ciphertext);
                ikm.extend(unhex(&kem.shared_secret));
                "hybrid"
            }
            None => {
                assert!(!case.pq);
                assert!(case.handshake[2].payload.is_empty());
                "classical"
            }
        };
        let hk = Hkdf::<Sha256>::new(Some(&unhex(&case.handshake_hash)), &ikm);
        for (label, want) in [
            ("i2r", &case.traffic_keys.i2r),
            ("r2i", &case.traffic_keys.r2i),
        ] {
            let mut k = [0u8; 32];
            hk.expand(format!("weft-mesh/1 {mode} {label}").as_bytes(), &mut k)
                .unwrap();
            assert_eq!(hex::encode(k), *want, "{} {label}", case.name);
        }

        for dir in ["i2r", "r2i"] {
            let mut key = arr32(if dir == "i2r" {
                &case.traffic_keys.i2r
            } else {
                &case.traffic_keys.r2i
            });
            let mut counter = 0u64;
            let mut epoch = 0u64;
            for f in case.frames.iter().filter(|f| f.direction == dir) {
                assert_eq!(
                    (f.epoch, f.counter, hex::encode(key)),
                    (epoch, counter, f.key.clone())
                );
                let wire = unhex(&f.wire);
                let len = u32::from_be_bytes(wire[..4].try_into().unwrap()) as usize;
                assert_eq!(len, wire.len() - LEN_BYTES);
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&counter.to_le_bytes());
                let mut body = wire[4..wire.len() - 16].to_vec();
                let tag = &wire[wire.len() - 16..];
                ChaCha20Poly1305::new((&key).into())
                    .decrypt_in_place_detached(&nonce.into(), &wire[..4], &mut body, tag.into())
                    .unwrap();
                assert_eq!(body[0], f.flags);
                assert_eq!(hex::encode(&body[1..]), f.payload);
                counter += 1;
                if f.flags & FLAG_REKEY != 0 {
                    let mut next = [0u8; 32];
                    Hkdf::<Sha256>::from_prk(&key)
                        .unwrap()
                        .expand(b"weft-mesh/1 rekey", &mut next)
                        .unwrap();
                    key = next;
                    counter = 0;
                    epoch += 1;
                }
            }
        }
        let flags: Vec<u8> = case.frames.iter().map(|f| f.flags).collect();
        assert!(flags.contains(&FLAG_REKEY) && flags.contains(&FLAG_CLOSE));
    }
}

/// The async driver puts exactly the vector bytes on the wire.
#[tokio::test]
async fn async_channel_writes_the_vector_bytes() {
    let file = load();
    for (case, initiator_kem) in file.cases.iter().zip([true, false]) {
        let inp = inputs(initiator_kem);
        let (ia, ra) = (
            MeshIdentity::from_secret_bytes(inp.i_static),
            MeshIdentity::from_secret_bytes(inp.r_static),
        );
        // initiator <-> relay <-> responder, the relay records each direction.
        let (i_io, i_relay) = tokio::io::duplex(1 << 16);
        let (r_io, r_relay) = tokio::io::duplex(1 << 16);
        let recorded = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let (ir, iw) = tokio::io::split(i_relay);
        let (rr, rw) = tokio::io::split(r_relay);
        let pump = |mut from: tokio::io::ReadHalf<tokio::io::DuplexStream>,
                    mut to: tokio::io::WriteHalf<tokio::io::DuplexStream>,
                    i2r: bool| {
            let rec = recorded.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    let n = from.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        let _ = to.shutdown().await;
                        break;
                    }
                    {
                        let mut r = rec.lock().unwrap();
                        if i2r { &mut r.0 } else { &mut r.1 }.extend_from_slice(&buf[..n]);
                    }
                    if to.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            })
        };
        let p1 = pump(ir, rw, true);
        let p2 = pump(rr, iw, false);
        let (ic, rc) = tokio::join!(
            crate::channel::connect_with(i_io, &ia, &inp.i_config, entropy(inp.i_eph, &inp)),
            crate::channel::accept_with(r_io, &ra, &inp.r_config, entropy(inp.r_eph, &inp)),
        );
        let (mut ic, mut rc) = (ic.unwrap(), rc.unwrap());
        assert_eq!(hex::encode(ic.handshake_hash()), case.handshake_hash);
        assert_eq!(ic.pq(), case.pq);
        for f in &case.frames {
            let payload = unhex(&f.payload);
            let (tx, rx) = if f.direction == "i2r" {
                (&mut ic, &mut rc)
            } else {
                (&mut rc, &mut ic)
            };
            if f.flags & FLAG_CLOSE != 0 {
                tx.close().await.unwrap();
                assert!(matches!(rx.recv().await, Err(crate::MeshError::Closed)));
            } else {
                tx.send(&payload).await.unwrap();
                assert_eq!(rx.recv().await.unwrap(), payload);
            }
        }
        drop((ic, rc));
        p1.await.unwrap();
        p2.await.unwrap();
        let (i2r, r2i) = std::mem::take(&mut *recorded.lock().unwrap());
        let mut want_i2r = unhex(&case.handshake[0].wire);
        want_i2r.extend(unhex(&case.handshake[2].wire));
        let mut want_r2i = unhex(&case.handshake[1].wire);
        for f in &case.frames {
            if f.direction == "i2r" {
                &mut want_i2r
            } else {
                &mut want_r2i
            }
            .extend(unhex(&f.wire));
        }
        assert_eq!(hex::encode(i2r), hex::encode(want_i2r), "{} i2r", case.name);
        assert_eq!(hex::encode(r2i), hex::encode(want_r2i), "{} r2i", case.name);
    }
}
