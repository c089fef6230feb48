//! On-disk cache of compiled components.
//!
//! Compiling a component takes tens of milliseconds (seconds for CPython);
//! loading a cached artifact is an mmap. Entries are keyed by the BLAKE3
//! digest of the component bytes plus a fingerprint of the engine's
//! configuration and wasmtime version, so an engine never loads code
//! compiled for another configuration.
//!
//! An entry is native code that the runtime maps and runs without further
//! checks, so whoever can write into the directory can run code as us. The
//! directory must therefore be ours and private ([`CacheError`] lists the
//! rules), and each entry must be a regular file of ours that no one else
//! can write. See `docs/cache.md`.

use std::fs::{DirBuilder, File, Metadata, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use wasmtime::component::Component;
use wasmtime::{Engine, Module};

use crate::runtime::Code;

/// The digest that identifies a component's bytes everywhere in Weft
/// (cache keys, bundle manifests, chain events).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The BLAKE3 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// How to point the runtime elsewhere, quoted by every refusal.
const ELSEWHERE: &str =
    "set WEFT_CACHE_DIR (for a kernel, `cache_dir` in weft.toml) to a directory of your own";

/// Why the runtime refuses a compile cache directory. Each message names
/// the directory, what is wrong and how to fix it.
///
/// The rules, checked when the [`crate::Runtime`] is created: a missing
/// directory is created with mode 0700 (missing parents as usual); an
/// existing one must be a real directory (not a symlink), owned by the
/// effective uid, with no group or other permission bits; and no directory
/// above it may be writable by others unless it has the sticky bit (as
/// `/tmp` does), since whoever can write there could swap the cache dir.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// The directory grants some access to its group or to others.
    #[error(
        "cache dir {} refused: mode {mode:04o}, expected 0700 (owner only), because native \
         code is loaded from it; fix: `chmod 700 {}` (and empty it if others could write to it), \
         or {}",
        .dir.display(), .dir.display(), ELSEWHERE
    )]
    Mode {
        /// The directory, as configured.
        dir: PathBuf,
        /// Its permission bits (`st_mode & 0o7777`).
        mode: u32,
    },

    /// The directory belongs to another user.
    #[error(
        "cache dir {} refused: owned by uid {owner}, not by uid {euid} (the current user), \
         and native code is loaded from it; fix: {}, or remove this one so that it is created \
         afresh",
        .dir.display(), ELSEWHERE
    )]
    Owner {
        /// The directory, as configured.
        dir: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our effective uid.
        euid: u32,
    },

    /// The configured path is a symlink; only a real directory is trusted,
    /// since a link can be re-pointed after it was checked.
    #[error(
        "cache dir {} refused: a symlink (to {}), not a directory; fix: set WEFT_CACHE_DIR \
         (for a kernel, `cache_dir` in weft.toml) to the real directory",
        .dir.display(), .target.display()
    )]
    Symlink {
        /// The directory, as configured.
        dir: PathBuf,
        /// Where the link points.
        target: PathBuf,
    },

    /// The configured path exists but is not a directory.
    #[error(
        "cache dir {} refused: not a directory (it is {what}); fix: remove it, or {}",
        .dir.display(), ELSEWHERE
    )]
    NotDirectory {
        /// The path, as configured.
        dir: PathBuf,
        /// What it is instead: `a regular file`, `a socket`, ...
        what: &'static str,
    },

    /// A directory above the cache dir lets others replace it.
    #[error(
        "cache dir {} refused: the directory above it, {}, has mode {mode:04o}: writable by \
         others without the sticky bit, so anyone could swap the cache dir; fix: `chmod go-w {}`, \
         or {}",
        .dir.display(), .parent.display(), .parent.display(), ELSEWHERE
    )]
    ParentWritable {
        /// The directory, as configured.
        dir: PathBuf,
        /// The ancestor at fault.
        parent: PathBuf,
        /// The ancestor's permission bits.
        mode: u32,
    },

    /// The directory could not be created or inspected.
    #[error("cannot open cache dir {}: {action}: {message}", .dir.display())]
    Io {
        /// The directory, as configured.
        dir: PathBuf,
        /// What failed, e.g. `cannot create it`.
        action: &'static str,
        /// The OS error.
        message: String,
    },
}

/// Create `dir` (mode 0700) if it is missing, then check it against the
/// rules of [`CacheError`]. Only then may artifacts be loaded from it.
pub(crate) fn secure_dir(dir: &Path) -> Result<(), CacheError> {
    let io = |action: &'static str| {
        move |e: std::io::Error| CacheError::Io {
            dir: dir.to_path_buf(),
            action,
            message: e.to_string(),
        }
    };
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                // Parents get the usual mode: only the cache dir holds code,
                // and the ancestor check below still applies to them.
                std::fs::create_dir_all(parent).map_err(io("cannot create its parent"))?;
            }
            match DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {}
                // Another process created it first: checked like any other.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io("cannot create it")(e)),
            }
            // Checked, not assumed: a umask or a filesystem without modes
            // can give something other than what was asked for.
            std::fs::symlink_metadata(dir).map_err(io("cannot inspect it"))?
        }
        Err(e) => return Err(io("cannot inspect it")(e)),
    };
    check_dir(dir, &meta, euid())?;

    // Both the path as written (a symlinked ancestor lives in its parent)
    // and the resolved one (the directories that really hold it).
    let written = std::path::absolute(dir).map_err(io("cannot resolve its path"))?;
    let real = std::fs::canonicalize(dir).map_err(io("cannot resolve its path"))?;
    for parent in written.ancestors().skip(1).chain(real.ancestors().skip(1)) {
        let m = std::fs::metadata(parent).map_err(io("cannot inspect a directory above it"))?;
        let mode = m.mode() & 0o7777;
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            return Err(CacheError::ParentWritable {
                dir: dir.to_path_buf(),
                parent: parent.to_path_buf(),
                mode,
            });
        }
    }
    Ok(())
}

