//! The dashboard's HTTP side: the embedded page, its JSON reads, the live
//! SSE feed and the escalation decisions. Every read and every decision is
//! a unit's control request made as the operator, as `weaver` makes them.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{json, Value};
use weft_kernel::control::{kind, ControlCx, ControlError};
use weft_kernel::{Kernel, Principal};

use crate::auth::{self, Via};

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/style.css");

/// How often the live feed looks for new chain events.
const TICK: Duration = Duration::from_millis(100);
/// A fresh snapshot at least this often, even on a quiet chain.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(3);
/// Chain events in a snapshot's tail.
const TAIL: u64 = 100;

/// What every handler shares.
pub(crate) struct Ctx {
    kernel: Kernel,
    token: String,
    stopped: tokio::sync::watch::Receiver<bool>,
}

impl Ctx {
    pub(crate) fn new(
        kernel: Kernel,
        token: &str,
        stopped: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Ctx {
            kernel,
            token: token.to_string(),
            stopped,
        }
    }
}

type Shared = Arc<Ctx>;

pub(crate) fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(script))
        .route("/style.css", get(style))
        .route("/api/snapshot", get(snapshot))
        .route("/api/events", get(events))
        .route("/api/chain/verify", get(verify))
        .route("/api/chain/receipt/{seq}", get(receipt))
        .route("/api/escalations/{id}/{decision}", post(decide))
        .with_state(Arc::new(ctx))
}

/// Headers every answer carries: nothing cached, no referrer (the first
/// URL holds the token), no framing, only our own scripts.
fn guarded(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    guarded(([(header::CONTENT_TYPE, kind)], body).into_response())
}

/// The page. Opened with a valid `?token=`, it also gets the session
/// cookie; without one it loads but shows no data.
async fn index(State(cx): State<Shared>, uri: Uri) -> Response {
    let mut r = asset("text/html; charset=utf-8", INDEX);
    if let Some(t) = auth::from_query(&uri).filter(|t| auth::same(t, &cx.token)) {
        if let Ok(v) = HeaderValue::from_str(&auth::session_cookie(t)) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    r
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

fn unauthorized(why: &str) -> Response {
    let mut r = (
        StatusCode::UNAUTHORIZED,
        Json(json!({ "error": format!("unauthorized: {why}") })),
    )
        .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"weft\""),
    );
    guarded(r)
}

/// How the request carries the token; `None`: it does not.
fn authorise(cx: &Ctx, h: &HeaderMap, uri: &Uri) -> Option<Via> {
    auth::check(h, uri, &cx.token)
}

/// The 401 (and nothing else) for a request without the token.
fn no_token() -> Response {
    unauthorized(
        "no valid token (open the URL `weaver ui` prints, or send Authorization: Bearer TOKEN)",
    )
}

/// A unit's control request as the operator (gated, as over the socket).
async fn ask(k: &Kernel, unit: &str, request: Value) -> Result<Value, ControlError> {
    let Some(u) = k.unit(unit) else {
        return Err(ControlError::new(
            kind::NOT_FOUND,
            format!("this kernel has no `{unit}` unit"),
        ));
    };
    let op = Principal::Operator;
    u.control(ControlCx::new(k, &op, request, None)).await
}

/// A read for the page: its value, or `{"error": ...}` to show in its place.
async fn read(k: &Kernel, unit: &str, request: Value) -> Value {
    match ask(k, unit, request).await {
        Ok(v) => v,
        Err(e) => json!({ "error": e.message, "kind": e.kind }),
    }
}

async fn snapshot_of(k: &Kernel) -> Value {
    let mut s = json!({
        "status": read(k, "kernel", json!({ "op": "status" })).await,
        "ps": read(k, "agents", json!({ "op": "ps" })).await,
        "apps": read(k, "apps", json!({ "op": "ls" })).await,
        "escalations": read(k, "governance", json!({ "op": "pending", "all": true })).await,
        "chain": read(k, "chain", json!({ "op": "tail", "n": TAIL })).await,
    });
    // Optional units: shown when this kernel has them.
    let optional = [("ecc", "stats"), ("cluster", "status")];
    for (unit, op) in optional {
        if k.unit(unit).is_some() {
            s[unit] = read(k, unit, json!({ "op": op })).await;
        }
    }
    s
}

fn ok_json(v: Value) -> Response {
    guarded(Json(v).into_response())
}

async fn snapshot(State(cx): State<Shared>, h: HeaderMap, uri: Uri) -> Response {
    if authorise(&cx, &h, &uri).is_none() {
        return no_token();
    }
    ok_json(snapshot_of(&cx.kernel).await)
}

async fn verify(State(cx): State<Shared>, h: HeaderMap, uri: Uri) -> Response {
    if authorise(&cx, &h, &uri).is_none() {
        return no_token();
    }
    match ask(&cx.kernel, "chain", json!({ "op": "verify" })).await {
        Ok(v) => ok_json(v),
        Err(e) => failure(&e),
    }
}

/// Event `seq`'s receipt (`weaver chain prove SEQ`): its inclusion proof
/// under a signed head.
async fn receipt(
    State(cx): State<Shared>,
    Path(seq): Path<u64>,
    h: HeaderMap,
    uri: Uri,
) -> Response {
    if authorise(&cx, &h, &uri).is_none() {
        return no_token();
    }
    match ask(&cx.kernel, "chain", json!({ "op": "prove", "seq": seq })).await {
        Ok(v) => ok_json(v),
        Err(e) => failure(&e),
    }
}

