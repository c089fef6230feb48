//! Packing: digest every component the manifest names into `weftapp.lock`,
//! optionally sign it into `weftapp.sig`, and optionally write a `.weftapp`
//! archive holding exactly those files.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;

use crate::bundle::{io, open_bundle, path_problem};
use crate::checker::types::{InstallPlan, Step};
use crate::checker::AppsChecker;
use crate::error::BundleError;
use crate::lock::{digest_hex, Lock, SigFile, LOCK_FILE, MANIFEST_FILE, SIG_FILE};

/// What [`pack`] produced.
#[derive(Debug)]
pub struct Packed {
    /// The lock written.
    pub lock: Lock,
    /// The signature written, when a key was given.
    pub signature: Option<SigFile>,
    /// The archive written, when one was asked for.
    pub archive: Option<PathBuf>,
}

/// Every component path a plan names, sorted and unique (the
/// `verify-digests` step of `plan.install`).
pub fn plan_components(plan: &InstallPlan) -> Vec<String> {
    plan.install
        .iter()
        .find_map(|s| match s {
            Step::VerifyDigests(p) => Some(p.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Pack the bundle directory `dir`: check its manifest with `checker`,
/// write `weftapp.lock` (and `weftapp.sig` when `key` is given; a stale
/// signature is removed otherwise) into `dir`, and, when `out` is given,
/// write a `.weftapp` archive there. Entries are sorted with zeroed
/// times and owners, so the same inputs give the same archive bytes.
pub async fn pack(
    checker: &AppsChecker,
    dir: &Path,
    out: Option<&Path>,
    key: Option<&SigningKey>,
) -> Result<Packed, BundleError> {
    let bundle = open_bundle(dir)?;
    if bundle.is_archive() {
        return Err(BundleError::UnsafeEntry {
            bundle: bundle.name().to_string(),
            entry: ".".into(),
            reason: "pack takes a directory, not an archive".into(),
        });
    }
    let file = dir.join(MANIFEST_FILE).display().to_string();
    let plan = checker.check(bundle.manifest_text()?, &file).await?;
    let mut lock = Lock {
        version: 1,
        manifest: digest_hex(bundle.manifest_bytes()),
        components: Default::default(),
    };
    let mut contents = Vec::new();
    for path in plan_components(&plan) {
        let bytes = bundle.read(&path)?;
        lock.components.insert(path.clone(), digest_hex(&bytes));
        contents.push((path, bytes));
    }
    let lock_bytes = json_bytes(&lock);
    write_file(&dir.join(LOCK_FILE), &lock_bytes)?;
    let signature = key.map(|k| SigFile::sign(&lock, k));
    let sig_path = dir.join(SIG_FILE);
    let sig_bytes = signature.as_ref().map(json_bytes);
    match &sig_bytes {
        Some(b) => write_file(&sig_path, b)?,
        None => match std::fs::remove_file(&sig_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&sig_path, e)),
            _ => {}
        },
    }
    let archive = match out {
        None => None,
        Some(out) => {
            let mut files: Vec<(&str, &[u8])> = vec![
                (MANIFEST_FILE, bundle.manifest_bytes()),
                (LOCK_FILE, &lock_bytes),
            ];
            if let Some(b) = &sig_bytes {
                files.push((SIG_FILE, b));
            }
            files.extend(contents.iter().map(|(p, b)| (p.as_str(), b.as_slice())));
            write_archive(out, &files)?;
            Some(out.to_path_buf())
        }
    };
    Ok(Packed {
        lock,
        signature,
        archive,
    })
}

fn json_bytes<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail.
    let mut b = serde_json::to_vec_pretty(v).unwrap_or_default();
    b.push(b'\n');
    b
}

fn write_archive(out: &Path, files: &[(&str, &[u8])]) -> Result<(), BundleError> {
    let mut buf = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        if let Some(reason) = path_problem(path) {
            return Err(BundleError::UnsafeEntry {
                bundle: out.display().to_string(),
                entry: path.to_string(),
                reason: reason.into(),
            });
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        buf.append_data(&mut h, path, *bytes)
            .map_err(|e| io(out, e))?;
    }
    let bytes = buf.into_inner().map_err(|e| io(out, e))?;
    write_file(out, &bytes)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    write_atomic(path, bytes).map_err(|e| io(path, e))
}

/// Write via a temp file in the same directory, fsync, rename, fsync the
/// directory: readers see the old file or the new one, never a torn one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), std::io::Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
