//! Error types. Engine and probe errors carry text, not bollard's types, so
//! the public API does not change with the bollard version.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::spec::SpecErrors;

/// Errors from the container engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// `DOCKER_HOST` (or the configured socket) names a transport we refuse.
    #[error(
        "DOCKER_HOST `{value}` is refused: only unix:// sockets are supported \
         (tcp://, ssh://, npipe://, fd:// and http(s):// would expose the engine \
         beyond the socket's file permissions)"
    )]
    UnsupportedHost {
        /// The value as given.
        value: String,
    },

    /// The socket path is not valid UTF-8 (bollard takes `&str`).
    #[error("engine socket path {socket:?} is not valid UTF-8")]
    SocketPath {
        /// The path.
        socket: PathBuf,
    },

    /// Nothing exists at the socket path.
    #[error(
        "no container engine socket at {}: start dockerd (or `podman system service`) \
         or point DOCKER_HOST / the kernel config at a unix:// socket",
        socket.display()
    )]
    SocketMissing {
        /// The socket looked for.
        socket: PathBuf,
    },

    /// The socket exists but no engine answered on it.
    #[error("the container engine at {} does not answer: {reason}", socket.display())]
    NoAnswer {
        /// The socket used.
        socket: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// The engine speaks an API older than this crate needs.
    #[error(
        "the container engine at {} speaks API {found}, at least {required} is needed",
        socket.display()
    )]
    ApiTooOld {
        /// The socket used.
        socket: PathBuf,
        /// The engine's API version.
        found: String,
        /// The minimum supported.
        required: &'static str,
    },

    /// No such container or image.
    #[error("no such {kind}: {id}")]
    NotFound {
        /// `"container"`, `"image"` or `"exec"`.
        kind: &'static str,
        /// The id or reference asked for.
        id: String,
    },

    /// A container with this name already exists (the service's container
    /// was not removed, or is to be adopted).
    #[error("a container named `{name}` already exists: {message}")]
    NameInUse {
        /// The container name.
        name: String,
        /// The engine's message.
        message: String,
    },

    /// `pull = "never"` and the image is not present.
    #[error("image `{image}` is not present and pulling is disabled (pull = \"never\")")]
    ImageNotPresent {
        /// The reference.
        image: String,
    },

    /// Pulling failed (no registry reachable, unknown image, denied, ...).
    #[error("pulling image `{image}` failed: {message}")]
    PullFailed {
        /// The reference.
        image: String,
        /// The engine's message.
        message: String,
    },

    /// Pulling did not finish in time.
    #[error("pulling image `{image}` did not finish within {after:?} (is a registry reachable?)")]
    PullTimeout {
        /// The reference.
        image: String,
        /// The limit.
        after: Duration,
    },

    /// Loading an image archive failed.
    #[error("loading image archive {source_name} failed: {message}")]
    Load {
        /// The file loaded, or `<bytes>`.
        source_name: String,
        /// What went wrong.
        message: String,
    },

    /// The archive did not hold exactly one image.
    #[error("image archive {source_name} holds {count} images, expected exactly one")]
    ArchiveImageCount {
        /// The file loaded, or `<bytes>`.
        source_name: String,
        /// How many distinct image ids it held.
        count: usize,
        /// The ids.
        ids: Vec<String>,
    },

    /// A label value cannot be used.
    #[error("label `{key}`: {reason} (found `{value}`)")]
    Label {
        /// The label key.
        key: &'static str,
        /// The value.
        value: String,
        /// Why.
        reason: &'static str,
    },

    /// The spec no longer holds (a mount source changed since `validate`).
    #[error(transparent)]
    Spec(#[from] SpecErrors),

    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },

    /// An operation did not finish in time.
    #[error("{op} did not finish within {after:?}")]
    Timeout {
        /// The operation.
        op: &'static str,
        /// The limit.
        after: Duration,
    },

    /// Any other engine error.
    #[error("{op}: engine error{}: {message}", status.map(|s| format!(" {s}")).unwrap_or_default())]
    Api {
        /// The operation.
        op: &'static str,
        /// The HTTP status the engine answered with, if any.
        status: Option<u16>,
        /// The engine's message.
        message: String,
    },
}

impl EngineError {
    /// Maps a bollard error: 404 and 409 become their own variants.
    pub(crate) fn api(
        op: &'static str,
        kind: &'static str,
        id: &str,
        e: bollard::errors::Error,
    ) -> Self {
        use bollard::errors::Error as B;
        match e {
            B::DockerResponseServerError {
                status_code: 404, ..
            } => EngineError::NotFound {
                kind,
                id: id.to_string(),
            },
            B::DockerResponseServerError {
                status_code,
                message,
            } => EngineError::Api {
                op,
                status: Some(status_code),
                message,
            },
            B::RequestTimeoutError => EngineError::Api {
                op,
                status: None,
                message: "request timed out".into(),
            },
            other => EngineError::Api {
                op,
                status: None,
                message: other.to_string(),
            },
        }
    }

    /// True for [`EngineError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, EngineError::NotFound { .. })
    }
}

/// Errors from health probes and service calls.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The URL is not one we can probe.
    #[error("bad URL `{url}`: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: &'static str,
    },

    /// The host name did not resolve.
    #[error("cannot resolve `{host}`: {reason}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },

    /// Connecting failed.
    #[error("connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },

    /// The connection was accepted and closed at once. With Docker's
    /// userland proxy this means nothing listens behind the published port.
    #[error("{addr} accepted the connection and closed it at once (nothing listening behind the published port?)")]
    ClosedAtOnce {
        /// The address.
        addr: SocketAddr,
    },

    /// The probe or call took too long.
    #[error("no answer from {target} within {after:?}")]
    Timeout {
        /// What was probed.
        target: String,
        /// The limit.
        after: Duration,
    },

    /// The HTTP exchange failed.
    #[error("HTTP exchange with {addr} failed: {message}")]
    Http {
        /// The address.
        addr: SocketAddr,
        /// What went wrong.
        message: String,
    },

    /// The HTTP status was not the expected one.
    #[error("expected HTTP status {expected}, got {got}")]
    Status {
        /// Expected status.
        expected: u16,
        /// Received status.
        got: u16,
    },

    /// The response body exceeded the limit.
    #[error("response from {addr} exceeds {limit} bytes")]
    TooLarge {
        /// The address.
        addr: SocketAddr,
        /// The limit.
        limit: usize,
    },

    /// An exec probe's command exited non-zero.
    #[error("probe command exited with {code}: {output}")]
    ExitCode {
        /// The exit code.
        code: i64,
        /// The start of its output.
        output: String,
    },

    /// The engine failed while running an exec probe.
    #[error(transparent)]
    Engine(#[from] EngineError),
}
