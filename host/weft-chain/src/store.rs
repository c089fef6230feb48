//! Random access to a chain directory: events by seq and complete tree
//! nodes, through the segments' index files (never the whole log).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::error::{ChainError, Result};
use crate::event::ChainEvent;
use crate::layout::{
    chunk_entry_pos, index_path, kinds_path, node_home, segment_path, CHUNK, CHUNK_HEIGHT,
    KIND_ENTRY_LEN,
};
use crate::merkle::{Hash, NodeSource};
use crate::record::{read_frame, EventBody, Framed, HeadBody, TYPE_EVENT, TYPE_HEAD};

/// Read handles of one segment's files.
pub(crate) struct Seg {
    pub first_seq: u64,
    pub log: File,
    pub idx: File,
    pub kinds: File,
}

impl Seg {
    pub fn open(dir: &Path, first_seq: u64) -> Result<Self> {
        let open = |p: PathBuf| File::open(&p).map_err(|e| ChainError::io(p, e));
        Ok(Seg {
            first_seq,
            log: open(segment_path(dir, first_seq))?,
            idx: open(index_path(dir, first_seq))?,
            kinds: open(kinds_path(dir, first_seq))?,
        })
    }
}

/// The segments of a chain, oldest first, shared by readers and the writer
/// (which adds one at each rotation; retention removes old ones).
pub(crate) struct Store {
    pub dir: PathBuf,
    pub chain_id: u32,
    pub segments: RwLock<Vec<Arc<Seg>>>,
    /// Frontier of the oldest segment's start head once older segments are
    /// removed: the complete nodes below it that proofs still need.
    pub base: RwLock<Option<crate::merkle::Frontier>>,
}

fn read_exact_at(
    f: &File,
    buf: &mut [u8],
    pos: u64,
    what: &str,
) -> std::result::Result<(), String> {
    f.read_exact_at(buf, pos)
        .map_err(|e| format!("reading {what} at byte {pos}: {e}"))
}

/// Decodes consecutive records from `buf` (which starts at a record),
/// skipping heads, until `want` events are collected or the bytes end.
/// `first_ts` is the absolute timestamp of the first event (index entries
/// store it); later ones add their deltas. Returns the events and whether
/// the buffer ran short before `want`.
pub(crate) fn decode_events(
    buf: &[u8],
    first_seq: u64,
    first_ts: Option<u64>,
    mut prev_ts: u64,
    want: usize,
    chain_id: u32,
) -> std::result::Result<(Vec<ChainEvent>, bool), String> {
    let mut out = Vec::with_capacity(want);
    let mut pos = 0;
    while out.len() < want {
        match read_frame(&buf[pos..]) {
            Framed::Short => return Ok((out, true)),
            Framed::Bad(why) => return Err(why.to_string()),
            Framed::Ok { ty, body, len } => {
                pos += len;
                if ty == TYPE_HEAD {
                    prev_ts = HeadBody::decode(body)?.timestamp_ns;
                    continue;
                }
                debug_assert_eq!(ty, TYPE_EVENT);
                let b = EventBody::decode(body)?;
                let ts = match (out.is_empty(), first_ts) {
                    (true, Some(t)) => t,
                    _ => prev_ts
                        .checked_add(b.ts_delta)
                        .ok_or("timestamp overflows")?,
                };
                prev_ts = ts;
                let mut ev = ChainEvent {
                    seq: first_seq + out.len() as u64,
                    chain_id,
                    timestamp_ns: ts,
                    hash: [0; 32],
                    source: b.source.to_owned(),
                    kind: b.kind.to_owned(),
                    payload: b.payload.to_vec(),
                };
                ev.hash = ev.compute_hash();
                out.push(ev);
            }
        }
    }
    Ok((out, false))
}

impl Store {
    /// The segment holding `seq` (the last one starting at or before it).
    pub fn seg_for(&self, seq: u64) -> Option<Arc<Seg>> {
        let segs = self.segments.read().unwrap_or_else(|p| p.into_inner());
        let i = segs.partition_point(|s| s.first_seq <= seq);
        i.checked_sub(1).map(|i| segs[i].clone())
    }

    /// First seq still on disk (older segments were removed by retention).
    pub fn first_seq(&self) -> u64 {
        let segs = self.segments.read().unwrap_or_else(|p| p.into_inner());
        segs.first().map_or(0, |s| s.first_seq)
    }

    /// Byte offset and timestamp of chunk `c`'s first event.
    fn chunk_entry(&self, seg: &Seg, c: u64) -> std::result::Result<(u64, u64), String> {
        let mut b = [0u8; 12];
        let pos = chunk_entry_pos(seg.first_seq / CHUNK, c);
        read_exact_at(&seg.idx, &mut b, pos, "index entry")?;
        let off = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let mut t = [0u8; 8];
        t.copy_from_slice(&b[4..12]);
        Ok((u64::from(off), u64::from_le_bytes(t)))
    }

