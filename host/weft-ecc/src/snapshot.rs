//! The snapshot: one file with a fixed header and the whole state as CBOR, plus the
//! `hnsw_rs` dump files of each non-empty index graph, which the CBOR names with their
//! lengths and BLAKE3 sums.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "WEFTECC\0"
//!      8     4  format version, u32 little-endian (2)
//!     12     4  reserved, zero
//!     16     8  body length in bytes, u64 little-endian
//!     24    32  BLAKE3 of the body
//!     56     …  body: CBOR (ciborium) of `SnapshotBody`
//! ```
//!
//! A save writes the dump files of a new generation first (`ecc.g<N>.<i>.hnsw.graph` and
//! `.hnsw.data`, fsynced), then the file to `ecc.snapshot.tmp`, fsynced, renamed over
//! `ecc.snapshot`, and the directory fsynced: the rename is the commit, so a crash leaves
//! either the old snapshot with its files or the new one with its files. Then the files of
//! other generations are removed. A short file is reported as torn, a checksum mismatch as
//! corrupt, each naming the file.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::causal::GraphSnapshot;
use crate::crossref::CrossRef;
use crate::error::SnapshotError;
use crate::hlc::ClockState;
use crate::impulse::QueueSnapshot;
use crate::names::Namespace;
use crate::vector::IndexSnapshot;

/// File name of the snapshot inside its directory.
pub const SNAPSHOT_FILE: &str = "ecc.snapshot";
/// File magic.
pub const MAGIC: [u8; 8] = *b"WEFTECC\0";
/// Format version written and read by this build.
pub const FORMAT_VERSION: u32 = 2;
/// Header length in bytes.
pub const HEADER_LEN: usize = 56;

/// The whole state, as stored.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SnapshotBody {
    /// Caller's marker, e.g. the last chain sequence number the state includes.
    pub marker: u64,
    /// The clock.
    pub clock: ClockState,
    /// Every namespace with any state, in name order.
    pub spaces: Vec<SpaceSnapshot>,
}

/// One namespace's state.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SpaceSnapshot {
    pub ns: Namespace,
    pub index: Option<IndexSnapshot>,
    pub graph: GraphSnapshot,
    pub refs: Vec<CrossRef>,
    pub queue: QueueSnapshot,
}

/// What a save or load reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// The snapshot file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Total size of the graph dump files it names.
    pub graph_bytes: u64,
    /// The caller's marker stored in it.
    pub marker: u64,
    /// The clock state stored in it.
    pub clock: ClockState,
}

fn io<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// Encodes `body` and writes it atomically into `dir`. Returns the file path and size.
pub(crate) fn write(dir: &Path, body: &SnapshotBody) -> Result<(PathBuf, u64), SnapshotError> {
    let mut cbor = Vec::new();
    ciborium::into_writer(body, &mut cbor).map_err(|e| SnapshotError::Encode(e.to_string()))?;
    fs::create_dir_all(dir).map_err(io(dir, "create directory"))?;
    let path = dir.join(SNAPSHOT_FILE);
    let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    header.extend_from_slice(&(cbor.len() as u64).to_le_bytes());
    header.extend_from_slice(blake3::hash(&cbor).as_bytes());
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io(&tmp, "create"))?;
        f.write_all(&header).map_err(io(&tmp, "write"))?;
        f.write_all(&cbor).map_err(io(&tmp, "write"))?;
        f.sync_all().map_err(io(&tmp, "fsync"))?;
    }
    fs::rename(&tmp, &path).map_err(io(&path, "rename"))?;
    // The rename is durable only once the directory entry is.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir, "fsync directory"))?;
    Ok((path, (HEADER_LEN + cbor.len()) as u64))
}

/// Reads and checks the snapshot in `dir`; returns the decoded body, path and size.
pub(crate) fn read(dir: &Path) -> Result<(SnapshotBody, PathBuf, u64), SnapshotError> {
    let path = dir.join(SNAPSHOT_FILE);
    let mut bytes = Vec::new();
    File::open(&path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io(&path, "read"))?;
    let found = bytes.len() as u64;
    if bytes.len() >= MAGIC.len() && bytes[..MAGIC.len()] != MAGIC {
        return Err(SnapshotError::BadMagic { path });
    }
    if bytes.len() < HEADER_LEN {
        return Err(SnapshotError::Torn {
            path,
            expected: HEADER_LEN as u64,
            found,
        });
    }
    let u32_at =
        |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    let version = u32_at(8);
    if version != FORMAT_VERSION {
        return Err(SnapshotError::Version {
            path,
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[16..24]);
    let body_len = u64::from_le_bytes(len);
    let expected = (HEADER_LEN as u64).saturating_add(body_len);
    if expected != found {
        return Err(SnapshotError::Torn {
            path,
            expected,
            found,
        });
    }
    let body = &bytes[HEADER_LEN..];
    if blake3::hash(body).as_bytes() != &bytes[24..56] {
        return Err(SnapshotError::Checksum { path });
    }
    let decoded: SnapshotBody = ciborium::from_reader(body).map_err(|e| SnapshotError::Decode {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok((decoded, path, found))
}

/// The generation a new save uses: one past every generation whose files are in `dir`, so
/// it never writes over the files the current snapshot names.
pub(crate) fn next_generation(dir: &Path) -> Result<u64, SnapshotError> {
    let mut next = 0;
    for entry in fs::read_dir(dir).map_err(io(dir, "list"))? {
        let entry = entry.map_err(io(dir, "list"))?;
        if let Some(g) = generation_of(&entry.file_name().to_string_lossy()) {
            next = next.max(g + 1);
        }
    }
    Ok(next)
}

/// `ecc.g<N>.…` -> N.
fn generation_of(name: &str) -> Option<u64> {
    let rest = name.strip_prefix("ecc.g")?;
    let digits = rest.split('.').next()?;
    digits.parse().ok()
}

/// Removes dump files of every generation but `keep` (best effort: what stays is removed
/// by a later save).
pub(crate) fn sweep(dir: &Path, keep: u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if generation_of(&name).is_some_and(|g| g != keep) && name.contains(".hnsw.") {
            let _ = fs::remove_file(entry.path());
        }
    }
}
