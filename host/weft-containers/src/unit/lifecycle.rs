//! What the unit does for an app: prepare images at install; create (or
//! adopt), start, watch and register each container service at start;
//! take them down at stop; drop loaded images at remove; sweep orphans at
//! boot.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;
use weft_kernel::ipc::service::{AuditLevel, ServiceEndpoint};
use weft_kernel::ipc::{RegisterService, UnregisterService};
use weft_kernel::{AppClearCx, AppStepCx, Kernel, KernelError, KernelResult, Principal};
use weft_model::plan::{ServiceSource, ServiceSpec};
use weft_subsystems::health::{ChangeFn, ProbeKind as HealthKind, ProbeSpec};

use super::actions::{
    AdoptContainer, CreateContainer, ImageSource as Source, PrepareImage, RemoveContainer,
    RemoveImage, StartContainer,
};
use super::images::PreparedImage;
use super::service::{probe_name, ContainerEndpoint, Live, Service};
use super::supervisor::{self, note, reach};
use super::{lock, Inner};
use crate::{
    ContainerSpec, ContainerState, ContainerSummary, ImageSource, LabelFilter, PortMapping,
    PullPolicy, ServiceLabels, VolumeMount, LABEL_VERSION,
};

/// Label: a digest of the service's spec and image, so a container is
/// adopted only if it is exactly what this start would create.
pub const LABEL_SPEC: &str = "weft-spec";

fn failed(e: impl std::fmt::Display) -> KernelError {
    KernelError::Failed(e.to_string())
}

impl Inner {
    /// `prepare-image`: load the archive (digest checked again) or make the
    /// reference present, and remember the image id for the start.
    pub(crate) async fn prepare_image(
        &self,
        cx: &AppStepCx<'_>,
        svc: &ServiceSpec,
    ) -> KernelResult<PreparedImage> {
        let engine = self.engine().await?;
        let app = cx.app_name().to_string();
        let source = self.source(cx, svc)?;
        let archive = match &source {
            Source::Archive { path, .. } => Some(path.clone()),
            Source::Reference { .. } => None,
        };
        let info = cx
            .kernel
            .act(
                cx.app,
                PrepareImage {
                    engine,
                    app: app.clone(),
                    version: cx.version.to_string(),
                    service: svc.name.clone(),
                    source,
                },
            )
            .await?;
        let prepared = PreparedImage {
            image_id: info.id,
            archive,
        };
        self.images()?
            .put(&app, cx.version, &svc.name, prepared.clone())
            .map_err(failed)?;
        Ok(prepared)
    }

    fn images(&self) -> KernelResult<&super::ImageStore> {
        self.images
            .get()
            .ok_or_else(|| KernelError::Invalid(weft_model::policy::NO_CONTAINER_ENGINE.into()))
    }

    /// Where a service's image comes from; an archive's bytes are checked
    /// against the digest locked (and signed) in its bundle.
    fn source(&self, cx: &AppStepCx<'_>, svc: &ServiceSpec) -> KernelResult<Source> {
        let pull = match svc.container.as_ref().map(|c| c.pull) {
            Some(weft_model::plan::PullPolicy::IfNotPresent) => PullPolicy::IfNotPresent,
            _ => PullPolicy::Never,
        };
        match &svc.source {
            ServiceSource::Image(reference) => Ok(Source::Reference {
                reference: reference.clone(),
                pull,
            }),
            ServiceSource::ImageArchive(path) => {
                let file = cx.dir.join(path);
                let digest = file_digest(&file)?;
                let expected = cx.digests.get(path).map(String::as_str).unwrap_or("");
                if digest != expected {
                    return Err(KernelError::Denied(format!(
                        "image archive `{path}` does not match its bundle's lock \
                         (expected BLAKE3 {expected}, found {digest}): changed after install"
                    )));
                }
                Ok(Source::Archive {
                    path: path.clone(),
                    file,
                    digest,
                })
            }
            other => Err(KernelError::Invalid(format!(
                "service `{}` is not a container service ({other:?})",
                svc.name
            ))),
        }
    }

