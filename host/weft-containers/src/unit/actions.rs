//! The containers unit's actions: each engine operation that changes
//! what runs is one action through [`weft_kernel::Kernel::act`], as the app
//! it belongs to (the kernel, for orphans), recorded with the ids and image
//! digest a reader of the chain needs.

use std::borrow::Cow;
use std::path::PathBuf;

use serde_json::{json, Value};
use weft_kernel::{ActCx, Action, KernelError, KernelResult, KernelView, Principal};

use crate::{
    ContainerId, Created, Engine, EngineError, ImageInfo, PullPolicy, ServiceLabels, ValidSpec,
};

/// Only the app itself (or the kernel and operator) acts on its containers.
fn owner(who: &Principal, app: &str) -> KernelResult<()> {
    match who {
        Principal::Kernel | Principal::Operator => Ok(()),
        Principal::App(a) if a.name() == app => Ok(()),
        other => Err(KernelError::Denied(format!(
            "`{}` may not act on the containers of app `{app}`",
            other.gate_name()
        ))),
    }
}

fn engine_err(e: EngineError) -> KernelError {
    KernelError::Failed(e.to_string())
}

/// Where a service's image comes from.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// A `docker save` archive in the installed bundle (digest checked by
    /// the caller just before).
    Archive {
        /// The bundle path.
        path: String,
        /// The file on disk.
        file: PathBuf,
        /// Its BLAKE3 digest.
        digest: String,
    },
    /// A reference, pulled as the manifest's `pull` says.
    Reference {
        /// The reference.
        reference: String,
        /// May it be pulled?
        pull: PullPolicy,
    },
}

/// `container.image`: make a service's image present (install, or a start
/// that finds it gone).
pub struct PrepareImage {
    /// The engine.
    pub engine: Engine,
    /// App, version and service.
    pub app: String,
    /// The version.
    pub version: String,
    /// The service.
    pub service: String,
    /// Where the image comes from.
    pub source: ImageSource,
}

impl Action for PrepareImage {
    type Output = ImageInfo;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("container.image")
    }

    fn gate_context(&self) -> Value {
        match &self.source {
            ImageSource::Archive { path, digest, .. } => json!({
                "app": self.app, "service": self.service, "archive": path, "digest": digest }),
            ImageSource::Reference { reference, .. } => {
                json!({ "app": self.app, "service": self.service, "image": reference })
            }
        }
    }

    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        owner(who, &self.app)
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<ImageInfo> {
        let info = match &self.source {
            ImageSource::Archive { file, .. } => self.engine.load_archive(file).await,
            ImageSource::Reference { reference, pull } => {
                self.engine.ensure_image(reference, *pull).await
            }
        }
        .map_err(engine_err)?;
        let (archive, digest, reference) = match &self.source {
            ImageSource::Archive { path, digest, .. } => (Some(path), Some(digest), None),
            ImageSource::Reference { reference, .. } => (None, None, Some(reference)),
        };
        cx.record(
            "container.image",
            &json!({ "app": self.app, "version": self.version, "service": self.service,
                     "archive": archive, "archive_digest": digest, "image": reference,
                     "image_id": info.id, "tags": info.repo_tags,
                     "repo_digests": info.repo_digests }),
        )?;
        Ok(info)
    }
}

/// `container.create`: create a service's container (not started).
pub struct CreateContainer {
    /// The engine.
    pub engine: Engine,
    /// The checked spec.
    pub spec: ValidSpec,
    /// Its labels (kernel, app, service, version).
    pub labels: ServiceLabels,
}

impl Action for CreateContainer {
    type Output = Created;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("container.create")
    }

    fn gate_context(&self) -> Value {
        let s = self.spec.spec();
        json!({ "app": self.labels.app(), "service": self.labels.service(),
                "image": s.image.as_str(), "caps": self.spec.cap_add(),
                "ports": self.spec.ports().iter().map(|p| p.host_port).collect::<Vec<_>>() })
    }

    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        owner(who, self.labels.app())
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<Created> {
        let c = self
            .engine
            .create(&self.spec, &self.labels)
            .await
            .map_err(engine_err)?;
        let s = self.spec.spec();
        let recorded = cx.record(
            "container.create",
            &json!({ "app": self.labels.app(), "service": self.labels.service(),
                     "version": self.labels.version(), "id": c.id.as_str(), "name": c.name,
                     "image": c.image, "image_id": c.image_id,
                     "ports": self.spec.ports().iter()
                         .map(|p| format!("{}:{}->{}", p.host_ip, p.host_port, p.container_port))
                         .collect::<Vec<_>>(),
                     "cap_add": self.spec.cap_add(), "memory_bytes": s.memory_bytes,
                     "nano_cpus": s.nano_cpus, "read_only": s.read_only_rootfs,
                     "warnings": c.warnings }),
        );
        if let Err(e) = recorded {
            // Nothing runs that the chain does not show.
            if let Err(rm) = self.engine.remove(&c.id, true).await {
                tracing::warn!("removing unrecorded container {}: {rm}", c.id);
            }
            return Err(e);
        }
        Ok(c)
    }
}

