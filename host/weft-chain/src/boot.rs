//! Resuming the open segment at boot without reading the log: find the last
//! valid signed head near the end of the file, replay only the records
//! after the last durable index point, cut a torn tail.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::error::{ChainError, Result};
use crate::event::ChainEvent;
use crate::head::SignedHead;
use crate::layout::{
    chunk_entry_pos, index_path, kind_tag, kinds_path, segment_path, SegmentHeader, CHUNK,
    CHUNK_HEIGHT, KIND_ENTRY_LEN, SEGMENT_HEADER_LEN,
};
use crate::merkle::{Frontier, Hash};
use crate::record::{frame, read_frame, EventBody, Framed, HeadBody, HEAD_FIXED, TYPE_HEAD};

/// Appends index entries as events go by: the writer's and the replay's
/// shared bookkeeping of the open chunk.
#[derive(Clone, Debug, Default)]
pub(crate) struct Chunker {
    /// Offset and timestamp of the open chunk's first event.
    pub chunk_offset: u64,
    pub chunk_ts: u64,
    /// Nodes of height >= 3 completed by the open chunk's last event.
    pub nodes: Vec<Hash>,
    /// Complete chunk entries written to the index of this segment.
    pub chunks: u64,
    /// Kind entries written.
    pub kinds: u64,
    /// Offset, base timestamp and kind entries right after the last
    /// complete chunk (where a rebuild of the index resumes).
    pub after_offset: u64,
    pub after_ts: u64,
    pub after_kinds: u64,
}

impl Chunker {
    /// Accounts for event `ev` written at `offset` (record of `len` bytes),
    /// pushing its leaf into `frontier`; appends index and kind entries to
    /// the given buffers.
    pub fn event(
        &mut self,
        ev: &ChainEvent,
        offset: u64,
        len: u64,
        frontier: &mut Frontier,
        idx: &mut Vec<u8>,
        kinds: &mut Vec<u8>,
    ) {
        if ev.seq.is_multiple_of(CHUNK) {
            self.chunk_offset = offset;
            self.chunk_ts = ev.timestamp_ns;
        }
        if let Some(tag) = kind_tag(&ev.kind) {
            kinds.extend_from_slice(&ev.seq.to_le_bytes());
            kinds.push(tag);
            self.kinds += 1;
        }
        let nodes = &mut self.nodes;
        frontier.push(ev.hash, |h, _, x| {
            if h >= CHUNK_HEIGHT {
                nodes.push(*x);
            }
        });
        if (ev.seq + 1).is_multiple_of(CHUNK) {
            idx.extend_from_slice(&(self.chunk_offset as u32).to_le_bytes());
            idx.extend_from_slice(&self.chunk_ts.to_le_bytes());
            for n in self.nodes.drain(..) {
                idx.extend_from_slice(&n);
            }
            self.chunks += 1;
            self.after_offset = offset + len;
            self.after_ts = ev.timestamp_ns;
            self.after_kinds = self.kinds;
        }
    }
}

/// Writes a fresh segment file (header + start head) for a tree in state
/// `frontier`, fsyncs it and the directory. Returns the file positioned at
/// its end, the start head and the bytes written.
pub(crate) fn create_segment(
    dir: &Path,
    chain_id: u32,
    key: &SigningKey,
    frontier: &Frontier,
    ts: u64,
) -> Result<(File, SignedHead, u64)> {
    let first_seq = frontier.size();
    let path = segment_path(dir, first_seq);
    let mut bytes = SegmentHeader {
        chain_id,
        first_seq,
        created_ns: crate::manager::now_ns(),
    }
    .encode()
    .to_vec();
    let head = SignedHead::sign(
        key,
        chain_id,
        first_seq,
        frontier.root(),
        ts,
        first_seq,
        SEGMENT_HEADER_LEN as u64,
    );
    let body = head_body(&head, frontier, 0, 0, SEGMENT_HEADER_LEN as u64, ts);
    frame(&mut bytes, TYPE_HEAD, &body);
    let io = |e| ChainError::io(&path, e);
    for p in [index_path(dir, first_seq), kinds_path(dir, first_seq)] {
        let f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&p)
            .map_err(|e| ChainError::io(&p, e))?;
        f.sync_all().map_err(|e| ChainError::io(&p, e))?;
    }
    let mut f = OpenOptions::new()
        .create_new(true)
        .read(true)
        .append(true)
        .open(&path)
        .map_err(io)?;
    f.write_all(&bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    crate::keys::sync_parent_dir(&path)?;
    Ok((f, head, bytes.len() as u64))
}

