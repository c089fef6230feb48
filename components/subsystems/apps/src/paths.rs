//! Paths named by a manifest. Component paths must stay inside the bundle
//! and are kept in one normal form, because the lock and the signature are
//! keyed by them.

use toml::de::DeValue;

use crate::walk::{as_str, Cx, Val};

const MAX_PATH: usize = 256;

/// Why `p` is not a plain relative path (`a/b.c`, no `.`/`..`/empty
/// segments, no backslashes), or `None` when it is.
pub fn relative_path_problem(p: &str) -> Option<&'static str> {
    if p.is_empty() {
        return Some("the path is empty");
    }
    if p.len() > MAX_PATH {
        return Some("the path is longer than 256 bytes");
    }
    if p.starts_with('/') || p.starts_with('\\') || p.as_bytes().get(1) == Some(&b':') {
        return Some("an absolute path escapes the bundle");
    }
    if p.contains('\\') || p.chars().any(char::is_control) {
        return Some(
            "use `/` as the separator; backslashes and control characters are not allowed",
        );
    }
    for seg in p.split('/') {
        match seg {
            ".." => return Some("`..` escapes the bundle"),
            "." | "" => return Some("`.` and empty segments are not allowed"),
            _ => {}
        }
    }
    None
}

/// A component path: a plain relative path ending in `.wasm`.
pub fn component_path(cx: &mut Cx<'_>, v: &Val<'_>, key: &str) -> Option<String> {
    let DeValue::String(_) = v.get_ref() else {
        cx.expected(
            v,
            key,
            "a relative path to a .wasm component inside the bundle",
        );
        return None;
    };
    let p = as_str(cx, v, key)?;
    let problem = relative_path_problem(&p).or_else(|| {
        (!p.ends_with(".wasm") || p.len() <= 5).then_some("a component path must end in .wasm")
    });
    match problem {
        None => Some(p),
        Some(why) => {
            cx.err(
                &v.span(),
                key,
                format!(
                    "expected a relative path to a .wasm component inside the bundle, \
                     found \"{p}\" ({why})"
                ),
            );
            None
        }
    }
}

/// Why `p` is not a path inside the app's data dir (relative, no `..`;
/// `.` is the data dir itself), or `None` when it is. Tool `grants.dirs`
/// and container `volumes` share this rule.
pub fn data_dir_problem(p: &str) -> Option<String> {
    if p == "." {
        return None;
    }
    relative_path_problem(p).map(|why| why.replace("bundle", "data dir"))
}

/// A host directory relative to the app's data dir; `.` is the data dir.
pub fn data_dir_path(cx: &mut Cx<'_>, v: &Val<'_>, key: &str) -> Option<String> {
    let p = as_str(cx, v, key)?;
    match data_dir_problem(&p) {
        None => Some(p),
        Some(why) => {
            cx.err(
                &v.span(),
                key,
                format!(
                    "expected a relative path inside the app's data dir, found \"{p}\" ({why})"
                ),
            );
            None
        }
    }
}

/// A file inside the bundle that is not a component (an image archive):
/// a plain relative path, like a component path without the `.wasm`
/// rule, and none of the bundle's own files.
pub fn bundle_file_path(cx: &mut Cx<'_>, v: &Val<'_>, key: &str, what: &str) -> Option<String> {
    let p = as_str(cx, v, key)?;
    let own = ["weftapp.toml", "weftapp.lock", "weftapp.sig"];
    let problem = relative_path_problem(&p).or_else(|| {
        own.contains(&p.as_str())
            .then_some("the manifest, lock and signature are not payloads")
    });
    match problem {
        None => Some(p),
        Some(why) => {
            cx.err(
                &v.span(),
                key,
                format!(
                    "expected a relative path to {what} inside the bundle, found \"{p}\" ({why})"
                ),
            );
            None
        }
    }
}

/// A path as the guest sees it: absolute, no `..`.
pub fn guest_path(cx: &mut Cx<'_>, v: &Val<'_>, key: &str) -> Option<String> {
    let p = as_str(cx, v, key)?;
    let ok = p.starts_with('/')
        && p.len() <= MAX_PATH
        && !p.contains('\\')
        && !p.split('/').any(|s| s == "..");
    if ok {
        Some(p)
    } else {
        cx.err(
            &v.span(),
            key,
            format!("expected an absolute guest path without `..`, e.g. \"/data\", found \"{p}\""),
        );
        None
    }
}
