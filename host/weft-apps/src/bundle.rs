//! Opening a bundle: a directory holding `weftapp.toml`, or a `.weftapp`
//! file (a plain tar). Archives are read whole into memory under hard
//! bounds, and any entry that is not a plain file with a plain relative
//! path is refused: nothing in a bundle can point outside it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use tar::EntryType;

use crate::error::BundleError;
use crate::lock::{Lock, SigFile, LOCK_FILE, MANIFEST_FILE, SIG_FILE};

/// Largest single file (component) in a bundle.
pub const MAX_ENTRY_BYTES: u64 = 64 << 20;
/// Largest archive, and largest sum of files read from one.
pub const MAX_TOTAL_BYTES: u64 = 512 << 20;
/// Most entries an archive may hold.
pub const MAX_ENTRIES: usize = 4096;
/// Largest manifest, lock or signature file.
pub const MAX_META_BYTES: u64 = 1 << 20;

enum Source {
    Dir(PathBuf),
    Archive(BTreeMap<String, Vec<u8>>),
}

/// An opened bundle: manifest, lock and signature read; components read
/// on demand with [`Bundle::read`].
pub struct Bundle {
    name: String,
    source: Source,
    manifest: Vec<u8>,
    lock: Option<Lock>,
    sig: Option<SigFile>,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("name", &self.name)
            .field("archive", &self.is_archive())
            .field("lock", &self.lock)
            .field("sig", &self.sig)
            .finish_non_exhaustive()
    }
}

/// Open a bundle directory or `.weftapp` archive.
pub fn open_bundle(path: &Path) -> Result<Bundle, BundleError> {
    let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
    let name = path.display().to_string();
    let source = if meta.is_dir() {
        Source::Dir(path.to_path_buf())
    } else {
        if meta.len() > MAX_TOTAL_BYTES {
            return Err(BundleError::TooLarge {
                bundle: name,
                what: "the archive".into(),
                limit: MAX_TOTAL_BYTES,
            });
        }
        let file = File::open(path).map_err(|e| io(path, e))?;
        Source::Archive(read_archive(file, path, &name)?)
    };
    finish(name, source)
}

/// Open a `.weftapp` archive held in memory; `name` stands for its path in
/// messages. The same bounds and checks as [`open_bundle`].
pub fn open_archive_bytes(name: &str, bytes: &[u8]) -> Result<Bundle, BundleError> {
    if bytes.len() as u64 > MAX_TOTAL_BYTES {
        return Err(BundleError::TooLarge {
            bundle: name.to_string(),
            what: "the archive".into(),
            limit: MAX_TOTAL_BYTES,
        });
    }
    let files = read_archive(bytes, Path::new(name), name)?;
    finish(name.to_string(), Source::Archive(files))
}

/// Read the manifest, lock and signature of an opened source.
fn finish(name: String, source: Source) -> Result<Bundle, BundleError> {
    let mut b = Bundle {
        name,
        source,
        manifest: Vec::new(),
        lock: None,
        sig: None,
    };
    b.manifest = b
        .read_meta(MANIFEST_FILE)?
        .ok_or_else(|| BundleError::Missing {
            bundle: b.name.clone(),
            file: MANIFEST_FILE.into(),
            hint: "",
        })?;
    if let Some(bytes) = b.read_meta(LOCK_FILE)? {
        let lock: Lock = serde_json::from_slice(&bytes).map_err(|e| b.malformed(LOCK_FILE, e))?;
        lock.validate().map_err(|e| b.malformed(LOCK_FILE, e))?;
        b.lock = Some(lock);
    }
    if let Some(bytes) = b.read_meta(SIG_FILE)? {
        b.sig = Some(serde_json::from_slice(&bytes).map_err(|e| b.malformed(SIG_FILE, e))?);
    }
    Ok(b)
}

impl Bundle {
    /// The path it was opened from, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True for a `.weftapp` archive, false for a directory.
    pub fn is_archive(&self) -> bool {
        matches!(self.source, Source::Archive(_))
    }

