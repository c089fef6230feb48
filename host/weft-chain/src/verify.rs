//! Streaming verification of a chain directory in bounded memory: every
//! record's checksum, every leaf, every signed head (signature, position,
//! root, frontier), segment continuity, the index and the kind index.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use ed25519_dalek::VerifyingKey;
use serde::Serialize;

use crate::boot::{check_head, last_head};
use crate::error::{ChainError, Result};
use crate::event::{leaf_hash, GENESIS_KIND};
use crate::head::SignedHead;
use crate::layout::{
    index_path, kind_tag, kinds_path, list_segments, segment_path, SegmentHeader, CHUNK,
    CHUNK_HEIGHT, KIND_ENTRY_LEN, SEGMENT_HEADER_LEN,
};
use crate::manager::GenesisPayload;
use crate::merkle::{Frontier, Hash};
use crate::record::{read_frame, EventBody, Framed, HeadBody, MAX_BODY, TYPE_HEAD};

/// Outcome of a verification pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// True when nothing was wrong and there was no torn tail.
    pub ok: bool,
    /// Seq verification started at (0, or the oldest segment kept by
    /// retention, whose start head covers what was removed).
    pub first_seq: u64,
    /// Events verified (seqs `first_seq .. first_seq + events`).
    pub events: u64,
    /// Signed heads verified.
    pub heads: u64,
    /// Segment files read.
    pub segments: u64,
    /// The newest verified head.
    pub last_head: Option<SignedHead>,
    /// Events after the newest head (hash-checked, not yet signed).
    pub unsigned_tail: u64,
    /// Seq of the first bad (or first missing) event and why.
    pub first_bad: Option<(u64, String)>,
    /// Bytes after the last complete record of the open segment (a crash
    /// leaves these; `ChainManager::open` truncates them).
    pub torn_tail_bytes: u64,
    /// Bytes of log read.
    pub bytes: u64,
    /// The trusted head given with `from` matched the log.
    pub matched_trusted_head: Option<bool>,
}

impl VerifyReport {
    pub(crate) fn failed(seq: u64, why: String) -> Self {
        VerifyReport {
            ok: false,
            first_seq: 0,
            events: 0,
            heads: 0,
            segments: 0,
            last_head: None,
            unsigned_tail: 0,
            first_bad: Some((seq, why)),
            torn_tail_bytes: 0,
            bytes: 0,
            matched_trusted_head: None,
        }
    }
}

/// An event as the verifier sees it (borrowed from its read buffer).
#[derive(Clone, Copy, Debug)]
pub struct EventRef<'a> {
    /// Leaf index.
    pub seq: u64,
    /// Timestamp.
    pub timestamp_ns: u64,
    /// Who appended it.
    pub source: &'a str,
    /// What happened.
    pub kind: &'a str,
    /// CBOR payload.
    pub payload: &'a [u8],
}

/// A callback the verifier calls for every event.
pub type OnEvent<'a> = &'a mut dyn FnMut(&EventRef<'_>) -> std::result::Result<(), String>;

/// Options of [`verify_dir_opts`].
#[derive(Default)]
pub struct VerifyOptions<'a> {
    /// Stop after this many events (a live chain: its durable head).
    pub upto: Option<u64>,
    /// A trusted head: the log must contain exactly its tree.
    pub from: Option<SignedHead>,
    /// Called for every event (e.g. to check gate records); an `Err` is
    /// reported as the first bad event.
    pub on_event: Option<OnEvent<'a>>,
}

/// Verifies the chain in `dir` with only its public key; never writes.
pub fn verify_dir(dir: impl AsRef<Path>, key: &VerifyingKey) -> VerifyReport {
    verify_dir_opts(dir.as_ref(), key, VerifyOptions::default())
}

