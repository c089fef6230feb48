//! Files of a chain directory: segment names, the 64-byte segment header,
//! and where things sit in the index files (docs/chain-format.md).

use std::path::{Path, PathBuf};

use crate::error::{ChainError, Result};

/// Magic of a segment file (format 2).
pub const SEGMENT_MAGIC: [u8; 8] = *b"WEFTLOG2";
/// The on-disk format version this crate writes and reads.
pub const FORMAT_VERSION: u16 = 2;
/// Size of the segment header.
pub const SEGMENT_HEADER_LEN: usize = 64;
/// Events per index chunk; segments start at a multiple of it.
pub const CHUNK: u64 = 8;
/// Height of a chunk's subtree (`CHUNK = 2^CHUNK_HEIGHT`).
pub const CHUNK_HEIGHT: u32 = 3;
/// Bytes of a chunk entry before its node hashes: offset u32 + timestamp u64.
pub const CHUNK_ENTRY_FIXED: u64 = 12;
/// Bytes of a kind-index entry: seq u64 + tag u8.
pub const KIND_ENTRY_LEN: u64 = 9;
/// Name of the lock file held by the one writer.
pub const LOCK_FILE: &str = "LOCK";
/// A format-1 log, refused with a clear message.
pub const V1_FILE: &str = "chain.log";
/// Where `keep` moves removed segments when archiving.
pub const ARCHIVE_DIR: &str = "archive";

/// Kind prefixes indexed in `.kinds` so boot can find them without the log,
/// with their tags.
pub const INDEXED_KINDS: &[(&str, u8)] = &[("lineage", 1), ("tree.", 2), ("escalation.", 3)];

/// Tag of an indexed kind, if any.
pub fn kind_tag(kind: &str) -> Option<u8> {
    INDEXED_KINDS
        .iter()
        .find(|(p, _)| {
            if p.ends_with('.') {
                kind.starts_with(p)
            } else {
                kind == *p
            }
        })
        .map(|(_, t)| *t)
}

/// Segment file of the segment starting at `first_seq`.
pub fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.seg"))
}

/// Index file of the segment starting at `first_seq`.
pub fn index_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.idx"))
}

/// Kind-index file of the segment starting at `first_seq`.
pub fn kinds_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.kinds"))
}

/// First seqs of the segments in `dir`, ascending.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let rd = std::fs::read_dir(dir).map_err(|e| ChainError::io(dir, e))?;
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| ChainError::io(dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".seg") {
            if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(s) = stem.parse::<u64>() {
                    out.push(s);
                }
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// The fixed header at the start of every segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The chain.
    pub chain_id: u32,
    /// Seq of the first event in the segment (= tree size of its start head).
    pub first_seq: u64,
    /// When the segment was created.
    pub created_ns: u64,
}

impl SegmentHeader {
    /// The 64 header bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.chain_id.to_le_bytes());
        b[16..24].copy_from_slice(&self.first_seq.to_le_bytes());
        b[24..32].copy_from_slice(&self.created_ns.to_le_bytes());
        let ck = blake3::hash(&b[0..56]);
        b[56..64].copy_from_slice(&ck.as_bytes()[..8]);
        b
    }

    /// Parses and checks a header.
    pub fn decode(b: &[u8]) -> std::result::Result<Self, String> {
        if b.len() < SEGMENT_HEADER_LEN {
            return Err("segment header truncated".into());
        }
        if b[0..8] == *b"WEFTSEG\0" {
            return Err("this is a format-1 chain file; this weft reads format 2".into());
        }
        if b[0..8] != SEGMENT_MAGIC {
            return Err("not a weft chain segment (bad magic)".into());
        }
        if blake3::hash(&b[0..56]).as_bytes()[..8] != b[56..64] {
            return Err("segment header checksum mismatch".into());
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != FORMAT_VERSION {
            return Err(format!("unsupported segment format version {version}"));
        }
        if b[10..12] != [0, 0] || b[32..56].iter().any(|&x| x != 0) {
            return Err("reserved header bytes set".into());
        }
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(a)
        };
        let first_seq = u64_at(16);
        if first_seq % CHUNK != 0 {
            return Err(format!(
                "segment first seq {first_seq} is not a multiple of {CHUNK}"
            ));
        }
        Ok(SegmentHeader {
            chain_id: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
            first_seq,
            created_ns: u64_at(24),
        })
    }
}

/// `Σ_{j≥0} ⌊c / 2^j⌋`: complete nodes of height ≥ 3 finished by the
/// first `c` chunks.
fn nodes_before(c: u64) -> u64 {
    2 * c - u64::from(c.count_ones())
}

/// Byte position of chunk `c`'s entry in the index of the segment whose
/// first chunk is `c0`.
pub fn chunk_entry_pos(c0: u64, c: u64) -> u64 {
    CHUNK_ENTRY_FIXED * (c - c0) + 32 * (nodes_before(c) - nodes_before(c0))
}

/// Node hashes stored in chunk `c`'s entry (heights 3, 4, ...).
pub fn nodes_in_chunk(c: u64) -> u64 {
    1 + u64::from((c + 1).trailing_zeros())
}

/// The chunk whose entry stores node (`height >= 3`, `index`), and the
/// node's slot in it.
pub fn node_home(height: u32, index: u64) -> (u64, u64) {
    let j = height - CHUNK_HEIGHT;
    (((index + 1) << j) - 1, u64::from(j))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_positions_follow_the_node_counts() {
        for c0 in [0u64, 8, 24, 1000] {
            let mut pos = 0;
            for c in c0..c0 + 300 {
                assert_eq!(chunk_entry_pos(c0, c), pos, "c0 {c0} c {c}");
                pos += CHUNK_ENTRY_FIXED + 32 * nodes_in_chunk(c);
            }
        }
        // node (3, i) lives in chunk i slot 0; node (5, 2) completes at chunk 11.
        assert_eq!(node_home(3, 7), (7, 0));
        assert_eq!(node_home(5, 2), (11, 2));
        assert_eq!(nodes_in_chunk(11), 3);
    }

    #[test]
    fn header_roundtrip_and_checks() {
        let h = SegmentHeader {
            chain_id: 4,
            first_seq: 16,
            created_ns: 5,
        };
        let b = h.encode();
        assert_eq!(SegmentHeader::decode(&b).unwrap(), h);
        for i in 0..64 {
            let mut c = b;
            c[i] ^= 1;
            assert!(SegmentHeader::decode(&c).is_err(), "byte {i}");
        }
        assert!(kind_tag("tree.insert") == Some(2) && kind_tag("lineage") == Some(1));
        assert_eq!(kind_tag("lineage.x"), None);
    }
}