    /// `register-service` of a container service: adopt the container an
    /// earlier run left (same version and spec, running) or create and
    /// start one; watch it; wait for its first healthy probe; register it.
    pub(crate) async fn start_service(
        &self,
        cx: &AppStepCx<'_>,
        svc: &ServiceSpec,
    ) -> KernelResult<()> {
        let cfg = self.config()?.clone();
        let engine = self.engine().await?;
        let k = cx.kernel;
        let app = cx.app_name().to_string();
        let Some(c) = svc.container.as_ref() else {
            return Err(KernelError::Invalid(format!(
                "service `{}` has no container spec",
                svc.name
            )));
        };
        // The image this version installed (prepared again if the engine
        // lost it, or if it was installed before this kernel had one).
        let image_id = match self.images()?.get(&app, cx.version, &svc.name) {
            Some(p) if engine.image_info(&p.image_id).await.is_ok() => p.image_id,
            _ => self.prepare_image(cx, svc).await?.image_id,
        };

        let mut spec = ContainerSpec::new(ImageSource::Loaded {
            id: image_id.clone(),
        });
        spec.command = (!c.command.is_empty()).then(|| c.command.clone());
        spec.env = svc
            .env
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect();
        spec.ports = c
            .ports
            .iter()
            .map(|p| PortMapping::tcp(p.host, p.container))
            .collect();
        for v in &c.volumes {
            let host = cx.data_dir.join(&v.host);
            std::fs::create_dir_all(&host).map_err(|e| KernelError::Io {
                context: format!("creating volume dir {}", host.display()),
                source: e,
            })?;
            spec.volumes.push(VolumeMount {
                host,
                container: v.container.clone(),
                read_only: v.read_only,
            });
        }
        spec.memory_bytes = c.memory_bytes;
        spec.nano_cpus = c.nano_cpus;
        spec.cap_add = c.cap_add.clone();
        spec.read_only_rootfs = c.read_only;
        let digest = spec_digest(svc, &image_id);
        spec.labels = BTreeMap::from([(LABEL_SPEC.to_string(), digest.clone())]);
        let valid = spec
            .validate(&cfg.engine_policy(cx.data_dir))
            .map_err(|e| {
                KernelError::Denied(format!(
                    "service `{}` asks for more than this kernel allows: {e}",
                    svc.name
                ))
            })?;
        let labels =
            ServiceLabels::new(self.kernel_id(), &app, &svc.name, cx.version).map_err(failed)?;

        // Adopt, or clear the way.
        let found = {
            let mut a = lock(&self.adoptable);
            let list = a.entry(app.clone()).or_default();
            let i = list
                .iter()
                .position(|s| s.service.as_ref().is_some_and(|l| l.service() == svc.name));
            i.map(|i| list.remove(i))
        };
        let mut adopted = None;
        if let Some(old) = found {
            let same = old.state == ContainerState::Running
                && old.labels.get(LABEL_VERSION).map(String::as_str) == Some(cx.version)
                && old.labels.get(LABEL_SPEC) == Some(&digest);
            if same {
                k.act(
                    cx.app,
                    AdoptContainer {
                        app: app.clone(),
                        service: svc.name.clone(),
                        id: old.id.clone(),
                        image_id: old.image_id.clone(),
                    },
                )
                .await?;
                adopted = Some(old.id);
            } else {
                self.remove(k, cx.app, &old, "stale").await?;
            }
        }
        let (id, restarts_started) = match adopted {
            Some(id) => (id, Instant::now()),
            None => {
                let created = k
                    .act(
                        cx.app,
                        CreateContainer {
                            engine: engine.clone(),
                            spec: valid.clone(),
                            labels: labels.clone(),
                        },
                    )
                    .await?;
                let start = StartContainer {
                    engine: engine.clone(),
                    app: app.clone(),
                    service: svc.name.clone(),
                    id: created.id.clone(),
                    restart: 0,
                };
                if let Err(e) = k.act(cx.app, start).await {
                    // The start's error is the one to report; a failed cleanup is logged.
                    if let Err(e2) = self
                        .remove_id(k, cx.app, &app, &svc.name, &created.id, "failed-start")
                        .await
                    {
                        k.log(
                            weft_kernel::console::LogLevel::Warn,
                            format!(
                                "containers: removing {} after a failed start: {e2}",
                                created.id.as_str()
                            ),
                        );
                    }
                    return Err(e);
                }
                (created.id, Instant::now())
            }
        };

        let published: Vec<(u16, SocketAddr)> = valid
            .ports()
            .iter()
            .map(|p| (p.container_port, reach(p.host_ip, p.host_port)))
            .collect();
        let call = c.call.as_ref().and_then(|call| {
            published
                .iter()
                .find(|(port, _)| *port == call.port)
                .map(|(_, addr)| (*addr, call.path.clone()))
        });
        let service = Arc::new(Service {
            app: app.clone(),
            version: cx.version.to_string(),
            name: svc.name.clone(),
            principal: cx.app.clone(),
            id: id.clone(),
            image_id: image_id.clone(),
            ports: valid
                .ports()
                .iter()
                .map(|p| format!("{}:{}->{}", p.host_ip, p.host_port, p.container_port))
                .collect(),
            call,
            restart: c.restart,
            health: svc.health.clone(),
            live: Mutex::new(Live {
                state: ContainerState::Running,
                restarts: 0,
                last_exit: None,
                healthy: None,
                health_detail: String::new(),
                gave_up: None,
                started: restarts_started,
            }),
            stopping: AtomicBool::new(false),
            supervisor: Mutex::new(None),
        });
        let cleanup = |why: KernelError| async {
            if let Err(e2) = self.stop_service(k, &service, "failed-start").await {
                k.log(
                    weft_kernel::console::LogLevel::Warn,
                    format!(
                        "containers: stopping `{}` after a failed start: {e2}",
                        service.name
                    ),
                );
            }
            Err(why)
        };
        if let Some(check) = svc
            .health
            .clone()
            .filter(|h| h.probe != weft_model::plan::Probe::None)
        {
            match supervisor::wait_ready(&engine, &service, &check, &published, cfg.ready_timeout)
                .await
            {
                Ok(detail) => service.update(|l| {
                    l.healthy = Some(true);
                    l.health_detail = detail;
                }),
                Err(why) => return cleanup(KernelError::Failed(why)).await,
            }
            if let Some(h) = self.health.get() {
                let spec = ProbeSpec {
                    name: probe_name(&app, &svc.name),
                    kind: match check.kind {
                        weft_model::plan::ProbeKind::Liveness => HealthKind::Liveness,
                        weft_model::plan::ProbeKind::Readiness => HealthKind::Readiness,
                    },
                    failure_threshold: check.failure_threshold.max(1),
                    success_threshold: check.success_threshold.max(1),
                    interval_ms: u32::try_from(check.interval_ms).unwrap_or(u32::MAX),
                };
                let f = supervisor::probe_fn(engine.clone(), service.clone(), published.clone());
                if let Err(e) = h.add_probes(vec![(spec, f)]) {
                    return cleanup(failed(e)).await;
                }
            }
        }
        *lock(&service.supervisor) = Some(supervisor::spawn(
            k.clone(),
            engine.clone(),
            service.clone(),
        ));
        lock(&self.services).insert((app.clone(), svc.name.clone()), service.clone());
        let register = RegisterService {
            name: svc.name.clone(),
            endpoint: ServiceEndpoint::Container {
                id: id.as_str().to_string(),
            },
            audit_level: AuditLevel::Full,
            native: Some(Arc::new(ContainerEndpoint(service.clone()))),
        };
        if let Err(e) = k.act(cx.app, register).await {
            return cleanup(e).await;
        }
        Ok(())
    }