fn failure(e: &ControlError) -> Response {
    let status = match e.kind.as_str() {
        kind::DENIED => StatusCode::FORBIDDEN,
        kind::NOT_FOUND => StatusCode::NOT_FOUND,
        kind::BAD_REQUEST | kind::UNKNOWN_COMMAND => StatusCode::BAD_REQUEST,
        kind::FAILED => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    guarded((status, Json(json!({ "error": e.message, "kind": e.kind }))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Decision {
    reason: String,
}

/// Approve or deny an escalation: `weaver gov approve/deny ID --reason R`,
/// the same gated action, as the operator.
async fn decide(
    State(cx): State<Shared>,
    Path((id, decision)): Path<(u64, String)>,
    h: HeaderMap,
    uri: Uri,
    body: Result<Json<Decision>, axum::extract::rejection::JsonRejection>,
) -> Response {
    match authorise(&cx, &h, &uri) {
        Some(Via::Header) => {}
        Some(_) => {
            // A cookie rides along on forged requests too: ask for the header.
            return guarded(
                (
                    StatusCode::FORBIDDEN,
                    Json(json!({ "error": format!(
                        "a decision needs the token in the `{}` header, not only the cookie",
                        auth::HEADER
                    ) })),
                )
                    .into_response(),
            );
        }
        None => return no_token(),
    }
    let op = match decision.as_str() {
        "approve" | "deny" => decision,
        other => {
            return failure(&ControlError::bad_request(format!(
                "`{other}`: expected approve or deny"
            )))
        }
    };
    let reason = match body {
        Ok(Json(d)) => d.reason,
        Err(e) => return failure(&ControlError::bad_request(format!("body: {e}"))),
    };
    let req = json!({ "op": op, "id": id, "reason": reason });
    let result = ask(&cx.kernel, "governance", req).await;
    // As the control socket does: answered only once the decision is durable.
    let chain = cx.kernel.chain();
    let synced = tokio::task::spawn_blocking(move || chain.sync()).await;
    match (result, synced) {
        (Err(e), _) => failure(&e),
        (Ok(v), Ok(Ok(()))) => ok_json(v),
        (Ok(_), Ok(Err(e))) => failure(&ControlError::kernel(format!("chain sync: {e}"))),
        (Ok(_), Err(e)) => failure(&ControlError::kernel(format!("chain sync: {e}"))),
    }
}

/// Where a live feed starts: after `Last-Event-ID` (a reconnect), else
/// `?since=SEQ`, else at the chain's end.
fn start_seq(h: &HeaderMap, uri: &Uri, len: u64) -> u64 {
    let last = h
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|s| s + 1);
    let since = uri.query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "since")
            .and_then(|(_, v)| v.parse::<u64>().ok())
    });
    last.or(since).unwrap_or(len).min(len)
}

struct Feed {
    cx: Shared,
    next: u64,
    last_snapshot: Option<Instant>,
    snapshot_due: bool,
}

/// The live feed: `chain` events (new chain events, as `chain tail` shows
/// them) as they land, and a `snapshot` after them and every few seconds.
async fn events(State(cx): State<Shared>, h: HeaderMap, uri: Uri) -> Response {
    if authorise(&cx, &h, &uri).is_none() {
        return no_token();
    }
    let next = start_seq(&h, &uri, cx.kernel.chain().len());
    let feed = Feed {
        cx,
        next,
        last_snapshot: None,
        snapshot_due: true,
    };
    guarded(
        Sse::new(stream(feed))
            .keep_alive(KeepAlive::default())
            .into_response(),
    )
}

fn stream(feed: Feed) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(feed, |mut f| async move {
        loop {
            if *f.cx.stopped.borrow() {
                return None;
            }
            let stale = f
                .last_snapshot
                .is_none_or(|t| t.elapsed() >= SNAPSHOT_EVERY);
            if f.snapshot_due || stale {
                f.snapshot_due = false;
                f.last_snapshot = Some(Instant::now());
                let s = snapshot_of(&f.cx.kernel).await;
                return Some((
                    Ok(Event::default().event("snapshot").data(s.to_string())),
                    f,
                ));
            }
            let len = f.cx.kernel.chain().len();
            if len > f.next {
                // A little extra: events may land between `len` and the read.
                let n = len - f.next + 16;
                match ask(&f.cx.kernel, "chain", json!({ "op": "tail", "n": n })).await {
                    Ok(Value::Array(all)) => {
                        let fresh: Vec<Value> = all
                            .into_iter()
                            .filter(|e| e["seq"].as_u64().is_some_and(|s| s >= f.next))
                            .collect();
                        if let Some(last) = fresh.last().and_then(|e| e["seq"].as_u64()) {
                            f.next = last + 1;
                            f.snapshot_due = true;
                            let ev = Event::default()
                                .event("chain")
                                .id(last.to_string())
                                .data(Value::Array(fresh).to_string());
                            return Some((Ok(ev), f));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tokio::time::sleep(SNAPSHOT_EVERY).await;
                        let ev = Event::default()
                            .event("problem")
                            .data(json!({ "error": e.message }).to_string());
                        return Some((Ok(ev), f));
                    }
                }
            }
            tokio::time::sleep(TICK).await;
        }
    })
}
