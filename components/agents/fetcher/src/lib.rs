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
use bindings::wasi::http::outgoing_handler;
use bindings::wasi::http::types::{
    Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use bindings::wasi::io::streams::StreamError;
use bindings::weft::kernel::ipc::{Message, Payload};

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

/// One request through `wasi:http`; the response body as text.
fn fetch(method: &str, url: &str, body: Option<&str>) -> Result<(u16, String), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("`{url}` is not a URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let req = OutgoingRequest::new(Fields::new());
    let m = match method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        other => Method::Other(other.to_string()),
    };
    let s = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    let bad = |what: &str| format!("bad {what} in `{url}`");
    req.set_method(&m).map_err(|()| bad("method"))?;
    req.set_scheme(Some(&s)).map_err(|()| bad("scheme"))?;
    req.set_authority(Some(authority))
        .map_err(|()| bad("authority"))?;
    req.set_path_with_query(Some(path))
        .map_err(|()| bad("path"))?;
    if let Some(text) = body {
        let b = req.body().map_err(|()| "request body taken".to_string())?;
        {
            let out = b
                .write()
                .map_err(|()| "request body stream taken".to_string())?;
            for chunk in text.as_bytes().chunks(4096) {
                out.blocking_write_and_flush(chunk)
                    .map_err(|e| format!("{e:?}"))?;
            }
        }
        OutgoingBody::finish(b, None).map_err(|e| format!("{e:?}"))?;
    }
    let future = outgoing_handler::handle(req, None).map_err(|e| format!("{e:?}"))?;
    future.subscribe().block();
    let resp = match future.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(e))) => return Err(format!("{e:?}")),
        Some(Err(())) | None => return Err("response already taken".into()),
    };
    let status = resp.status();
    let body = resp
        .consume()
        .map_err(|()| "response body taken".to_string())?;
    let mut buf = Vec::new();
    {
        let stream = body
            .stream()
            .map_err(|()| "response stream taken".to_string())?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => buf.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(e) => return Err(format!("{e:?}")),
            }
        }
    }
    drop(IncomingBody::finish(body));
    Ok((status, String::from_utf8_lossy(&buf).into_owned()))
}

bindings::export!(Fetcher with_types_in bindings);
