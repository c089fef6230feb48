//! `weftapp.lock` and `weftapp.sig`: what they hold and the exact bytes a
//! signature covers. See `docs/weftapp.md` ("Lock and signature").

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The manifest's file name in a bundle.
pub const MANIFEST_FILE: &str = "weftapp.toml";
/// The lock's file name in a bundle.
pub const LOCK_FILE: &str = "weftapp.lock";
/// The signature's file name in a bundle.
pub const SIG_FILE: &str = "weftapp.sig";
/// The first line of the signed byte string; bump with the format.
pub const SIG_DOMAIN: &str = "weftapp-signature-v1";

/// BLAKE3 of `bytes`, lower-case hex.
pub fn digest_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// `weftapp.lock`: the manifest's digest and every component's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// Format version, 1.
    pub version: u32,
    /// BLAKE3 of `weftapp.toml`, hex.
    pub manifest: String,
    /// Component path (as written in the manifest) to BLAKE3 hex, sorted.
    pub components: BTreeMap<String, String>,
}

impl Lock {
    /// The bytes an Ed25519 signature covers:
    ///
    /// ```text
    /// weftapp-signature-v1\n
    /// manifest <hex>\n
    /// component <hex> <path>\n      (one per component, sorted by path)
    /// ```
    ///
    /// Paths never contain control characters (the checker refuses them),
    /// and the digest has a fixed width, so the string is unambiguous.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut s = format!("{SIG_DOMAIN}\nmanifest {}\n", self.manifest);
        for (path, digest) in &self.components {
            s.push_str(&format!("component {digest} {path}\n"));
        }
        s.into_bytes()
    }

    /// Structural checks on a lock read from a bundle.
    pub fn validate(&self) -> Result<(), String> {
        if self.version != 1 {
            return Err(format!("unsupported version {}; expected 1", self.version));
        }
        let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex64(&self.manifest) {
            return Err("`manifest` is not a 64-character hex digest".into());
        }
        for (path, digest) in &self.components {
            if path.is_empty() || path.chars().any(char::is_control) {
                return Err(format!(
                    "component path {path:?} is empty or has control characters"
                ));
            }
            if !hex64(digest) {
                return Err(format!(
                    "digest of `{path}` is not a 64-character hex digest"
                ));
            }
        }
        Ok(())
    }
}

/// `weftapp.sig`: who signed, and the signature over [`Lock::signed_bytes`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigFile {
    /// Format version, 1.
    pub version: u32,
    /// Always `ed25519`.
    pub algorithm: String,
    /// The signer's public key, 64 hex characters.
    pub public_key: String,
    /// 128 hex characters.
    pub signature: String,
}

impl SigFile {
    /// Signs `lock` with `key`.
    pub fn sign(lock: &Lock, key: &SigningKey) -> Self {
        let sig = key.sign(&lock.signed_bytes());
        SigFile {
            version: 1,
            algorithm: "ed25519".into(),
            public_key: hex::encode(key.verifying_key().to_bytes()),
            signature: hex::encode(sig.to_bytes()),
        }
    }

    /// The signer's key, if well formed.
    pub fn key(&self) -> Result<VerifyingKey, String> {
        if self.version != 1 || self.algorithm != "ed25519" {
            return Err(format!(
                "unsupported signature version {} / algorithm `{}`; expected 1 / ed25519",
                self.version, self.algorithm
            ));
        }
        weft_chain::parse_public_key_hex(&self.public_key).map_err(|e| e.to_string())
    }

    /// Does the signature verify for `lock` under the embedded key?
    pub fn verifies(&self, lock: &Lock, key: &VerifyingKey) -> bool {
        let Ok(bytes) = hex::decode(&self.signature) else {
            return false;
        };
        let Ok(arr) = <[u8; 64]>::try_from(bytes.as_slice()) else {
            return false;
        };
        key.verify_strict(&lock.signed_bytes(), &Signature::from_bytes(&arr))
            .is_ok()
    }
}
