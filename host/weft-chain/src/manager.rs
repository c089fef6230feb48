//! `ChainManager`: the live, thread-safe chain used by the kernel.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{BufWriter, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::VerifyingKey;
use serde::Serialize;

use crate::boot::{create_segment, resume_segment, Chunker};
use crate::error::{ChainError, Result};
use crate::event::{leaf_hash, to_cbor, ChainEvent, GENESIS_KIND, MAX_PAYLOAD};
use crate::head::SignedHead;
use crate::keys::{public_key_hex, SigningKeyFile};
use crate::layout::{
    index_path, kind_tag, kinds_path, list_segments, segment_path, CHUNK, LOCK_FILE, V1_FILE,
};
use crate::lineage::LINEAGE_KIND;
use crate::merkle::Frontier;
use crate::record::check_label;
use crate::store::{Seg, Store};
use crate::types::{ChainConfig, ChainStatus, Durability, OpenReport};
use crate::writer::{OpenSeg, Writer};

/// File name of the default signing key inside the chain directory.
pub const KEY_FILE: &str = "chain.key";

/// Mutable chain head, guarded by one mutex so seq assignment and queueing
/// happen in the same order.
pub(crate) struct Head {
    pub next_seq: u64,
    pub last_ts: u64,
    pub pending: Vec<Arc<ChainEvent>>,
    /// Highest event count some caller wants durable.
    pub durable_wanted: u64,
    /// Event count covered by the last fdatasync.
    pub durable: u64,
    /// fdatasync calls made by the writer (group-commit effectiveness).
    pub fsyncs: u64,
    pub closing: bool,
    pub closed: bool,
    pub failed: Option<String>,
    /// The writer is blocked on `work_cv` (notify only then: a futex wake
    /// per append would cost a syscall).
    pub writer_waiting: bool,
}

/// Recent events in memory: `events[i]` has seq `first + i`.
#[derive(Default)]
pub(crate) struct Window {
    pub first: u64,
    pub events: VecDeque<Arc<ChainEvent>>,
}

/// State shared between callers and the writer thread.
pub(crate) struct Inner {
    pub chain_id: u32,
    pub dir: PathBuf,
    pub public_key: VerifyingKey,
    pub batch_events: usize,
    pub window_events: usize,
    pub head: Mutex<Head>,
    pub work_cv: Condvar,
    /// Mirrors `Head::durable` so durable waiters need no lock.
    pub durable: AtomicU64,
    /// Bumped after each fdatasync (and on stop); durable waiters futex-wait
    /// on it so one wake-all releases a whole group without lock handoffs.
    pub sync_epoch: AtomicU32,
    /// Set when the writer has exited (closed or failed).
    pub stopped: AtomicBool,
    /// Events handed to the OS with their index entries (readable from disk
    /// once their chunk is complete).
    pub flushed: AtomicU64,
    /// Events appended (the chain's length), readable without a lock.
    pub len: AtomicU64,
    pub window: RwLock<Window>,
    pub store: Store,
    pub durable_head: RwLock<Option<SignedHead>>,
    pub heads_written: AtomicU64,
    pub rotations: AtomicU64,
    pub lineage: RwLock<HashMap<String, u64>>,
    /// Seqs of receipts handed out recently, with when (retention keeps
    /// what they need).
    pub receipts: Mutex<VecDeque<(u64, u64)>>,
    pub keep: Option<crate::retention::Keep>,
    pub archive_dir: Option<PathBuf>,
    /// One retention pass at a time.
    pub retention_lock: Mutex<()>,
    /// Segments removed by retention since open.
    pub retained_removed: AtomicU64,
}

/// The kernel's audit chain: an append-only Merkle tree log with signed
/// heads, crash-safe, resident memory independent of its length.
/// `Send + Sync`; share it with `Arc`.
pub struct ChainManager {
    pub(crate) inner: Arc<Inner>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The directory lock, released at shutdown.
    dir_lock: Mutex<Option<File>>,
}

/// Locks ignoring poison: state is only mutated after fallible work is done.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// Wall clock in nanoseconds since the UNIX epoch (0 if before it).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Payload of the genesis event: binds the chain id and its public key into
/// the first leaf.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct GenesisPayload {
    /// Chain format version, 2.
    pub format: u32,
    /// The chain's id.
    pub chain_id: u32,
    /// Hex Ed25519 public key that signs this chain's tree heads.
    pub public_key: String,
}