/// The body of a head record.
pub(crate) fn head_body(
    head: &SignedHead,
    frontier: &Frontier,
    index_chunks: u64,
    kind_entries: u64,
    resume_offset: u64,
    resume_ts: u64,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(HEAD_FIXED + 32 * frontier.nodes().len());
    HeadBody {
        tree_size: head.tree_size,
        root: head.root,
        timestamp_ns: head.timestamp_ns,
        offset: head.offset,
        signature: head.signature,
        index_chunks,
        kind_entries,
        index_resume_offset: resume_offset,
        index_resume_ts: resume_ts,
        frontier: frontier.nodes().to_vec(),
    }
    .encode(&mut body);
    body
}

/// A head record's body at `pos`, checked: position, signature and frontier.
pub(crate) fn check_head(
    body: &HeadBody,
    pos: u64,
    first_seq: u64,
    chain_id: u32,
    key: &VerifyingKey,
) -> std::result::Result<(SignedHead, Frontier), String> {
    if body.offset != pos {
        return Err(format!(
            "head record names byte {} but sits at byte {pos}",
            body.offset
        ));
    }
    let head = SignedHead {
        chain_id,
        tree_size: body.tree_size,
        root: body.root,
        timestamp_ns: body.timestamp_ns,
        segment: first_seq,
        offset: pos,
        signature: body.signature,
    };
    head.verify(key)?;
    let frontier = Frontier::from_parts(body.tree_size, body.frontier.clone())
        .ok_or("head frontier has the wrong number of hashes")?;
    if frontier.root() != body.root {
        return Err("head frontier does not hash to its root".into());
    }
    if body.tree_size < first_seq {
        return Err("head covers fewer events than precede its segment".into());
    }
    Ok((head, frontier))
}

/// A quick test that a head record could start at `buf[0]` (type, the
/// length of a head body, its own offset): filters candidates before the
/// checksum and signature.
fn head_candidate(buf: &[u8], pos: u64) -> bool {
    if buf.first() != Some(&TYPE_HEAD) {
        return false;
    }
    let mut p = 1;
    let Some(len) = crate::record::get_varint(buf, &mut p) else {
        return false;
    };
    let len = len as usize;
    if len < HEAD_FIXED || !(len - HEAD_FIXED).is_multiple_of(32) || (len - HEAD_FIXED) / 32 > 64 {
        return false;
    }
    let (Some(count), Some(off)) = (buf.get(p + HEAD_FIXED - 1), buf.get(p + 48..p + 56)) else {
        return false;
    };
    let mut a = [0u8; 8];
    a.copy_from_slice(off);
    usize::from(*count) == (len - HEAD_FIXED) / 32 && u64::from_le_bytes(a) == pos
}

/// Finds the last valid head record in `file` (length `len`), reading
/// backwards in windows. Returns its offset and body.
pub(crate) fn last_head(
    file: &mut File,
    len: u64,
    first_seq: u64,
    chain_id: u32,
    key: &VerifyingKey,
) -> Result<Option<(u64, HeadBody)>> {
    const WINDOW: u64 = 1 << 20;
    const OVERLAP: u64 = 4096;
    let mut end = len;
    while end > SEGMENT_HEADER_LEN as u64 {
        let start = end.saturating_sub(WINDOW).max(SEGMENT_HEADER_LEN as u64);
        let read_end = (end + OVERLAP).min(len);
        let mut buf = vec![0u8; (read_end - start) as usize];
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(|e| ChainError::io("segment", e))?;
        for i in (0..(end - start) as usize).rev() {
            let pos = start + i as u64;
            if !head_candidate(&buf[i..], pos) {
                continue;
            }
            if let Framed::Ok {
                ty: TYPE_HEAD,
                body,
                ..
            } = read_frame(&buf[i..])
            {
                if let Ok(hb) = HeadBody::decode(body) {
                    if check_head(&hb, pos, first_seq, chain_id, key).is_ok() {
                        return Ok(Some((pos, hb)));
                    }
                }
            }
        }
        end = start;
    }
    Ok(None)
}

