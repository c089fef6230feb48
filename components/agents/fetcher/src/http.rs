//! One HTTP request through `wasi:http/outgoing-handler`, for guests whose
//! bindings module (`crate::bindings`) holds `wasi:http` 0.2.12: the
//! `fetcher` agent and the `http-get` command.

use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use crate::bindings::wasi::io::streams::StreamError;

/// One request through `wasi:http`; the response body as text.
pub fn fetch(method: &str, url: &str, body: Option<&str>) -> Result<(u16, String), String> {
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
