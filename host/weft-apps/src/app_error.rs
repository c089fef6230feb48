//! [`AppError`]: everything the app lifecycle can refuse, each with a
//! stable [`AppError::kind`] for callers (the control API) to map.

use std::path::PathBuf;

use crate::error::{BundleError, TrustError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("no app named `{0}` is installed")]
    NotFound(String),
    #[error("app `{0}` is already installed (use upgrade)")]
    AlreadyInstalled(String),
    #[error("app `{name}` is {state}; cannot {action}")]
    BadState {
        name: String,
        state: String,
        action: &'static str,
    },
    #[error("app `{name}` is already at version {version}; an upgrade needs a different version")]
    SameVersion { name: String, version: String },
    #[error("app `{name}` is installed, but the bundle is `{found}`")]
    WrongApp { name: String, found: String },
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error("the gate refused {action} of `{name}`: {reason}")]
    Denied {
        name: String,
        action: &'static str,
        reason: String,
    },
    #[error("app `{name}`: service `{service}` needs a container (image `{image}`), but no container engine is configured")]
    NoContainerEngine {
        name: String,
        service: String,
        image: String,
    },
    #[error("app `{name}`: tool `{tool}` is already registered{by}")]
    ToolTaken {
        name: String,
        tool: String,
        by: String,
    },
    #[error("app `{name}`: hook {hook} (`{component}`) failed: {reason}")]
    Hook {
        name: String,
        hook: String,
        component: String,
        reason: String,
    },
    #[error("app `{name}` needs {what}, which this kernel cannot provide")]
    Unsupported { name: String, what: String },
    #[error("app `{name}`: installed component `{path}` changed on disk: digest {actual}, installed {expected}")]
    Tampered {
        name: String,
        path: String,
        expected: String,
        actual: String,
    },
    #[error("app `{name}`: {what}: {source}")]
    Kernel {
        name: String,
        what: String,
        source: Box<weft_kernel::KernelError>,
    },
    #[error("chain: {0}")]
    Chain(#[from] weft_chain::ChainError),
    /// A lifecycle record could not be written (the action fails: nothing
    /// unrecorded is reported as done).
    #[error("recording on the chain: {0}")]
    Record(Box<weft_kernel::KernelError>),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: malformed app registry: {reason}", .path.display())]
    Registry { path: PathBuf, reason: String },
}

impl AppError {
    /// A short, stable name for the kind of failure.
    pub fn kind(&self) -> &'static str {
        match self {
            AppError::NotFound(_) => "not-found",
            AppError::AlreadyInstalled(_) => "already-installed",
            AppError::BadState { .. } => "bad-state",
            AppError::SameVersion { .. } => "same-version",
            AppError::WrongApp { .. } => "wrong-app",
            AppError::Bundle(BundleError::Check(_)) => "manifest",
            AppError::Bundle(_) => "bundle",
            AppError::Trust(_) => "trust",
            AppError::Denied { .. } => "denied",
            AppError::NoContainerEngine { .. } | AppError::Unsupported { .. } => "unsupported",
            AppError::ToolTaken { .. } => "conflict",
            AppError::Hook { .. } => "hook",
            AppError::Tampered { .. } => "tampered",
            AppError::Kernel { .. } => "kernel",
            AppError::Chain(_) | AppError::Record(_) => "chain",
            AppError::Io { .. } => "io",
            AppError::Registry { .. } => "registry",
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AppError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn kernel(
        name: &str,
        what: impl Into<String>,
        source: weft_kernel::KernelError,
    ) -> Self {
        AppError::Kernel {
            name: name.to_string(),
            what: what.into(),
            source: Box::new(source),
        }
    }
}

impl From<weft_kernel::KernelError> for AppError {
    fn from(e: weft_kernel::KernelError) -> Self {
        AppError::Record(Box::new(e))
    }
}