    /// The bytes of `weftapp.toml`.
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest
    }

    /// `weftapp.toml` as text; an error if it is not UTF-8.
    pub fn manifest_text(&self) -> Result<&str, BundleError> {
        std::str::from_utf8(&self.manifest).map_err(|e| self.malformed(MANIFEST_FILE, e))
    }

    /// `weftapp.lock`, if the bundle has one.
    pub fn lock(&self) -> Option<&Lock> {
        self.lock.as_ref()
    }

    /// `weftapp.sig`, if the bundle is signed.
    pub fn signature(&self) -> Option<&SigFile> {
        self.sig.as_ref()
    }

    /// Paths of an archive's files (empty for a directory bundle).
    pub fn entries(&self) -> Vec<&str> {
        match &self.source {
            Source::Archive(m) => m.keys().map(String::as_str).collect(),
            Source::Dir(_) => Vec::new(),
        }
    }

    /// Read the file at bundle-relative `rel` (at most [`MAX_ENTRY_BYTES`]).
    /// In a directory, no part of the path may be a symlink.
    pub fn read(&self, rel: &str) -> Result<Vec<u8>, BundleError> {
        self.read_limited(rel, MAX_ENTRY_BYTES)?
            .ok_or_else(|| BundleError::Missing {
                bundle: self.name.clone(),
                file: format!("`{rel}`"),
                hint: " (named by the manifest or lock)",
            })
    }

    fn read_meta(&self, rel: &str) -> Result<Option<Vec<u8>>, BundleError> {
        self.read_limited(rel, MAX_META_BYTES)
    }

    fn read_limited(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>, BundleError> {
        if let Some(reason) = path_problem(rel) {
            return Err(self.unsafe_entry(rel, reason));
        }
        let too_large = || BundleError::TooLarge {
            bundle: self.name.clone(),
            what: format!("`{rel}`"),
            limit,
        };
        match &self.source {
            Source::Archive(files) => match files.get(rel) {
                Some(b) if b.len() as u64 > limit => Err(too_large()),
                other => Ok(other.cloned()),
            },
            Source::Dir(root) => {
                let mut p = root.clone();
                for seg in rel.split('/') {
                    p.push(seg);
                    match std::fs::symlink_metadata(&p) {
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                        Err(e) => return Err(io(&p, e)),
                        Ok(m) if m.file_type().is_symlink() => {
                            return Err(self.unsafe_entry(rel, "is or passes through a symlink"))
                        }
                        Ok(_) => {}
                    }
                }
                let f = File::open(&p).map_err(|e| io(&p, e))?;
                let m = f.metadata().map_err(|e| io(&p, e))?;
                if !m.is_file() {
                    return Err(self.unsafe_entry(rel, "is not a regular file"));
                }
                if m.len() > limit {
                    return Err(too_large());
                }
                let mut buf = Vec::with_capacity(m.len() as usize);
                f.take(limit + 1)
                    .read_to_end(&mut buf)
                    .map_err(|e| io(&p, e))?;
                if buf.len() as u64 > limit {
                    return Err(too_large());
                }
                Ok(Some(buf))
            }
        }
    }

    fn unsafe_entry(&self, entry: &str, reason: &str) -> BundleError {
        BundleError::UnsafeEntry {
            bundle: self.name.clone(),
            entry: entry.to_string(),
            reason: reason.to_string(),
        }
    }

    fn malformed(&self, file: &'static str, e: impl std::fmt::Display) -> BundleError {
        BundleError::Malformed {
            bundle: self.name.clone(),
            file,
            reason: e.to_string(),
        }
    }
}

/// Why `p` is not a plain relative path inside a bundle, if it is not.
pub fn path_problem(p: &str) -> Option<&'static str> {
    if p.is_empty() || p.len() > 256 {
        return Some("the path is empty or longer than 256 bytes");
    }
    if p.starts_with('/') || p.starts_with('\\') {
        return Some("absolute paths are not allowed");
    }
    if p.contains('\\') || p.chars().any(char::is_control) {
        return Some("backslashes and control characters are not allowed");
    }
    if p.split('/').any(|s| s == "..") {
        return Some("`..` would escape the bundle");
    }
    if p.split('/').any(|s| s.is_empty() || s == ".") {
        return Some("`.` and empty path segments are not allowed");
    }
    None
}

/// The files of a tar read from `reader`; `path` names it in I/O errors.
fn read_archive(
    reader: impl Read,
    path: &Path,
    name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, BundleError> {
    let mut archive = tar::Archive::new(reader);
    let reject = |entry: &str, reason: &str| BundleError::UnsafeEntry {
        bundle: name.to_string(),
        entry: entry.to_string(),
        reason: reason.to_string(),
    };
    let too_large = |what: String, limit: u64| BundleError::TooLarge {
        bundle: name.to_string(),
        what,
        limit,
    };
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    for entry in archive.entries().map_err(|e| io(path, e))? {
        let mut entry = entry.map_err(|e| io(path, e))?;
        let raw = entry.path_bytes().into_owned();
        let rel = String::from_utf8_lossy(&raw).into_owned();
        let kind = entry.header().entry_type();
        if kind == EntryType::Directory {
            continue;
        }
        match kind {
            EntryType::Regular | EntryType::Continuous => {}
            EntryType::Symlink => return Err(reject(&rel, "symlinks are not allowed")),
            EntryType::Link => return Err(reject(&rel, "hard links are not allowed")),
            other => {
                return Err(reject(
                    &rel,
                    &format!("entry type {other:?} is not allowed"),
                ));
            }
        }
        if std::str::from_utf8(&raw).is_err() {
            return Err(reject(&rel, "the path is not UTF-8"));
        }
        // `./x` is how some tar tools write relative names.
        let clean = rel.strip_prefix("./").unwrap_or(&rel).to_string();
        if let Some(reason) = path_problem(&clean) {
            return Err(reject(&rel, reason));
        }
        if files.len() >= MAX_ENTRIES {
            return Err(too_large(
                format!("the entry count ({MAX_ENTRIES})"),
                MAX_ENTRIES as u64,
            ));
        }
        let size = entry.size();
        if size > MAX_ENTRY_BYTES {
            return Err(too_large(format!("`{clean}`"), MAX_ENTRY_BYTES));
        }
        total += size;
        if total > MAX_TOTAL_BYTES {
            return Err(too_large("the sum of its files".into(), MAX_TOTAL_BYTES));
        }
        let mut buf = Vec::with_capacity(size as usize);
        (&mut entry)
            .take(MAX_ENTRY_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| io(path, e))?;
        if files.insert(clean.clone(), buf).is_some() {
            return Err(reject(&clean, "appears twice in the archive"));
        }
    }
    Ok(files)
}

pub(crate) fn io(path: &Path, source: std::io::Error) -> BundleError {
    BundleError::Io {
        path: path.to_path_buf(),
        source,
    }
}
