//! `wasi:http/outgoing-handler` for agents and tools. Each request the guest
//! sends is one [`NetHttp`] action, as the agent or as the app that
//! registered the tool: in-process check against the agent's or the tool's
//! `network.outbound` grants and the per-message (per-run) limit (refusals
//! recorded as `gate.deny`), the gate (`net.http.<host>`), then the wire
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
use weft_kernel::{
    ActCx, Action, Kernel, KernelError, KernelResult, KernelView, Principal, ToolRun,
};
use weft_model::net::{Grant, NetCaps};
use weft_runtime::{Extensions, StoreData, ToolLinker};

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

    /// State for one run of `run.tool`: it acts as its registrar, within
    /// its own `network` grants.
    pub fn for_tool(config: Arc<NetConfig>, run: &ToolRun<'_>) -> Self {
        let grantee = Grantee {
            kind: "tool",
            name: run.tool.name.clone(),
            caps: run.tool.network.clone(),
            app: run.registrar.as_app().map(|a| a.name().to_string()),
            caller: run.caller.gate_name().to_string(),
        };
        Self::for_grantee(config, run.kernel, run.registrar, grantee)
    }

    /// State for one request to route `path`'s handler component: it acts
    /// as `app`, within the route's `network` grants.
    pub fn for_route(
        config: Arc<NetConfig>,
        kernel: &Kernel,
        app: &Principal,
        path: &str,
        caps: &NetCaps,
    ) -> Self {
        let grantee = Grantee {
            kind: "route",
            name: path.to_string(),
            caps: caps.clone(),
            app: app.as_app().map(|a| a.name().to_string()),
            caller: "http".to_string(),
        };
        Self::for_grantee(config, kernel, app, grantee)
    }

    fn for_grantee(config: Arc<NetConfig>, k: &Kernel, who: &Principal, g: Grantee) -> Self {
        let mut st = NetState::new(config);
        st.hooks.bound = Some((k.clone(), who.clone()));
        st.hooks.grantee = Some(Arc::new(g));
        st
    }
}

/// A tool's or a route handler's side of a request: what it is, its
/// grants, its app (for secrets) and who ran it (for the record).
struct Grantee {
    /// `tool` or `route`.
    kind: &'static str,
    /// The tool's name or the route's path.
    name: String,
    caps: NetCaps,
    app: Option<String>,
    caller: String,
}

/// What `send_request` needs: the kernel and the agent (or tool registrar)
/// to act as (bound on first use), the message being handled and how many
/// requests it made.
#[derive(Default)]
struct NetHooks {
    config: Arc<NetConfig>,
    bound: Option<(Kernel, Principal)>,
    /// Set for a tool's run or a route handler's request: whose grants
    /// apply (an agent's are its own).
    grantee: Option<Arc<Grantee>>,
    handling: Option<Handling>,
    /// (message id, requests made while handling it).
    counted: (u64, u32),
    /// This agent's idle connections (reused only after each request's own
    /// grant and address check, see [`crate::pool`]).
    pool: Arc<Pool<WasiBody>>,
}

/// What a `WasiHttpHooks::send_request` future gives.
pub type SendResult = wasmtime_wasi_http::Result<(
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
                    "no network: this component's manifest entry grants no `network.outbound`"
                        .into(),
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
            grantee: self.grantee.clone(),
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

/// The getter of a tool's store: its state was attached by
/// [`NetState::for_tool`] (none: the default, which refuses every request).
pub(crate) fn tool_view(s: &mut StoreData<Extensions>) -> WasiHttpCtxView<'_> {
    let (table, ext) = s.table_and_data();
    let st = ext.get_or_default::<NetState>();
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
    link_with(linker, view).map_err(|e| KernelError::Failed(e.to_string()))
}

/// The same for tools and WASI commands (the runtime's tool linker).
pub fn link_tools(linker: &mut ToolLinker) -> Result<(), weft_runtime::RunError> {
    link_with(linker, tool_view).map_err(|e| weft_runtime::RunError::Host(e.to_string()))
}

fn link_with<T: Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    get: fn(&mut T) -> WasiHttpCtxView<'_>,
) -> Result<(), String> {
    let fail = |e: wasmtime::Error| format!("cannot link wasi:http: {e:#}");
    b::outgoing_handler::add_to_linker::<_, WasiHttp>(linker, get).map_err(fail)?;
    let options = wasmtime_wasi_http::p2::bindings::LinkOptions::default();
    b::types::add_to_linker::<_, WasiHttp>(linker, &options.into(), get).map_err(fail)?;
    Ok(())
}

