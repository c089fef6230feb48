//! Outbound `https` on the wire, against TLS servers this test starts on
//! 127.0.0.1 with certificates from a test CA (rcgen): trusted through
//! `[net] ca_certs` it works; without that CA, or with a leaf for another
//! name, it fails with a certificate reason; the grants and the address
//! check apply to `https` as to `http`; bad `ca_certs` files are named.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{Empty, Full};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use weft_model::net::NetCaps;
use weft_net::fetch::{self, Failure, Target};
use weft_net::pool::Pool;
use weft_net::tls::{CaError, TlsClient};

struct Ca {
    cert: Certificate,
    key: KeyPair,
}

fn ca() -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "Weft test CA");
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Ca { cert, key }
}

/// A leaf for `names` signed by `ca`.
fn leaf(ca: &Ca, names: &[&str]) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let p = CertificateParams::new(names).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (cert.der().clone(), der)
}

/// An HTTPS server answering every request `secure ok`.
async fn server(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> SocketAddr {
    counted_server(cert, key).await.0
}

/// [`server`], counting the connections it accepted.
async fn counted_server(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let n = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            n.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(s).await else {
                    return;
                };
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                        Bytes::from_static(b"secure ok"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, accepted)
}

fn write_ca(dir: &tempfile::TempDir, ca: &Ca) -> PathBuf {
    let p = dir.path().join("ca.pem");
    std::fs::write(&p, ca.cert.pem()).unwrap();
    p
}

fn caps(list: &[&str]) -> NetCaps {
    NetCaps {
        outbound: list.iter().map(|s| s.to_string()).collect(),
        secrets: vec![],
    }
}

/// Resolve under `grant` and send a GET to `url`.
async fn get(url: &str, grant: &str, tls: &TlsClient) -> Result<fetch::Fetched, Failure> {
    let t = Target::of(&url.parse().unwrap()).unwrap();
    let grants = t.grants(&caps(&[grant]));
    assert!(!grants.is_empty(), "{url} outside {grant}");
    let addr = fetch::resolve(&t, &grants).await?;
    let req = http::Request::get(url).body(Empty::<Bytes>::new()).unwrap();
    fetch::send(addr, &t, Some(tls), None, req, 1 << 20).await
}

#[tokio::test]
async fn a_server_signed_by_a_configured_ca_is_reached_by_ip_and_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (cert, key) = leaf(&ca, &["localhost", "127.0.0.1"]);
    let port = server(cert, key).await.port();
    let tls = TlsClient::new(&[PathBuf::from("ca.pem")], Some(dir.path()))
        .err()
        .map(|e| e.to_string());
    assert!(tls.unwrap().contains("ca.pem"), "missing file not named");
    write_ca(&dir, &ca);
    // Relative to the config's directory.
    let tls = TlsClient::new(&[PathBuf::from("ca.pem")], Some(dir.path())).unwrap();
    for (url, grant) in [
        (
            format!("https://127.0.0.1:{port}/x?k=v"),
            "https://127.0.0.1:*",
        ),
        (format!("https://localhost:{port}/x"), "https://localhost:*"),
    ] {
        let f = get(&url, grant, &tls).await.unwrap();
        assert_eq!(f.parts.status, 200, "{url}");
        assert_eq!(&f.body[..], b"secure ok", "{url}");
    }
}

#[tokio::test]
async fn an_unknown_issuer_is_not_trusted() {
    let ca = ca();
    let (cert, key) = leaf(&ca, &["localhost", "127.0.0.1"]);
    let port = server(cert, key).await.port();
    // Mozilla roots only: the test CA is not among them.
    let tls = TlsClient::new(&[], None).unwrap();
    let url = format!("https://127.0.0.1:{port}/x");
    match get(&url, "https://127.0.0.1:*", &tls).await {
        Err(Failure::Certificate(why)) => {
            assert!(why.contains("certificate not trusted"), "{why}")
        }
        other => panic!("expected a certificate failure, got {other:?}"),
    }
    // Another CA configured does not help either.
    let dir = tempfile::tempdir().unwrap();
    let other = write_ca(&dir, &self::ca());
    let tls = TlsClient::new(&[other], None).unwrap();
    let e = get(&url, "https://127.0.0.1:*", &tls).await.unwrap_err();
    assert_eq!(e.outcome(), "tls", "{e}");
}

