//! The `net` unit's scenarios for `tests/chokepoint.rs`: an outbound
//! request by an agent, a request on a route, route changes and secrets,
//! against an HTTP server started here on 127.0.0.1.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::OnceLock;

use serde_json::{json, Value};
use weft_kernel::ipc::SendMessage;
use weft_kernel::{Capabilities, Kernel, MessageTarget, Payload, Principal, Spawn, SpawnRequest};
use weft_model::net::{NetCaps, Route};
use weft_net::unit::{RouteAdd, RouteClear};
use weft_net::NetUnit;

/// A server answering every request `200 ok`; its port.
fn upstream() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut c in l.incoming().flatten() {
                let mut b = [0u8; 4096];
                let _ = c.read(&mut b);
                let _ = c.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            }
        });
        port
    })
}

/// The (principal, effect record) of a net kind; `None`: not the unit's.
pub fn scenario(kind: &str) -> Option<(&'static str, Option<&'static str>)> {
    Some(match kind {
        "net.http.**" => ("nf", Some("net.http")),
        "net.ingress.*" => ("app:web", Some("net.ingress")),
        "net.route.add" => ("app:web", Some("net.route.add")),
        "net.route.clear" => ("app:web", Some("net.route.clear")),
        "secret.set" => ("operator", Some("secret.set")),
        "secret.remove" => ("operator", Some("secret.remove")),
        "net.list" | "secret.list" => ("operator", None),
        _ => return None,
    })
}

fn unit(k: &Kernel) -> &NetUnit {
    k.subsystem::<NetUnit>().unwrap()
}

fn route() -> Route {
    Route {
        path: "/cp".into(),
        agent: "echo".into(),
        ..Route::default()
    }
}

/// Agents and routes the scenarios use (done once, permitted).
pub async fn prepare(k: &Kernel) {
    let fetcher = k.load_component(&weft_testkit::guest("fetcher")).unwrap();
    let mut req = SpawnRequest::new("nf", fetcher.clone());
    req.capabilities = Capabilities {
        network: NetCaps {
            outbound: vec![format!("http://127.0.0.1:{}", upstream())],
            secrets: vec![],
        },
        ..Capabilities::default()
    };
    k.act(&Principal::Operator, Spawn::new(req)).await.unwrap();
    let mut req = SpawnRequest::new("web.echo", fetcher);
    req.config = json!({ "mode": "echo" });
    k.act(&Principal::app("web", None), Spawn::new(req))
        .await
        .unwrap();
    unit(k).routes().add("web", route(), None).unwrap();
}

/// What `kind` needs in place first.
pub async fn setup(k: &Kernel, kind: &str) {
    match kind {
        "secret.remove" => {
            let r = json!({ "op": "secret-set", "app": "web", "name": "K", "value": "v" });
            super::control(k, "net", r).await.unwrap();
        }
        "net.ingress.*" => unit(k).routes().add("web", route(), None).unwrap(),
        _ => {}
    }
}

/// Ask for `kind` once; `None`: not the unit's.
pub async fn run(k: &Kernel, kind: &str) -> Option<Result<(), String>> {
    let ok = |r: Result<Value, String>| r.map(|_| ());
    let err = |e: weft_kernel::KernelError| e.to_string();
    Some(match kind {
        "net.http.**" => {
            let url = format!("http://127.0.0.1:{}/x", upstream());
            let send = SendMessage::new(
                MessageTarget::Named("nf".into()),
                Payload::Json(json!({ "fetch": url })),
            )
            .wait(std::time::Duration::from_secs(5));
            match k.act(&Principal::Kernel, send).await {
                Ok(weft_kernel::SendOutcome::Replied(Payload::Json(v))) if v["status"] == 200 => {
                    Ok(())
                }
                other => Err(format!("{other:?}")),
            }
        }
        "net.ingress.*" => {
            let addr = unit(k).listening().unwrap().to_string();
            let status = tokio::task::spawn_blocking(move || post(&addr, "/cp"))
                .await
                .unwrap();
            if status == 200 {
                Ok(())
            } else {
                Err(format!("status {status}"))
            }
        }
        "net.route.add" => {
            let a = RouteAdd::new(unit(k), "web", route());
            k.act(&Principal::app("web", None), a).await.map_err(err)
        }
        "net.route.clear" => {
            let c = RouteClear::new(unit(k), "web", false);
            k.act(&Principal::app("web", None), c).await.map_err(err)
        }
        "secret.set" => {
            let r = json!({ "op": "secret-set", "app": "web", "name": "K", "value": "v" });
            ok(super::control(k, "net", r).await)
        }
        "secret.remove" => {
            let r = json!({ "op": "secret-rm", "app": "web", "name": "K" });
            ok(super::control(k, "net", r).await)
        }
        "secret.list" => {
            let r = json!({ "op": "secret-ls", "app": "web" });
            ok(super::control(k, "net", r).await)
        }
        "net.list" => ok(super::control(k, "net", json!({ "op": "ls" })).await),
        _ => return None,
    })
}

fn post(addr: &str, path: &str) -> u16 {
    let mut c = TcpStream::connect(addr).unwrap();
    write!(
        c,
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi"
    )
    .unwrap();
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The unit's control requests, for the walk of every control op.
pub fn control_requests() -> Vec<(&'static str, Value)> {
    vec![
        (
            "net",
            json!({ "op": "secret-set", "app": "web", "name": "W", "value": "v" }),
        ),
        ("net", json!({ "op": "secret-ls", "app": "web" })),
        (
            "net",
            json!({ "op": "secret-rm", "app": "web", "name": "W" }),
        ),
        ("net", json!({ "op": "ls" })),
    ]
}