fn check_dir(dir: &Path, meta: &Metadata, euid: u32) -> Result<(), CacheError> {
    let ft = meta.file_type();
    if ft.is_symlink() {
        return Err(CacheError::Symlink {
            dir: dir.to_path_buf(),
            target: std::fs::read_link(dir).unwrap_or_default(),
        });
    }
    if !ft.is_dir() {
        return Err(CacheError::NotDirectory {
            dir: dir.to_path_buf(),
            what: describe(meta),
        });
    }
    // Owner first: for someone else's dir, `chmod` is not the fix.
    if meta.uid() != euid {
        return Err(CacheError::Owner {
            dir: dir.to_path_buf(),
            owner: meta.uid(),
            euid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(CacheError::Mode {
            dir: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Why a cache entry must not be loaded, or `None` if it may be.
fn entry_problem(meta: &Metadata, euid: u32) -> Option<String> {
    if !meta.file_type().is_file() {
        return Some(format!("not a regular file (it is {})", describe(meta)));
    }
    if meta.uid() != euid {
        return Some(format!(
            "owned by uid {}, not by uid {euid} (the current user)",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Some(format!("mode {mode:04o} lets group or others write to it"));
    }
    None
}

fn describe(meta: &Metadata) -> &'static str {
    let ft = meta.file_type();
    if ft.is_symlink() {
        "a symlink"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_file() {
        "a regular file"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "a device"
    } else {
        "not a file"
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Where compiled artifacts live, and under which engine fingerprint.
pub(crate) struct ArtifactCache {
    dir: PathBuf,
    fingerprint: String,
    euid: u32,
}

/// How a component was obtained; reported so callers and benchmarks can
/// tell a cache hit from a compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadSource {
    /// Already compiled by this runtime.
    Memory,
    /// Mapped from an artifact in the cache directory.
    DiskCache,
    /// Compiled now (and written to the cache directory, if there is one).
    Compiled,
}

impl ArtifactCache {
    /// A cache in `dir`, which [`secure_dir`] has accepted.
    pub fn new(dir: &Path, engine: &Engine) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        // The std hasher is not stable across Rust releases; the version
        // strings make the key change whenever the toolchain might.
        let fingerprint = format!(
            "{:016x}-w{}",
            h.finish(),
            env!("CARGO_PKG_VERSION").replace('.', "_")
        );
        ArtifactCache {
            dir: dir.to_path_buf(),
            fingerprint,
            euid: euid(),
        }
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join(format!("{}-{}.cwasm", digest.to_hex(), self.fingerprint))
    }

    /// Load a cached artifact, or `None` if absent or unusable. A stale,
    /// damaged or untrusted entry is removed so it is rebuilt: one bad
    /// entry costs a recompile, not the whole runtime.
    pub fn load(&self, engine: &Engine, digest: &Digest, is_module: bool) -> Option<Code> {
        let path = self.path(digest);
        let file = match self.open_entry(&path) {
            Ok(Some(f)) => f,
            Ok(None) => return None,
            Err(why) => {
                tracing::warn!(
                    "not loading cache entry {}: {why}; recompiling",
                    path.display()
                );
                let _ = std::fs::remove_file(&path);
                return None;
            }
        };
        // Map the very file that was checked: /proc/self/fd names the open
        // inode, so the name cannot be swapped in between.
        let fd_path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        let source = if fd_path.exists() { &fd_path } else { &path };
        // SAFETY: the file is a regular file owned by us that no one else
        // may write, in a private directory of ours (checked by
        // `secure_dir` and `open_entry`); entries are written only by
        // `store` below (atomically, via rename), from
        // `Component::serialize` of the same engine configuration, which the
        // fingerprint in the name pins. wasmtime still checks the header
        // (including that a module's artifact is not loaded as a component).
        let loaded = if is_module {
            unsafe { Module::deserialize_file(engine, source) }.map(Code::Module)
        } else {
            unsafe { Component::deserialize_file(engine, source) }.map(Code::Component)
        };
        drop(file);
        match loaded {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), "dropping unusable cache entry: {e:#}");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Open an entry if it exists and may be trusted; `Err` says why not.
    fn open_entry(&self, path: &Path) -> Result<Option<File>, String> {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot inspect it: {e}")),
        };
        // Before opening too: opening a planted FIFO could block.
        if let Some(why) = entry_problem(&meta, self.euid) {
            return Err(why);
        }
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| format!("cannot open it: {e}"))?;
        // Again on what was opened, in case the name changed meanwhile.
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot inspect it: {e}"))?;
        match entry_problem(&meta, self.euid) {
            Some(why) => Err(why),
            None => Ok(Some(file)),
        }
    }

    /// Store a compiled artifact (mode 0600). Failures only cost a
    /// recompile later, so they are logged, not returned.
    pub fn store(&self, digest: &Digest, code: &Code) {
        let path = self.path(digest);
        let write = || -> Result<(), String> {
            let bytes = match code {
                Code::Component(c) => c.serialize(),
                Code::Module(m) => m.serialize(),
            }
            .map_err(|e| format!("{e:#}"))?;
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
        // Owner only: it becomes a cache entry by rename.
        .mode(0o600)
        .open(&path)?;
    Ok((path, file))
}
