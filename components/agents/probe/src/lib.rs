//! `probe`: the kernel's test agent. Its `mode` (from the init config)
//! picks a behaviour:
//!
//! - `echo` (default): replies with what it got; a JSON payload with an
//!   `op` field runs that syscall and replies with `{"ok": ..}` or
//!   `{"err": ..}` (see `run_op`).
//! - `ping` / `pong`: a counting exchange of `rounds` messages; ping
//!   publishes the final count on `done_topic`.
//! - `trap`: panics on every message. `spin`: loops forever on every message.

// The generated export glue takes one argument per flattened field.
#![allow(clippy::too_many_arguments)]

// Generated from the WIT, which documents it; private, so none of it is this crate's API.
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "agent" });
}
use bindings::*;

use std::cell::RefCell;
use std::hint::black_box;

use serde_json::{json, Value};
use weft::kernel::ipc::{Error, Level, Target};
use weft::kernel::kernel as k;
use weft::kernel::supervisor as sup;

#[derive(Default)]
struct State {
    mode: String,
    peer: String,
    rounds: u64,
    done_topic: String,
    handled: u64,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

struct Probe;

impl Guest for Probe {
    fn init(config: String) -> Result<(), String> {
        let c: Value = serde_json::from_str(&config).map_err(|e| format!("bad config: {e}"))?;
        if c.get("fail_init").and_then(Value::as_bool) == Some(true) {
            return Err("asked to fail init".into());
        }
        STATE.with_borrow_mut(|s| {
            s.mode = c["mode"].as_str().unwrap_or("echo").to_string();
            s.peer = c["peer"].as_str().unwrap_or_default().to_string();
            s.rounds = c["rounds"].as_u64().unwrap_or(0);
            s.done_topic = c["done_topic"].as_str().unwrap_or("done").to_string();
        });
        Ok(())
    }

    fn handle(msg: Message) -> Result<Option<Payload>, String> {
        let mode = STATE.with_borrow_mut(|s| {
            s.handled += 1;
            s.mode.clone()
        });
        match mode.as_str() {
            "trap" => panic!("probe traps on every message"),
            "spin" => {
                let mut i = 0u64;
                loop {
                    i = black_box(i + 1);
                }
            }
            "ping" => ping(msg),
            "pong" => pong(msg),
            _ => echo(msg),
        }
    }
}

fn text(p: &Payload) -> Option<&str> {
    match p {
        Payload::Text(t) => Some(t),
        _ => None,
    }
}

fn ping(msg: Message) -> Result<Option<Payload>, String> {
    let (peer, rounds, topic) =
        STATE.with_borrow(|s| (s.peer.clone(), s.rounds, s.done_topic.clone()));
    let n: u64 = match text(&msg.payload) {
        Some("start") => {
            k::send(&Target::Named(peer), &Payload::Text("1".into())).map_err(err)?;
            return Ok(None);
        }
        Some(t) => t.parse().map_err(|_| format!("ping got {t:?}"))?,
        None => return Err("ping expects text".into()),
    };
    if n >= rounds {
        k::send(&Target::Topic(topic), &Payload::Text(n.to_string())).map_err(err)?;
    } else {
        k::send(
            &Target::Agent(msg.sender),
            &Payload::Text((n + 1).to_string()),
        )
        .map_err(err)?;
    }
    Ok(None)
}

fn pong(msg: Message) -> Result<Option<Payload>, String> {
    // Answer in kind: a request gets a reply, a plain send a send back.
    if msg.correlation_id.is_some() {
        return Ok(Some(msg.payload));
    }
    k::send(&Target::Agent(msg.sender), &msg.payload).map_err(err)?;
    Ok(None)
}

fn err(e: Error) -> String {
    format!("{e:?}")
}

fn payload_from(v: &Value) -> Payload {
    match v {
        Value::String(s) => Payload::Text(s.clone()),
        other => Payload::Json(other.to_string()),
    }
}

fn payload_to_json(p: &Payload) -> Value {
    match p {
        Payload::Text(t) => json!(t),
        Payload::Json(j) => serde_json::from_str(j).unwrap_or(Value::Null),
        Payload::Binary(b) => json!({ "binary_len": b.len() }),
    }
}

fn target(v: &Value) -> Target {
    if let Some(pid) = v.as_u64() {
        return Target::Agent(pid);
    }
    let s = v.as_str().unwrap_or_default();
    if let Some(t) = s.strip_prefix("topic:") {
        Target::Topic(t.into())
    } else if let Some(svc) = s.strip_prefix("service:") {
        match svc.split_once('/') {
            Some((service, method)) => Target::ServiceMethod(weft::kernel::ipc::ServiceMethod {
                service: service.into(),
                method: method.into(),
            }),
            None => Target::Service(svc.into()),
        }
    } else if s == "*" {
        Target::Broadcast
    } else {
        Target::Named(s.into())
    }
}

fn echo(msg: Message) -> Result<Option<Payload>, String> {
    let op = match &msg.payload {
        Payload::Json(j) => serde_json::from_str::<Value>(j)
            .ok()
            .filter(|v| v.get("op").is_some()),
        _ => None,
    };
    let Some(op) = op else {
        if let Some(m) = &msg.method {
            let body = payload_to_json(&msg.payload);
            return Ok(Some(Payload::Json(
                json!({ "method": m, "body": body }).to_string(),
            )));
        }
        return Ok(Some(msg.payload));
    };
    let result = run_op(&op, &msg);
    let reply = match result {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "err": e }),
    };
    Ok(Some(Payload::Json(reply.to_string())))
}

