//! Verifying a bundle against its lock, its signature and the trust store,
//! under the install policy: unsigned bundles install only in `dev`.

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;

use crate::bundle::Bundle;
use crate::checker::types::InstallPlan;
use crate::checker::AppsChecker;
use crate::error::BundleError;
use crate::lock::{digest_hex, LOCK_FILE, MANIFEST_FILE, SIG_FILE};
use crate::pack::plan_components;
use crate::trust::TrustStore;

/// The environment an app is installed into, as far as installing goes:
/// its name and whether unsigned bundles install there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Environment {
    /// Its name.
    pub name: String,
    /// Do unsigned bundles install?
    pub unsigned: bool,
}

impl Environment {
    /// Built-in `dev`: unsigned bundles install.
    pub fn dev() -> Self {
        Self::of(&weft_kernel::environment::Environment::built_in("dev"))
    }

    /// Built-in `staging`: only bundles signed by a trusted key.
    pub fn staging() -> Self {
        Self::of(&weft_kernel::environment::Environment::built_in("staging"))
    }

    /// Built-in `prod`, the default: only bundles signed by a trusted key.
    pub fn prod() -> Self {
        Self::of(&weft_kernel::environment::Environment::built_in("prod"))
    }

    /// The install rule of a kernel environment.
    pub fn of(e: &weft_kernel::environment::Environment) -> Self {
        Environment {
            name: e.name.clone(),
            unsigned: e.unsigned,
        }
    }
}

impl std::fmt::Display for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// Which environment a bundle installs into.
pub enum EnvChoice<'a> {
    /// This one, whatever the manifest says (tools that only verify).
    Fixed(Environment),
    /// The one the manifest's `[environment]` names, else the kernel's
    /// default; one the kernel does not define is an error.
    Kernel(&'a weft_kernel::environment::Environments),
}

impl From<Environment> for EnvChoice<'_> {
    fn from(e: Environment) -> Self {
        EnvChoice::Fixed(e)
    }
}

impl EnvChoice<'_> {
    fn pick(&self, bundle: &Bundle, named: Option<&str>) -> Result<Environment, BundleError> {
        match self {
            EnvChoice::Fixed(e) => Ok(e.clone()),
            EnvChoice::Kernel(envs) => match named {
                None => Ok(Environment::of(envs.default_env())),
                Some(n) => envs.get(n).map(|e| Environment::of(e)).ok_or_else(|| {
                    BundleError::UnknownEnvironment {
                        bundle: bundle.name().to_string(),
                        message: envs.unknown(n),
                    }
                }),
            },
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
    /// The environment it installs into.
    pub environment: Environment,
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
        None if environment.unsigned => (None, None),
        None => {
            return Err(BundleError::Unsigned {
                bundle: name(),
                environment: environment.name.clone(),
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
        environment,
    })
}

/// Check the manifest with `checker`, then [`verify`], then require that
/// every component the plan names is in the lock: what an install does
/// before its first step.
pub async fn inspect(
    checker: &AppsChecker,
    bundle: &Bundle,
    trust: &TrustStore,
    environment: impl Into<EnvChoice<'_>>,
) -> Result<(InstallPlan, Verified), BundleError> {
    let file = format!("{}/{MANIFEST_FILE}", bundle.name());
    let plan = checker.check(bundle.manifest_text()?, &file).await?;
    let env = environment
        .into()
        .pick(bundle, plan.manifest.environment.as_deref())?;
    let verified = verify(bundle, trust, env)?;
    verified.require(bundle, &plan_components(&plan))?;
    Ok((plan, verified))
}
