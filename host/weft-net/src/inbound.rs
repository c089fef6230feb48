//! Inbound routes: `[[routes]]` of installed apps, served over HTTP/1.1.
//! A request on a route's path becomes a JSON message to the app's agent
//! (method, path, query, headers, body as text or base64); the agent's
//! reply is the response (a reply object may set `status`, `headers`,
//! `body`). A route to a component hands the request to a fresh instance
//! of it instead ([`crate::handler`]). Each request is one [`NetIngress`]
//! action as the app (gate action `net.ingress.<app>`) and one
//! `net.ingress` record.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use weft_kernel::console::LogLevel;
use weft_kernel::{
    ActCx, Action, Kernel, KernelError, KernelResult, MessageTarget, Payload, Principal,
    SendOutcome,
};
use weft_model::net::Route;

use crate::handler::{Handler, HandlerError};
use crate::outbound::NetState;
use crate::NetConfig;

/// A route as the unit keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RouteEntry {
    /// The app that declared it.
    pub app: String,
    /// The route.
    pub route: Route,
    /// Whether the app is running (a stopped app's routes answer 503).
    pub running: bool,
}

/// Every installed app's routes by path, kept in `<state>/net-routes.json`
/// so a stopped app's routes are still known after a restart.
#[derive(Default)]
pub struct Routes {
    map: Mutex<BTreeMap<String, RouteEntry>>,
    /// Component routes' handlers by path (set by each start: a compiled
    /// component is not kept in the file).
    handlers: Mutex<HashMap<String, Handler>>,
    file: OnceLock<PathBuf>,
}

impl Routes {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, RouteEntry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Load the table from `file` (missing: empty) and save there from now on.
    pub fn load(&self, file: PathBuf) -> Result<(), String> {
        match std::fs::read(&file) {
            Ok(b) => {
                let v: Vec<RouteEntry> =
                    serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", file.display()))?;
                let mut m = self.lock();
                for mut e in v {
                    // Running again only once the app's start says so.
                    e.running = false;
                    m.insert(e.route.path.clone(), e);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", file.display())),
        }
        let _ = self.file.set(file);
        Ok(())
    }

    fn save(&self, m: &BTreeMap<String, RouteEntry>) -> Result<(), String> {
        let Some(f) = self.file.get() else {
            return Ok(());
        };
        let list: Vec<&RouteEntry> = m.values().collect();
        let text = serde_json::to_vec_pretty(&list).map_err(|e| e.to_string())?;
        let tmp = f.with_extension("json.tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, f))
            .map_err(|e| format!("cannot write {}: {e}", f.display()))
    }

    /// Add (or refresh) `app`'s route, running, with its handler when it
    /// routes to a component. A path another app holds is refused.
    pub fn add(&self, app: &str, route: Route, handler: Option<Handler>) -> Result<(), String> {
        let mut m = self.lock();
        if let Some(e) = m.get(&route.path) {
            if e.app != app {
                return Err(format!(
                    "path `{}` is already routed to app `{}`",
                    route.path, e.app
                ));
            }
        }
        let path = route.path.clone();
        let mut handlers = self.handlers.lock().unwrap_or_else(|p| p.into_inner());
        match handler {
            Some(h) => handlers.insert(path.clone(), h),
            None => handlers.remove(&path),
        };
        drop(handlers);
        m.insert(
            path,
            RouteEntry {
                app: app.into(),
                route,
                running: true,
            },
        );
        self.save(&m)
    }

    /// Mark `app`'s routes stopped (kept) or drop them (`remove`).
    pub fn clear(&self, app: &str, remove: bool) -> Result<(), String> {
        let mut m = self.lock();
        let mut handlers = self.handlers.lock().unwrap_or_else(|p| p.into_inner());
        for (path, _) in m.iter().filter(|(_, e)| e.app == app) {
            handlers.remove(path);
        }
        drop(handlers);
        if remove {
            m.retain(|_, e| e.app != app);
        } else {
            m.values_mut()
                .filter(|e| e.app == app)
                .for_each(|e| e.running = false);
        }
        self.save(&m)
    }

    /// Every route.
    pub fn all(&self) -> Vec<RouteEntry> {
        self.lock().values().cloned().collect()
    }

    fn get(&self, path: &str) -> Option<RouteEntry> {
        self.lock().get(path).cloned()
    }

    fn handler(&self, path: &str) -> Option<Handler> {
        let h = self.handlers.lock().unwrap_or_else(|p| p.into_inner());
        h.get(path).cloned()
    }
}

type Resp = Response<Full<Bytes>>;

fn plain(status: StatusCode, text: impl Into<String>) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(text.into() + "\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Serve `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    kernel: Kernel,
    routes: Arc<Routes>,
    cfg: Arc<NetConfig>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _peer)) => s,
            Err(_) => {
                // Out of descriptors or the like: let it pass.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (kernel, routes, cfg) = (kernel.clone(), routes.clone(), cfg.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let (kernel, routes, cfg) = (kernel.clone(), routes.clone(), cfg.clone());
                async move { Ok::<_, Infallible>(handle(req, &kernel, &routes, &cfg).await) }
            });
            let _closed = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(
    req: http::Request<Incoming>,
    kernel: &Kernel,
    routes: &Routes,
    cfg: &Arc<NetConfig>,
) -> Resp {
    let path = req.uri().path().to_string();
    // Unknown paths are not recorded: no app to attribute them to.
    let Some(entry) = routes.get(&path) else {
        return plain(StatusCode::NOT_FOUND, format!("no route for {path}"));
    };
    let limit = match entry.route.max_body_bytes {
        0 => cfg.max_body_bytes,
        n => n,
    };
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let body = read_limited(body, &parts.headers, limit).await;
    let app = entry.app.clone();
    let action = NetIngress {
        handler: routes.handler(&path),
        entry,
        method: parts.method.to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        uri: parts.uri,
        headers: parts.headers,
        config: cfg.clone(),
        body,
        limit,
        timeout: Duration::from_millis(cfg.route_timeout_ms),
        started,
    };
    match kernel.act(&Principal::app(&app, None), action).await {
        Ok(r) => r,
        Err(KernelError::Denied(why)) => plain(StatusCode::FORBIDDEN, format!("refused: {why}")),
        Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The body, or `None` when it is over `limit`.
async fn read_limited(mut body: Incoming, headers: &http::HeaderMap, limit: u64) -> Option<Bytes> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return None;
    }
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let data = frame.ok()?.into_data().unwrap_or_default();
        if (buf.len() + data.len()) as u64 > limit {
            return None;
        }
        buf.extend_from_slice(&data);
    }
    Some(buf.freeze())
}

