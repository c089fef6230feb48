//! Where a subsystem's component comes from: its section's `component`
//! key (relative to `weft.toml`), else `$WEFT_COMPONENTS_DIR`, else the
//! copy built into the `weaver` binary ([`embed`]), else the repository's
//! guest build dir (for in-process kernels in this repository's tests).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use weft_runtime::{LoadedComponent, RunError, Runtime};

/// Components built into the running binary: file name and bytes.
pub type Embedded = &'static [(&'static str, &'static [u8])];

static EMBEDDED: OnceLock<Embedded> = OnceLock::new();

/// Make `components` (`governance.wasm`, `cron.wasm`, `health.wasm`,
/// `apps.wasm`, ...) the built-in ones of this process. `weaver` calls it
/// first thing with the guests it was built with, so it needs nothing from
/// the source tree at run time. Only the first call counts.
pub fn embed(components: Embedded) {
    let _first = EMBEDDED.set(components);
}

/// The built-in copy of `file`, if this process has one.
pub fn embedded(file: &str) -> Option<&'static [u8]> {
    EMBEDDED
        .get()?
        .iter()
        .find(|(name, _)| *name == file)
        .map(|(_, bytes)| *bytes)
}

/// Where a component's bytes are.
#[derive(Clone, Debug)]
pub enum ComponentSource {
    /// A file.
    File(PathBuf),
    /// Built into the binary.
    Embedded {
        /// Its file name (`cron.wasm`).
        name: String,
        /// Its bytes.
        bytes: &'static [u8],
    },
}

impl ComponentSource {
    /// Its bytes.
    pub fn bytes(&self) -> Result<Cow<'static, [u8]>, RunError> {
        match self {
            ComponentSource::File(p) => std::fs::read(p)
                .map(Cow::Owned)
                .map_err(|e| RunError::Host(format!("cannot read {}: {e}", p.display()))),
            ComponentSource::Embedded { bytes, .. } => Ok(Cow::Borrowed(bytes)),
        }
    }

    /// Compile it (or fetch it from `rt`'s caches).
    pub fn load(&self, rt: &Runtime) -> Result<LoadedComponent, RunError> {
        rt.load(&self.bytes()?)
    }

    /// For messages: the path, or `cron.wasm (built into weaver)`.
    pub fn display(&self) -> &Self {
        self
    }
}

impl std::fmt::Display for ComponentSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ComponentSource::File(p) => write!(f, "{}", p.display()),
            ComponentSource::Embedded { name, .. } => write!(f, "{name} (built into weaver)"),
        }
    }
}

/// Where the built-in components are as files, when they are files:
/// `$WEFT_COMPONENTS_DIR`, else this repository's guest build dir (used
/// only when the binary has no embedded copy).
pub fn components_dir() -> PathBuf {
    std::env::var_os("WEFT_COMPONENTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../components/target/wasm32-wasip2/release")
        })
}

/// The built-in component `file`: `$WEFT_COMPONENTS_DIR/file` when that is
/// set (to try a rebuilt guest without rebuilding weaver), else the
/// embedded copy, else `file` in [`components_dir`].
pub fn builtin(file: &str) -> ComponentSource {
    if std::env::var_os("WEFT_COMPONENTS_DIR").is_none() {
        if let Some(bytes) = embedded(file) {
            return ComponentSource::Embedded {
                name: file.to_string(),
                bytes,
            };
        }
    }
    ComponentSource::File(components_dir().join(file))
}

/// The component of a subsystem: `explicit` (resolved against the
/// directory of `config`, the `weft.toml` it came from), else the built-in
/// `file` ([`builtin`]).
pub fn component_source(
    explicit: Option<&Path>,
    config: Option<&Path>,
    file: &str,
) -> ComponentSource {
    match explicit {
        Some(p) => ComponentSource::File(resolve(p, config)),
        None => builtin(file),
    }
}

/// `p` resolved against the directory of `config` when relative.
pub fn resolve(p: &Path, config: Option<&Path>) -> PathBuf {
    match config.and_then(Path::parent) {
        Some(base) if p.is_relative() => base.join(p),
        _ => p.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_wins_and_resolves_against_the_config() {
        let s = component_source(
            Some(Path::new("g.wasm")),
            Some(Path::new("/etc/weft/weft.toml")),
            "governance.wasm",
        );
        assert!(matches!(s, ComponentSource::File(p) if p == Path::new("/etc/weft/g.wasm")));
    }

    #[test]
    fn embedded_copy_is_used_and_labelled() {
        static MINE: Embedded = &[("probe-test.wasm", b"\0asm")];
        embed(MINE);
        if std::env::var_os("WEFT_COMPONENTS_DIR").is_none() {
            let s = builtin("probe-test.wasm");
            assert_eq!(s.to_string(), "probe-test.wasm (built into weaver)");
            assert_eq!(&*s.bytes().unwrap(), b"\0asm");
        }
        assert!(matches!(builtin("nope.wasm"), ComponentSource::File(_)));
    }
}
