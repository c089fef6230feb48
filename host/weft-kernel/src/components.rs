//! Where a subsystem's component comes from: its section's `component`
//! key (relative to `weft.toml`), else the built-in components directory
//! (`$WEFT_COMPONENTS_DIR`, or the repository's guest build dir).

use std::path::{Path, PathBuf};

/// Where the built-in components (`governance.wasm`, `cron.wasm`,
/// `health.wasm`, `apps.wasm`) are: `$WEFT_COMPONENTS_DIR`, else this
/// repository's guest build dir.
pub fn components_dir() -> PathBuf {
    std::env::var_os("WEFT_COMPONENTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../components/target/wasm32-wasip2/release")
        })
}

/// The component file of a subsystem: `explicit` (resolved against the
/// directory of `config`, the `weft.toml` it came from), else `file` in
/// [`components_dir`].
pub fn component_path(explicit: Option<&Path>, config: Option<&Path>, file: &str) -> PathBuf {
    match explicit {
        Some(p) => resolve(p, config),
        None => components_dir().join(file),
    }
}

/// `p` resolved against the directory of `config` when relative.
pub fn resolve(p: &Path, config: Option<&Path>) -> PathBuf {
    match config.and_then(Path::parent) {
        Some(base) if p.is_relative() => base.join(p),
        _ => p.to_path_buf(),
    }
}
