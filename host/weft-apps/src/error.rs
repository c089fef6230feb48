//! Bundle and trust-store errors. Each names the file, entry, component or
//! key it is about.

use std::path::PathBuf;

use crate::checker::CheckError;

/// A bundle could not be opened, locked, signed or verified.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// An I/O failure on the bundle or its directory.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An archive entry or bundle path that could escape or is not a plain file.
    #[error("{bundle}: entry `{entry}` rejected: {reason}")]
    UnsafeEntry {
        /// The bundle.
        bundle: String,
        /// The entry's path.
        entry: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The archive or one of its files exceeds its size limit.
    #[error("{bundle}: {what} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The bundle.
        bundle: String,
        /// What is too large, e.g. `the archive`.
        what: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// A file the bundle must contain is not there.
    #[error("{bundle}: missing {file}{hint}")]
    Missing {
        /// The bundle.
        bundle: String,
        /// The missing file.
        file: String,
        /// How to fix it (` (pack the bundle first)`), or empty.
        hint: &'static str,
    },
    /// The lock or signature does not parse, or the manifest is not UTF-8.
    #[error("{bundle}: malformed {file}: {reason}")]
    Malformed {
        /// The bundle.
        bundle: String,
        /// The file, e.g. `weftapp.lock`.
        file: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The manifest's digest is not the one in the lock.
    #[error(
        "{bundle}: weftapp.toml does not match weftapp.lock: digest {actual}, lock says {expected}"
    )]
    ManifestChanged {
        /// The bundle.
        bundle: String,
        /// Hex BLAKE3 in the lock.
        expected: String,
        /// Hex BLAKE3 of the manifest.
        actual: String,
    },
    /// A component's digest is not the one in the lock.
    #[error("{bundle}: component `{path}` does not match weftapp.lock: digest {actual}, lock says {expected}")]
    DigestMismatch {
        /// The bundle.
        bundle: String,
        /// The component's path in the bundle.
        path: String,
        /// Hex BLAKE3 in the lock.
        expected: String,
        /// Hex BLAKE3 of the file.
        actual: String,
    },
    /// The manifest names a component the lock does not cover.
    #[error("{bundle}: component `{path}` is named by the manifest but not in weftapp.lock")]
    NotInLock {
        /// The bundle.
        bundle: String,
        /// The component's path in the bundle.
        path: String,
    },
    /// An unsigned bundle for an environment that takes only signed ones.
    #[error("{bundle}: bundle is unsigned; environment `{environment}` installs only signed bundles (sign it with `pack` and a key; unsigned bundles install in `dev`, or where `[environments.NAME] unsigned = true`)")]
    Unsigned {
        /// The bundle.
        bundle: String,
        /// The environment it would go into.
        environment: String,
    },
    /// The manifest names an environment this kernel does not define.
    #[error("{bundle}: weftapp.toml: [environment] name: {message}")]
    UnknownEnvironment {
        /// The bundle.
        bundle: String,
        /// What is wrong.
        message: String,
    },
    /// Signed by a key the trust store does not hold.
    #[error(
        "{bundle}: signed by untrusted key {key}; trust it first (trust store add NAME {key})"
    )]
    Untrusted {
        /// The bundle.
        bundle: String,
        /// Hex public key of the signer.
        key: String,
    },
    /// The signature does not verify.
    #[error(
        "{bundle}: bad signature by key {key}: the lock or manifest was changed after signing"
    )]
    BadSignature {
        /// The bundle.
        bundle: String,
        /// Hex public key of the claimed signer.
        key: String,
    },
    /// The manifest fails the apps component's check.
    #[error(transparent)]
    Check(#[from] CheckError),
}

/// The trust store of bundle signers refused an operation or cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// An I/O failure on the trust store file.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The trust store file does not parse.
    #[error("{}: malformed trust store: {reason}", .path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A key name outside `[A-Za-z0-9._-]{1,64}`.
    #[error("invalid key name `{0}`: expected 1 to 64 characters from [A-Za-z0-9._-]")]
    BadName(String),
    /// A public key that is not 64 hex characters of a valid Ed25519 key.
    #[error("invalid public key for `{name}`: {reason}")]
    BadKey {
        /// The name it was to be trusted under.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The name is trusted already, with another key.
    #[error("`{name}` is already trusted with a different key ({existing}); remove it first")]
    NameTaken {
        /// The name.
        name: String,
        /// Hex key it has now.
        existing: String,
    },
    /// No key of this name is trusted.
    #[error("no trusted key named `{0}`")]
    NotFound(String),
}