impl ChainManager {
    /// Opens (or creates) the chain in `dir`. Boot does not read the log:
    /// it finds the last signed head near the end of the open segment,
    /// replays only what follows the last durable index point (a bounded
    /// tail), truncates a torn tail, and starts the writer. Corruption in
    /// that tail is refused; the rest is checked by [`crate::verify_dir`].
    /// Holds an exclusive lock on the directory until shutdown.
    pub fn open(dir: impl AsRef<Path>, config: ChainConfig) -> Result<(Self, OpenReport)> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).map_err(|e| ChainError::io(dir, e))?;
        let (key, key_created) = match config.signing_key.clone() {
            Some(k) => (k, false),
            None => {
                let kf = SigningKeyFile::load_or_create(dir.join(KEY_FILE))?;
                (kf.signing_key().clone(), kf.created())
            }
        };
        let public_key = key.verifying_key();
        let lock_path = dir.join(LOCK_FILE);
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| ChainError::io(&lock_path, e))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(ChainError::Locked { path: lock_path }),
            Err(TryLockError::Error(e)) => return Err(ChainError::io(&lock_path, e)),
        }
        if dir.join(V1_FILE).exists() {
            return Err(ChainError::FormatV1 {
                path: dir.join(V1_FILE),
            });
        }
        let mut firsts = list_segments(dir)?;
        let created = firsts.is_empty();
        // A chain written with another key: say so rather than "damaged".
        if firsts.first() == Some(&0) {
            if let Some(found) = genesis_key(dir, config.chain_id)? {
                if found != public_key_hex(&public_key) {
                    return Err(ChainError::KeyMismatch {
                        expected: public_key_hex(&public_key),
                        found,
                    });
                }
            }
        }
        let mut report = OpenReport {
            truncated_bytes: 0,
            torn_reason: None,
            events: 0,
            replayed_events: 0,
            bytes_read: 0,
            segments: 0,
            created,
            key_created,
            resumed_from: 0,
        };
        if created {
            create_segment(dir, config.chain_id, &key, &Frontier::new(), now_ns())?;
            firsts.push(0);
        }
        // Resume the open (last) segment; a segment whose creation a crash
        // tore is dropped and its predecessor resumed.
        let resumed = loop {
            let Some(&last) = firsts.last() else {
                return Err(ChainError::Corrupt {
                    segment: 0,
                    offset: 0,
                    seq: None,
                    reason: "no segment with a valid start head".into(),
                });
            };
            match resume_segment(dir, last, config.chain_id, &public_key)? {
                Some(r) => break r,
                None if firsts.len() > 1 => {
                    tracing::warn!(
                        segment = last,
                        "chain: removing a segment whose creation was interrupted"
                    );
                    for p in [
                        segment_path(dir, last),
                        index_path(dir, last),
                        kinds_path(dir, last),
                    ] {
                        let _ = fs::remove_file(p);
                    }
                    firsts.pop();
                }
                None => {
                    return Err(ChainError::Corrupt {
                        segment: last,
                        offset: 0,
                        seq: None,
                        reason: "the only segment has no valid start head (wrong key, or damaged)"
                            .into(),
                    })
                }
            }
        };
        report.truncated_bytes = resumed.torn_bytes;
        report.torn_reason = resumed.torn_reason.clone();
        report.replayed_events = resumed.replayed.len() as u64;
        report.bytes_read = resumed.bytes_read;
        report.resumed_from = resumed.last_head.tree_size;
        report.segments = firsts.len() as u64;

        // Sealed segments are only opened (headers are checked by verify).
        let mut segs = Vec::with_capacity(firsts.len());
        for &f in &firsts {
            segs.push(Arc::new(Seg::open(dir, f)?));
        }
        let base = match firsts.first() {
            Some(&f) if f > 0 => {
                let p = segment_path(dir, f);
                let mut file = File::open(&p).map_err(|e| ChainError::io(&p, e))?;
                Some(crate::boot::start_frontier(
                    &mut file,
                    f,
                    config.chain_id,
                    &public_key,
                )?)
            }
            _ => None,
        };
        let store = Store {
            dir: dir.to_path_buf(),
            chain_id: config.chain_id,
            segments: RwLock::new(segs),
            base: RwLock::new(base),
        };
        let size = resumed.frontier.size();
        let window_events = config.window_events.max(2 * CHUNK as usize);
        let keep_from = resumed.replayed.len().saturating_sub(window_events);
        let window_evs: VecDeque<Arc<ChainEvent>> = resumed
            .replayed
            .into_iter()
            .skip(keep_from)
            .map(Arc::new)
            .collect();
        let window = Window {
            first: size - window_evs.len() as u64,
            events: window_evs,
        };
        let seg_path = segment_path(dir, resumed.first_seq);
        let log = OpenOptions::new()
            .append(true)
            .open(&seg_path)
            .map_err(|e| ChainError::io(&seg_path, e))?;
        let open_append = |p: PathBuf| {
            OpenOptions::new()
                .append(true)
                .open(&p)
                .map_err(|e| ChainError::io(&p, e))
        };
        let inner = Arc::new(Inner {
            chain_id: config.chain_id,
            dir: dir.to_path_buf(),
            public_key,
            batch_events: config.batch_events.max(1),
            window_events,
            head: Mutex::new(Head {
                next_seq: size,
                last_ts: resumed.last_record_ts,
                pending: Vec::new(),
                durable_wanted: 0,
                // Nothing counts as durable until the writer's boot head is.
                durable: 0,
                fsyncs: 0,
                closing: false,
                closed: false,
                failed: None,
                writer_waiting: false,
            }),
            work_cv: Condvar::new(),
            durable: AtomicU64::new(0),
            sync_epoch: AtomicU32::new(0),
            stopped: AtomicBool::new(false),
            flushed: AtomicU64::new(size),
            len: AtomicU64::new(size),
            window: RwLock::new(window),
            store,
            durable_head: RwLock::new(None),
            heads_written: AtomicU64::new(0),
            rotations: AtomicU64::new(0),
            lineage: RwLock::new(HashMap::new()),
            receipts: Mutex::new(VecDeque::new()),
            keep: config.keep.clone(),
            archive_dir: config.archive_dir.clone(),
            retention_lock: Mutex::new(()),
            retained_removed: AtomicU64::new(0),
        });
        let chunker = Chunker { ..resumed.chunker };
        let writer_state = Writer {
            inner: inner.clone(),
            key,
            flush_interval: config.flush_interval,
            max_segment_bytes: config.max_segment_bytes.clamp(4096, 2 << 30),
            seg: OpenSeg {
                first_seq: resumed.first_seq,
                log: BufWriter::with_capacity(1 << 20, log),
                idx: open_append(index_path(dir, resumed.first_seq))?,
                kinds: open_append(kinds_path(dir, resumed.first_seq))?,
                offset: resumed.offset,
            },
            frontier: resumed.frontier,
            synced_chunks: chunker.chunks,
            synced_kinds: chunker.after_kinds,
            resume_offset: chunker.after_offset,
            resume_ts: chunker.after_ts,
            chunker,
            last_record_ts: resumed.last_record_ts,
            last_event_ts: resumed.last_event_ts,
            head_size: resumed.last_head.tree_size,
            last_head: Some(resumed.last_head),
            events_since_head: 0,
            scratch: Vec::new(),
            body: Vec::new(),
            idx_buf: Vec::new(),
            kinds_buf: Vec::new(),
            unsynced: true,
            unflushed: false,
        };
        // Lineage from the kind index: one read per lineage event, not the log.
        let mut lineage = HashMap::new();
        if let Some(tag) = kind_tag(LINEAGE_KIND) {
            for seq in inner.store.kind_seqs(tag)? {
                let ev = read_any(&inner, seq)?;
                if let Ok(rec) = ev.decode_payload::<crate::lineage::LineageRecord>() {
                    lineage.insert(rec.child, seq);
                }
            }
        }
        *write(&inner.lineage) = lineage;
        let handle = std::thread::Builder::new()
            .name("weft-chain-writer".into())
            .spawn(move || writer_state.run())
            .map_err(|e| ChainError::io(dir, e))?;
        let mgr = ChainManager {
            inner,
            writer: Mutex::new(Some(handle)),
            dir_lock: Mutex::new(Some(lock_file)),
        };
        if size == 0 {
            let genesis = GenesisPayload {
                format: u32::from(crate::layout::FORMAT_VERSION),
                chain_id: config.chain_id,
                public_key: public_key_hex(&public_key),
            };
            mgr.append_durable("weft-chain", GENESIS_KIND, &genesis)?;
        } else {
            // The writer's boot head: wait until it is durable.
            mgr.sync()?;
        }
        report.events = mgr.len();
        if let Some(k) = &config.keep {
            crate::retention::apply(&mgr.inner, k, config.archive_dir.as_deref())?;
        }
        Ok((mgr, report))
    }

    /// Appends an event; returns once it is queued (no fsync).
    pub fn append<T: Serialize + ?Sized>(
        &self,
        source: &str,
        kind: &str,
        payload: &T,
    ) -> Result<Arc<ChainEvent>> {
        self.append_encoded(source, kind, to_cbor(payload)?, Durability::Buffered)
    }

    /// Appends an event and returns only after an fdatasync (and a signed
    /// head) covering it. Concurrent callers share one fdatasync.
    pub fn append_durable<T: Serialize + ?Sized>(
        &self,
        source: &str,
        kind: &str,
        payload: &T,
    ) -> Result<Arc<ChainEvent>> {
        self.append_encoded(source, kind, to_cbor(payload)?, Durability::Durable)
    }

    /// Appends an event whose payload depends on its own seq. `make` runs
    /// under the chain lock, so keep it short.
    pub fn append_with<P, F>(
        &self,
        source: &str,
        kind: &str,
        durability: Durability,
        make: F,
    ) -> Result<Arc<ChainEvent>>
    where
        P: Serialize,
        F: FnOnce(u64) -> P,
    {
        check_label("source", source)?;
        check_label("kind", kind)?;
        let mut h = lock(&self.inner.head);
        self.check_open(&h)?;
        let payload = to_cbor(&make(h.next_seq))?;
        check_payload(&payload)?;
        let ev = self.commit(&mut h, source, kind, payload, None);
        self.finish(h, ev, durability)
    }

    fn append_encoded(
        &self,
        source: &str,
        kind: &str,
        payload: Vec<u8>,
        durability: Durability,
    ) -> Result<Arc<ChainEvent>> {
        check_label("source", source)?;
        check_label("kind", kind)?;
        check_payload(&payload)?;
        // Hash outside the lock with a provisional timestamp; recomputed
        // under the lock only if the clock must be held back.
        let ts = now_ns();
        let hash = leaf_hash(ts, source, kind, &payload);
        let mut h = lock(&self.inner.head);
        self.check_open(&h)?;
        let ev = self.commit(&mut h, source, kind, payload, Some((ts, hash)));
        self.finish(h, ev, durability)
    }

    fn check_open(&self, h: &Head) -> Result<()> {
        if let Some(f) = &h.failed {
            return Err(ChainError::WriterFailed(f.clone()));
        }
        if h.closing {
            return Err(ChainError::Closed);
        }
        Ok(())
    }

    /// Assigns seq/timestamp and queues the event. Caller holds the head.
    fn commit(
        &self,
        h: &mut Head,
        source: &str,
        kind: &str,
        payload: Vec<u8>,
        pre: Option<(u64, [u8; 32])>,
    ) -> Arc<ChainEvent> {
        let seq = h.next_seq;
        let (timestamp_ns, hash) = match pre {
            Some((ts, hash)) if ts >= h.last_ts => (ts, hash),
            _ => {
                let ts = now_ns().max(h.last_ts);
                (ts, leaf_hash(ts, source, kind, &payload))
            }
        };
        let ev = Arc::new(ChainEvent {
            seq,
            chain_id: self.inner.chain_id,
            timestamp_ns,
            hash,
            source: source.to_owned(),
            kind: kind.to_owned(),
            payload,
        });
        h.next_seq = seq + 1;
        h.last_ts = timestamp_ns;
        h.pending.push(ev.clone());
        if h.pending.len() >= self.inner.batch_events {
            self.wake_writer(h);
        }
        self.inner.len.store(seq + 1, Ordering::Release);
        let mut w = write(&self.inner.window);
        w.events.push_back(ev.clone());
        // Evict what is on disk and indexed (complete, flushed chunks).
        let on_disk = self.inner.flushed.load(Ordering::Acquire) / CHUNK * CHUNK;
        while w.events.len() > self.inner.window_events && w.first < on_disk {
            w.events.pop_front();
            w.first += 1;
        }
        ev
    }

    fn finish(
        &self,
        h: MutexGuard<'_, Head>,
        ev: Arc<ChainEvent>,
        durability: Durability,
    ) -> Result<Arc<ChainEvent>> {
        if durability == Durability::Durable {
            self.wait_durable(h, ev.seq)?;
        } else {
            drop(h);
        }
        if ev.kind == LINEAGE_KIND {
            self.index_lineage(&ev);
        }
        Ok(ev)
    }

    fn wake_writer(&self, h: &mut Head) {
        if h.writer_waiting {
            h.writer_waiting = false;
            self.inner.work_cv.notify_one();
        }
    }

    fn wait_durable(&self, mut h: MutexGuard<'_, Head>, seq: u64) -> Result<()> {
        if h.durable > seq {
            return Ok(());
        }
        if h.durable_wanted <= seq {
            h.durable_wanted = seq + 1;
            self.wake_writer(&mut h);
        }
        drop(h);
        let inner = &self.inner;
        loop {
            // Read the epoch before the condition so a bump in between makes
            // the wait return at once.
            let epoch = inner.sync_epoch.load(Ordering::Acquire);
            if inner.durable.load(Ordering::Acquire) > seq {
                return Ok(());
            }
            if inner.stopped.load(Ordering::Acquire) {
                let h = lock(&inner.head);
                if h.durable > seq {
                    return Ok(());
                }
                return Err(match &h.failed {
                    Some(f) => ChainError::WriterFailed(f.clone()),
                    None => ChainError::Closed,
                });
            }
            atomic_wait::wait(&inner.sync_epoch, epoch);
        }
    }

    /// Makes every event appended so far durable, under a signed head.
    pub fn sync(&self) -> Result<()> {
        let h = lock(&self.inner.head);
        match h.next_seq.checked_sub(1) {
            Some(last) => self.wait_durable(h, last),
            None => Ok(()),
        }
    }

    /// Event by seq: from memory when recent, else from disk through the
    /// index. `None` when out of range, removed by retention, or unreadable
    /// (use [`ChainManager::read`] for the error).
    pub fn get(&self, seq: u64) -> Option<Arc<ChainEvent>> {
        self.read(seq).ok().flatten()
    }

    /// Event by seq; `Ok(None)` when past the end or removed by retention.
    pub fn read(&self, seq: u64) -> Result<Option<Arc<ChainEvent>>> {
        if seq >= self.len() || seq < self.inner.store.first_seq() {
            return Ok(None);
        }
        read_any(&self.inner, seq).map(Some)
    }

    /// The last `n` events, oldest first.
    pub fn tail(&self, n: usize) -> Vec<Arc<ChainEvent>> {
        let len = self.len();
        let start = len.saturating_sub(n as u64);
        self.range(start..len)
    }

    /// Events whose seq lies in `range` (clamped to what is on disk). Every
    /// event is materialized: iterate with [`ChainManager::for_each`] over
    /// long ranges.
    /// A read error ends the list early and is logged: use
    /// [`ChainManager::try_range`] where a short list would mislead.
    pub fn range(&self, range: impl RangeBounds<u64>) -> Vec<Arc<ChainEvent>> {
        let mut out = Vec::new();
        if let Err(e) = self.for_each(range, |ev| {
            out.push(ev);
            Ok(())
        }) {
            tracing::error!(error = %e, read = out.len(), "chain range cut short by a read error");
        }
        out
    }

    /// [`ChainManager::range`], failing on a read error.
    pub fn try_range(&self, range: impl RangeBounds<u64>) -> Result<Vec<Arc<ChainEvent>>> {
        let mut out = Vec::new();
        self.for_each(range, |ev| {
            out.push(ev);
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `f` for each event in `range`, in order, reading chunk by chunk
    /// (bounded memory). Stops at the first error.
    pub fn for_each(
        &self,
        range: impl RangeBounds<u64>,
        mut f: impl FnMut(Arc<ChainEvent>) -> Result<()>,
    ) -> Result<()> {
        use std::ops::Bound;
        let len = self.len();
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        }
        .max(self.inner.store.first_seq());
        let end = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => len,
        }
        .min(len);
        let mut seq = start;
        while seq < end {
            let window_first = read(&self.inner.window).first;
            if seq >= window_first {
                let w = read(&self.inner.window);
                let evs: Vec<Arc<ChainEvent>> = w
                    .events
                    .range(
                        (seq - w.first) as usize
                            ..(end.min(w.first + w.events.len() as u64) - w.first) as usize,
                    )
                    .cloned()
                    .collect();
                drop(w);
                if evs.is_empty() {
                    break;
                }
                for ev in evs {
                    seq = ev.seq + 1;
                    f(ev)?;
                }
                continue;
            }
            let c = seq / CHUNK;
            let upto = ((c + 1) * CHUNK).min(window_first).min(end);
            let n = (upto - c * CHUNK) as usize;
            let evs = self
                .inner
                .store
                .read_chunk(c, n)
                .map_err(|reason| self.read_error(seq, reason))?;
            for ev in evs.into_iter().skip((seq - c * CHUNK) as usize) {
                seq = ev.seq + 1;
                f(Arc::new(ev))?;
            }
        }
        Ok(())
    }

    pub(crate) fn read_error(&self, seq: u64, reason: String) -> ChainError {
        read_error(&self.inner, seq, reason)
    }

    /// Seqs of the events whose kind the chain indexes (`prefix` is one of
    /// [`crate::layout::INDEXED_KINDS`]: `"lineage"`, `"tree."`), ascending,
    /// as of the last flush. Boot uses it instead of reading the log.
    pub fn indexed_seqs(&self, prefix: &str) -> Result<Vec<u64>> {
        let tag = crate::layout::INDEXED_KINDS
            .iter()
            .find(|(p, _)| *p == prefix)
            .map(|(_, t)| *t)
            .ok_or_else(|| ChainError::BadRange {
                reason: format!("kind {prefix:?} is not indexed"),
            })?;
        self.inner.store.kind_seqs(tag)
    }

    /// Number of events (including genesis).
    pub fn len(&self) -> u64 {
        self.inner.len.load(Ordering::Acquire)
    }

    /// Never true after `open` (genesis exists); provided for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The chain id the directory was opened with.
    pub fn chain_id(&self) -> u32 {
        self.inner.chain_id
    }

    /// The chain directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// The key that verifies this chain's tree heads.
    pub fn public_key(&self) -> VerifyingKey {
        self.inner.public_key
    }

    /// The newest durable signed tree head.
    pub fn durable_head(&self) -> Option<SignedHead> {
        read(&self.inner.durable_head).clone()
    }

    /// A snapshot of length, heads, durability and segments.
    pub fn status(&self) -> ChainStatus {
        let (durable_len, fsyncs) = {
            let h = lock(&self.inner.head);
            (h.durable, h.fsyncs)
        };
        let len = self.len();
        ChainStatus {
            chain_id: self.inner.chain_id,
            len,
            last_seq: len.saturating_sub(1),
            public_key: public_key_hex(&self.inner.public_key),
            path: self.inner.dir.clone(),
            heads: self.inner.heads_written.load(Ordering::Relaxed),
            durable_head: self.durable_head(),
            durable_len,
            fsyncs,
            segments: read(&self.inner.store.segments).len() as u64,
            first_seq: self.inner.store.first_seq(),
            window: read(&self.inner.window).events.len() as u64,
        }
    }

    /// Streams the chain's files through [`crate::verify_dir`] up to the
    /// newest durable head (made durable first), in bounded memory.
    pub fn verify_integrity(&self) -> crate::verify::VerifyReport {
        if let Err(e) = self.sync() {
            return crate::verify::VerifyReport::failed(0, e.to_string());
        }
        let upto = self.durable_head().map(|h| h.tree_size);
        crate::verify::verify_dir_opts(
            &self.inner.dir,
            &self.inner.public_key,
            crate::verify::VerifyOptions {
                upto,
                ..Default::default()
            },
        )
    }

    /// Writes one JSON object per event (payload decoded, hashes hex),
    /// streaming. Returns the number of lines written.
    pub fn export_jsonl<W: Write>(&self, mut w: W) -> Result<u64> {
        let io = |e: std::io::Error| ChainError::io("<export writer>", e);
        let mut n = 0u64;
        self.for_each(.., |ev| {
            serde_json::to_writer(&mut w, &ev.to_json()).map_err(|e| io(e.into()))?;
            w.write_all(b"\n").map_err(io)?;
            n += 1;
            Ok(())
        })?;
        w.flush().map_err(io)?;
        Ok(n)
    }

    /// Stops accepting appends, writes everything pending plus a final
    /// head, fdatasyncs, and releases the file lock. Idempotent.
    pub fn shutdown(&self) -> Result<()> {
        lock(&self.inner.head).closing = true;
        self.inner.work_cv.notify_all();
        let handle = lock(&self.writer).take();
        if let Some(j) = handle {
            if j.join().is_err() {
                return Err(ChainError::WriterFailed("writer thread panicked".into()));
            }
        }
        lock(&self.dir_lock).take();
        match &lock(&self.inner.head).failed {
            Some(f) => Err(ChainError::WriterFailed(f.clone())),
            None => Ok(()),
        }
    }
}

