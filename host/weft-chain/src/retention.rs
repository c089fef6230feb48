//! Retention: `keep = "30d" | "50GB"` removes (or archives) the oldest
//! sealed segments. The open segment is never touched, nor any segment
//! holding an event a receipt handed out within the last hour covers. What
//! remains stays verifiable: the oldest kept segment begins with a signed
//! head (and its frontier) covering everything removed.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;

use crate::boot::read_start_head;
use crate::error::{ChainError, Result};
use crate::layout::{index_path, kinds_path, segment_path};
use crate::manager::{lock, now_ns, read, write, ChainManager, Inner};
use crate::proof::RECEIPT_WINDOW_NS;

/// What retention keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Sealed segments whose newest event is younger than this.
    Age(Duration),
    /// The newest segments totalling at most this many bytes (log and
    /// index files); the open segment always stays.
    Bytes(u64),
}

impl FromStr for Keep {
    type Err = String;

    /// `"30d"`, `"12h"`, `"90m"`, `"2w"`, `"45s"`; `"50GB"`, `"500MB"`,
    /// `"10GiB"`, `"4096B"`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let t = s.trim();
        let split = t
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("{s:?} has no unit: use e.g. \"30d\" or \"50GB\""))?;
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?} does not start with a whole number"))?;
        if n == 0 {
            return Err(format!("{s:?}: keep must be more than zero"));
        }
        let secs = |m: u64| n.checked_mul(m).map(|v| Keep::Age(Duration::from_secs(v)));
        let bytes = |m: u64| n.checked_mul(m).map(Keep::Bytes);
        let k = match unit {
            "s" => secs(1),
            "m" => secs(60),
            "h" => secs(3600),
            "d" => secs(86_400),
            "w" => secs(7 * 86_400),
            "B" => bytes(1),
            "KB" => bytes(1_000),
            "MB" => bytes(1_000_000),
            "GB" => bytes(1_000_000_000),
            "TB" => bytes(1_000_000_000_000),
            "KiB" => bytes(1 << 10),
            "MiB" => bytes(1 << 20),
            "GiB" => bytes(1 << 30),
            "TiB" => bytes(1 << 40),
            other => {
                return Err(format!(
                    "{s:?}: unknown unit {other:?} (use s, m, h, d, w for an age or B, KB, MB, GB, TB, KiB, MiB, GiB, TiB for a size)"
                ))
            }
        };
        k.ok_or_else(|| format!("{s:?} is too large"))
    }
}

/// What one retention pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// First seqs of the segments removed, oldest first.
    pub removed: Vec<u64>,
    /// Where they were moved (`None`: deleted).
    pub archived_to: Option<PathBuf>,
    /// Bytes freed in the chain directory.
    pub bytes: u64,
    /// First seq still in the chain directory.
    pub first_seq: u64,
    /// Why retention stopped before its limit, if it did.
    pub held_by: Option<String>,
}

fn seg_bytes(dir: &Path, f: u64) -> u64 {
    [segment_path(dir, f), index_path(dir, f), kinds_path(dir, f)]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

impl ChainManager {
    /// Applies the configured `keep` now (also done at open and after each
    /// segment rotation). No policy: nothing is removed.
    pub fn apply_retention(&self) -> Result<RetentionReport> {
        match self.inner.keep.clone() {
            Some(k) => apply(&self.inner, &k, self.inner.archive_dir.as_deref()),
            None => Ok(RetentionReport {
                first_seq: self.inner.store.first_seq(),
                ..Default::default()
            }),
        }
    }

    /// Applies `keep` now, archiving to `archive` (or deleting).
    pub fn apply_retention_with(
        &self,
        keep: &Keep,
        archive: Option<&Path>,
    ) -> Result<RetentionReport> {
        apply(&self.inner, keep, archive)
    }
}

pub(crate) fn apply(inner: &Inner, keep: &Keep, archive: Option<&Path>) -> Result<RetentionReport> {
    let _one = lock(&inner.retention_lock);
    let dir = &inner.dir;
    let firsts: Vec<u64> = read(&inner.store.segments)
        .iter()
        .map(|s| s.first_seq)
        .collect();
    // Never the open segment, nor what a recent receipt covers.
    let now = now_ns();
    let receipt_floor = lock(&inner.receipts)
        .iter()
        .filter(|(t, _)| now.saturating_sub(*t) < RECEIPT_WINDOW_NS)
        .map(|(_, s)| *s)
        .min();
    let mut report = RetentionReport {
        archived_to: archive.map(Path::to_path_buf),
        ..Default::default()
    };
    let mut total: u64 = firsts.iter().map(|f| seg_bytes(dir, *f)).sum();
    let mut remove = Vec::new();
    for w in firsts.windows(2) {
        let (f, next) = (w[0], w[1]);
        if receipt_floor.is_some_and(|r| r < next) {
            report.held_by = Some(format!(
                "segment {f} holds seq {} of a receipt handed out within the hour",
                receipt_floor.unwrap_or_default()
            ));
            break;
        }
        let expired = match keep {
            Keep::Age(age) => {
                // The next segment's start head carries the timestamp of
                // this one's newest event.
                let (h, _) = read_start_head(
                    &segment_path(dir, next),
                    next,
                    inner.chain_id,
                    &inner.public_key,
                )?;
                now.saturating_sub(h.timestamp_ns) > age.as_nanos() as u64
            }
            Keep::Bytes(limit) => total > *limit,
        };
        if !expired {
            break;
        }
        total -= seg_bytes(dir, f);
        remove.push((f, next));
    }
    let Some(&(_, new_first)) = remove.last() else {
        report.first_seq = firsts.first().copied().unwrap_or(0);
        return Ok(report);
    };
    // Readers first learn the new oldest segment and its frontier, then the
    // files go.
    let (_, base) = read_start_head(
        &segment_path(dir, new_first),
        new_first,
        inner.chain_id,
        &inner.public_key,
    )?;
    {
        let mut segs = write(&inner.store.segments);
        segs.retain(|s| s.first_seq >= new_first);
        *write(&inner.store.base) = Some(base);
    }
    if let Some(a) = archive {
        std::fs::create_dir_all(a).map_err(|e| ChainError::io(a, e))?;
    }
    for (f, _) in &remove {
        report.bytes += seg_bytes(dir, *f);
        for p in [
            segment_path(dir, *f),
            index_path(dir, *f),
            kinds_path(dir, *f),
        ] {
            match archive {
                Some(a) => move_file(&p, &a.join(p.file_name().unwrap_or_default()))?,
                None => std::fs::remove_file(&p).map_err(|e| ChainError::io(&p, e))?,
            }
        }
        report.removed.push(*f);
    }
    crate::keys::sync_parent_dir(&segment_path(dir, new_first))?;
    if let Some(a) = archive {
        crate::keys::sync_parent_dir(&a.join("x"))?;
    }
    inner
        .retained_removed
        .fetch_add(report.removed.len() as u64, Ordering::Relaxed);
    report.first_seq = new_first;
    tracing::info!(removed = ?report.removed, first_seq = new_first, "chain: retention removed sealed segments");
    Ok(report)
}

/// Rename, or copy + fsync + remove across file systems.
fn move_file(from: &Path, to: &Path) -> Result<()> {
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to).map_err(|e| ChainError::io(to, e))?;
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(|e| ChainError::io(to, e))?;
    std::fs::remove_file(from).map_err(|e| ChainError::io(from, e))
}