    /// The events of chunk `c` (only its first `n`), read through the index.
    /// The chunk's entry must be on disk (the chunk is complete and flushed).
    pub fn read_chunk(&self, c: u64, n: usize) -> std::result::Result<Vec<ChainEvent>, String> {
        let first = c * CHUNK;
        let seg = self
            .seg_for(first)
            .filter(|s| s.first_seq <= first)
            .ok_or_else(|| format!("event {first} is not in a segment on disk"))?;
        let (off, ts) = self.chunk_entry(&seg, c)?;
        let mut len = 2048usize;
        loop {
            let mut buf = vec![0u8; len];
            let got = read_at_most(&seg.log, &mut buf, off)?;
            buf.truncate(got);
            let (evs, short) = decode_events(&buf, first, Some(ts), ts, n, self.chain_id)?;
            if !short {
                return Ok(evs);
            }
            if got < len {
                return Err(format!(
                    "segment {} ends inside chunk {c} (byte {off})",
                    seg.first_seq
                ));
            }
            len *= 4;
        }
    }

    /// Event `seq` from disk.
    pub fn read_event(&self, seq: u64) -> std::result::Result<ChainEvent, String> {
        let c = seq / CHUNK;
        let k = (seq % CHUNK) as usize;
        let mut evs = self.read_chunk(c, k + 1)?;
        evs.pop().ok_or_else(|| format!("event {seq} missing"))
    }

    /// The stored complete node (`height >= 3`).
    pub fn stored_node(&self, height: u32, index: u64) -> std::result::Result<Hash, String> {
        let (c, slot) = node_home(height, index);
        if c * CHUNK < self.first_seq() {
            return self.base_node(height, index);
        }
        let seg = self
            .seg_for(c * CHUNK)
            .ok_or_else(|| format!("node {height}/{index} is in a removed segment"))?;
        let pos = chunk_entry_pos(seg.first_seq / CHUNK, c) + 12 + 32 * slot;
        let mut h = [0u8; 32];
        read_exact_at(&seg.idx, &mut h, pos, "tree node")?;
        Ok(h)
    }

    /// A node below the oldest segment: one of its start head's frontier.
    fn base_node(&self, height: u32, index: u64) -> std::result::Result<Hash, String> {
        let removed = || format!("node {height}/{index} lies in removed segments");
        let base = self.base.read().unwrap_or_else(|p| p.into_inner());
        let f = base.as_ref().ok_or_else(removed)?;
        let mut at = 0u64;
        for (h, node) in f.heights().zip(f.nodes()) {
            if h == height && at >> h == index && (at & ((1u64 << h) - 1)) == 0 {
                return Ok(*node);
            }
            at += 1 << h;
        }
        Err(removed())
    }

    /// Seqs of the indexed kind `tag` in every segment, ascending.
    pub fn kind_seqs(&self, tag: u8) -> Result<Vec<u64>> {
        let segs: Vec<Arc<Seg>> = self
            .segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut out = Vec::new();
        for s in segs {
            let len = s
                .kinds
                .metadata()
                .map_err(|e| ChainError::io(kinds_path(&self.dir, s.first_seq), e))?
                .len();
            let n = len / KIND_ENTRY_LEN;
            let mut buf = vec![0u8; (n * KIND_ENTRY_LEN) as usize];
            s.kinds
                .read_exact_at(&mut buf, 0)
                .map_err(|e| ChainError::io(kinds_path(&self.dir, s.first_seq), e))?;
            for e in buf.chunks_exact(KIND_ENTRY_LEN as usize) {
                if e[8] == tag {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&e[..8]);
                    out.push(u64::from_le_bytes(a));
                }
            }
        }
        Ok(out)
    }
}

/// Reads as much as is there (short only at end of file).
fn read_at_most(f: &File, buf: &mut [u8], pos: u64) -> std::result::Result<usize, String> {
    let mut got = 0;
    while got < buf.len() {
        match f.read_at(&mut buf[got..], pos + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading byte {pos}: {e}")),
        }
    }
    Ok(got)
}

/// Complete nodes of a tree of at most `size` leaves: stored nodes from the
/// index, lower ones hashed from the chunk's events (`leaves` supplies them,
/// so the live chain can serve recent events from memory).
pub(crate) struct Nodes<'a, L: Fn(u64) -> std::result::Result<Vec<Hash>, String>> {
    pub store: &'a Store,
    /// Leaf hashes of chunk `c` (as many as exist).
    pub leaves: L,
    pub memo: std::cell::RefCell<Option<(u64, Vec<Hash>)>>,
}

impl<L: Fn(u64) -> std::result::Result<Vec<Hash>, String>> NodeSource for Nodes<'_, L> {
    fn node(&self, height: u32, index: u64) -> std::result::Result<Hash, String> {
        if height >= CHUNK_HEIGHT {
            return self.store.stored_node(height, index);
        }
        let first = index << height;
        let c = first / CHUNK;
        let mut memo = self.memo.borrow_mut();
        if memo.as_ref().is_none_or(|(mc, _)| *mc != c) {
            *memo = Some((c, (self.leaves)(c)?));
        }
        let leaves = memo.as_ref().map(|(_, l)| l.as_slice()).unwrap_or_default();
        let a = (first % CHUNK) as usize;
        let b = a + (1usize << height);
        let part = leaves
            .get(a..b)
            .ok_or_else(|| format!("node {height}/{index} is not complete"))?;
        Ok(mth_small(part))
    }
}

/// MTH of a power-of-two run of leaf hashes.
fn mth_small(l: &[Hash]) -> Hash {
    if l.len() == 1 {
        return l[0];
    }
    let (a, b) = l.split_at(l.len() / 2);
    crate::merkle::node_hash(&mth_small(a), &mth_small(b))
}