/// [`verify_dir`] with options.
pub fn verify_dir_opts(dir: &Path, key: &VerifyingKey, opts: VerifyOptions<'_>) -> VerifyReport {
    let mut v = Verifier {
        key,
        opts,
        frontier: Frontier::new(),
        chain_id: None,
        report: VerifyReport::failed(0, String::new()),
    };
    v.report.first_bad = None;
    match v.run(dir) {
        Ok(()) => {}
        Err(Stop::Bad(seq, why)) => v.report.first_bad = Some((seq, why)),
        Err(Stop::Done) => {}
    }
    let r = &mut v.report;
    if let (Some(from), None) = (&v.opts.from, &r.first_bad) {
        if r.matched_trusted_head.is_none() {
            r.first_bad = Some((
                from.tree_size,
                format!(
                    "the trusted head covers {} events but the log verified only up to {}",
                    from.tree_size,
                    r.first_seq + r.events
                ),
            ));
        }
    }
    r.ok = r.first_bad.is_none() && r.torn_tail_bytes == 0;
    v.report
}

enum Stop {
    Bad(u64, String),
    Done,
}

struct Verifier<'k, 'a> {
    key: &'k VerifyingKey,
    opts: VerifyOptions<'a>,
    frontier: Frontier,
    chain_id: Option<u32>,
    report: VerifyReport,
}

/// Refillable read buffer over a file (bounded: grows only to hold one
/// record).
struct Buf {
    file: File,
    data: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `data[start]`.
    offset: u64,
    eof: bool,
}

