//! Keeping a container service up: the supervisor restarts a container
//! that exits, as its restart policy says, with backoff; once the policy
//! gives up, the service (and so its app) is Degraded, naming the exit
//! code. Health probes are run by the health component; a liveness probe
//! that fails past its threshold has the container killed and restarted.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use weft_kernel::{Kernel, Note, Principal};
use weft_model::plan::{HealthCheck, Probe, RestartPolicy};
use weft_subsystems::health::ProbeFn;

use super::actions::StartContainer;
use super::service::{backoff, short, Service};
use crate::{probe_exec, probe_http_get, probe_tcp, ContainerState, Engine};

/// A container that ran this long before exiting starts its restart count
/// afresh: a service that crashes once a day is not Degraded after three.
pub const RESET_AFTER: Duration = Duration::from_secs(600);

/// Watch `svc`'s container until the app stops it.
pub fn spawn(kernel: Kernel, engine: Engine, svc: Arc<Service>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let code = match engine.wait_exit(&svc.id).await {
                Ok(c) => c,
                Err(e) if svc.is_stopping() => {
                    tracing::debug!("supervisor of {}: {e}", svc.name);
                    return;
                }
                Err(e) if e.is_not_found() => {
                    give_up(
                        &kernel,
                        &svc,
                        format!(
                            "service `{}`: its container {} was removed outside Weft",
                            svc.name,
                            short(&svc.id)
                        ),
                    )
                    .await;
                    return;
                }
                Err(e) => {
                    // The engine did not answer: look again shortly.
                    tracing::warn!("supervisor of {}/{}: {e}", svc.app, svc.name);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if svc.is_stopping() {
                return;
            }
            let oom = engine
                .inspect(&svc.id)
                .await
                .map(|s| s.oom_killed)
                .unwrap_or(false);
            let ran = svc.live().started.elapsed();
            svc.update(|l| {
                l.state = if code == 0 {
                    ContainerState::Stopped
                } else {
                    ContainerState::Failed
                };
                l.last_exit = Some(code);
                // Health stays the health component's last verdict: it
                // reports changes only, and a quick restart may change none.
                if ran >= RESET_AFTER {
                    l.restarts = 0;
                }
            });
            note(
                &kernel,
                "container.exit",
                json!({ "app": svc.app, "service": svc.name, "id": svc.id.as_str(),
                        "exit_code": code, "oom_killed": oom,
                        "ran_ms": ran.as_millis() as u64 }),
            )
            .await;
            let restarts = svc.live().restarts;
            let (again, base) = match &svc.restart {
                RestartPolicy::Never => (false, Duration::ZERO),
                RestartPolicy::Always => (true, Duration::from_secs(1)),
                RestartPolicy::OnFailure(f) => (
                    code != 0 && restarts < f.max_retries,
                    Duration::from_millis(f.backoff_ms),
                ),
            };
            if !again {
                if code != 0 {
                    let after = match restarts {
                        0 => String::new(),
                        1 => " after 1 restart".to_string(),
                        n => format!(" after {n} restarts"),
                    };
                    let oom = if oom { " (killed: out of memory)" } else { "" };
                    give_up(
                        &kernel,
                        &svc,
                        format!(
                            "service `{}` (container {}) exited with code {code}{oom}{after}",
                            svc.name,
                            short(&svc.id)
                        ),
                    )
                    .await;
                }
                return;
            }
            let n = restarts + 1;
            tokio::time::sleep(backoff(base, n)).await;
            if svc.is_stopping() {
                return;
            }
            let start = StartContainer {
                engine: engine.clone(),
                app: svc.app.clone(),
                service: svc.name.clone(),
                id: svc.id.clone(),
                restart: n,
            };
            match kernel.act(&svc.principal, start).await {
                Ok(()) => svc.update(|l| {
                    l.state = ContainerState::Running;
                    l.restarts = n;
                    l.started = Instant::now();
                }),
                Err(e) => {
                    give_up(
                        &kernel,
                        &svc,
                        format!(
                            "service `{}` (container {}) could not be restarted: {e}",
                            svc.name,
                            short(&svc.id)
                        ),
                    )
                    .await;
                    return;
                }
            }
        }
    })
}