/// Event `seq` (below the chain's length) from the window or the disk.
pub(crate) fn read_any(inner: &Inner, seq: u64) -> Result<Arc<ChainEvent>> {
    {
        let w = read(&inner.window);
        if seq >= w.first {
            if let Some(ev) = w.events.get((seq - w.first) as usize) {
                return Ok(ev.clone());
            }
        }
    }
    inner
        .store
        .read_event(seq)
        .map(Arc::new)
        .map_err(|reason| read_error(inner, seq, reason))
}

fn read_error(inner: &Inner, seq: u64, reason: String) -> ChainError {
    ChainError::Corrupt {
        segment: inner.store.seg_for(seq).map_or(0, |s| s.first_seq),
        offset: 0,
        seq: Some(seq),
        reason: format!("cannot read event {seq}: {reason}"),
    }
}

fn check_payload(payload: &[u8]) -> Result<()> {
    if payload.len() > MAX_PAYLOAD {
        return Err(ChainError::TooLarge {
            what: "payload",
            len: payload.len(),
            max: MAX_PAYLOAD,
        });
    }
    Ok(())
}

impl Drop for ChainManager {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "chain shutdown on drop failed");
        }
    }
}

impl std::fmt::Debug for ChainManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainManager")
            .field("dir", &self.inner.dir)
            .field("chain_id", &self.inner.chain_id)
            .field("len", &self.len())
            .finish()
    }
}

