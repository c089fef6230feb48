//! Validated names: namespaces, caller-chosen keys, and the short labels used for
//! edge, reference and impulse kinds.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{EccError, Result};

/// Longest namespace name, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 128;
/// Longest string key, in bytes.
pub const MAX_KEY_LEN: usize = 256;
/// Longest label (custom kind, impulse topic), in bytes.
pub const MAX_LABEL_LEN: usize = 64;

/// A namespace name: one or more `/`-separated segments of `[A-Za-z0-9._-]`, at most
/// [`MAX_NAMESPACE_LEN`] bytes, no empty, `.` or `..` segment.
///
/// Every ECC call names one. The library enforces nothing about who may use which
/// namespace (the kernel does that); it only guarantees the name is well formed, so the
/// kernel can match it against capability patterns and tree paths.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Namespace(String);

impl Namespace {
    /// Validates `name` and wraps it.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        validate_namespace(&name)?;
        Ok(Namespace(name))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn validate_namespace(name: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(EccError::InvalidNamespace {
            name: name.chars().take(MAX_NAMESPACE_LEN).collect(),
            reason: reason.to_string(),
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAMESPACE_LEN {
        return bad("longer than 128 bytes");
    }
    for segment in name.split('/') {
        if segment.is_empty() {
            return bad("empty segment (leading, trailing or double '/')");
        }
        if segment == "." || segment == ".." {
            return bad("'.' and '..' segments are not allowed");
        }
        if let Some(c) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return bad(&format!(
                "character {c:?} is not allowed (use A-Z a-z 0-9 . _ - /)"
            ));
        }
    }
    Ok(())
}

impl TryFrom<String> for Namespace {
    type Error = EccError;
    fn try_from(s: String) -> Result<Self> {
        Namespace::new(s)
    }
}

impl TryFrom<&str> for Namespace {
    type Error = EccError;
    fn try_from(s: &str) -> Result<Self> {
        Namespace::new(s)
    }
}

impl From<Namespace> for String {
    fn from(n: Namespace) -> String {
        n.0
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A caller-chosen identifier for a vector entry or a causal node: a number or a string
/// (1 to [`MAX_KEY_LEN`] bytes). Numbers sort before strings.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "KeyRepr", into = "KeyRepr")]
pub enum Key {
    /// A numeric id.
    Num(u64),
    /// A string id.
    Str(String),
}

/// Serde shape of [`Key`], so deserialized string keys are validated too.
#[derive(Serialize, Deserialize)]
enum KeyRepr {
    #[serde(rename = "num")]
    Num(u64),
    #[serde(rename = "str")]
    Str(String),
}

impl TryFrom<KeyRepr> for Key {
    type Error = EccError;
    fn try_from(r: KeyRepr) -> Result<Self> {
        match r {
            KeyRepr::Num(n) => Ok(Key::Num(n)),
            KeyRepr::Str(s) => Key::str(s),
        }
    }
}

impl From<Key> for KeyRepr {
    fn from(k: Key) -> KeyRepr {
        match k {
            Key::Num(n) => KeyRepr::Num(n),
            Key::Str(s) => KeyRepr::Str(s),
        }
    }
}

impl Key {
    /// A validated string key.
    pub fn str(s: impl Into<String>) -> Result<Self> {
        let s = s.into();
        if s.is_empty() || s.len() > MAX_KEY_LEN {
            return Err(EccError::InvalidKey {
                reason: format!("string keys are 1 to {MAX_KEY_LEN} bytes, got {}", s.len()),
            });
        }
        Ok(Key::Str(s))
    }

    /// Checks a key built directly with `Key::Str(..)`.
    pub fn validate(&self) -> Result<()> {
        match self {
            Key::Num(_) => Ok(()),
            Key::Str(s) => Key::str(s.as_str()).map(|_| ()),
        }
    }
}

impl From<u64> for Key {
    fn from(n: u64) -> Key {
        Key::Num(n)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Num(n) => write!(f, "{n}"),
            Key::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// Checks a short label (a custom kind name or an impulse topic): 1 to
/// [`MAX_LABEL_LEN`] bytes of `[A-Za-z0-9._:/-]`.
pub fn validate_label(what: &'static str, label: &str) -> Result<()> {
    let ok_len = !label.is_empty() && label.len() <= MAX_LABEL_LEN;
    let ok_chars = label
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/'));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(EccError::InvalidLabel {
            what,
            label: label.chars().take(MAX_LABEL_LEN).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        for ok in ["a", "agent-7/memory", "A.b_c-d/e", "x/y/z"] {
            assert!(Namespace::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "a/../b",
            ".",
            "sp ace",
            "é",
            &"x".repeat(129),
        ] {
            let err = Namespace::new(bad).unwrap_err();
            assert!(
                matches!(err, EccError::InvalidNamespace { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn deserialized_namespace_is_validated() {
        let err = serde_json::from_str::<Namespace>("\"a//b\"").unwrap_err();
        assert!(err.to_string().contains("empty segment"), "{err}");
        let ok: Namespace = serde_json::from_str("\"a/b\"").unwrap();
        assert_eq!(ok.as_str(), "a/b");
    }

    #[test]
    fn keys() {
        assert!(Key::str("").is_err());
        assert!(Key::str("x".repeat(257)).is_err());
        assert!(Key::str("fact-1").is_ok());
        assert!(Key::Num(3) < Key::Str("0".into()));
        let err = serde_json::from_str::<Key>(r#"{"str":""}"#).unwrap_err();
        assert!(err.to_string().contains("string keys"), "{err}");
    }

    #[test]
    fn labels() {
        assert!(validate_label("topic", "memory.updated").is_ok());
        assert!(validate_label("topic", "").is_err());
        assert!(validate_label("topic", "a b").is_err());
        assert!(validate_label("topic", &"x".repeat(65)).is_err());
    }
}
