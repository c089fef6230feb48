//! The `net` unit: links `wasi:http` into the agent world, reads `[net]`,
//! carries out `add-route` plan steps, serves routes, answers `weaver net`
//! and `weaver secret`.

use std::any::Any;
use std::borrow::Cow;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};
use weft_kernel::agent::AgentLinker;
use weft_kernel::console::LogLevel;
use weft_kernel::control::{ControlCx, ControlReply};
use weft_kernel::{
    ActCx, Action, AgentPrincipal, AppClearCx, AppStepCx, BoxFuture, ClearReason, Extensions,
    InitCx, Kernel, KernelError, KernelResult, KernelView, Principal, Subsystem, SubsystemError,
    ToolRun,
};
use weft_model::net::Route;
use weft_model::plan::{ServiceSource, Step};

use crate::handler::Handler;
use crate::inbound::Routes;
use crate::outbound::NetState;
use crate::NetConfig;

/// Every gate action of the unit.
pub const ACTIONS: &[&str] = &[
    "net.http.**",
    "net.ingress.*",
    "net.route.add",
    "net.route.clear",
    "net.list",
    "secret.set",
    "secret.remove",
    "secret.list",
];

static LISTEN_FLAG: Mutex<Option<String>> = Mutex::new(None);

/// `weaver run --http ADDR`: serve routes there (overrides `[net] listen`).
pub fn set_listen_flag(addr: Option<String>) {
    *LISTEN_FLAG.lock().unwrap_or_else(|p| p.into_inner()) = addr;
}

/// The unit.
#[derive(Default)]
pub struct NetUnit {
    config: OnceLock<Arc<NetConfig>>,
    routes: Arc<Routes>,
    listening: OnceLock<String>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl NetUnit {
    /// A fresh unit.
    pub fn new() -> Self {
        Self::default()
    }

    /// The route table.
    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    /// Where routes are served, once they are.
    pub fn listening(&self) -> Option<&str> {
        self.listening.get().map(String::as_str)
    }

    fn config(&self) -> Arc<NetConfig> {
        self.config.get().cloned().unwrap_or_default()
    }
}

fn fail(e: impl std::fmt::Display) -> SubsystemError {
    SubsystemError::new("net", e)
}

impl Subsystem for NetUnit {
    fn name(&self) -> &'static str {
        "net"
    }

    fn link(&self, linker: &mut AgentLinker) -> KernelResult<()> {
        crate::outbound::link(linker)
    }