// Compile-time check that the manager can be shared across threads.
const _: fn() = || {
    fn is<T: Send + Sync>() {}
    is::<ChainManager>();
};

/// The key named by the genesis event of segment 0 (no signature check:
/// only to tell a wrong key from damage). `None` when unreadable.
fn genesis_key(dir: &Path, chain_id: u32) -> Result<Option<String>> {
    use std::io::Read;
    let p = segment_path(dir, 0);
    let mut buf = vec![0u8; 16 << 10];
    let mut f = File::open(&p).map_err(|e| ChainError::io(&p, e))?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(ChainError::io(&p, e)),
        }
    }
    let mut pos = crate::layout::SEGMENT_HEADER_LEN;
    for _ in 0..3 {
        match crate::record::read_frame(&buf[pos.min(n)..n]) {
            crate::record::Framed::Ok { ty, body, len } => {
                pos += len;
                if ty == crate::record::TYPE_EVENT {
                    let Ok(e) = crate::record::EventBody::decode(body) else {
                        return Ok(None);
                    };
                    let g: std::result::Result<GenesisPayload, _> =
                        ciborium::from_reader(e.payload);
                    return Ok(g
                        .ok()
                        .filter(|g| g.chain_id == chain_id)
                        .map(|g| g.public_key));
                }
            }
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// Shorthand for tests and tools: the segment file holding `seq`.
pub fn segment_file_for(dir: &Path, seq: u64) -> Result<Option<PathBuf>> {
    let firsts = list_segments(dir)?;
    let i = firsts.partition_point(|f| *f <= seq);
    Ok(i.checked_sub(1).map(|i| segment_path(dir, firsts[i])))
}
