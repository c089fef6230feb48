//! The chain's Ed25519 signing key on disk.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_core::OsRng;

use crate::error::{ChainError, Result};

/// A signing key persisted as 64 hex characters in a mode-0600 file. Exists
/// so the kernel keeps one identity across boots and never loads a key that
/// other users could have read.
pub struct SigningKeyFile {
    path: PathBuf,
    key: SigningKey,
    created: bool,
}

impl std::fmt::Debug for SigningKeyFile {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyFile")
            .field("path", &self.path)
            .field("public_key", &public_key_hex(&self.verifying_key()))
            .finish()
    }
}

impl SigningKeyFile {
    /// Loads the key at `path`, or generates and writes a new one if the file
    /// does not exist. Creation is atomic (temp file + hard link), so a crash
    /// never leaves a half-written key behind and a racing creator's key wins.
    pub fn load_or_create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        match Self::load(path) {
            Err(ChainError::KeyFile { .. }) if !path.exists() => {}
            other => return other,
        }
        let key = SigningKey::generate(&mut OsRng);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| ChainError::io(dir, e))?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp.{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let _ = fs::remove_file(&tmp);
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            let mut text = hex::encode(key.to_bytes());
            text.push('\n');
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(ChainError::io(&tmp, e));
        }
        // hard_link fails if `path` appeared meanwhile: then load the winner.
        let linked = fs::hard_link(&tmp, path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Self::load(path),
            Err(e) => return Err(ChainError::io(path, e)),
        }
        sync_parent_dir(path)?;
        Ok(SigningKeyFile {
            path: path.to_path_buf(),
            key,
            created: true,
        })
    }

    /// Loads an existing key file, refusing group/world-accessible or
    /// malformed files.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bad = |reason: String| ChainError::KeyFile {
            path: path.to_path_buf(),
            reason,
        };
        let mut f = File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
        // fstat the opened file so the check and the read see the same inode.
        let meta = f.metadata().map_err(|e| bad(format!("cannot stat: {e}")))?;
        if !meta.is_file() {
            return Err(bad("not a regular file".into()));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(bad(format!(
                "permissions {mode:03o} allow group/world access; expected 600 (chmod 600 it)"
            )));
        }
        let mut text = String::new();
        Read::by_ref(&mut f)
            .take(256)
            .read_to_string(&mut text)
            .map_err(|e| bad(format!("cannot read: {e}")))?;
        let bytes = hex::decode(text.trim())
            .map_err(|_| bad("malformed: expected 64 hex characters".into()))?;
        let secret: [u8; 32] = bytes
            .try_into()
            .map_err(|_| bad("malformed: expected 32-byte key (64 hex characters)".into()))?;
        Ok(SigningKeyFile {
            path: path.to_path_buf(),
            key: SigningKey::from_bytes(&secret),
            created: false,
        })
    }

    /// The secret key, for signing checkpoints and receipts.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The public half of the key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Where the key file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when this call generated the key.
    pub fn created(&self) -> bool {
        self.created
    }
}

/// Fsyncs the directory containing `path` so a new entry survives a crash.
pub(crate) fn sync_parent_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ChainError::io(dir, e))
}

/// Lower-case hex of a public key.
pub fn public_key_hex(key: &VerifyingKey) -> String {
    hex::encode(key.to_bytes())
}

/// Parses a 64-hex-character Ed25519 public key.
pub fn parse_public_key_hex(s: &str) -> Result<VerifyingKey> {
    let bytes =
        hex::decode(s.trim()).map_err(|e| ChainError::InvalidKey(format!("not hex: {e}")))?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| ChainError::InvalidKey("expected 32 bytes (64 hex characters)".into()))?;
    VerifyingKey::from_bytes(&arr)
        .map_err(|e| ChainError::InvalidKey(format!("not a valid Ed25519 point: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_0600_and_reloads_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/chain.key");
        let k1 = SigningKeyFile::load_or_create(&p).unwrap();
        assert!(k1.created());
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let k2 = SigningKeyFile::load_or_create(&p).unwrap();
        assert!(!k2.created());
        assert_eq!(k1.verifying_key(), k2.verifying_key());
        assert!(!format!("{k2:?}").contains(&hex::encode(k2.signing_key().to_bytes())));
    }

    #[test]
    fn refuses_world_readable_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("chain.key");
        SigningKeyFile::load_or_create(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let err = SigningKeyFile::load_or_create(&p).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ChainError::KeyFile { .. }), "{msg}");
        assert!(msg.contains("chain.key") && msg.contains("644"), "{msg}");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(SigningKeyFile::load(&p).is_err());
    }

    #[test]
    fn refuses_malformed_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("chain.key");
        for content in ["", "zz", &"ab".repeat(31), &"ab".repeat(33)] {
            let _ = fs::remove_file(&p);
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&p)
                .unwrap();
            f.write_all(content.as_bytes()).unwrap();
            let err = SigningKeyFile::load_or_create(&p).unwrap_err();
            assert!(err.to_string().contains("malformed"), "{err}");
        }
    }

    #[test]
    fn public_key_hex_roundtrip() {
        let k = SigningKey::from_bytes(&[1u8; 32]).verifying_key();
        assert_eq!(parse_public_key_hex(&public_key_hex(&k)).unwrap(), k);
        assert!(parse_public_key_hex("abc").is_err());
        assert!(parse_public_key_hex(&"00".repeat(31)).is_err());
    }
}
