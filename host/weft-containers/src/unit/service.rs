//! A running container service: what the unit knows of it (its container,
//! state, restarts, health), how messages reach it, and its `weaver ps` row.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::HeaderValue;
use serde_json::{json, Value};
use weft_kernel::ipc::service::{ServiceRequest, SystemService};
use weft_kernel::{BoxFuture, Payload, Principal};
use weft_model::plan::{HealthCheck, ProbeKind, RestartPolicy};

use crate::{ContainerId, ContainerState};

/// What the supervisor and the health probes have seen.
#[derive(Debug, Clone)]
pub struct Live {
    /// The container's state as Weft last saw it.
    pub state: ContainerState,
    /// Restarts by the supervisor since the last reset.
    pub restarts: u32,
    /// The last exit code.
    pub last_exit: Option<i64>,
    /// The health verdict; `None` until the first probe (or no probe).
    pub healthy: Option<bool>,
    /// The last probe's detail.
    pub health_detail: String,
    /// Set once the restart policy gave up: why (names the exit code).
    pub gave_up: Option<String>,
    /// When it last started.
    pub started: Instant,
}

/// One container service of a running app.
pub struct Service {
    /// App, version and service name.
    pub app: String,
    /// The app version.
    pub version: String,
    /// The service name.
    pub name: String,
    /// The app, to act as.
    pub principal: Principal,
    /// Its container.
    pub id: ContainerId,
    /// The image id it runs.
    pub image_id: String,
    /// Published ports, `HOST_IP:HOST_PORT->CONTAINER`.
    pub ports: Vec<String>,
    /// Where calls go: the published address of `call.port`, and the path.
    pub call: Option<(SocketAddr, String)>,
    /// Weft's restart policy for it.
    pub restart: RestartPolicy,
    /// Its health check.
    pub health: Option<HealthCheck>,
    /// State seen so far.
    pub live: Mutex<Live>,
    /// Set when the app stops it: an exit is then not a crash.
    pub stopping: AtomicBool,
    /// The supervisor task.
    pub supervisor: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Service {
    /// `weft_kernel::ServiceEntry` name of the probe: `container:<app>/<svc>`.
    pub fn probe_name(&self) -> String {
        probe_name(&self.app, &self.name)
    }

    /// The state seen so far.
    pub fn live(&self) -> Live {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Change the state seen.
    pub fn update(&self, f: impl FnOnce(&mut Live)) {
        f(&mut self.live.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Is the app taking it down?
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Stop supervising it (the app is taking it down).
    pub fn halt(&self) {
        self.stopping.store(true, Ordering::Release);
        if let Some(t) = self
            .supervisor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            t.abort();
        }
    }

    /// Why the app is Degraded because of it, if it is.
    pub fn problem(&self) -> Option<String> {
        let l = self.live();
        if let Some(why) = l.gave_up {
            return Some(why);
        }
        let liveness = self
            .health
            .as_ref()
            .is_some_and(|h| h.kind == ProbeKind::Liveness);
        (liveness && l.healthy == Some(false)).then(|| {
            format!(
                "service `{}` (container {}) fails its liveness probe: {}",
                self.name,
                short(&self.id),
                l.health_detail
            )
        })
    }

    /// Its `weaver ps` row.
    pub fn ps_row(&self) -> Value {
        let l = self.live();
        let running = matches!(l.state, ContainerState::Running);
        let health = match (&self.health, l.healthy) {
            (None, _) => "-".to_string(),
            _ if !running => "-".to_string(),
            (Some(_), None) => "starting".to_string(),
            (Some(_), Some(true)) => "healthy".to_string(),
            (Some(_), Some(false)) => "unhealthy".to_string(),
        };
        json!({
            "kind": "container",
            "id": short(&self.id),
            "name": format!("{}/{}", self.app, self.name),
            "state": format!("{:?}", l.state),
            "health": health,
            "health_detail": l.health_detail,
            "owner": format!("app:{}", self.app),
            "version": self.version,
            "image": short_image(&self.image_id),
            "image_id": self.image_id,
            "container_id": self.id.as_str(),
            "ports": self.ports.join(","),
            "restarts": l.restarts,
            "last_exit": l.last_exit,
            "last_failure": l.gave_up.or_else(|| l.last_exit.filter(|c| *c != 0).map(|c| format!("exit {c}"))),
        })
    }
}

/// The probe name of a service.
pub fn probe_name(app: &str, service: &str) -> String {
    format!("container:{app}/{service}")
}

/// The first 12 hex of a container id, as `docker ps` shows it.
pub fn short(id: &ContainerId) -> String {
    id.as_str().chars().take(12).collect()
}

fn short_image(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    format!("sha256:{}", &hex[..hex.len().min(12)])
}

/// How the kernel's service router reaches a container service.
pub struct ContainerEndpoint(pub Arc<Service>);

/// Largest reply body accepted from a container.
pub const MAX_REPLY: usize = 4 << 20;

impl SystemService for ContainerEndpoint {
    fn health_check(&self) -> Result<(), String> {
        let s = &self.0;
        let l = s.live();
        if let Some(why) = l.gave_up {
            return Err(why);
        }
        match (l.state, l.healthy) {
            (ContainerState::Running, Some(false)) => Err(format!(
                "container {} is unhealthy: {}",
                short(&s.id),
                l.health_detail
            )),
            (ContainerState::Running, _) => Ok(()),
            (state, _) => Err(format!("container {} is {state:?}", short(&s.id))),
        }
    }

    fn takes_calls(&self) -> bool {
        self.0.call.is_some()
    }

    /// `POST` of the JSON body to the published port of `call.port` at
    /// `call.path`, with `Weft-Method`, `Weft-Sender` and `Weft-Message-Id`
    /// headers; a 2xx answer's body is the reply (JSON when it parses as
    /// JSON, else text). Binary payloads are refused: the mapping is JSON.
    fn call(&self, req: ServiceRequest) -> BoxFuture<'static, Result<Payload, String>> {
        let s = self.0.clone();
        Box::pin(async move {
            let Some((addr, path)) = s.call.clone() else {
                return Err(format!(
                    "service `{}` takes no calls (no `call` in its manifest)",
                    s.name
                ));
            };
            let body = match req.payload {
                Payload::Json(v) => v.to_string(),
                Payload::Text(t) => Value::String(t).to_string(),
                Payload::Binary(_) => {
                    return Err(format!(
                        "service `{}` takes JSON: a binary message cannot be posted to a container",
                        s.name
                    ))
                }
            };
            let mut headers = vec![
                ("weft-sender", header(&req.sender)),
                ("weft-message-id", header(&req.message_id.to_string())),
            ];
            if let Some(m) = &req.method {
                headers.push(("weft-method", header(m)));
            }
            let reply = crate::probe::post_json_with(
                addr,
                &path,
                Bytes::from(body),
                &headers,
                req.timeout,
                MAX_REPLY,
            )
            .await
            .map_err(|e| format!("service `{}`: {e}", s.name))?;
            if !(200..300).contains(&reply.status) {
                let text = String::from_utf8_lossy(&reply.body);
                let text: String = text.chars().take(200).collect();
                return Err(format!(
                    "service `{}` answered HTTP {}: {}",
                    s.name,
                    reply.status,
                    text.trim()
                ));
            }
            Ok(match serde_json::from_slice::<Value>(&reply.body) {
                Ok(v) => Payload::Json(v),
                Err(_) => match String::from_utf8(reply.body.to_vec()) {
                    Ok(t) => Payload::Text(t),
                    Err(e) => Payload::Binary(e.into_bytes()),
                },
            })
        })
    }
}

/// A header value; anything a header cannot carry is percent-escaped.
fn header(v: &str) -> HeaderValue {
    HeaderValue::from_str(v).unwrap_or_else(|_| {
        let escaped: String = v
            .bytes()
            .map(|b| {
                if (0x20..0x7f).contains(&b) && b != b'%' {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        HeaderValue::from_str(&escaped).unwrap_or(HeaderValue::from_static("invalid"))
    })
}

/// How long the supervisor waits before restart `n` (1-based): the
/// policy's backoff, doubled each time, at most 30 s.
pub fn backoff(base: Duration, n: u32) -> Duration {
    let factor = 1u32 << n.saturating_sub(1).min(6);
    (base * factor).min(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let b = Duration::from_millis(500);
        assert_eq!(backoff(b, 1), Duration::from_millis(500));
        assert_eq!(backoff(b, 2), Duration::from_millis(1000));
        assert_eq!(backoff(b, 3), Duration::from_millis(2000));
        assert_eq!(backoff(b, 40), Duration::from_secs(30));
    }

    #[test]
    fn headers_carry_anything() {
        assert_eq!(header("hello.agent"), "hello.agent");
        assert_eq!(header("a\nb"), "a%0Ab");
    }
}
