//! External services: a manifest's `[[services]] url = "..."` is served
//! over HTTP. A `Service` or `ServiceMethod` message to it becomes a POST
//! to the URL (a method appended as one more path segment), and the
//! response its reply. Each call is an action of the owning app: gated as
//! `net.http.<host>`, sent with the same address checks, time and size
//! limits as agents' requests ([`crate::fetch`]), recorded as `net.http`.
//! The URL in the manifest is the grant: nothing else is reachable.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use serde_json::{json, Value};
use weft_kernel::console::LogLevel;
use weft_kernel::ipc::service::{AuditLevel, ServiceEndpoint, ServiceRequest, SystemService};
use weft_kernel::ipc::RegisterService;
use weft_kernel::{
    ActCx, Action, BoxFuture, Kernel, KernelError, KernelResult, KernelView, Payload, Principal,
};
use weft_model::net::Grant;

use crate::fetch::{self, Failure, Target};
use crate::NetConfig;

/// Register the app's external service `name` at `url`, served by HTTP.
pub(crate) async fn register(
    kernel: &Kernel,
    app: &Principal,
    name: &str,
    url: &str,
    config: Arc<NetConfig>,
) -> KernelResult<()> {
    let bad = |why: String| KernelError::Invalid(format!("service `{name}`: url `{url}`: {why}"));
    let uri: http::Uri = url.parse().map_err(|e| bad(format!("{e}")))?;
    let target = Target::of(&uri).map_err(bad)?;
    if uri.query().is_some() {
        return Err(bad(
            "a query is not allowed (secrets belong in `weaver secret`)".into(),
        ));
    }
    let host = if target.host.contains(':') {
        format!("[{}]", target.host)
    } else {
        target.host.clone()
    };
    let grant = Grant::parse(&format!("{}://{host}:{}", target.scheme, target.port))
        .map_err(|e| bad(e.to_string()))?;
    let service = ExternalService {
        kernel: kernel.clone(),
        app: app.clone(),
        name: name.to_string(),
        target,
        grant,
        config,
    };
    kernel
        .act(
            app,
            RegisterService {
                name: name.to_string(),
                endpoint: ServiceEndpoint::External {
                    url: url.to_string(),
                },
                audit_level: AuditLevel::Full,
                native: Some(Arc::new(service)),
            },
        )
        .await
        .map(|_registered| ())
}

/// The host side of one external service.
struct ExternalService {
    kernel: Kernel,
    app: Principal,
    name: String,
    target: Target,
    grant: Grant,
    config: Arc<NetConfig>,
}

impl SystemService for ExternalService {
    fn health_check(&self) -> Result<(), String> {
        // Reachability is each call's business; a probe would be traffic
        // the app did not ask for.
        Ok(())
    }

    fn takes_calls(&self) -> bool {
        true
    }

    fn call(&self, req: ServiceRequest) -> BoxFuture<'static, Result<Payload, String>> {
        let kernel = self.kernel.clone();
        let app = self.app.clone();
        let mut target = self.target.clone();
        if let Some(m) = &req.method {
            target.path = format!("{}/{m}", target.path.trim_end_matches('/'));
        }
        let call = ExternalCall {
            service: self.name.clone(),
            target,
            grant: self.grant.clone(),
            timeout: req
                .timeout
                .min(Duration::from_millis(self.config.timeout_ms)),
            limit: self.config.max_response_bytes,
            config: self.config.clone(),
            req,
        };
        Box::pin(async move {
            match kernel.act(&app, call).await {
                Ok(r) => r,
                Err(e) => Err(e.to_string()),
            }
        })
    }
}

/// One call of an external service, as the app that declared it.
struct ExternalCall {
    service: String,
    target: Target,
    grant: Grant,
    timeout: Duration,
    limit: u64,
    config: Arc<NetConfig>,
    req: ServiceRequest,
}

fn body_of(p: &Payload) -> (Bytes, &'static str) {
    match p {
        Payload::Text(t) => (Bytes::from(t.clone()), "text/plain; charset=utf-8"),
        Payload::Json(j) => (Bytes::from(j.to_string()), "application/json"),
        Payload::Binary(b) => (Bytes::from(b.clone()), "application/octet-stream"),
    }
}