/// One outbound request as an action: gate action `net.http.<host>`.
pub struct NetHttp {
    request: http::Request<WasiBody>,
    target: Result<Target, String>,
    over_limit: bool,
    config: Arc<NetConfig>,
    pool: Arc<Pool<WasiBody>>,
    grantee: Option<Arc<Grantee>>,
    grants: Vec<Grant>,
}

impl NetHttp {
    /// Whose grants apply: the tool's or route's for theirs, else the
    /// agent's; and how to name them in a refusal.
    fn grantee<'a>(&'a self, who: &'a Principal) -> KernelResult<(&'a NetCaps, String)> {
        match (&self.grantee, who) {
            (Some(g), _) => Ok((&g.caps, format!("{} `{}`", g.kind, g.name))),
            (None, Principal::Agent(a)) => Ok((&a.caps.network, format!("agent `{}`", a.name))),
            _ => Err(KernelError::Denied(
                "only agents, tools and route handlers make outbound requests".into(),
            )),
        }
    }

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

    fn authorize(&mut self, who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        let t = self.target.clone().map_err(KernelError::Invalid)?;
        let (caps, whose) = self.grantee(who)?;
        let grants = t.grants(caps);
        if grants.is_empty() {
            return Err(KernelError::Denied(format!(
                "{} is outside {whose}'s network.outbound",
                t.url(),
            )));
        }
        environment_allows(who, &t, k)?;
        if self.over_limit {
            let per = if self.grantee.is_some() {
                "run"
            } else {
                "message"
            };
            return Err(KernelError::Denied(format!(
                "{whose} made {} requests for this {per} ([net] max_requests_per_message)",
                self.config.max_requests_per_message
            )));
        }
        self.grants = grants;
        Ok(())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<Self::Output> {
        let (caps, _) = self.grantee(cx.who())?;
        let caps = caps.clone();
        let app = match (&self.grantee, cx.who()) {
            (Some(g), _) => g.app.clone(),
            (None, Principal::Agent(a)) => a.app.as_deref().map(str::to_string),
            _ => None,
        };
        let grantee = self.grantee.clone();
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
        let secrets = Secrets {
            kernel: &kernel,
            app: app.as_deref(),
            caps: &caps,
        };
        let mut result = match secrets.add(&t, request.headers_mut()) {
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
            if let Some(to) = fetch::redirect_target(&t, &f.parts) {
                if to.grants(&caps).is_empty() {
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
        if let Some(g) = &grantee {
            rec[g.kind] = json!(g.name);
            rec["caller"] = json!(g.caller);
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
        let by = match &grantee {
            Some(g) => format!("{} ({} {})", cx.who().gate_name(), g.kind, g.name),
            None => cx.who().gate_name().to_string(),
        };
        kernel.log(
            level,
            format!(
                "net: {by} {method} {} -> {shown} ({bytes} B, {ms} ms)",
                t.url()
            ),
        );
        Ok(result)
    }
}

/// Is `t` within the outbound allow-list of `who`'s environment (when it
/// has one)? Install checked the grants against it; the operator may have
/// narrowed it since, spawned an agent outside any app, or declared an
/// external service's URL.
pub(crate) fn environment_allows(
    who: &Principal,
    t: &Target,
    k: &KernelView<'_>,
) -> KernelResult<()> {
    let env = k.environments().of_principal(who);
    let Some(list) = &env.outbound else {
        return Ok(());
    };
    let allowed = NetCaps {
        outbound: list.clone(),
        ..NetCaps::default()
    };
    if t.grants(&allowed).is_empty() {
        return Err(KernelError::Denied(format!(
            "{} is outside environment `{}`'s outbound allow-list",
            t.url(),
            env.name
        )));
    }
    Ok(())
}

/// The secret headers of one request: the agent's or tool's `secrets`
/// entries, read from its app's store.
struct Secrets<'a> {
    kernel: &'a Kernel,
    app: Option<&'a str>,
    caps: &'a NetCaps,
}

impl Secrets<'_> {
    /// Add the headers whose `server` allows `t`; a secret the app has not
    /// set fails the request (it would go out unauthenticated).
    fn add(&self, t: &Target, headers: &mut http::HeaderMap) -> Result<(), Failure> {
        for s in &self.caps.secrets {
            let Ok(g) = Grant::parse(&s.server) else {
                continue;
            };
            if !g.allows(t.scheme, &t.host, t.port) {
                continue;
            }
            let Some(app) = self.app else {
                return Err(Failure::Refused(format!(
                    "secret `{}`: the requester belongs to no app",
                    s.secret
                )));
            };
            let value = crate::secrets::read(self.kernel.state_dir(), app, &s.secret)
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
                .map_err(|_| {
                Failure::Failed(format!("secret `{}` is not a header value", s.secret))
            })?;
            headers.insert(name, value);
        }
        Ok(())
    }
}