/// One inbound request to an app's route.
pub struct NetIngress {
    entry: RouteEntry,
    /// The route's handler, for a component route.
    handler: Option<Handler>,
    method: String,
    query: String,
    uri: http::Uri,
    headers: http::HeaderMap,
    config: Arc<NetConfig>,
    /// `None`: over the limit.
    body: Option<Bytes>,
    limit: u64,
    timeout: Duration,
    started: Instant,
}

impl Action for NetIngress {
    type Output = Resp;

    fn gate_action(&self) -> Cow<'static, str> {
        format!("net.ingress.{}", self.entry.app).into()
    }

    fn gate_context(&self) -> Value {
        let r = &self.entry.route;
        match &r.component {
            Some(c) => json!({ "path": r.path, "method": self.method, "component": c }),
            None => json!({ "path": r.path, "method": self.method, "agent": r.agent }),
        }
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<Resp> {
        let kernel = cx.kernel();
        let r = &self.entry.route;
        let agent = format!("{}.{}", self.entry.app, r.agent);
        let bytes_in = self.body.as_ref().map(Bytes::len).unwrap_or(0);
        let target_up = match &r.component {
            Some(_) => self.handler.is_some(),
            None => kernel.pid_of(&agent).is_some(),
        };
        let timeout = match r.timeout_ms {
            0 => self.timeout,
            n => Duration::from_millis(n),
        };
        let mut fuel = None;
        let (resp, outcome) = if !self.entry.running || !target_up {
            (
                plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("app `{}` is not running", self.entry.app),
                ),
                "stopped",
            )
        } else if !token_ok(&kernel, &self.entry, &self.headers) {
            let mut r = plain(StatusCode::UNAUTHORIZED, "missing or bad bearer token");
            r.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
            (r, "unauthorized")
        } else if let (Some(body), Some(h)) = (&self.body, &self.handler) {
            let req = self.request(body.clone());
            let limits = crate::handler::limits(timeout);
            let mut ext = weft_runtime::Extensions::default();
            if !r.network.outbound.is_empty() {
                let st = NetState::for_route(
                    self.config.clone(),
                    &kernel,
                    cx.who(),
                    &r.path,
                    &r.network,
                );
                ext.insert(st);
            }
            let max = self.config.max_response_bytes;
            let (result, usage) = h.serve(cx.runtime(), req, &limits, max, ext).await;
            fuel = Some(usage.fuel_used);
            handled(result)
        } else if let Some(body) = &self.body {
            let msg = message(&self, body);
            let send = weft_kernel::ipc::SendMessage::new(
                MessageTarget::Named(agent.clone()),
                Payload::Json(msg),
            )
            .wait(timeout);
            match tokio::time::timeout(
                timeout + Duration::from_millis(100),
                kernel.act(cx.who(), send),
            )
            .await
            {
                Ok(Ok(SendOutcome::Replied(p))) => (reply(p), "ok"),
                Ok(Ok(other)) => (
                    plain(StatusCode::BAD_GATEWAY, format!("no reply: {other:?}")),
                    "failed",
                ),
                Ok(Err(KernelError::Timeout(_))) | Err(_) => (
                    plain(
                        StatusCode::GATEWAY_TIMEOUT,
                        format!(
                            "agent `{agent}` did not answer within {} ms",
                            timeout.as_millis()
                        ),
                    ),
                    "timeout",
                ),
                Ok(Err(e)) => (plain(StatusCode::BAD_GATEWAY, e.to_string()), "failed"),
            }
        } else {
            (
                plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body over {} bytes", self.limit),
                ),
                "too_large",
            )
        };
        let ms = self.started.elapsed().as_millis() as u64;
        let bytes_out = hyper::body::Body::size_hint(resp.body())
            .exact()
            .unwrap_or(0);
        let mut rec = json!({
            "app": self.entry.app, "path": r.path, "method": self.method,
            "status": resp.status().as_u16(), "bytes_in": bytes_in, "bytes_out": bytes_out,
            "duration_ms": ms, "outcome": outcome,
        });
        match &r.component {
            Some(c) => {
                rec["component"] = json!(c);
                rec["fuel_used"] = json!(fuel);
            }
            None => rec["agent"] = json!(r.agent),
        }
        cx.record("net.ingress", &rec)?;
        kernel.log(
            LogLevel::Info,
            format!(
                "net: {} {} {} -> {} ({ms} ms)",
                self.entry.app,
                self.method,
                r.path,
                resp.status().as_u16()
            ),
        );
        Ok(resp)
    }
}

