//! [`AppError`]: everything the app lifecycle can refuse, each with a
//! stable [`AppError::kind`] for callers (the control API) to map.

use std::path::PathBuf;

use crate::error::{BundleError, TrustError};

/// An app lifecycle operation (install, start, stop, upgrade, remove) failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No app of this name is installed.
    #[error("no app named `{0}` is installed")]
    NotFound(String),
    /// Install of an app that is installed already.
    #[error("app `{0}` is already installed (use upgrade)")]
    AlreadyInstalled(String),
    /// The app's state does not allow the operation.
    #[error("app `{name}` is {state}; cannot {action}")]
    BadState {
        /// The app.
        name: String,
        /// Its state, e.g. `stopped`.
        state: String,
        /// The operation refused, e.g. `start`.
        action: &'static str,
    },
    /// Upgrade to the version already installed.
    #[error("app `{name}` is already at version {version}; an upgrade needs a different version")]
    SameVersion {
        /// The app.
        name: String,
        /// Its installed version.
        version: String,
    },
    /// Upgrade of `name` with another app's bundle.
    #[error("app `{name}` is installed, but the bundle is `{found}`")]
    WrongApp {
        /// The app being upgraded.
        name: String,
        /// The app the bundle is for.
        found: String,
    },
    /// The bundle cannot be opened, does not verify, or its manifest fails the check.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The trust store refused the bundle's signer.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// The gate refused a step.
    #[error("the gate refused {action} of `{name}`: {reason}")]
    Denied {
        /// The app.
        name: String,
        /// The operation, e.g. `install`.
        action: &'static str,
        /// The gate's reason.
        reason: String,
    },
    /// A container service on a kernel without a container engine.
    #[error("app `{name}`: service `{service}` needs a container (image `{image}`), but no container engine is configured")]
    NoContainerEngine {
        /// The app.
        name: String,
        /// The service.
        service: String,
        /// The image it runs.
        image: String,
    },
    /// One of the app's tools has a name another owner registered.
    #[error("app `{name}`: tool `{tool}` is already registered{by}")]
    ToolTaken {
        /// The app.
        name: String,
        /// The tool.
        tool: String,
        /// The suffix naming the current owner, e.g. `` by `app:other` ``; empty if unknown.
        by: String,
    },
    /// An upgrade failed and the installed version was kept (and runs again
    /// if it was running).
    #[error("app `{name}`: upgrade to {to} failed, kept {from}{again}: {source}")]
    RolledBack {
        /// The app.
        name: String,
        /// The version kept.
        from: String,
        /// The version that failed.
        to: String,
        /// `, running again` or why the kept version did not start again.
        again: String,
        /// Why the upgrade failed.
        source: Box<AppError>,
    },
    /// A lifecycle hook failed; the operation was undone.
    #[error("app `{name}`: hook {hook} (`{component}`) failed: {reason}")]
    Hook {
        /// The app.
        name: String,
        /// Which hook, e.g. `on-install`.
        hook: String,
        /// The hook's component path in the bundle.
        component: String,
        /// Why it failed.
        reason: String,
    },
    /// The plan asks for something this kernel does not do.
    #[error("app `{name}` needs {what}, which this kernel cannot provide")]
    Unsupported {
        /// The app.
        name: String,
        /// What it needs.
        what: String,
    },
    /// An installed file (a component, the manifest) no longer has the digest recorded
    /// at install.
    #[error("app `{name}`: installed component `{path}` changed on disk: digest {actual}, installed {expected}")]
    Tampered {
        /// The app.
        name: String,
        /// The file, relative to the installed version's directory.
        path: String,
        /// Hex BLAKE3 recorded at install.
        expected: String,
        /// Hex BLAKE3 of the file now.
        actual: String,
    },
    /// The kernel refused or failed a step.
    #[error("app `{name}`: {what}: {source}")]
    Kernel {
        /// The app.
        name: String,
        /// What the app was doing, e.g. `carrying out the plan`.
        what: String,
        /// The kernel's error.
        source: Box<weft_kernel::KernelError>,
    },
    /// A supervisor asked for an agent its app does not declare.
    #[error("app `{app}` declares no agent `{agent}`{hint}")]
    NoSuchAgent {
        /// The app.
        app: String,
        /// The `[[agents]]` id asked for.
        agent: String,
        /// A "did you mean" suffix, or empty.
        hint: String,
    },
    /// The chain failed.
    #[error("chain: {0}")]
    Chain(#[from] weft_chain::ChainError),
    /// A lifecycle record could not be written (the action fails: nothing
    /// unrecorded is reported as done).
    #[error("recording on the chain: {0}")]
    Record(Box<weft_kernel::KernelError>),
    /// An I/O failure on the app's files.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The registry of installed apps cannot be read.
    #[error("{}: malformed app registry: {reason}", .path.display())]
    Registry {
        /// The registry file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl AppError {
    /// A short, stable name for the kind of failure.
    pub fn kind(&self) -> &'static str {
        match self {
            AppError::RolledBack { source, .. } => source.kind(),
            AppError::NotFound(_) | AppError::NoSuchAgent { .. } => "not-found",
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