    fn init(&self, cx: &InitCx<'_>) -> Result<(), SubsystemError> {
        let mut section: NetConfig = cx.section().map_err(fail)?;
        if let Some(a) = LISTEN_FLAG
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            section.listen = Some(a);
        }
        if section.timeout_ms == 0 || section.max_response_bytes == 0 {
            return Err(fail(
                "[net] timeout_ms and max_response_bytes must be above 0",
            ));
        }
        let base = cx.config_path().and_then(|p| p.parent());
        section.tls = Some(crate::tls::TlsClient::new(&section.ca_certs, base).map_err(fail)?);
        self.routes
            .load(cx.state_dir().join("net-routes.json"))
            .map_err(fail)?;
        let _ = self.config.set(Arc::new(section));
        Ok(())
    }

    fn start<'a>(&'a self, kernel: &'a Kernel) -> BoxFuture<'a, Result<(), SubsystemError>> {
        Box::pin(async move {
            let cfg = self.config();
            let Some(addr) = cfg.listen.clone() else {
                return Ok(());
            };
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .map_err(|e| fail(format!("cannot listen on {addr}: {e}")))?;
            let local = listener.local_addr().map_err(fail)?.to_string();
            kernel.log(
                LogLevel::Info,
                format!("net: serving routes on http://{local}"),
            );
            let _ = self.listening.set(local);
            let task = tokio::spawn(crate::inbound::serve(
                listener,
                kernel.clone(),
                self.routes.clone(),
                cfg,
            ));
            *self.server.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
            Ok(())
        })
    }

    fn stop(&self) {
        if let Some(t) = self.server.lock().unwrap_or_else(|p| p.into_inner()).take() {
            t.abort();
        }
    }

    fn actions(&self) -> &'static [&'static str] {
        ACTIONS
    }

    fn app_actions(&self) -> &'static [&'static str] {
        // `net.http.**`: the calls of the app's external (`url`) services.
        &[
            "net.ingress.*",
            "net.route.add",
            "net.route.clear",
            "net.http.**",
        ]
    }

    fn control_ops(&self) -> &'static [&'static str] {
        crate::control::OPS
    }

    fn claims_step(&self, step: &Step) -> bool {
        match step {
            Step::AddRoute(_) => true,
            Step::RegisterService(s) => matches!(s.source, ServiceSource::Url(_)),
            _ => false,
        }
    }

    fn app_step<'a>(&'a self, cx: AppStepCx<'a>) -> BoxFuture<'a, KernelResult<()>> {
        Box::pin(async move {
            if let Step::RegisterService(s) = cx.step {
                if let ServiceSource::Url(url) = &s.source {
                    return crate::external::register(
                        cx.kernel,
                        cx.app,
                        &s.name,
                        url,
                        self.config(),
                    )
                    .await;
                }
            }
            let Step::AddRoute(route) = cx.step else {
                return Err(KernelError::Invalid(format!(
                    "net does not carry out {:?}",
                    cx.step
                )));
            };
            let component = match &route.component {
                Some(path) => Some(cx.load_component(path)?),
                None => None,
            };
            let action = RouteAdd {
                app: cx.app_name().to_string(),
                route: route.clone(),
                component,
                routes: self.routes.clone(),
            };
            cx.kernel.act(cx.app, action).await
        })
    }

    fn app_clear<'a>(&'a self, cx: AppClearCx<'a>) -> BoxFuture<'a, KernelResult<()>> {
        Box::pin(async move {
            let app = cx.app_name().to_string();
            if !self.routes.all().iter().any(|r| r.app == app) || cx.reason == ClearReason::Start {
                return Ok(());
            }
            let action = RouteClear {
                app,
                remove: cx.reason == ClearReason::Remove,
                routes: self.routes.clone(),
            };
            cx.kernel.act(cx.app, action).await
        })
    }

    fn prepare(&self, _agent: &AgentPrincipal, ext: &mut Extensions) -> KernelResult<()> {
        ext.insert(NetState::new(self.config()));
        Ok(())
    }

    fn tool_imports(&self) -> Option<weft_runtime::LinkTools> {
        Some(Arc::new(crate::outbound::link_tools))
    }

    fn prepare_tool(&self, run: &ToolRun<'_>, ext: &mut Extensions) -> KernelResult<()> {
        if !run.tool.network.outbound.is_empty() {
            ext.insert(NetState::for_tool(self.config(), run));
        }
        Ok(())
    }

    fn control<'a>(&'a self, cx: ControlCx<'a>) -> BoxFuture<'a, ControlReply> {
        Box::pin(crate::control::serve(self, cx))
    }

    fn status(&self) -> Value {
        let c = self.config();
        let routes = self.routes.all().len();
        json!(format!(
            "outbound: timeout {} ms, {} bytes, {} requests/message; {routes} routes{}",
            c.timeout_ms,
            c.max_response_bytes,
            c.max_requests_per_message,
            match self.listening() {
                Some(a) => format!(" on http://{a}"),
                None => " (not served)".into(),
            }
        ))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `net.route.add`: an app's start routes `path` to its agent or to its
/// handler component.
pub struct RouteAdd {
    app: String,
    route: Route,
    /// The route's `component`, loaded (digest checked).
    component: Option<weft_runtime::LoadedComponent>,
    routes: Arc<Routes>,
}

impl RouteAdd {
    /// Route `route` (to an agent) for `app` in `unit`'s table.
    pub fn new(unit: &NetUnit, app: &str, route: Route) -> Self {
        RouteAdd {
            app: app.into(),
            route,
            component: None,
            routes: unit.routes.clone(),
        }
    }
}

impl Action for RouteAdd {
    type Output = ();
    fn gate_action(&self) -> Cow<'static, str> {
        "net.route.add".into()
    }
    fn gate_context(&self) -> Value {
        json!({ "app": self.app, "path": self.route.path, "to": target(&self.route) })
    }
    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        match who {
            Principal::App(a) if a.name() == self.app => Ok(()),
            Principal::Kernel => Ok(()),
            _ => Err(KernelError::Denied(format!(
                "only app `{}` routes its paths",
                self.app
            ))),
        }
    }
    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<()> {
        let handler = match (&self.component, &self.route.component) {
            (Some(c), Some(path)) => Some(
                Handler::new(cx.runtime(), c)
                    .map_err(|e| KernelError::Invalid(format!("`{path}`: {e}")))?,
            ),
            (None, Some(path)) => {
                return Err(KernelError::Invalid(format!(
                    "route `{}`: `{path}` was not loaded",
                    self.route.path
                )))
            }
            _ => None,
        };
        self.routes
            .add(&self.app, self.route.clone(), handler)
            .map_err(KernelError::Invalid)?;
        let mut rec = json!({ "app": self.app, "path": self.route.path });
        match &self.component {
            Some(c) => {
                rec["component"] = json!(self.route.component);
                rec["digest"] = json!(c.digest.to_hex());
            }
            None => rec["agent"] = json!(self.route.agent),
        }
        cx.record("net.route.add", &rec)?;
        Ok(())
    }
}

/// What a route leads to, for the gate: `agent:ID` or `component:PATH`.
fn target(r: &Route) -> String {
    match &r.component {
        Some(c) => format!("component:{c}"),
        None => format!("agent:{}", r.agent),
    }
}

/// `net.route.clear`: an app stopped (its routes answer 503) or was
/// removed (they are gone).
pub struct RouteClear {
    app: String,
    remove: bool,
    routes: Arc<Routes>,
}

impl RouteClear {
    /// Stop (or with `remove`, drop) `app`'s routes in `unit`'s table.
    pub fn new(unit: &NetUnit, app: &str, remove: bool) -> Self {
        RouteClear {
            app: app.into(),
            remove,
            routes: unit.routes.clone(),
        }
    }
}

impl Action for RouteClear {
    type Output = ();
    fn gate_action(&self) -> Cow<'static, str> {
        "net.route.clear".into()
    }
    fn gate_context(&self) -> Value {
        json!({ "app": self.app, "remove": self.remove })
    }
    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<()> {
        self.routes
            .clear(&self.app, self.remove)
            .map_err(KernelError::Failed)?;
        cx.record(
            "net.route.clear",
            &json!({ "app": self.app, "removed": self.remove }),
        )?;
        Ok(())
    }
}
