//! `fetcher`: the network example agent (`apps/webhook`, `docs/network.md`).
//!
//! - `{"fetch": URL, "method"?: "GET", "body"?: TEXT}`: makes the request
//!   through `wasi:http/outgoing-handler` and replies `{"status", "body"}`,
//!   or `{"error"}` when the kernel refused it or it failed.
//! - a webhook (`{"method", "path", "body", ...}` from a route): in mode
//!   `echo` replies with the request body; otherwise fetches the configured
//!   `upstream` and replies `{"status": 200, "headers", "body"}` naming what
//!   it got and what the upstream said.

// The generated export glue takes one argument per flattened field.
#![allow(clippy::too_many_arguments)]

// Generated from the WIT, which documents it; private, so none of it is this crate's API.
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "fetcher", generate_all });
}
use bindings::weft::kernel::ipc::{Message, Payload};

// Shared with the `http-get` command, which generates the same `wasi:http`
// bindings under the same `bindings` module.
#[path = "http.rs"]
mod http;
use http::fetch;

use std::cell::RefCell;

use serde_json::{json, Value};

#[derive(Default)]
struct State {
    upstream: String,
    echo: bool,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

struct Fetcher;

impl bindings::Guest for Fetcher {
    fn init(config: String) -> Result<(), String> {
        let c: Value = serde_json::from_str(&config).map_err(|e| format!("bad config: {e}"))?;
        STATE.with_borrow_mut(|s| {
            s.upstream = c["upstream"].as_str().unwrap_or_default().to_string();
            s.echo = c["mode"].as_str() == Some("echo");
        });
        Ok(())
    }

    fn handle(msg: Message) -> Result<Option<Payload>, String> {
        let v = match msg.payload {
            Payload::Json(j) => serde_json::from_str::<Value>(&j).map_err(|e| e.to_string())?,
            Payload::Text(t) => return Ok(Some(Payload::Text(t))),
            Payload::Binary(b) => return Ok(Some(Payload::Binary(b))),
        };
        let reply = if let Some(url) = v["fetch"].as_str() {
            let method = v["method"].as_str().unwrap_or("GET");
            match fetch(method, url, v["body"].as_str()) {
                Ok((status, body)) => json!({ "status": status, "body": body }),
                Err(e) => json!({ "error": e }),
            }
        } else if v["path"].is_string() && v["method"].is_string() {
            webhook(&v)
        } else {
            return Err("expected {\"fetch\": URL} or a webhook request".into());
        };
        Ok(Some(Payload::Json(reply.to_string())))
    }
}

/// Answer a request routed to this agent.
fn webhook(req: &Value) -> Value {
    let body = req["body"].as_str().unwrap_or_default();
    let (echo, upstream) = STATE.with_borrow(|s| (s.echo, s.upstream.clone()));
    if echo {
        return json!({ "status": 200, "body": body });
    }
    match fetch("GET", &upstream, None) {
        Ok((status, text)) => json!({
            "status": 200,
            "headers": { "x-weft-agent": "fetcher" },
            "body": format!("{} {} got {} bytes; upstream said {status}: {text}",
                req["method"].as_str().unwrap_or_default(), req["path"].as_str().unwrap_or_default(), body.len()),
        }),
        Err(e) => json!({ "status": 502, "body": format!("upstream failed: {e}") }),
    }
}

bindings::export!(Fetcher with_types_in bindings);
