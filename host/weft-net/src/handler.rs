//! Routes served by a component exporting `wasi:http/incoming-handler`
//! (the `wasi:http/proxy` world `wasmtime serve` and Spin run): a fresh
//! instance per request, under the route's time limit and the runtime's
//! fuel and memory limits, with WASI but no files and no environment, and
//! outbound HTTP only as far as the route's `network` grants; its response
//! is the route's.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use weft_runtime::{
    Extensions, Grants, Limits, LoadedComponent, RunError, Runtime, ToolStoreData, Usage,
};

use crate::outbound::tool_view;

/// A route's component, pre-instantiated (imports resolved once).
#[derive(Clone)]
pub struct Handler {
    pre: ProxyPre<ToolStoreData>,
}

/// How a request to a handler went wrong; each maps to a status.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The instance could not be made or trapped, ran out of fuel or time
    /// before answering, or never set a response.
    #[error("{0}")]
    Failed(String),
    /// The guest answered with an error code instead of a response.
    #[error("the handler answered error-code {0}")]
    Answered(String),
    /// The response body was over the limit.
    #[error("the handler's response is over {0} bytes")]
    TooLarge(u64),
    /// The route's time ran out (before or while the body came).
    #[error("the handler did not answer within {0} ms")]
    Timeout(u128),
}

impl Handler {
    /// Check that `c` exports `wasi:http/incoming-handler` and imports only
    /// what a tool may (WASI and `wasi:http`).
    pub fn new(rt: &Runtime, c: &LoadedComponent) -> Result<Self, String> {
        let linker = rt.tool_linker().map_err(|e| e.to_string())?;
        let component = c.component().map_err(|e| e.to_string())?;
        let pre = linker
            .instantiate_pre(component)
            .map_err(|e| format!("cannot link it: {e:#}"))?;
        let pre = ProxyPre::new(pre)
            .map_err(|e| format!("not a wasi:http/incoming-handler component: {e:#}"))?;
        Ok(Handler { pre })
    }

    /// Run `req` in a fresh instance; the response, its body read in full
    /// (at most `max` bytes), and what the instance used.
    /// `ext` holds its outbound network state, if the route grants any.
    pub async fn serve(
        &self,
        rt: &Runtime,
        req: http::Request<Full<Bytes>>,
        limits: &Limits,
        max: u64,
        ext: Extensions,
    ) -> (Result<http::Response<Bytes>, HandlerError>, Usage) {
        let started = Instant::now();
        let failed = |e: &dyn std::fmt::Display| HandlerError::Failed(e.to_string());
        let mut store = match rt.new_store(limits, &Grants::default(), ext) {
            Ok(s) => s,
            Err(e) => return (Err(failed(&e)), Usage::default()),
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let made = {
            let mut view = tool_view(store.data_mut());
            view.new_incoming_request(Scheme::Http, req)
                .and_then(|r| Ok((r, view.new_response_outparam(tx)?)))
        };
        let (req, out) = match made {
            Ok(v) => v,
            Err(e) => return (Err(failed(&format!("{e:#}"))), Usage::default()),
        };
        // The call runs beside us: a body bigger than the channel's two
        // chunks only comes while we read it.
        let (pre, rt2, limits2) = (self.pre.clone(), rt.clone(), limits.clone());
        let call = tokio::spawn(async move {
            let r = rt2
                .guard(&mut store, &limits2, async |s| {
                    let proxy = pre.instantiate_async(&mut *s).await?;
                    let h = proxy.wasi_http_incoming_handler();
                    h.call_handle(&mut *s, req, out).await
                })
                .await;
            (r, rt2.usage(&store, &limits2, started))
        });
        let answered = rx.await;
        let body = match answered {
            Ok(Ok(resp)) => {
                let (parts, body) = resp.into_parts();
                let left = limits.timeout.saturating_sub(started.elapsed());
                let read = tokio::time::timeout(left, Limited::new(body, max as usize).collect());
                Some(match read.await {
                    Ok(Ok(b)) => Ok(http::Response::from_parts(parts, b.to_bytes())),
                    Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                        Err(HandlerError::TooLarge(max))
                    }
                    Ok(Err(e)) => Err(failed(&format!("response body: {e}"))),
                    Err(_) => Err(HandlerError::Timeout(limits.timeout.as_millis())),
                })
            }
            Ok(Err(code)) => Some(Err(HandlerError::Answered(format!("{code:?}")))),
            // The store went away without an answer: the call says why.
            Err(_) => None,
        };
        // A trap mid-body looks like its end: the call's outcome decides.
        let (outcome, usage) = match call.await {
            Ok(v) => v,
            Err(e) => return (Err(failed(&format!("handler task: {e}"))), Usage::default()),
        };
        let result = match (outcome, body) {
            (Err(RunError::Timeout { .. }), _) => {
                Err(HandlerError::Timeout(limits.timeout.as_millis()))
            }
            (Err(e), _) => Err(failed(&e)),
            (Ok(()), Some(r)) => r,
            (Ok(()), None) => Err(failed(&"the handler returned without setting a response")),
        };
        (result, usage)
    }
}

/// The limits of one request to a handler: the runtime's defaults with the
/// route's time.
pub fn limits(timeout: Duration) -> Limits {
    Limits {
        timeout,
        ..Limits::default()
    }
}
