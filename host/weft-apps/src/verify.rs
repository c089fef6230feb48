//! Verifying a bundle against its lock, its signature and the trust store,
//! under the install policy: unsigned bundles install only in `dev`.

use std::collections::BTreeMap;
use std::str::FromStr;

use ed25519_dalek::VerifyingKey;

use crate::bundle::Bundle;
use crate::checker::types::{self, InstallPlan};
use crate::checker::AppsChecker;
use crate::error::BundleError;
use crate::lock::{digest_hex, LOCK_FILE, MANIFEST_FILE, SIG_FILE};
use crate::pack::plan_components;
use crate::trust::TrustStore;

/// The environment an app is installed into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    /// Development: unsigned bundles install.
    Dev,
    /// Staging: only bundles signed by a trusted key install.
    Staging,
    /// Production, the default: only bundles signed by a trusted key install.
    Prod,
}

impl std::fmt::Display for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Environment::Dev => "dev",
            Environment::Staging => "staging",
            Environment::Prod => "prod",
        })
    }
}

impl FromStr for Environment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "dev" => Ok(Environment::Dev),
            "staging" => Ok(Environment::Staging),
            "prod" => Ok(Environment::Prod),
            _ => Err(format!(
                "unknown environment `{s}`; expected dev, staging or prod"
            )),
        }
    }
}

impl From<types::Environment> for Environment {
    fn from(e: types::Environment) -> Self {
        match e {
            types::Environment::Dev => Environment::Dev,
            types::Environment::Staging => Environment::Staging,
            types::Environment::Prod => Environment::Prod,
        }
    }
}

/// A bundle that passed [`verify`].
#[derive(Clone, Debug)]
pub struct Verified {
    /// BLAKE3 hex of `weftapp.toml`.
    pub manifest_digest: String,
    /// Component path to BLAKE3 hex, every one checked against the bytes.
    pub digests: BTreeMap<String, String>,
    /// Who signed it; `None` for an unsigned (dev-only) bundle.
    pub signer: Option<VerifyingKey>,
    /// The signer's name in the trust store.
    pub signer_name: Option<String>,
}

impl Verified {
    /// Every path in `components` (a plan's `verify-digests` list) must be
    /// in the lock, so nothing the manifest runs escapes the digests.
    pub fn require(&self, bundle: &Bundle, components: &[String]) -> Result<(), BundleError> {
        match components.iter().find(|c| !self.digests.contains_key(*c)) {
            Some(c) => Err(BundleError::NotInLock {
                bundle: bundle.name().to_string(),
                path: c.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// Check `bundle` against its lock and signature. Order: the manifest's
/// digest, the signature (or the unsigned-only-in-dev policy) and its key's
/// trust, then every component's bytes.
pub fn verify(
    bundle: &Bundle,
    trust: &TrustStore,
    environment: Environment,
) -> Result<Verified, BundleError> {
    let name = || bundle.name().to_string();
    let lock = bundle.lock().ok_or_else(|| BundleError::Missing {
        bundle: name(),
        file: LOCK_FILE.into(),
        hint: " (pack the bundle first)",
    })?;
    let manifest_digest = digest_hex(bundle.manifest_bytes());
    if manifest_digest != lock.manifest {
        return Err(BundleError::ManifestChanged {
            bundle: name(),
            expected: lock.manifest.clone(),
            actual: manifest_digest,
        });
    }
    let (signer, signer_name) = match bundle.signature() {
        None if environment == Environment::Dev => (None, None),
        None => {
            return Err(BundleError::Unsigned {
                bundle: name(),
                environment: environment.to_string(),
            })
        }
        Some(sig) => {
            let key = sig.key().map_err(|reason| BundleError::Malformed {
                bundle: name(),
                file: SIG_FILE,
                reason,
            })?;
            let key_hex = hex::encode(key.to_bytes());
            if !sig.verifies(lock, &key) {
                return Err(BundleError::BadSignature {
                    bundle: name(),
                    key: key_hex,
                });
            }
            let Some(trusted) = trust.name_of(&key) else {
                return Err(BundleError::Untrusted {
                    bundle: name(),
                    key: key_hex,
                });
            };
            (Some(key), Some(trusted.to_string()))
        }
    };
    for (path, expected) in &lock.components {
        let actual = digest_hex(&bundle.read(path)?);
        if &actual != expected {
            return Err(BundleError::DigestMismatch {
                bundle: name(),
                path: path.clone(),
                expected: expected.clone(),
                actual,
            });
        }
    }
    // An archive carries nothing unaccounted for.
    let meta = [MANIFEST_FILE, LOCK_FILE, SIG_FILE];
    if let Some(extra) = bundle
        .entries()
        .into_iter()
        .find(|e| !meta.contains(e) && !lock.components.contains_key(*e))
    {
        return Err(BundleError::UnsafeEntry {
            bundle: name(),
            entry: extra.to_string(),
            reason: "not listed in weftapp.lock".into(),
        });
    }
    Ok(Verified {
        manifest_digest,
        digests: lock.components.clone(),
        signer,
        signer_name,
    })
}

/// Check the manifest with `checker`, then [`verify`], then require that
/// every component the plan names is in the lock: what an install does
/// before its first step.
pub async fn inspect(
    checker: &AppsChecker,
    bundle: &Bundle,
    trust: &TrustStore,
    environment: Environment,
) -> Result<(InstallPlan, Verified), BundleError> {
    let file = format!("{}/{MANIFEST_FILE}", bundle.name());
    let plan = checker.check(bundle.manifest_text()?, &file).await?;
    let verified = verify(bundle, trust, environment)?;
    verified.require(bundle, &plan_components(&plan))?;
    Ok((plan, verified))
}
