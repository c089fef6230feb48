//! `hello-http`: the example route handler (`apps/webhook`,
//! `docs/network.md`). It exports `wasi:http/incoming-handler` and answers
//! every request with JSON naming what it got: `{"hello", "method", "path",
//! "query", "authority", "body"}`. Query parameters show the kernel's
//! limits at work: `bytes=N` answers N bytes of `x` instead (the response
//! limit), `sleep=MS` waits that long first (the route's time limit), `spin`
//! loops until the fuel runs out, and `fetch=URL` makes a GET first and
//! answers with what it got (`{"fetched": {"status", "body"}}` or
//! `{"fetched": {"error"}}`), allowed as far as the route's `network` grants.

// Generated from the WIT in wit/; private.
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "handler", generate_all });
}

// The request code, shared with the `fetcher` agent.
#[path = "../../../agents/fetcher/src/http.rs"]
mod http;

use bindings::exports::wasi::http::incoming_handler::Guest;
use bindings::wasi::clocks::monotonic_clock::subscribe_duration;
use bindings::wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Hello;

impl Guest for Hello {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let pq = request.path_with_query().unwrap_or_default();
        let (path, query) = pq.split_once('?').unwrap_or((&pq, ""));
        if let Some(ms) = query
            .split('&')
            .find_map(|p| p.strip_prefix("sleep="))
            .and_then(|n| n.parse::<u64>().ok())
        {
            subscribe_duration(ms * 1_000_000).block();
        }
        if query.split('&').any(|p| p == "spin") {
            let mut i = 0u64;
            loop {
                i = std::hint::black_box(i.wrapping_add(1));
            }
        }
        if let Some(url) = query.split('&').find_map(|p| p.strip_prefix("fetch=")) {
            let fetched = match http::fetch("GET", url, None) {
                Ok((status, body)) => serde_json::json!({ "status": status, "body": body }),
                Err(e) => serde_json::json!({ "error": e }),
            };
            let text = serde_json::json!({ "fetched": fetched }).to_string();
            return respond(out, text.as_bytes());
        }
        let text = match query
            .split('&')
            .find_map(|p| p.strip_prefix("bytes="))
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => vec![b'x'; n],
            None => serde_json::json!({
                "hello": "from a wasi:http component",
                "method": method(&request.method()),
                "path": path,
                "query": query,
                "authority": request.authority().unwrap_or_default(),
                "body": String::from_utf8_lossy(&read_body(&request)),
            })
            .to_string()
            .into_bytes(),
        };
        respond(out, &text);
    }
}

fn method(m: &Method) -> String {
    match m {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(s) => s.clone(),
    }
}

fn read_body(request: &IncomingRequest) -> Vec<u8> {
    let mut buf = Vec::new();
    let Ok(body) = request.consume() else {
        return buf;
    };
    if let Ok(stream) = body.stream() {
        while let Ok(chunk) = stream.blocking_read(64 * 1024) {
            buf.extend_from_slice(&chunk);
        }
    }
    drop(IncomingBody::finish(body));
    buf
}

/// Status 200 with `text`, streamed in 4 KiB writes (the most one
/// `blocking-write-and-flush` takes).
fn respond(out: ResponseOutparam, text: &[u8]) {
    let headers = Fields::new();
    let ctype = if text.first() == Some(&b'{') {
        "application/json"
    } else {
        "text/plain"
    };
    // A fresh, mutable `fields` accepts a valid header.
    let _ = headers.set("content-type", &[ctype.as_bytes().to_vec()]);
    let resp = OutgoingResponse::new(headers);
    let Ok(body) = resp.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(resp));
    if let Ok(stream) = body.write() {
        for chunk in text.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                return;
            }
        }
    }
    let _ = OutgoingBody::finish(body, None);
}

bindings::export!(Hello with_types_in bindings);