async fn give_up(kernel: &Kernel, svc: &Service, why: String) {
    note(
        kernel,
        "container.failed",
        json!({ "app": svc.app, "service": svc.name, "id": svc.id.as_str(), "reason": why }),
    )
    .await;
    svc.update(|l| {
        l.state = ContainerState::Failed;
        l.gave_up = Some(why);
    });
}

/// Record an observation (an exit, a health change) as the kernel.
pub async fn note(kernel: &Kernel, kind: &'static str, payload: serde_json::Value) {
    if let Err(e) = kernel
        .act(&Principal::Kernel, Note::new("containers", kind, payload))
        .await
    {
        tracing::warn!("recording {kind}: {e}");
    }
}

/// The host address a published port is reached on.
pub fn reach(host_ip: IpAddr, host_port: u16) -> SocketAddr {
    let ip = if host_ip.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host_ip
    };
    SocketAddr::new(ip, host_port)
}

/// One run of the service's probe: `Ok(detail)` or `Err(why)`.
pub async fn probe_once(
    engine: &Engine,
    svc: &Service,
    check: &HealthCheck,
    published: &[(u16, SocketAddr)],
) -> Result<String, String> {
    let timeout = Duration::from_millis(check.interval_ms.clamp(200, 5_000));
    let addr_of = |port: u16| {
        published
            .iter()
            .find(|(c, _)| *c == port)
            .map(|(_, a)| *a)
            .ok_or_else(|| format!("container port {port} is not published"))
    };
    match &check.probe {
        Probe::None => Ok("no probe".into()),
        Probe::Tcp(port) => {
            let addr = addr_of(*port)?;
            probe_tcp(addr, timeout)
                .await
                .map(|d| format!("tcp {addr} accepted in {} ms", d.as_millis()))
                .map_err(|e| e.to_string())
        }
        Probe::Http(h) => {
            let addr = addr_of(h.port)?;
            let url = format!("http://{addr}{}", h.path);
            probe_http_get(&url, h.status, timeout)
                .await
                .map(|r| format!("GET {} -> {}", h.path, r.status))
                .map_err(|e| e.to_string())
        }
        Probe::Exec(argv) => {
            let args: Vec<&str> = argv.iter().map(String::as_str).collect();
            probe_exec(engine, &svc.id, &args, timeout)
                .await
                .map(|()| format!("`{}` exited 0", argv.join(" ")))
                .map_err(|e| e.to_string())
        }
    }
}

/// The probe as the health component runs it.
pub fn probe_fn(engine: Engine, svc: Arc<Service>, published: Vec<(u16, SocketAddr)>) -> ProbeFn {
    Arc::new(move || {
        let (engine, svc, published) = (engine.clone(), svc.clone(), published.clone());
        Box::pin(async move {
            let Some(check) = svc.health.clone() else {
                return Ok("no probe".to_string());
            };
            probe_once(&engine, &svc, &check, &published).await
        })
    })
}

/// Wait for the first good probe, at most `limit`: an app start does not
/// finish before its services answer.
pub async fn wait_ready(
    engine: &Engine,
    svc: &Service,
    check: &HealthCheck,
    published: &[(u16, SocketAddr)],
    limit: Duration,
) -> Result<String, String> {
    let t0 = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        let last = probe_once(engine, svc, check, published).await;
        match last {
            Ok(detail) => return Ok(detail),
            Err(why) if t0.elapsed() >= limit => {
                return Err(format!(
                    "service `{}` did not pass its health probe within {} s: {why}",
                    svc.name,
                    limit.as_secs()
                ))
            }
            Err(_) => {}
        }
        // The container may have died already: no point waiting it out.
        if let Ok(s) = engine.inspect(&svc.id).await {
            if s.state != ContainerState::Running {
                return Err(format!(
                    "service `{}` exited with code {} before it was healthy",
                    svc.name,
                    s.exit_code.unwrap_or(-1)
                ));
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}