/// The reply: JSON when the response says so (and is), text when it is
/// UTF-8, else bytes.
fn payload_of(parts: &http::response::Parts, body: Bytes) -> Payload {
    let json = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
            return Payload::Json(v);
        }
    }
    match String::from_utf8(body.to_vec()) {
        Ok(t) => Payload::Text(t),
        Err(e) => Payload::Binary(e.into_bytes()),
    }
}

impl Action for ExternalCall {
    type Output = Result<Payload, String>;

    fn gate_action(&self) -> Cow<'static, str> {
        format!("net.http.{}", self.target.host).into()
    }

    fn gate_context(&self) -> Value {
        json!({ "method": "POST", "url": self.target.url(), "service": self.service,
                "sender": self.req.sender })
    }

    fn authorize(&mut self, who: &Principal, k: &KernelView<'_>) -> KernelResult<()> {
        match who {
            Principal::App(_) => crate::outbound::environment_allows(who, &self.target, k),
            _ => Err(KernelError::Denied(
                "external services are called as the app that declared them".into(),
            )),
        }
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<Self::Output> {
        let t = &self.target;
        let (body, content_type) = body_of(&self.req.payload);
        let authority = match t.url().split_once("://") {
            Some((_, rest)) => rest.split('/').next().unwrap_or_default().to_string(),
            None => t.host.clone(),
        };
        let request = http::Request::post(t.url())
            .header(http::header::HOST, authority)
            .header(http::header::CONTENT_TYPE, content_type)
            .header("x-weft-service", self.service.as_str())
            .header("x-weft-sender", self.req.sender.as_str())
            .header("x-weft-message-id", self.req.message_id)
            .body(Full::new(body))
            .map_err(|e| KernelError::Invalid(format!("request to {}: {e}", t.url())))?;
        let started = Instant::now();
        let grants = [self.grant.clone()];
        let tls = self.config.tls.as_ref();
        let result = match tokio::time::timeout(self.timeout, async {
            let addr = fetch::resolve(t, &grants).await?;
            // No kept connections: calls of a service are not a hot loop
            // of one agent, and a fresh connection is the simpler truth.
            fetch::send(
                addr,
                t,
                tls,
                None::<&crate::pool::Pool<Full<Bytes>>>,
                request,
                self.limit,
            )
            .await
        })
        .await
        {
            Ok(r) => r,
            Err(_) => Err(Failure::Timeout(self.timeout.as_millis() as u64)),
        };
        let ms = started.elapsed().as_millis() as u64;
        let (status, bytes) = match &result {
            Ok(f) => (Some(f.parts.status.as_u16()), f.body.len()),
            Err(_) => (None, 0),
        };
        let outcome = match &result {
            Ok(f) if !f.parts.status.is_success() => "status",
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        let mut rec = json!({
            "method": "POST", "url": t.url(), "status": status, "bytes": bytes,
            "duration_ms": ms, "outcome": outcome, "service": self.service,
        });
        if let Err(e) = &result {
            rec["error"] = json!(e.to_string());
        }
        cx.record("net.http", &rec)?;
        // One line per call in `weaver kernel logs`, as agents' requests get.
        let shown = status
            .map(|s| s.to_string())
            .unwrap_or_else(|| outcome.into());
        let level = if outcome == "ok" {
            LogLevel::Info
        } else {
            LogLevel::Warn
        };
        cx.kernel().log(
            level,
            format!(
                "net: {} service `{}` POST {} -> {shown} ({bytes} B, {ms} ms)",
                cx.who().gate_name(),
                self.service,
                t.url()
            ),
        );
        Ok(match result {
            Ok(f) if f.parts.status.is_success() => Ok(payload_of(&f.parts, f.body)),
            // The error is recorded with the reply: the status, never the body.
            Ok(f) => Err(format!(
                "service `{}`: {} answered {} ({} bytes)",
                self.service,
                t.url(),
                f.parts.status,
                f.body.len()
            )),
            Err(e) => Err(format!("service `{}`: {}: {e}", self.service, t.url())),
        })
    }
}