#[tokio::test]
async fn a_leaf_for_another_name_is_a_hostname_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (cert, key) = leaf(&ca, &["other.example"]);
    let port = server(cert, key).await.port();
    let tls = TlsClient::new(&[write_ca(&dir, &ca)], None).unwrap();
    for (url, grant) in [
        (format!("https://127.0.0.1:{port}/"), "https://127.0.0.1:*"),
        (format!("https://localhost:{port}/"), "https://localhost:*"),
    ] {
        match get(&url, grant, &tls).await {
            Err(Failure::Certificate(why)) => assert!(why.contains("hostname mismatch"), "{why}"),
            other => panic!("{url}: expected a hostname mismatch, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_kept_connection_serves_only_its_own_host_and_address() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (cert, key) = leaf(&ca, &["localhost", "127.0.0.1"]);
    let (addr, accepted) = counted_server(cert, key).await;
    let tls = TlsClient::new(&[write_ca(&dir, &ca)], None).unwrap();
    let pool = Pool::default();
    let get = |url: String, grant: &'static str| {
        let (tls, pool) = (&tls, &pool);
        async move {
            let t = Target::of(&url.parse().unwrap()).unwrap();
            let grants = t.grants(&caps(&[grant]));
            let a = fetch::resolve(&t, &grants).await.unwrap();
            let req = http::Request::get(&url)
                .body(Empty::<Bytes>::new())
                .unwrap();
            let f = fetch::send(a, &t, Some(tls), Some(pool), req, 1 << 20)
                .await
                .unwrap();
            assert_eq!(&f.body[..], b"secure ok");
        }
    };
    let by_ip = format!("https://127.0.0.1:{}/", addr.port());
    for _ in 0..3 {
        get(by_ip.clone(), "https://127.0.0.1:*").await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "not reused");
    assert_eq!(pool.idle(), 1);
    // Same address, another host name: its own connection (and handshake).
    get(
        format!("https://localhost:{}/", addr.port()),
        "https://localhost:*",
    )
    .await;
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert_eq!(pool.idle(), 2);
}

#[tokio::test]
async fn grants_and_the_address_check_apply_to_https() {
    let t = Target::of(&"https://127.0.0.1:8443/x".parse().unwrap()).unwrap();
    assert!(
        t.grants(&caps(&["http://127.0.0.1:*"])).is_empty(),
        "http grant let https through"
    );
    assert!(
        t.grants(&caps(&["https://127.0.0.1"])).is_empty(),
        "default port 443 matched 8443"
    );
    assert!(t.grants(&caps(&["https://127.0.0.1:9443"])).is_empty());
    assert!(!t.grants(&caps(&["https://127.0.0.1:8443"])).is_empty());
    assert!(!t.grants(&caps(&["https://127.0.0.1:*"])).is_empty());
    // A wildcard https grant does not reach loopback through a name.
    let t = Target::of(&"https://localhost:8443/x".parse().unwrap()).unwrap();
    let e = fetch::resolve(&t, &t.grants(&caps(&["https://*:*"])))
        .await
        .unwrap_err();
    assert_eq!(e.outcome(), "refused", "{e}");
}

#[test]
fn bad_ca_files_are_boot_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let e = TlsClient::new(std::slice::from_ref(&missing), None).unwrap_err();
    assert!(matches!(e, CaError::Read(..)), "{e}");
    assert!(e.to_string().contains("nope.pem"), "{e}");

    let text = dir.path().join("text.pem");
    std::fs::write(&text, "not a certificate\n").unwrap();
    let e = TlsClient::new(std::slice::from_ref(&text), None).unwrap_err();
    assert!(matches!(e, CaError::Empty(_)), "{e}");
    assert!(e.to_string().contains("text.pem"), "{e}");

    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let e = TlsClient::new(std::slice::from_ref(&broken), None).unwrap_err();
    assert!(
        matches!(e, CaError::Malformed(..) | CaError::Rejected(..)),
        "{e}"
    );
    assert!(e.to_string().contains("broken.pem"), "{e}");
}
