//! Bundle and trust-store errors. Each names the file, entry, component or
//! key it is about.

use std::path::PathBuf;

use crate::checker::CheckError;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An archive entry or bundle path that could escape or is not a plain file.
    #[error("{bundle}: entry `{entry}` rejected: {reason}")]
    UnsafeEntry {
        bundle: String,
        entry: String,
        reason: String,
    },
    #[error("{bundle}: {what} is larger than the limit of {limit} bytes")]
    TooLarge {
        bundle: String,
        what: String,
        limit: u64,
    },
    #[error("{bundle}: missing {file}{hint}")]
    Missing {
        bundle: String,
        file: String,
        hint: &'static str,
    },
    #[error("{bundle}: malformed {file}: {reason}")]
    Malformed {
        bundle: String,
        file: &'static str,
        reason: String,
    },
    #[error(
        "{bundle}: weftapp.toml does not match weftapp.lock: digest {actual}, lock says {expected}"
    )]
    ManifestChanged {
        bundle: String,
        expected: String,
        actual: String,
    },
    #[error("{bundle}: component `{path}` does not match weftapp.lock: digest {actual}, lock says {expected}")]
    DigestMismatch {
        bundle: String,
        path: String,
        expected: String,
        actual: String,
    },
    #[error("{bundle}: component `{path}` is named by the manifest but not in weftapp.lock")]
    NotInLock { bundle: String, path: String },
    #[error("{bundle}: bundle is unsigned; unsigned bundles install only in `dev`, not in `{environment}` (sign it with `pack` and a key)")]
    Unsigned { bundle: String, environment: String },
    #[error(
        "{bundle}: signed by untrusted key {key}; trust it first (trust store add NAME {key})"
    )]
    Untrusted { bundle: String, key: String },
    #[error(
        "{bundle}: bad signature by key {key}: the lock or manifest was changed after signing"
    )]
    BadSignature { bundle: String, key: String },
    #[error(transparent)]
    Check(#[from] CheckError),
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: malformed trust store: {reason}", .path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error("invalid key name `{0}`: expected 1 to 64 characters from [A-Za-z0-9._-]")]
    BadName(String),
    #[error("invalid public key for `{name}`: {reason}")]
    BadKey { name: String, reason: String },
    #[error("`{name}` is already trusted with a different key ({existing}); remove it first")]
    NameTaken { name: String, existing: String },
    #[error("no trusted key named `{0}`")]
    NotFound(String),
}
