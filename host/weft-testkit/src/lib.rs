//! Test support shared by the host crates and the end-to-end tests.
//!
//! Guests are built once per test run by `just components`; tests find them
//! here and share one on-disk compile cache, so each guest is compiled once
//! per run even though nextest runs every test in its own process.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("weft-testkit lives at host/weft-testkit")
        .to_path_buf()
}

/// The host cargo target dir (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => repo_root().join("target"),
    }
}

/// Path of a guest built by `just components`, e.g. `guest("calc")`.
/// Panics with the command to run when it has not been built.
pub fn guest(name: &str) -> PathBuf {
    let p = repo_root()
        .join("components/target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    if !p.exists() {
        panic!(
            "guest `{name}` is not built ({}); run `just components` first",
            p.display()
        );
    }
    p
}

/// Path of a non-Rust guest under `components/dist/`, built by `just components`.
pub fn dist_guest(file: &str) -> PathBuf {
    let p = repo_root().join("components/dist").join(file);
    if !p.exists() {
        panic!(
            "guest `{file}` is not built ({}); run `just components` first",
            p.display()
        );
    }
    p
}

/// A compile cache shared by every test process of this run.
pub fn shared_cache_dir() -> PathBuf {
    target_dir().join("weft-test-cache")
}

/// The `weaver` binary. `just test` builds it before the tests run.
pub fn weaver_bin() -> PathBuf {
    let p = target_dir().join("debug").join("weaver");
    if !p.exists() {
        panic!(
            "{} is missing; run `cargo build -p weaver` (or `just test`)",
            p.display()
        );
    }
    p
}
