//! `wasi:http/outgoing-handler` for agents. Each request the guest sends is
//! one [`NetHttp`] action as the agent: in-process check against its
//! `network.outbound` grants and the per-message limit (refusals recorded as
//! `gate.deny`), the gate (`net.http.<host>`), then the wire
//! ([`crate::fetch`]) and one `net.http` record of how it went.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use wasmtime_wasi_http::p2::bindings::http as b;
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttp, WasiHttpCtx, WasiHttpCtxView,
    WasiHttpHooks,
};
use weft_kernel::agent::{AgentCtx, AgentLinker, Handling};
use weft_kernel::console::LogLevel;
use weft_kernel::{ActCx, Action, Kernel, KernelError, KernelResult, KernelView, Principal};
use weft_model::net::Grant;
use weft_runtime::StoreData;

use crate::fetch::{self, Failure, Fetched, Target};
use crate::pool::Pool;
use crate::NetConfig;

/// An agent instance's `wasi:http` state (attached in `prepare`).
#[derive(Default)]
pub struct NetState {
    ctx: WasiHttpCtx,
    hooks: NetHooks,
}

impl NetState {
    /// State under `config`.
    pub fn new(config: Arc<NetConfig>) -> Self {
        NetState {
            ctx: WasiHttpCtx::new(),
            hooks: NetHooks {
                config,
                ..NetHooks::default()
            },
        }
    }
}

/// What `send_request` needs: the kernel and the agent to act as (bound on
/// first use), the message being handled and how many requests it made.
#[derive(Default)]
struct NetHooks {
    config: Arc<NetConfig>,
    bound: Option<(Kernel, Principal)>,
    handling: Option<Handling>,
    /// (message id, requests made while handling it).
    counted: (u64, u32),
    /// This agent's idle connections (reused only after each request's own
    /// grant and address check, see [`crate::pool`]).
    pool: Arc<Pool<WasiBody>>,
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for NetHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let Some((kernel, who)) = self.bound.clone() else {
            return Box::new(async {
                Err(HttpError::InternalError(Some(
                    "no network in this store".into(),
                )))
            });
        };
        let msg = self.handling.map(|h| h.id).unwrap_or(0);
        if self.counted.0 != msg {
            self.counted = (msg, 0);
        }
        self.counted.1 = self.counted.1.saturating_add(1);
        let action = NetHttp {
            over_limit: self.counted.1 > self.config.max_requests_per_message,
            config: self.config.clone(),
            pool: self.pool.clone(),
            target: Target::of(request.uri()),
            request,
            grants: Vec::new(),
        };
        Box::new(async move {
            match kernel.act(&who, action).await {
                Ok(Ok(f)) => {
                    let body = Full::new(f.body)
                        .map_err(|never| match never {})
                        .boxed_unsync();
                    let resp = http::Response::from_parts(f.parts, body);
                    let io: Box<dyn Future<Output = _> + Send> = Box::new(async { Ok(()) });
                    Ok((resp, io))
                }
                Ok(Err(Failure::Timeout(_))) => Err(HttpError::HttpResponseTimeout),
                Ok(Err(Failure::TooLarge(n))) => Err(HttpError::HttpResponseBodySize(Some(n))),
                Ok(Err(Failure::Certificate(_))) => Err(HttpError::TlsCertificateError),
                Ok(Err(Failure::Tls(_))) => Err(HttpError::TlsProtocolError),
                Ok(Err(f)) => Err(HttpError::InternalError(Some(f.to_string()))),
                Err(e) => Err(HttpError::InternalError(Some(e.to_string()))),
            }
        })
    }
}

/// The getter the `wasi:http` bindings call: binds the hooks to the agent
/// on first use and tells them which message is being handled.
fn view(s: &mut StoreData<AgentCtx>) -> WasiHttpCtxView<'_> {
    let (table, data) = s.table_and_data();
    let handling = data.handling();
    let fresh = data
        .extensions
        .get_or_default::<NetState>()
        .hooks
        .bound
        .is_none()
        .then(|| (data.kernel(), data.principal().clone()));
    let st = data.extensions.get_or_default::<NetState>();
    if fresh.is_some() {
        st.hooks.bound = fresh;
    }
    st.hooks.handling = handling;
    WasiHttpCtxView {
        ctx: &mut st.ctx,
        table,
        hooks: &mut st.hooks,
    }
}

/// Link `wasi:http/types` and `wasi:http/outgoing-handler` (once, at boot).
/// Agents that import neither are unaffected; one that does gets only what
/// its grants allow.
pub fn link(linker: &mut AgentLinker) -> KernelResult<()> {
    let fail = |e: wasmtime::Error| KernelError::Failed(format!("cannot link wasi:http: {e:#}"));
    b::outgoing_handler::add_to_linker::<_, WasiHttp>(linker, view).map_err(fail)?;
    let options = wasmtime_wasi_http::p2::bindings::LinkOptions::default();
    b::types::add_to_linker::<_, WasiHttp>(linker, &options.into(), view).map_err(fail)?;
    Ok(())
}

/// One outbound request as an action: gate action `net.http.<host>`.
pub struct NetHttp {
    request: http::Request<WasiBody>,
    target: Result<Target, String>,
    over_limit: bool,
    config: Arc<NetConfig>,
    pool: Arc<Pool<WasiBody>>,
    grants: Vec<Grant>,
}

