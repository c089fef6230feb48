//! The container engine layer of Weft's containers subsystem (K4).
//!
//! Apps declare `[[services]]` backed by container images; this crate runs
//! them on a Docker-compatible engine over its unix socket:
//!
//! * [`Engine::connect`] picks the socket (config, then `DOCKER_HOST`, unix://
//!   only, then `/var/run/docker.sock`) and checks that an engine answers.
//! * [`ContainerSpec::validate`] checks a service against the caller's
//!   [`Policy`] (volumes under the app's data dir, loopback ports in range,
//!   allowed capabilities, never privileged) and yields a [`ValidSpec`],
//!   the only thing [`Engine::create`] accepts.
//! * Images: [`Engine::load_archive`] (`docker load`), [`Engine::ensure_image`]
//!   with a [`PullPolicy`] and a pull timeout, [`Engine::image_info`].
//! * Lifecycle: create (security defaults always applied, see
//!   [`Engine::create`]), start, stop, kill, remove, inspect,
//!   [`Engine::list_by_labels`] for adoption after a kernel restart,
//!   [`Engine::sweep`], [`Engine::wait_exit`], [`Engine::logs`],
//!   [`Engine::exec`].
//! * [`probe`]: TCP, HTTP GET and exec health probes, and [`post_json`] to
//!   deliver a service call.
//!
//! Every operation is one call returning what a chain record needs (ids,
//! image digests, names, exit codes). Restarting is the caller's job: the
//! engine's own restart policy is always `no`.
//!
//! [`unit`] is the subsystem built on it: container services of apps,
//! each engine operation an action through the kernel's chokepoint.

#![deny(missing_docs)]

mod container;
mod engine;
mod error;
mod image;
mod labels;
mod logs;
pub mod probe;
mod spec;
pub mod unit;

pub use container::{
    AppliedSecurity, ContainerId, ContainerState, ContainerStatus, ContainerSummary, Created,
    ExecOutput, PublishedPort, MAX_EXEC_OUTPUT,
};
pub use engine::{resolve_socket, Engine, EngineConfig, EngineInfo, DEFAULT_SOCKET, MIN_API};
pub use error::{EngineError, ProbeError};
pub use image::{ImageInfo, PullPolicy};
pub use labels::{
    LabelFilter, ServiceLabels, LABEL_APP, LABEL_IMAGE, LABEL_KERNEL, LABEL_SERVICE, LABEL_VERSION,
};
pub use logs::{LogLine, LogStream, OutputStream, MAX_LINE};
pub use probe::{
    post_json, post_json_limited, post_json_with, probe_exec, probe_http_get, probe_tcp,
    probe_tcp_with_settle, HttpReply,
};
pub use spec::{
    BoundMount, BoundPort, ContainerSpec, ImageSource, Policy, PortMapping, Protocol, Refusal,
    SpecError, SpecErrors, ValidSpec, VolumeMount, LINUX_CAPS, NEVER_CAPS,
};