/// What resuming the open segment found.
pub(crate) struct Resumed {
    pub first_seq: u64,
    pub frontier: Frontier,
    /// End of the last good record (the file's length after truncation).
    pub offset: u64,
    /// Timestamp of the last record (delta base) and of the last event.
    pub last_record_ts: u64,
    pub last_event_ts: u64,
    pub chunker: Chunker,
    pub last_head: SignedHead,
    pub torn_bytes: u64,
    pub torn_reason: Option<String>,
    /// Events replayed (the most recent ones; boot keeps some in memory).
    pub replayed: Vec<ChainEvent>,
    /// Bytes of log read to resume (for the boot report).
    pub bytes_read: u64,
}

fn corrupt(first_seq: u64, offset: u64, seq: Option<u64>, reason: impl Into<String>) -> ChainError {
    ChainError::Corrupt {
        segment: first_seq,
        offset,
        seq,
        reason: reason.into(),
    }
}

/// Resumes the open segment starting at `first_seq`: see the module doc.
/// `Ok(None)` means the file is a segment whose creation was torn by a
/// crash (no valid start head and nothing else): the caller drops it.
pub(crate) fn resume_segment(
    dir: &Path,
    first_seq: u64,
    chain_id: u32,
    key: &VerifyingKey,
) -> Result<Option<Resumed>> {
    let path = segment_path(dir, first_seq);
    let io = |e| ChainError::io(&path, e);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut hdr = [0u8; SEGMENT_HEADER_LEN];
    if len < SEGMENT_HEADER_LEN as u64 {
        return Ok(None);
    }
    file.read_exact(&mut hdr).map_err(io)?;
    let header = SegmentHeader::decode(&hdr).map_err(|e| corrupt(first_seq, 0, None, e))?;
    if header.first_seq != first_seq {
        return Err(corrupt(
            first_seq,
            0,
            None,
            "header names another first seq",
        ));
    }
    if header.chain_id != chain_id {
        return Err(ChainError::ChainIdMismatch {
            expected: chain_id,
            found: header.chain_id,
        });
    }
    let Some((head_pos, hb)) = last_head(&mut file, len, first_seq, chain_id, key)? else {
        if len < SEGMENT_HEADER_LEN as u64 + 4096 {
            return Ok(None);
        }
        return Err(corrupt(
            first_seq,
            SEGMENT_HEADER_LEN as u64,
            Some(first_seq),
            "no valid signed head in the open segment (wrong key, or damaged)",
        ));
    };

    // The index is trusted up to what the last head says was durable.
    let idx_p = index_path(dir, first_seq);
    let kinds_p = kinds_path(dir, first_seq);
    let open_rw = |p: &Path| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(p)
            .map_err(|e| ChainError::io(p, e))
    };
    let idx = open_rw(&idx_p)?;
    let kinds = open_rw(&kinds_p)?;
    let c0 = first_seq / CHUNK;
    let want_idx = chunk_entry_pos(c0, c0 + hb.index_chunks);
    let want_kinds = hb.kind_entries * KIND_ENTRY_LEN;
    let idx_len = idx.metadata().map_err(|e| ChainError::io(&idx_p, e))?.len();
    let kinds_len = kinds
        .metadata()
        .map_err(|e| ChainError::io(&kinds_p, e))?
        .len();
    // A missing or short index (deleted by hand) is rebuilt from the start.
    let (chunks, kind_entries, resume, resume_ts) = if idx_len >= want_idx
        && kinds_len >= want_kinds
    {
        (
            hb.index_chunks,
            hb.kind_entries,
            hb.index_resume_offset,
            hb.index_resume_ts,
        )
    } else {
        tracing::warn!(path = %idx_p.display(), "chain: index shorter than its last head says; rebuilding it");
        (0, 0, SEGMENT_HEADER_LEN as u64, 0)
    };
    let trunc = |f: &File, n: u64, p: &Path| f.set_len(n).map_err(|e| ChainError::io(p, e));
    trunc(&idx, chunk_entry_pos(c0, c0 + chunks), &idx_p)?;
    trunc(&kinds, kind_entries * KIND_ENTRY_LEN, &kinds_p)?;

    // The frontier at the resume point: the start head's, then this
    // segment's durable nodes.
    let mut frontier = start_frontier(&mut file, first_seq, chain_id, key)?;
    let resume_size = first_seq + chunks * CHUNK;
    if chunks > 0 {
        let mut nb = vec![0u8; chunk_entry_pos(c0, c0 + chunks) as usize];
        use std::os::unix::fs::FileExt;
        idx.read_exact_at(&mut nb, 0)
            .map_err(|e| ChainError::io(&idx_p, e))?;
        let mut at = first_seq;
        while at < resume_size {
            let mut h = at.trailing_zeros().min(63);
            while at + (1u64 << h) > resume_size {
                h -= 1;
            }
            let (c, slot) = crate::layout::node_home(h, at >> h);
            let pos = (chunk_entry_pos(c0, c) + 12 + 32 * slot) as usize;
            let mut node = [0u8; 32];
            node.copy_from_slice(&nb[pos..pos + 32]);
            frontier.push_node(h, node, |_, _, _| {});
            at += 1 << h;
        }
    }

    // Replay from the resume point to the end of the file.
    let mut tail = vec![0u8; (len - resume) as usize];
    file.seek(SeekFrom::Start(resume))
        .and_then(|_| file.read_exact(&mut tail))
        .map_err(io)?;
    let mut chunker = Chunker {
        chunks,
        kinds: kind_entries,
        after_kinds: kind_entries,
        after_offset: resume,
        after_ts: resume_ts,
        ..Chunker::default()
    };
    let mut prev_ts = resume_ts;
    let mut last_event_ts = hb.timestamp_ns;
    let mut last_head = None;
    let mut replayed = Vec::new();
    let (mut idx_buf, mut kinds_buf) = (Vec::new(), Vec::new());
    let mut pos = 0usize;
    let mut torn: Option<String> = None;
    while pos < tail.len() {
        let at = resume + pos as u64;
        let seq = frontier.size();
        match read_frame(&tail[pos..]) {
            Framed::Short => {
                if at < head_pos {
                    // A valid head follows: this record was complete once.
                    return Err(corrupt(
                        first_seq,
                        at,
                        Some(seq),
                        "record runs past the end of the file",
                    ));
                }
                torn = Some(format!("partial record at byte {at}"));
                break;
            }
            Framed::Bad(why) => {
                if at < head_pos {
                    return Err(corrupt(first_seq, at, Some(seq), why));
                }
                torn = Some(format!("{why} at byte {at}"));
                break;
            }
            Framed::Ok { ty, body, len: rl } => {
                let fail = |why: String| corrupt(first_seq, at, Some(seq), why);
                if ty == TYPE_HEAD {
                    let b = HeadBody::decode(body).map_err(&fail)?;
                    let (h, f) = check_head(&b, at, first_seq, chain_id, key).map_err(&fail)?;
                    if f != frontier {
                        return Err(fail(format!(
                            "head of size {} disagrees with the events before it",
                            b.tree_size
                        )));
                    }
                    prev_ts = b.timestamp_ns;
                    last_head = Some(h);
                } else {
                    let e = EventBody::decode(body).map_err(&fail)?;
                    let ts = prev_ts
                        .checked_add(e.ts_delta)
                        .ok_or_else(|| fail("timestamp overflows".into()))?;
                    prev_ts = ts;
                    last_event_ts = ts;
                    let mut ev = ChainEvent {
                        seq,
                        chain_id,
                        timestamp_ns: ts,
                        hash: [0; 32],
                        source: e.source.to_owned(),
                        kind: e.kind.to_owned(),
                        payload: e.payload.to_vec(),
                    };
                    ev.hash = ev.compute_hash();
                    chunker.event(
                        &ev,
                        at,
                        rl as u64,
                        &mut frontier,
                        &mut idx_buf,
                        &mut kinds_buf,
                    );
                    replayed.push(ev);
                }
                pos += rl;
            }
        }
    }
    let Some(last_head) = last_head else {
        return Err(corrupt(
            first_seq,
            head_pos,
            None,
            "last head not found again on replay",
        ));
    };
    let valid = resume + pos as u64;
    let torn_bytes = len - valid;
    if torn_bytes > 0 {
        tracing::warn!(
            path = %path.display(),
            truncated_bytes = torn_bytes,
            reason = torn.as_deref().unwrap_or(""),
            "chain: truncating torn tail left by a crash"
        );
        file.set_len(valid)
            .and_then(|_| file.sync_all())
            .map_err(io)?;
    }
    let append = |p: &Path, buf: &[u8]| -> Result<()> {
        let mut f = OpenOptions::new()
            .append(true)
            .open(p)
            .map_err(|e| ChainError::io(p, e))?;
        f.write_all(buf)
            .and_then(|_| f.sync_all())
            .map_err(|e| ChainError::io(p, e))
    };
    append(&idx_p, &idx_buf)?;
    append(&kinds_p, &kinds_buf)?;
    Ok(Some(Resumed {
        first_seq,
        frontier,
        offset: valid,
        last_record_ts: prev_ts,
        last_event_ts,
        chunker,
        last_head,
        torn_bytes,
        torn_reason: torn.map(|r| format!("{r} of segment {first_seq}")),
        replayed,
        bytes_read: len - resume + 2 * SEGMENT_HEADER_LEN as u64,
    }))
}

