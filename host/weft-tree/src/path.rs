//! Resource path validation.

use crate::TreeError;

/// Longest accepted path, in bytes.
pub const MAX_PATH: usize = 4096;

/// Checks that `path` is absolute and canonical: `/` or `/a/b` with no empty,
/// `.` or `..` segments, no trailing slash and no control characters.
pub fn validate(path: &str) -> Result<(), TreeError> {
    let bad = |why: &str| TreeError::InvalidPath {
        path: path.to_string(),
        reason: why.to_string(),
    };
    if path.len() > MAX_PATH {
        return Err(bad("too long"));
    }
    if !path.starts_with('/') {
        return Err(bad("must be absolute (start with '/')"));
    }
    if path == "/" {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(bad("trailing '/'"));
    }
    for seg in path[1..].split('/') {
        match seg {
            "" => return Err(bad("empty segment")),
            "." | ".." => return Err(bad("'.' and '..' segments are not allowed")),
            s if s.chars().any(char::is_control) => return Err(bad("control character")),
            _ => {}
        }
    }
    Ok(())
}

/// Parent of a validated non-root path.
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Last segment of a validated path (`""` for the root).
pub fn name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

/// Number of segments (`/` = 0, `/a/b` = 2).
pub fn depth(path: &str) -> usize {
    if path == "/" {
        0
    } else {
        path.matches('/').count()
    }
}

/// Prefix that all strict descendants of `path` start with.
pub fn child_prefix(path: &str) -> String {
    if path == "/" {
        "/".to_string()
    } else {
        format!("{path}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        for ok in ["/", "/a", "/a/b.c", "/kernel/agents/agent-1", "/x/..y"] {
            validate(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "", "a", "a/b", "/a/", "//", "/a//b", "/a/./b", "/a/..", "/.", "/a\n",
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
        assert!(validate(&format!("/{}", "a".repeat(5000))).is_err());
    }

    #[test]
    fn helpers() {
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/a/b/c"), "/a/b");
        assert_eq!(name("/a/b"), "b");
        assert_eq!(depth("/"), 0);
        assert_eq!(depth("/a/b"), 2);
        assert_eq!(child_prefix("/"), "/");
        assert_eq!(child_prefix("/a"), "/a/");
    }
}
