//! The trust store: the public keys whose signed bundles may be installed,
//! by name, in `<state>/trust.json` (a JSON object, name to hex key).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;

use crate::error::TrustError;
use crate::pack::write_atomic;

/// File name of the trust store under the state dir.
pub const TRUST_FILE: &str = "trust.json";
const MAX_TRUST_BYTES: u64 = 1 << 20;

/// Trusted signer keys. Every change is written through atomically.
#[derive(Debug, Clone)]
pub struct TrustStore {
    path: PathBuf,
    keys: BTreeMap<String, VerifyingKey>,
}

impl TrustStore {
    /// Open the store in `state_dir` (empty when the file does not exist).
    pub fn open(state_dir: &Path) -> Result<Self, TrustError> {
        let path = state_dir.join(TRUST_FILE);
        let io = |source| TrustError::Io {
            path: path.clone(),
            source,
        };
        let text = match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::from("{}"),
            Err(e) => return Err(io(e)),
            Ok(m) if m.len() > MAX_TRUST_BYTES => {
                return Err(TrustError::Malformed {
                    path,
                    reason: format!("larger than {MAX_TRUST_BYTES} bytes"),
                })
            }
            Ok(_) => std::fs::read_to_string(&path).map_err(io)?,
        };
        let raw: BTreeMap<String, String> =
            serde_json::from_str(&text).map_err(|e| TrustError::Malformed {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let mut keys = BTreeMap::new();
        for (name, hex) in raw {
            let key = parse_key(&name, &hex).map_err(|e| TrustError::Malformed {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            keys.insert(name, key);
        }
        Ok(TrustStore { path, keys })
    }

    /// An in-memory store that is never written (for tests and dry runs).
    pub fn empty() -> Self {
        TrustStore {
            path: PathBuf::new(),
            keys: BTreeMap::new(),
        }
    }

    /// The file the store is kept in (empty for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Trust `key_hex` under `name`. Adding the same pair again is a no-op;
    /// a name already bound to another key is an error.
    pub fn add(&mut self, name: &str, key_hex: &str) -> Result<(), TrustError> {
        if !valid_name(name) {
            return Err(TrustError::BadName(name.to_string()));
        }
        let key = parse_key(name, key_hex)?;
        match self.keys.get(name) {
            Some(k) if *k == key => return Ok(()),
            Some(k) => {
                return Err(TrustError::NameTaken {
                    name: name.to_string(),
                    existing: hex::encode(k.to_bytes()),
                })
            }
            None => {}
        }
        self.keys.insert(name.to_string(), key);
        self.save().inspect_err(|_| {
            self.keys.remove(name);
        })
    }

    /// Stop trusting the key named `name`.
    pub fn remove(&mut self, name: &str) -> Result<(), TrustError> {
        let Some(key) = self.keys.remove(name) else {
            return Err(TrustError::NotFound(name.to_string()));
        };
        self.save().inspect_err(|_| {
            self.keys.insert(name.to_string(), key);
        })
    }

    /// `(name, hex key)`, sorted by name.
    pub fn list(&self) -> Vec<(String, String)> {
        self.keys
            .iter()
            .map(|(n, k)| (n.clone(), hex::encode(k.to_bytes())))
            .collect()
    }

    /// The name `key` is trusted under, if any.
    pub fn name_of(&self, key: &VerifyingKey) -> Option<&str> {
        self.keys
            .iter()
            .find(|(_, k)| *k == key)
            .map(|(n, _)| n.as_str())
    }

    fn save(&self) -> Result<(), TrustError> {
        if self.path.as_os_str().is_empty() {
            return Ok(());
        }
        let io = |source| TrustError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let raw: BTreeMap<&str, String> = self
            .keys
            .iter()
            .map(|(n, k)| (n.as_str(), hex::encode(k.to_bytes())))
            .collect();
        let mut text = serde_json::to_vec_pretty(&raw).unwrap_or_default();
        text.push(b'\n');
        write_atomic(&self.path, &text).map_err(io)
    }
}

fn valid_name(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

fn parse_key(name: &str, hex: &str) -> Result<VerifyingKey, TrustError> {
    weft_chain::parse_public_key_hex(hex).map_err(|e| TrustError::BadKey {
        name: name.to_string(),
        reason: e.to_string(),
    })
}