/// The verified start head of the segment file at `path` and its frontier.
pub(crate) fn read_start_head(
    path: &Path,
    first_seq: u64,
    chain_id: u32,
    key: &VerifyingKey,
) -> Result<(SignedHead, Frontier)> {
    let mut f = File::open(path).map_err(|e| ChainError::io(path, e))?;
    start_head(&mut f, first_seq, chain_id, key)
}

/// The frontier of a segment's verified start head.
pub(crate) fn start_frontier(
    file: &mut File,
    first_seq: u64,
    chain_id: u32,
    key: &VerifyingKey,
) -> Result<Frontier> {
    start_head(file, first_seq, chain_id, key).map(|(_, f)| f)
}

fn start_head(
    file: &mut File,
    first_seq: u64,
    chain_id: u32,
    key: &VerifyingKey,
) -> Result<(SignedHead, Frontier)> {
    let mut buf = vec![0u8; 4096];
    file.seek(SeekFrom::Start(SEGMENT_HEADER_LEN as u64))
        .map_err(|e| ChainError::io("segment", e))?;
    let n = read_up_to(file, &mut buf)?;
    let bad = |why: String| corrupt(first_seq, SEGMENT_HEADER_LEN as u64, None, why);
    match read_frame(&buf[..n]) {
        Framed::Ok {
            ty: TYPE_HEAD,
            body,
            ..
        } => {
            let hb = HeadBody::decode(body).map_err(&bad)?;
            if hb.tree_size != first_seq {
                return Err(bad(
                    "start head size differs from the segment's first seq".into()
                ));
            }
            check_head(&hb, SEGMENT_HEADER_LEN as u64, first_seq, chain_id, key).map_err(bad)
        }
        _ => Err(bad("segment does not begin with a valid head".into())),
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ChainError::io("segment", e)),
        }
    }
    Ok(got)
}