fn token_ok(kernel: &Kernel, e: &RouteEntry, headers: &http::HeaderMap) -> bool {
    let Some(name) = &e.route.token_secret else {
        return true;
    };
    let Ok(Some(secret)) = crate::secrets::read(kernel.state_dir(), &e.app, name) else {
        return false;
    };
    let want = format!("Bearer {}", secret.trim_end());
    let got = headers
        .get(http::header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    // Constant time in the token's length.
    got.len() == want.len()
        && got
            .iter()
            .zip(want.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

impl NetIngress {
    /// The request a handler component gets: as it came, without the
    /// route's bearer token (the host's business), with a `Host` (the
    /// guest's `authority`) even when the client sent none.
    fn request(&self, body: Bytes) -> http::Request<Full<Bytes>> {
        let mut req = http::Request::new(Full::new(body));
        *req.method_mut() =
            http::Method::from_bytes(self.method.as_bytes()).unwrap_or(http::Method::GET);
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        if self.entry.route.token_secret.is_some() {
            req.headers_mut().remove(http::header::AUTHORIZATION);
        }
        if !req.headers().contains_key(http::header::HOST) {
            req.headers_mut()
                .insert(http::header::HOST, HeaderValue::from_static("localhost"));
        }
        req
    }
}

/// The route's response for what a handler did, and the record's outcome.
fn handled(r: Result<http::Response<Bytes>, HandlerError>) -> (Resp, &'static str) {
    match r {
        Ok(resp) => (resp.map(Full::new), "ok"),
        Err(HandlerError::Timeout(ms)) => (
            plain(
                StatusCode::GATEWAY_TIMEOUT,
                format!("the handler did not answer within {ms} ms"),
            ),
            "timeout",
        ),
        Err(e @ HandlerError::TooLarge(_)) => {
            (plain(StatusCode::BAD_GATEWAY, e.to_string()), "too_large")
        }
        Err(e) => (plain(StatusCode::BAD_GATEWAY, e.to_string()), "failed"),
    }
}

/// The message the agent gets.
fn message(i: &NetIngress, body: &Bytes) -> Value {
    let mut headers = Map::new();
    for (k, v) in &i.headers {
        // The route's token is the host's business, not the agent's.
        if i.entry.route.token_secret.is_some() && *k == http::header::AUTHORIZATION {
            continue;
        }
        if let Ok(v) = v.to_str() {
            headers.insert(k.as_str().to_string(), json!(v));
        }
    }
    let mut m = json!({ "method": i.method, "path": i.entry.route.path, "query": i.query, "headers": headers });
    match std::str::from_utf8(body) {
        Ok(t) => m["body"] = json!(t),
        Err(_) => m["body_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(body)),
    }
    m
}

/// The response for the agent's reply.
fn reply(p: Payload) -> Resp {
    let (status, headers, body, ctype) = match p {
        Payload::Text(t) => (200, None, Bytes::from(t), "text/plain; charset=utf-8"),
        Payload::Binary(b) => (200, None, Bytes::from(b), "application/octet-stream"),
        Payload::Json(Value::Object(o)) if o.contains_key("status") || o.contains_key("body") => {
            let status = o.get("status").and_then(Value::as_u64).unwrap_or(200) as u16;
            let (body, ctype) = match o.get("body") {
                Some(Value::String(s)) => (Bytes::from(s.clone()), "text/plain; charset=utf-8"),
                None | Some(Value::Null) => (Bytes::new(), "text/plain; charset=utf-8"),
                Some(v) => (Bytes::from(v.to_string()), "application/json"),
            };
            (status, o.get("headers").cloned(), body, ctype)
        }
        Payload::Json(v) => (200, None, Bytes::from(v.to_string()), "application/json"),
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Some(Value::Object(h)) = headers {
        for (k, v) in h {
            let (Ok(k), Some(Ok(v))) = (
                http::HeaderName::from_bytes(k.as_bytes()),
                v.as_str().map(HeaderValue::from_str),
            ) else {
                continue;
            };
            r.headers_mut().insert(k, v);
        }
    }
    r
}
