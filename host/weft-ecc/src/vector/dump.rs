//! An index graph on disk: `hnsw_rs`'s own dump (`<basename>.hnsw.graph` and
//! `<basename>.hnsw.data`), fsynced, with each file's length and BLAKE3 recorded in the
//! snapshot so a torn or corrupt dump is refused before `hnsw_rs` reads it.
//!
//! Loading a dump takes about as long as reading it, where re-inserting every vector took
//! as long as building the index (133 s for 100,000 vectors in the bench). Two things about
//! `hnsw_rs` shape this file:
//!
//! * It panics instead of returning errors on some I/O failures and malformed input
//!   (`DumpInit::new`, asserts in the loader), so both directions run under
//!   `catch_unwind`; the checksums make a malformed input a bug, not a crash.
//! * A loaded `Hnsw<'b>` borrows the `HnswIo` that loaded it (for its optional mmap mode,
//!   which we do not use: every point is copied into memory). We keep indexes as
//!   `Hnsw<'static>`, so the `HnswIo` (a path, a name and options, no data) is leaked: a
//!   few hundred bytes per index loaded, once per boot.
//!
//! The dump format is `hnsw_rs`'s: native-endian, with `usize` fields, so a snapshot is
//! for the machine (architecture) that wrote it. The chain, which the snapshot only
//! abbreviates, stays portable.

use std::fs::File;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use hnsw_rs::api::AnnT;
use hnsw_rs::hnsw::Hnsw;
use hnsw_rs::hnswio::HnswIo;
use serde::{Deserialize, Serialize};

use super::Metric;
use crate::error::SnapshotError;

/// The dump files of one index graph, as recorded in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphFiles {
    /// The files are `<basename>.hnsw.graph` and `<basename>.hnsw.data`.
    pub basename: String,
    /// Length of the graph file.
    pub graph_len: u64,
    /// BLAKE3 of the graph file, hex.
    pub graph_blake3: String,
    /// Length of the data file.
    pub data_len: u64,
    /// BLAKE3 of the data file, hex.
    pub data_blake3: String,
}

impl GraphFiles {
    /// The two files, graph first.
    pub fn paths(&self, dir: &Path) -> [PathBuf; 2] {
        [
            dir.join(format!("{}.hnsw.graph", self.basename)),
            dir.join(format!("{}.hnsw.data", self.basename)),
        ]
    }
}

fn io<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panicked".into())
}

/// Length and BLAKE3 of a file, read in chunks.
fn sum(path: &Path) -> Result<(u64, String), SnapshotError> {
    let mut f = File::open(path).map_err(io(path, "open"))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io(path, "read"))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, h.finalize().to_hex().to_string()))
}

/// Dumps `graph` into `dir` as `basename.hnsw.*`, fsyncs both files and returns their
/// sums. The caller makes the directory entries durable (the snapshot's rename does).
pub(crate) fn write(
    graph: &Hnsw<'static, f32, Metric>,
    dir: &Path,
    basename: &str,
) -> Result<GraphFiles, SnapshotError> {
    let dumped = catch_unwind(AssertUnwindSafe(|| graph.file_dump(dir, basename)))
        .map_err(|p| {
            SnapshotError::Encode(format!(
                "hnsw_rs dump into {}: {}",
                dir.display(),
                panic_text(p)
            ))
        })?
        .map_err(|e| {
            SnapshotError::Encode(format!("hnsw_rs dump into {}: {e:#}", dir.display()))
        })?;
    if dumped != basename {
        // hnsw_rs picks another name only for an index loaded with mmap, which we never use.
        return Err(SnapshotError::Encode(format!(
            "hnsw_rs dumped as {dumped}, not {basename}"
        )));
    }
    let mut files = GraphFiles {
        basename: basename.to_string(),
        graph_len: 0,
        graph_blake3: String::new(),
        data_len: 0,
        data_blake3: String::new(),
    };
    let [graph_path, data_path] = files.paths(dir);
    for p in [&graph_path, &data_path] {
        File::open(p)
            .and_then(|f| f.sync_all())
            .map_err(io(p, "fsync"))?;
    }
    (files.graph_len, files.graph_blake3) = sum(&graph_path)?;
    (files.data_len, files.data_blake3) = sum(&data_path)?;
    Ok(files)
}

/// Checks the dump files against their recorded sums and loads the graph.
pub(crate) fn read(
    dir: &Path,
    files: &GraphFiles,
    metric: Metric,
) -> Result<Hnsw<'static, f32, Metric>, SnapshotError> {
    let [graph_path, data_path] = files.paths(dir);
    for (path, want_len, want_sum) in [
        (&graph_path, files.graph_len, &files.graph_blake3),
        (&data_path, files.data_len, &files.data_blake3),
    ] {
        let (len, got) = sum(path)?;
        if len != want_len {
            return Err(SnapshotError::Torn {
                path: path.clone(),
                expected: want_len,
                found: len,
            });
        }
        if &got != want_sum {
            return Err(SnapshotError::Checksum { path: path.clone() });
        }
    }
    let loader: &'static HnswIo = Box::leak(Box::new(HnswIo::new(dir, &files.basename)));
    catch_unwind(AssertUnwindSafe(|| loader.load_hnsw_with_dist(metric)))
        .map_err(panic_text)
        .and_then(|r| r.map_err(|e| format!("{e:#}")))
        .map_err(|reason| SnapshotError::Decode {
            path: graph_path,
            reason: format!("hnsw_rs cannot load the graph: {reason}"),
        })
}
