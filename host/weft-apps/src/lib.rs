//! Weft apps: the pieces an install needs.
//!
//! - [`AppsChecker`] runs the `apps` component (`wit/apps.wit`), which
//!   parses and validates `weftapp.toml` and returns an install plan or
//!   positioned diagnostics; the host never interprets a manifest itself.
//! - Bundles: [`pack`] writes `weftapp.lock` (BLAKE3 of the manifest and
//!   of every component it names) and optionally `weftapp.sig` (Ed25519),
//!   and a `.weftapp` tar; [`open_bundle`] reads a directory or archive
//!   safely; [`verify`] checks digests, signature and trust under the
//!   policy that unsigned bundles install only in `dev`.
//! - [`TrustStore`]: trusted signer keys in `<state>/trust.json`.
//! - [`AppManager`]: the lifecycle, carrying out each plan's steps
//!   literally (install, start, stop, upgrade with rollback, remove); every
//!   operation is an action of the operator and every step one of the app
//!   (`app:<name>`), both through the kernel's chokepoint; the registry in
//!   `<state>/apps/registry.json`.
//! - [`AppsUnit`]: all of it as a kernel subsystem, with `weaver app` and
//!   `weaver trust` ([`control`]).
//!
//! Formats: `docs/weftapp.md`.

pub mod actions;
mod app_error;
mod bundle;
mod check;
mod checker;
pub mod control;
pub mod convert;
mod error;
mod intent;
pub mod keys;
mod lock;
mod manager;
mod pack;
pub mod pending;
mod registry;
mod steps;
mod supervisor;
mod tree;
mod trust;
pub mod unit;
mod verify;
mod wit;

pub use app_error::AppError;
pub use bundle::{
    open_archive_bytes, open_bundle, path_problem, Bundle, MAX_ENTRIES, MAX_ENTRY_BYTES,
    MAX_META_BYTES, MAX_TOTAL_BYTES,
};
pub use check::{check, CheckReport};
pub use checker::{render, render_one, types, AppsChecker, CheckError};
pub use error::{BundleError, TrustError};
pub use intent::INTENT_FILE;
pub use lock::{digest_hex, Lock, SigFile, LOCK_FILE, MANIFEST_FILE, SIG_DOMAIN, SIG_FILE};
pub use manager::{AppManager, Prepared};
pub use pack::{pack, plan_components, Packed};
pub use registry::{AgentRef, AppInfo, AppState, Progress, REGISTRY_FILE};
pub use trust::{TrustStore, TRUST_FILE};
pub use unit::AppsUnit;
pub use verify::{inspect, verify, EnvChoice, Environment, Verified};

/// Re-exported so callers sign with the same key type.
pub use ed25519_dalek::{SigningKey, VerifyingKey};