impl Buf {
    fn new(file: File, offset: u64) -> Self {
        Buf {
            file,
            data: vec![0; 1 << 20],
            start: 0,
            end: 0,
            offset,
            eof: false,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    /// Reads more; returns false at end of file.
    fn fill(&mut self, min: usize) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let need = (self.end + min.max(1 << 20)).min(MAX_BODY + (1 << 20));
        if self.data.len() < need {
            self.data.resize(need, 0);
        }
        let n = loop {
            match self.file.read(&mut self.data[self.end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.end += n;
        Ok(true)
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }
}

/// The index and kind-index files of one segment, read alongside.
struct SideFiles {
    idx: Buf,
    kinds: Buf,
}

impl SideFiles {
    fn take(buf: &mut Buf, n: usize) -> std::io::Result<Option<Vec<u8>>> {
        while buf.bytes().len() < n {
            if !buf.fill(n)? {
                return Ok(None);
            }
        }
        let v = buf.bytes()[..n].to_vec();
        buf.consume(n);
        Ok(Some(v))
    }
}

impl Verifier<'_, '_> {
    fn bad<T>(&self, seq: u64, why: impl Into<String>) -> std::result::Result<T, Stop> {
        Err(Stop::Bad(seq, why.into()))
    }

    fn run(&mut self, dir: &Path) -> std::result::Result<(), Stop> {
        let firsts = list_segments(dir).map_err(|e| Stop::Bad(0, e.to_string()))?;
        let Some(&first) = firsts.first() else {
            let v1 = dir.join(crate::layout::V1_FILE);
            let why = if v1.exists() {
                ChainError::FormatV1 { path: v1 }.to_string()
            } else {
                format!("no chain segments in {}", dir.display())
            };
            return self.bad(0, why);
        };
        self.report.first_seq = first;
        if let Some(from) = &self.opts.from {
            from.verify(self.key)
                .map_err(|e| Stop::Bad(from.tree_size, format!("trusted head: {e}")))?;
            if from.tree_size < first {
                return self.bad(
                    from.tree_size,
                    format!(
                        "the trusted head covers {} events but the log now starts at seq {first} (older segments were removed)",
                        from.tree_size
                    ),
                );
            }
        }
        for (i, &f) in firsts.iter().enumerate() {
            let last = i + 1 == firsts.len();
            self.segment(dir, f, last)?;
            self.report.segments += 1;
        }
        Ok(())
    }

    fn segment(&mut self, dir: &Path, first_seq: u64, last: bool) -> std::result::Result<(), Stop> {
        let path = segment_path(dir, first_seq);
        let io = |e: std::io::Error| Stop::Bad(first_seq, format!("{}: {e}", path.display()));
        let mut file = File::open(&path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        // Where the last valid head of the open segment is: a bad record
        // before it is corruption, after it a torn tail.
        let last_head_pos = if last {
            let chain_id = self
                .chain_id
                .unwrap_or_else(|| peek_chain_id(&path).unwrap_or(0));
            last_head(&mut file, len, first_seq, chain_id, self.key)
                .map_err(|e| Stop::Bad(first_seq, e.to_string()))?
                .map(|(p, _)| p)
        } else {
            None
        };
        let file = File::open(&path).map_err(io)?;
        let mut buf = Buf::new(file, 0);
        while buf.bytes().len() < SEGMENT_HEADER_LEN {
            if !buf.fill(SEGMENT_HEADER_LEN).map_err(io)? {
                return self.bad(first_seq, format!("segment {first_seq}: header truncated"));
            }
        }
        let header = SegmentHeader::decode(&buf.bytes()[..SEGMENT_HEADER_LEN])
            .map_err(|e| Stop::Bad(first_seq, format!("segment {first_seq}: {e}")))?;
        buf.consume(SEGMENT_HEADER_LEN);
        if header.first_seq != first_seq {
            return self.bad(
                first_seq,
                format!(
                    "segment {first_seq}: header names first seq {}",
                    header.first_seq
                ),
            );
        }
        match self.chain_id {
            None => self.chain_id = Some(header.chain_id),
            Some(c) if c != header.chain_id => {
                return self.bad(
                    first_seq,
                    format!("segment {first_seq} belongs to chain {}", header.chain_id),
                )
            }
            _ => {}
        }
        let chain_id = header.chain_id;
        let mut side = SideFiles {
            idx: Buf::new(
                File::open(index_path(dir, first_seq)).map_err(|e| {
                    Stop::Bad(first_seq, format!("index of segment {first_seq}: {e}"))
                })?,
                0,
            ),
            kinds: Buf::new(
                File::open(kinds_path(dir, first_seq)).map_err(|e| {
                    Stop::Bad(first_seq, format!("kind index of segment {first_seq}: {e}"))
                })?,
                0,
            ),
        };
        let started = self.report.segments == 0;
        if !started && self.frontier.size() != first_seq {
            return self.bad(
                self.frontier.size(),
                format!(
                    "segment {first_seq} follows a segment that ended at seq {}",
                    self.frontier.size()
                ),
            );
        }
        let mut prev_ts = 0u64;
        let mut saw_head = false;
        let mut ends_with_head = false;
        let (mut chunk_offset, mut chunk_ts) = (0u64, 0u64);
        let mut chunk_nodes: Vec<Hash> = Vec::new();
        loop {
            if let (Some(u), Some(h)) = (self.opts.upto, &self.report.last_head) {
                if h.tree_size >= u {
                    return Err(Stop::Done);
                }
            }
            let at = buf.offset;
            let seq = self.frontier.size();
            let framed = loop {
                match read_frame(buf.bytes()) {
                    Framed::Short => {
                        if !buf.fill(buf.bytes().len() + 1).map_err(io)? {
                            break None;
                        }
                    }
                    f => break Some(f),
                }
            };
            let (ty, body, rl) = match framed {
                None if buf.bytes().is_empty() => break,
                None => {
                    if last && last_head_pos.is_none_or(|p| at > p) {
                        self.report.torn_tail_bytes = buf.bytes().len() as u64;
                        return self.bad(
                            seq,
                            format!(
                                "torn tail: partial record at byte {at} of segment {first_seq}"
                            ),
                        );
                    }
                    return self.bad(
                        seq,
                        format!("segment {first_seq} ends inside a record at byte {at}"),
                    );
                }
                Some(Framed::Bad(why)) => {
                    if last && last_head_pos.is_none_or(|p| at > p) {
                        self.report.torn_tail_bytes = len - at;
                        return self.bad(
                            seq,
                            format!("torn tail: {why} at byte {at} of segment {first_seq}"),
                        );
                    }
                    return self.bad(seq, format!("segment {first_seq}, byte {at}: {why}"));
                }
                Some(Framed::Ok { ty, body, len }) => (ty, body.to_vec(), len),
                Some(Framed::Short) => unreachable!("handled above"),
            };
            let fail =
                |why: String| Stop::Bad(seq, format!("segment {first_seq}, byte {at}: {why}"));
            if ty == TYPE_HEAD {
                let hb = HeadBody::decode(&body).map_err(fail)?;
                if !saw_head {
                    if at != SEGMENT_HEADER_LEN as u64 {
                        return Err(fail("segment does not begin with a head".into()));
                    }
                    if hb.tree_size != first_seq {
                        return Err(fail(
                            "start head size differs from the segment's first seq".into(),
                        ));
                    }
                }
                let (head, f) = check_head(&hb, at, first_seq, chain_id, self.key).map_err(fail)?;
                if started && !saw_head {
                    // The oldest segment's start head is where trust begins.
                    self.frontier = f;
                } else if f != self.frontier {
                    return Err(fail(format!(
                        "head of size {} disagrees with the events before it",
                        hb.tree_size
                    )));
                }
                prev_ts = hb.timestamp_ns;
                saw_head = true;
                ends_with_head = true;
                self.report.heads += 1;
                self.report.unsigned_tail = 0;
                self.report.last_head = Some(head);
            } else {
                if !saw_head {
                    return Err(fail("segment does not begin with a head".into()));
                }
                let e = EventBody::decode(&body).map_err(fail)?;
                let ts = prev_ts
                    .checked_add(e.ts_delta)
                    .ok_or_else(|| fail("timestamp overflows".into()))?;
                prev_ts = ts;
                if seq == 0 {
                    check_genesis(&e, chain_id, self.key).map_err(fail)?;
                }
                let leaf = leaf_hash(ts, e.source, e.kind, e.payload);
                if seq.is_multiple_of(CHUNK) {
                    chunk_offset = at;
                    chunk_ts = ts;
                }
                self.frontier.push(leaf, |h, _, x| {
                    if h >= CHUNK_HEIGHT {
                        chunk_nodes.push(*x);
                    }
                });
                if (seq + 1).is_multiple_of(CHUNK) {
                    let want = 12 + 32 * chunk_nodes.len();
                    let entry = SideFiles::take(&mut side.idx, want).map_err(io)?;
                    let ok = entry.as_ref().is_some_and(|en| {
                        en[..4] == (chunk_offset as u32).to_le_bytes()
                            && en[4..12] == chunk_ts.to_le_bytes()
                            && en[12..]
                                .chunks_exact(32)
                                .zip(&chunk_nodes)
                                .all(|(a, b)| a == b)
                    });
                    // The open segment's index may lag its log by what a
                    // crash left unflushed; boot rebuilds it.
                    if !(ok || last && entry.is_none()) {
                        return Err(fail(format!(
                            "index entry of chunk {} is wrong or missing",
                            seq / CHUNK
                        )));
                    }
                    chunk_nodes.clear();
                }
                if let Some(tag) = kind_tag(e.kind) {
                    let entry =
                        SideFiles::take(&mut side.kinds, KIND_ENTRY_LEN as usize).map_err(io)?;
                    let mut want = seq.to_le_bytes().to_vec();
                    want.push(tag);
                    if entry.as_ref() != Some(&want) && !(last && entry.is_none()) {
                        return Err(fail("kind index entry is wrong or missing".into()));
                    }
                }
                if let Some(cb) = self.opts.on_event.as_mut() {
                    let r = EventRef {
                        seq,
                        timestamp_ns: ts,
                        source: e.source,
                        kind: e.kind,
                        payload: e.payload,
                    };
                    cb(&r).map_err(|why| Stop::Bad(seq, why))?;
                }
                ends_with_head = false;
                self.report.events += 1;
                self.report.unsigned_tail += 1;
            }
            if let Some(from) = &self.opts.from {
                if self.report.matched_trusted_head.is_none()
                    && from.tree_size == self.frontier.size()
                {
                    if self.frontier.root() != from.root {
                        self.report.matched_trusted_head = Some(false);
                        return Err(Stop::Bad(
                            from.tree_size,
                            "the log's tree at the trusted head's size has another root (a fork)"
                                .into(),
                        ));
                    }
                    self.report.matched_trusted_head = Some(true);
                }
            }
            buf.consume(rl);
            self.report.bytes += rl as u64;
        }
        if !saw_head {
            return self.bad(first_seq, format!("segment {first_seq} has no start head"));
        }
        if !last {
            if !ends_with_head {
                return self.bad(
                    self.frontier.size(),
                    format!("sealed segment {first_seq} does not end with a signed head"),
                );
            }
            if SideFiles::take(&mut side.idx, 1).map_err(io)?.is_some()
                || SideFiles::take(&mut side.kinds, 1).map_err(io)?.is_some()
            {
                return self.bad(
                    self.frontier.size(),
                    format!("index of segment {first_seq} has entries past its log"),
                );
            }
        }
        Ok(())
    }
}

fn peek_chain_id(path: &Path) -> Option<u32> {
    let mut b = [0u8; SEGMENT_HEADER_LEN];
    File::open(path).ok()?.read_exact(&mut b).ok()?;
    SegmentHeader::decode(&b).ok().map(|h| h.chain_id)
}

fn check_genesis(
    e: &EventBody<'_>,
    chain_id: u32,
    key: &VerifyingKey,
) -> std::result::Result<(), String> {
    if e.kind != GENESIS_KIND {
        return Err(format!(
            "event 0 has kind {:?}, expected {GENESIS_KIND}",
            e.kind
        ));
    }
    let g: GenesisPayload =
        ciborium::from_reader(e.payload).map_err(|err| format!("bad genesis payload: {err}"))?;
    if g.chain_id != chain_id {
        return Err("genesis payload chain id differs from the segment's".into());
    }
    let k =
        crate::keys::parse_public_key_hex(&g.public_key).map_err(|err| format!("genesis {err}"))?;
    if k != *key {
        return Err(format!(
            "genesis names key {} but the verifying key is {}",
            g.public_key,
            crate::keys::public_key_hex(key)
        ));
    }
    Ok(())
}

/// Reads and verifies a whole chain directory into memory, for small
/// chains and tests: every event, or the first error.
pub fn read_dir(
    dir: impl AsRef<Path>,
    key: &VerifyingKey,
) -> Result<(Vec<crate::ChainEvent>, VerifyReport)> {
    let mut events = Vec::new();
    let mut chain_id = 0;
    let dir = dir.as_ref();
    if let Some(&f) = list_segments(dir)?.first() {
        chain_id = peek_chain_id(&segment_path(dir, f)).unwrap_or(0);
    }
    let mut cb = |e: &EventRef<'_>| {
        let mut ev = crate::ChainEvent {
            seq: e.seq,
            chain_id,
            timestamp_ns: e.timestamp_ns,
            hash: [0; 32],
            source: e.source.to_owned(),
            kind: e.kind.to_owned(),
            payload: e.payload.to_vec(),
        };
        ev.hash = ev.compute_hash();
        events.push(ev);
        Ok(())
    };
    let report = verify_dir_opts(
        dir,
        key,
        VerifyOptions {
            on_event: Some(&mut cb),
            ..Default::default()
        },
    );
    Ok((events, report))
}