impl NetHttp {
    fn host(&self) -> &str {
        self.target
            .as_ref()
            .map(|t| t.host.as_str())
            .unwrap_or("invalid")
    }
}

impl Action for NetHttp {
    type Output = Result<Fetched, Failure>;

    fn gate_action(&self) -> Cow<'static, str> {
        format!("net.http.{}", self.host()).into()
    }

    fn gate_context(&self) -> Value {
        let url = self.target.as_ref().map(Target::url).unwrap_or_default();
        json!({ "method": self.request.method().as_str(), "url": url })
    }

    /// The permit covers what the gate saw (method and URL without its
    /// query), so a repeat of the same request reuses it until policy
    /// changes; the grant and address checks and the `net.http` record still
    /// happen on every request.
    fn reuse_permit(&self) -> Option<Cow<'_, str>> {
        let t = self.target.as_ref().ok()?;
        Some(format!("{} {}", self.request.method(), t.url()).into())
    }

    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        let t = self.target.clone().map_err(KernelError::Invalid)?;
        let Principal::Agent(a) = who else {
            return Err(KernelError::Denied(
                "only agents make outbound requests".into(),
            ));
        };
        self.grants = t.grants(&a.caps.network);
        if self.grants.is_empty() {
            return Err(KernelError::Denied(format!(
                "{} is outside agent `{}`'s network.outbound",
                t.url(),
                a.name
            )));
        }
        if self.over_limit {
            return Err(KernelError::Denied(format!(
                "agent `{}` made {} requests for this message ([net] max_requests_per_message)",
                a.name, self.config.max_requests_per_message
            )));
        }
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<Self::Output> {
        let NetHttp {
            mut request,
            target,
            config,
            pool,
            grants,
            ..
        } = self;
        let t = target.map_err(KernelError::Invalid)?;
        let method = request.method().to_string();
        let kernel = cx.kernel();
        let started = Instant::now();
        let limit = Duration::from_millis(config.timeout_ms);
        let mut result = match add_secrets(&kernel, cx.who(), &t, request.headers_mut()) {
            Err(e) => Err(e),
            Ok(()) => match tokio::time::timeout(limit, async {
                let addr = fetch::resolve(&t, &grants).await?;
                let tls = config.tls.as_ref();
                let limit = config.max_response_bytes;
                fetch::send(addr, &t, tls, Some(&*pool), request, limit).await
            })
            .await
            {
                Ok(r) => r,
                Err(_) => Err(Failure::Timeout(config.timeout_ms)),
            },
        };
        if let Ok(f) = &result {
            if let (Some(to), Principal::Agent(a)) =
                (fetch::redirect_target(&t, &f.parts), cx.who())
            {
                if to.grants(&a.caps.network).is_empty() {
                    result = Err(Failure::Refused(format!(
                        "redirect to {}, outside network.outbound",
                        to.url()
                    )));
                }
            }
        }
        let ms = started.elapsed().as_millis() as u64;
        let (status, bytes) = match &result {
            Ok(f) => (Some(f.parts.status.as_u16()), f.body.len()),
            Err(_) => (None, 0),
        };
        let outcome = result.as_ref().err().map(Failure::outcome).unwrap_or("ok");
        let mut rec = json!({
            "method": method, "url": t.url(), "status": status, "bytes": bytes,
            "duration_ms": ms, "outcome": outcome,
        });
        if let Err(e) = &result {
            rec["error"] = json!(e.to_string());
        }
        cx.record("net.http", &rec)?;
        let level = if result.is_ok() {
            LogLevel::Info
        } else {
            LogLevel::Warn
        };
        let shown = status
            .map(|s| s.to_string())
            .unwrap_or_else(|| outcome.into());
        kernel.log(
            level,
            format!(
                "net: {} {method} {} -> {shown} ({bytes} B, {ms} ms)",
                cx.who().gate_name(),
                t.url()
            ),
        );
        Ok(result)
    }
}

/// Add the agent's secret headers whose `server` allows `t`; a secret the
/// app has not set fails the request (it would go out unauthenticated).
fn add_secrets(
    kernel: &Kernel,
    who: &Principal,
    t: &Target,
    headers: &mut http::HeaderMap,
) -> Result<(), Failure> {
    let Principal::Agent(a) = who else {
        return Ok(());
    };
    let app = a.app.as_deref();
    for s in &a.caps.network.secrets {
        let Ok(g) = Grant::parse(&s.server) else {
            continue;
        };
        if !g.allows(t.scheme, &t.host, t.port) {
            continue;
        }
        let Some(app) = app else {
            return Err(Failure::Refused(format!(
                "secret `{}`: agent `{}` belongs to no app",
                s.secret, a.name
            )));
        };
        let value = crate::secrets::read(kernel.state_dir(), app, &s.secret)
            .map_err(|e| Failure::Failed(e.to_string()))?
            .ok_or_else(|| {
                Failure::Refused(format!(
                    "app `{app}` has no secret `{}` (weaver secret set {app} {})",
                    s.secret, s.secret
                ))
            })?;
        let name = http::HeaderName::from_bytes(s.header.as_bytes())
            .map_err(|e| Failure::Failed(format!("header `{}`: {e}", s.header)))?;
        let value = http::HeaderValue::from_str(&format!("{}{}", s.prefix, value.trim_end()))
            .map_err(|_| Failure::Failed(format!("secret `{}` is not a header value", s.secret)))?;
        headers.insert(name, value);
    }
    Ok(())
}