/// `container.start`: start (or restart) a service's container.
pub struct StartContainer {
    /// The engine.
    pub engine: Engine,
    /// App and service.
    pub app: String,
    /// The service.
    pub service: String,
    /// The container.
    pub id: ContainerId,
    /// Which restart this is (0: the first start).
    pub restart: u32,
}

impl Action for StartContainer {
    type Output = ();

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("container.start")
    }

    fn gate_context(&self) -> Value {
        json!({ "app": self.app, "service": self.service, "restart": self.restart })
    }

    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        owner(who, &self.app)
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<()> {
        cx.record(
            "container.start",
            &json!({ "app": self.app, "service": self.service, "id": self.id.as_str(),
                     "restart": self.restart }),
        )?;
        self.engine.start(&self.id).await.map_err(engine_err)
    }
}

/// `container.adopt`: take over a running container an earlier run of the
/// kernel left (same app version and spec).
pub struct AdoptContainer {
    /// App and service.
    pub app: String,
    /// The service.
    pub service: String,
    /// The container.
    pub id: ContainerId,
    /// Its image id.
    pub image_id: String,
}

impl Action for AdoptContainer {
    type Output = ();

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("container.adopt")
    }

    fn gate_context(&self) -> Value {
        json!({ "app": self.app, "service": self.service })
    }

    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        owner(who, &self.app)
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<()> {
        cx.record(
            "container.adopt",
            &json!({ "app": self.app, "service": self.service, "id": self.id.as_str(),
                     "image_id": self.image_id }),
        )
        .map(|_| ())
    }
}

/// `container.stop` then `container.remove`: take a container away (app
/// stop, a stale container before a start, an orphan at boot).
pub struct RemoveContainer {
    /// The engine.
    pub engine: Engine,
    /// App and service (as labelled; empty when unknown).
    pub app: String,
    /// The service.
    pub service: String,
    /// The container.
    pub id: ContainerId,
    /// Why: `stop`, `stale`, `orphan`, `failed-start`.
    pub reason: &'static str,
    /// SIGTERM to SIGKILL.
    pub grace: std::time::Duration,
}

impl Action for RemoveContainer {
    type Output = Option<i64>;

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("container.remove")
    }

    fn gate_context(&self) -> Value {
        json!({ "app": self.app, "service": self.service, "reason": self.reason })
    }

    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        owner(who, &self.app)
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<Option<i64>> {
        let stopped = match self.engine.stop(&self.id, self.grace).await {
            Ok(status) => {
                cx.record(
                    "container.stop",
                    &json!({ "app": self.app, "service": self.service, "id": self.id.as_str(),
                             "exit_code": status.exit_code, "reason": self.reason }),
                )?;
                status.exit_code
            }
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(engine_err(e)),
        };
        match self.engine.remove(&self.id, true).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(engine_err(e)),
        }
        cx.record(
            "container.remove",
            &json!({ "app": self.app, "service": self.service, "id": self.id.as_str(),
                     "reason": self.reason }),
        )?;
        Ok(stopped)
    }
}

/// `container.image.remove`: delete an image Weft loaded from an app's
/// archive once no installed version uses it.
pub struct RemoveImage {
    /// The engine.
    pub engine: Engine,
    /// The app it was loaded for.
    pub app: String,
    /// The image id.
    pub image_id: String,
}

impl Action for RemoveImage {
    type Output = ();

    fn gate_action(&self) -> Cow<'static, str> {
        Cow::Borrowed("container.image.remove")
    }

    fn gate_context(&self) -> Value {
        json!({ "app": self.app, "image_id": self.image_id })
    }

    fn authorize(&mut self, who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        owner(who, &self.app)
    }

    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<()> {
        match self.engine.remove_image(&self.image_id, false).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            // Another container (not Weft's) still uses it: leave it.
            Err(e) => {
                tracing::info!("image {} kept: {e}", self.image_id);
                return Ok(());
            }
        }
        cx.record(
            "container.image.remove",
            &json!({ "app": self.app, "image_id": self.image_id }),
        )
        .map(|_| ())
    }
}

/// Every action above, for [`weft_kernel::Subsystem::actions`].
pub const ACTIONS: &[&str] = &[
    "container.image",
    "container.create",
    "container.start",
    "container.adopt",
    "container.remove",
    "container.image.remove",
    "container.logs",
    "container.list",
];

/// What apps may do through this unit.
pub const APP_ACTIONS: &[&str] = &[
    "container.image",
    "container.create",
    "container.start",
    "container.adopt",
    "container.remove",
    "container.image.remove",
];
