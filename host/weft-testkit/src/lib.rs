//! Test support shared by the host crates and the end-to-end tests.
//!
//! Guests are built once per test run by `just components`; tests find them
//! here and share one on-disk compile cache, so each guest is compiled once
//! per run even though nextest runs every test in its own process.

use std::path::{Path, PathBuf};

pub mod docker;
pub mod etcd;
pub mod memory;

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

/// A compile cache shared by every test process of this run, created
/// private (0700) if missing. The runtime refuses a cache dir that others
/// could read or write, so one left looser by an older run is tightened:
/// it is ours, under our own target dir.
pub fn shared_cache_dir() -> PathBuf {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = target_dir().join("weft-test-cache");
    let parent = dir.parent().expect("the cache dir has a parent");
    std::fs::create_dir_all(parent)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        // Made by an earlier run or by a test process running beside us.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => panic!("cannot create {}: {e}", dir.display()),
    }
    // symlink_metadata: a symlink is left for the runtime to refuse.
    let meta = std::fs::symlink_metadata(&dir)
        .unwrap_or_else(|e| panic!("cannot inspect {}: {e}", dir.display()));
    if meta.is_dir() && meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .unwrap_or_else(|e| panic!("cannot chmod 700 {}: {e}", dir.display()));
    }
    dir
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