    /// Take one service down: stop watching, drop its probe and its
    /// registration, stop and remove its container.
    pub(crate) async fn stop_service(
        &self,
        k: &Kernel,
        s: &Arc<Service>,
        reason: &'static str,
    ) -> KernelResult<()> {
        s.halt();
        lock(&self.services).remove(&(s.app.clone(), s.name.clone()));
        if let Some(h) = self.health.get() {
            if let Err(e) = h.remove_probes(&s.probe_name()) {
                tracing::warn!("removing probe of {}/{}: {e}", s.app, s.name);
            }
        }
        let owned = k.services().iter().any(|e| {
            e.name == s.name
                && e.endpoint
                    == ServiceEndpoint::Container {
                        id: s.id.as_str().to_string(),
                    }
        });
        if owned {
            match k
                .act(
                    &s.principal,
                    UnregisterService {
                        name: s.name.clone(),
                    },
                )
                .await
            {
                Ok(()) | Err(KernelError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.remove_id(k, &s.principal, &s.app, &s.name, &s.id, reason)
            .await
            .map(|_| ())
    }

    async fn remove_id(
        &self,
        k: &Kernel,
        who: &Principal,
        app: &str,
        service: &str,
        id: &crate::ContainerId,
        reason: &'static str,
    ) -> KernelResult<Option<i64>> {
        let engine = self.engine().await?;
        let grace = self.config()?.stop_timeout;
        k.act(
            who,
            RemoveContainer {
                engine,
                app: app.to_string(),
                service: service.to_string(),
                id: id.clone(),
                reason,
                grace,
            },
        )
        .await
    }

    async fn remove(
        &self,
        k: &Kernel,
        who: &Principal,
        c: &ContainerSummary,
        reason: &'static str,
    ) -> KernelResult<()> {
        let (app, service) = c
            .service
            .as_ref()
            .map(|l| (l.app().to_string(), l.service().to_string()))
            .unwrap_or_default();
        self.remove_id(k, who, &app, &service, &c.id, reason)
            .await
            .map(|_| ())
    }

    /// Before `version` starts: containers of other versions go; those of
    /// this version may be adopted by the start.
    pub(crate) async fn before_start(&self, cx: &AppClearCx<'_>) -> KernelResult<()> {
        let app = cx.app_name().to_string();
        // Anything still held from an earlier start of this kernel goes.
        let held: Vec<Arc<Service>> = lock(&self.services)
            .values()
            .filter(|s| s.app == app)
            .cloned()
            .collect();
        for s in held {
            self.stop_service(cx.kernel, &s, "stale").await?;
        }
        let engine = self.engine().await?;
        let found = engine
            .list_by_labels(&LabelFilter::kernel(self.kernel_id()).app(&app))
            .await
            .map_err(failed)?;
        let mut keep = Vec::new();
        for c in found {
            if c.labels.get(LABEL_VERSION).map(String::as_str) == Some(cx.version) {
                keep.push(c);
            } else {
                self.remove(cx.kernel, cx.app, &c, "stale").await?;
            }
        }
        lock(&self.adoptable).insert(app, keep);
        Ok(())
    }

    /// The start is complete: what it did not adopt goes, and images of
    /// versions no longer installed are dropped.
    pub(crate) async fn after_start(&self, cx: &AppClearCx<'_>) -> KernelResult<()> {
        let app = cx.app_name().to_string();
        let left = lock(&self.adoptable).remove(&app).unwrap_or_default();
        for c in left {
            self.remove(cx.kernel, cx.app, &c, "stale").await?;
        }
        let unused = self
            .images()?
            .retain(&app, Some(cx.version))
            .map_err(failed)?;
        self.remove_images(cx.kernel, cx.app, &app, unused).await;
        Ok(())
    }

    /// The app stops: every container of it goes.
    pub(crate) async fn stop_app(&self, cx: &AppClearCx<'_>) -> KernelResult<()> {
        let app = cx.app_name().to_string();
        lock(&self.adoptable).remove(&app);
        let held: Vec<Arc<Service>> = lock(&self.services)
            .values()
            .filter(|s| s.app == app)
            .cloned()
            .collect();
        let mut problems = Vec::new();
        for s in held {
            if let Err(e) = self.stop_service(cx.kernel, &s, "stop").await {
                problems.push(format!("{}: {e}", s.name));
            }
        }
        // Whatever else carries its label (a failed start, a crash).
        match self.engine().await {
            Ok(engine) => {
                let left = engine
                    .list_by_labels(&LabelFilter::kernel(self.kernel_id()).app(&app))
                    .await
                    .map_err(failed)?;
                for c in left {
                    if let Err(e) = self.remove(cx.kernel, cx.app, &c, "stop").await {
                        problems.push(format!("{}: {e}", c.id));
                    }
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(KernelError::Failed(problems.join("; ")))
        }
    }

    /// The app is removed: images loaded from its archives go.
    pub(crate) async fn remove_app(&self, cx: &AppClearCx<'_>) -> KernelResult<()> {
        let app = cx.app_name().to_string();
        let unused = self.images()?.retain(&app, None).map_err(failed)?;
        self.remove_images(cx.kernel, cx.app, &app, unused).await;
        Ok(())
    }

    async fn remove_images(&self, k: &Kernel, who: &Principal, app: &str, ids: Vec<String>) {
        let Ok(engine) = self.engine().await else {
            return;
        };
        for image_id in ids {
            let rm = RemoveImage {
                engine: engine.clone(),
                app: app.to_string(),
                image_id,
            };
            if let Err(e) = k.act(who, rm).await {
                tracing::warn!("removing an image of {app}: {e}");
            }
        }
    }

    /// At boot, once apps resumed: remove this kernel's containers that no
    /// running service owns (their app is gone, stopped, or failed to
    /// start again).
    pub(crate) async fn sweep(&self, k: &Kernel) -> KernelResult<()> {
        let engine = self.engine().await?;
        let all = engine
            .list_by_labels(&LabelFilter::kernel(self.kernel_id()))
            .await
            .map_err(failed)?;
        let owned: Vec<crate::ContainerId> = lock(&self.services)
            .values()
            .map(|s| s.id.clone())
            .collect();
        for c in all.iter().filter(|c| !owned.contains(&c.id)) {
            self.remove(k, &Principal::Kernel, c, "orphan").await?;
        }
        Ok(())
    }
}

/// Record each change of a container service's health, and have a failing
/// liveness probe restart its container.
pub(crate) fn health_watcher(kernel: Kernel, inner: Arc<Inner>) -> ChangeFn {
    Arc::new(move |p| {
        let Some((app, name)) = p
            .name
            .strip_prefix("container:")
            .and_then(|r| r.split_once('/'))
        else {
            return;
        };
        let Some(svc) = inner.service(app, name) else {
            return;
        };
        svc.update(|l| {
            l.healthy = Some(p.passing);
            l.health_detail = p.last_detail.clone();
        });
        let (kernel, inner, passing, detail) = (
            kernel.clone(),
            inner.clone(),
            p.passing,
            p.last_detail.clone(),
        );
        let liveness = p.kind == HealthKind::Liveness;
        tokio::spawn(async move {
            note(
                &kernel,
                "container.health",
                json!({ "app": svc.app, "service": svc.name, "id": svc.id.as_str(),
                        "healthy": passing, "detail": detail }),
            )
            .await;
            if liveness && !passing && !svc.is_stopping() {
                // The supervisor sees the exit and restarts it.
                if let Ok(engine) = inner.engine().await {
                    if let Err(e) = engine.kill(&svc.id, "SIGKILL").await {
                        tracing::warn!("killing unhealthy {}/{}: {e}", svc.app, svc.name);
                    }
                }
            }
        });
    })
}

/// BLAKE3 of a file, hex.
fn file_digest(path: &Path) -> KernelResult<String> {
    let io = |e| KernelError::Io {
        context: format!("reading {}", path.display()),
        source: e,
    };
    let mut h = blake3::Hasher::new();
    h.update_reader(std::fs::File::open(path).map_err(io)?)
        .map_err(io)?;
    Ok(h.finalize().to_hex().to_string())
}

/// What identifies the container a start would create.
fn spec_digest(svc: &ServiceSpec, image_id: &str) -> String {
    let text = serde_json::to_string(&(svc, image_id)).unwrap_or_default();
    blake3::hash(text.as_bytes()).to_hex()[..32].to_string()
}
