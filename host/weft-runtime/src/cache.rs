//! On-disk cache of compiled components.
//!
//! Compiling a component takes tens of milliseconds (seconds for CPython);
//! loading a cached artifact is an mmap. Entries are keyed by the BLAKE3
//! digest of the component bytes plus a fingerprint of the engine's
//! configuration and wasmtime version, so an engine never loads code
//! compiled for another configuration.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::component::Component;
use wasmtime::Engine;

/// The digest that identifies a component's bytes everywhere in Weft
/// (cache keys, bundle manifests, chain events).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn of(bytes: &[u8]) -> Self {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Where compiled artifacts live, and under which engine fingerprint.
pub(crate) struct ArtifactCache {
    dir: PathBuf,
    fingerprint: String,
}

/// How a component was obtained; reported so callers and benchmarks can
/// tell a cache hit from a compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadSource {
    Memory,
    DiskCache,
    Compiled,
}

impl ArtifactCache {
    pub fn new(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        // The std hasher is not stable across Rust releases; the version
        // strings make the key change whenever the toolchain might.
        let fingerprint = format!(
            "{:016x}-w{}",
            h.finish(),
            env!("CARGO_PKG_VERSION").replace('.', "_")
        );
        Ok(ArtifactCache {
            dir: dir.to_path_buf(),
            fingerprint,
        })
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join(format!("{}-{}.cwasm", digest.to_hex(), self.fingerprint))
    }

    /// Load a cached artifact, or `None` if absent or unusable (a stale or
    /// damaged entry is removed so it is rebuilt).
    pub fn load(&self, engine: &Engine, digest: &Digest) -> Option<Component> {
        let path = self.path(digest);
        if !path.exists() {
            return None;
        }
        // SAFETY: the cache dir is private to this runtime and entries are
        // written only by `store` below (atomically, via rename), from
        // `Component::serialize` of the same engine configuration, which the
        // fingerprint in the name pins. wasmtime still checks the header.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), "dropping unusable cache entry: {e:#}");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Store a compiled artifact. Failures only cost a recompile later, so
    /// they are logged, not returned.
    pub fn store(&self, digest: &Digest, component: &Component) {
        let path = self.path(digest);
        let write = || -> Result<(), String> {
            let bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
            let (tmp, mut file) = tempfile_in(&self.dir).map_err(|e| e.to_string())?;
            let done = file
                .write_all(&bytes)
                .and_then(|()| file.sync_all())
                .and_then(|()| std::fs::rename(&tmp, &path));
            if let Err(e) = done {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.to_string());
            }
            Ok(())
        };
        if let Err(e) = write() {
            tracing::warn!(path = %path.display(), "cannot write cache entry: {e}");
        }
    }
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        ".tmp-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((path, file))
}