/// One syscall per op, so tests can drive every syscall from outside.
fn run_op(op: &Value, msg: &Message) -> Result<Value, String> {
    let body = payload_from(&op["body"]);
    match op["op"].as_str().unwrap_or_default() {
        "send" => k::send(&target(&op["to"]), &body)
            .map(|n| json!(n))
            .map_err(err),
        "request" => {
            let timeout = op["timeout_ms"].as_u64().unwrap_or(1000) as u32;
            k::request(&target(&op["to"]), &body, timeout)
                .map(|p| payload_to_json(&p))
                .map_err(err)
        }
        "subscribe" => k::subscribe(op["topic"].as_str().unwrap_or_default())
            .map(|()| json!(null))
            .map_err(err),
        "unsubscribe" => k::unsubscribe(op["topic"].as_str().unwrap_or_default())
            .map(|()| json!(null))
            .map_err(err),
        "tool" => k::invoke_tool(
            op["name"].as_str().unwrap_or_default(),
            &op["input"].to_string(),
        )
        .map(|j| serde_json::from_str(&j).unwrap_or(Value::Null))
        .map_err(err),
        "chain" => k::chain_append(
            op["kind"].as_str().unwrap_or_default(),
            &op["body"].to_string(),
        )
        .map(|seq| json!(seq))
        .map_err(err),
        "log" => {
            k::log(Level::Info, op["msg"].as_str().unwrap_or_default());
            Ok(json!(null))
        }
        "whoami" => Ok(
            json!({ "pid": k::self_pid(), "name": k::self_name(), "from": msg.sender, "from_name": msg.sender_name }),
        ),
        "now" => Ok(json!(k::now())),
        "random" => Ok(json!(
            k::random(op["len"].as_u64().unwrap_or(16) as u32).len()
        )),
        "count" => Ok(json!(STATE.with_borrow(|s| s.handled))),
        "trap" => panic!("probe was asked to trap"),
        "spin" => loop {
            black_box(0);
        },
        // Busy for `ms` of wall time; replies with how many rounds of work
        // it got done (its share of the core, under contention).
        "spin_ms" => {
            let until = k::now() + op["ms"].as_u64().unwrap_or(100) * 1_000_000;
            let mut rounds = 0u64;
            while k::now() < until {
                for i in 0..1_000u64 {
                    black_box(i);
                }
                rounds += 1;
            }
            Ok(json!(rounds))
        }
        "spawn" => sup::spawn(
            op["agent"].as_str().unwrap_or_default(),
            op["name"].as_str().unwrap_or_default(),
            op.get("config").map(|c| c.to_string()).as_deref(),
        )
        .map(|pid| json!(pid))
        .map_err(err),
        "stop" => sup::stop(op["name"].as_str().unwrap_or_default())
            .map(|()| json!(null))
            .map_err(err),
        "restart" => sup::restart(op["name"].as_str().unwrap_or_default())
            .map(|()| json!(null))
            .map_err(err),
        "children" => Ok(json!(sup::children()
            .into_iter()
            .map(|c| json!({ "pid": c.pid, "name": c.name, "state": c.state }))
            .collect::<Vec<_>>())),
        other => Err(format!("unknown op {other:?}")),
    }
}

export!(Probe);
