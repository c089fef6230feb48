//! `ChainManager`: the live, thread-safe chain used by the kernel.

use std::collections::HashMap;
use std::fs::{self, OpenOptions, TryLockError};
use std::io::{BufWriter, Read, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::VerifyingKey;
use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::error::{ChainError, Result};
use crate::event::{
    event_hash, shake256, to_cbor, ChainEvent, GENESIS_KIND, MAX_LABEL, MAX_PAYLOAD,
};
use crate::keys::{public_key_hex, sync_parent_dir, SigningKeyFile};
use crate::lineage::LINEAGE_KIND;
use crate::reader::{scan, verify_events, GenesisPayload, VerifyReport};
use crate::types::{ChainConfig, ChainStatus, Durability, OpenReport};
use crate::writer::Writer;

/// File name of the log inside the chain directory.
pub const CHAIN_FILE: &str = "chain.log";
/// File name of the default signing key inside the chain directory.
pub const KEY_FILE: &str = "chain.key";

/// Mutable chain head, guarded by one mutex so seq assignment and queueing
/// happen in the same order.
pub(crate) struct Head {
    pub next_seq: u64,
    pub last_hash: [u8; 32],
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

/// State shared between callers and the writer thread.
pub(crate) struct Inner {
    pub chain_id: u32,
    pub path: PathBuf,
    pub public_key: VerifyingKey,
    pub batch_events: usize,
    pub head: Mutex<Head>,
    pub work_cv: Condvar,
    /// Mirrors `Head::durable` so durable waiters need no lock.
    pub durable: AtomicU64,
    /// Bumped after each fdatasync (and on stop); durable waiters futex-wait
    /// on it so one wake-all releases a whole group without lock handoffs.
    pub sync_epoch: AtomicU32,
    /// Set when the writer has exited (closed or failed).
    pub stopped: AtomicBool,
    pub events: RwLock<Vec<Arc<ChainEvent>>>,
    pub checkpoints: RwLock<Vec<Checkpoint>>,
    pub lineage: RwLock<HashMap<String, u64>>,
}

/// The kernel's audit chain: append-only, hash-linked, signed, crash-safe.
/// `Send + Sync`; share it with `Arc`.
pub struct ChainManager {
    pub(crate) inner: Arc<Inner>,
    writer: Mutex<Option<JoinHandle<()>>>,
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

fn check_label(what: &'static str, s: &str) -> Result<()> {
    if s.len() > MAX_LABEL {
        return Err(ChainError::TooLarge {
            what,
            len: s.len(),
            max: MAX_LABEL,
        });
    }
    Ok(())
}

impl ChainManager {
    /// Opens (or creates) the chain in `dir`: verifies the whole file,
    /// truncates a torn tail, refuses any other corruption, and starts the
    /// writer thread. Holds an exclusive lock on the file until shutdown.
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
        let path = dir.join(CHAIN_FILE);
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| ChainError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(ChainError::Locked { path }),
            Err(TryLockError::Error(e)) => return Err(ChainError::io(&path, e)),
        }
        if !existed {
            sync_parent_dir(&path)?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| ChainError::io(&path, e))?;
        let scanned = scan(&bytes, Some(&public_key));
        drop(bytes);
        if let Some(e) = scanned.error {
            return Err(e);
        }
        if let Some(first) = scanned.events.first() {
            if first.chain_id != config.chain_id {
                return Err(ChainError::ChainIdMismatch {
                    expected: config.chain_id,
                    found: first.chain_id,
                });
            }
        }
        if scanned.torn_bytes > 0 {
            tracing::warn!(
                path = %path.display(),
                truncated_bytes = scanned.torn_bytes,
                reason = scanned.torn_reason.as_deref().unwrap_or(""),
                "chain: truncating torn tail left by a crash"
            );
            file.set_len(scanned.valid_len)
                .and_then(|_| file.sync_all())
                .map_err(|e| ChainError::io(&path, e))?;
        }

        let events: Vec<Arc<ChainEvent>> = scanned.events.into_iter().map(Arc::new).collect();
        let mut lineage = HashMap::new();
        for ev in events.iter().filter(|e| e.kind == LINEAGE_KIND) {
            if let Ok(rec) = ev.decode_payload::<crate::lineage::LineageRecord>() {
                lineage.insert(rec.child, ev.seq);
            }
        }
        let (next_seq, last_hash, last_ts) = events
            .last()
            .map_or((0, [0; 32], 0), |e| (e.seq + 1, e.hash, e.timestamp_ns));
        let checkpoints = scanned.checkpoints;
        let writer_state = Writer {
            inner: Arc::new(Inner {
                chain_id: config.chain_id,
                path: path.clone(),
                public_key,
                batch_events: config.batch_events.max(1),
                head: Mutex::new(Head {
                    next_seq,
                    last_hash,
                    last_ts,
                    pending: Vec::new(),
                    durable_wanted: 0,
                    durable: next_seq,
                    fsyncs: 0,
                    closing: false,
                    closed: false,
                    failed: None,
                    writer_waiting: false,
                }),
                work_cv: Condvar::new(),
                durable: AtomicU64::new(next_seq),
                sync_epoch: AtomicU32::new(0),
                stopped: AtomicBool::new(false),
                events: RwLock::new(events),
                checkpoints: RwLock::new(Vec::new()),
                lineage: RwLock::new(lineage),
            }),
            file: BufWriter::with_capacity(1 << 20, file),
            key,
            checkpoint_every: config.checkpoint_every,
            flush_interval: config.flush_interval,
            written: next_seq,
            last_hash,
            last_ts,
            next_checkpoint_id: checkpoints.len() as u64,
            last_checkpoint_seq: checkpoints.last().map(|c| c.seq),
            scratch: Vec::new(),
            unsynced: false,
            unflushed: false,
        };
        let inner = writer_state.inner.clone();
        let n_checkpoints = checkpoints.len() as u64;
        *write(&inner.checkpoints) = checkpoints;
        let handle = std::thread::Builder::new()
            .name("weft-chain-writer".into())
            .spawn(move || writer_state.run())
            .map_err(|e| ChainError::io(&path, e))?;
        let mgr = ChainManager {
            inner,
            writer: Mutex::new(Some(handle)),
        };
        let created = next_seq == 0;
        if created {
            let genesis = GenesisPayload {
                format: 1,
                chain_id: config.chain_id,
                public_key: public_key_hex(&public_key),
            };
            mgr.append_durable("weft-chain", GENESIS_KIND, &genesis)?;
        }
        let report = OpenReport {
            truncated_bytes: scanned.torn_bytes,
            torn_reason: scanned.torn_reason,
            events: mgr.len(),
            checkpoints: n_checkpoints,
            created,
            key_created,
        };
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

    /// Appends an event and returns only after an fdatasync covering it.
    /// Concurrent callers share one fdatasync (group commit).
    pub fn append_durable<T: Serialize + ?Sized>(
        &self,
        source: &str,
        kind: &str,
        payload: &T,
    ) -> Result<Arc<ChainEvent>> {
        self.append_encoded(source, kind, to_cbor(payload)?, Durability::Durable)
    }

    /// Appends an event whose payload depends on its own seq (e.g. a receipt
    /// that signs the seq recording it). `make` runs under the chain lock, so
    /// keep it short.
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
        let payload_hash = shake256(&payload);
        let ev = self.commit(&mut h, source, kind, payload, payload_hash);
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
        // Hash outside the lock so concurrent appenders hash in parallel.
        let payload_hash = shake256(&payload);
        let mut h = lock(&self.inner.head);
        self.check_open(&h)?;
        let ev = self.commit(&mut h, source, kind, payload, payload_hash);
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

    /// Assigns seq/timestamp/hash and queues the event. Caller holds the head.
    fn commit(
        &self,
        h: &mut Head,
        source: &str,
        kind: &str,
        payload: Vec<u8>,
        payload_hash: [u8; 32],
    ) -> Arc<ChainEvent> {
        let seq = h.next_seq;
        let timestamp_ns = now_ns().max(h.last_ts);
        let chain_id = self.inner.chain_id;
        let hash = event_hash(
            seq,
            chain_id,
            timestamp_ns,
            &h.last_hash,
            &payload_hash,
            source,
            kind,
            payload.len(),
        );
        let ev = Arc::new(ChainEvent {
            seq,
            chain_id,
            timestamp_ns,
            prev_hash: h.last_hash,
            hash,
            payload_hash,
            source: source.to_owned(),
            kind: kind.to_owned(),
            payload,
        });
        h.next_seq = seq + 1;
        h.last_hash = hash;
        h.last_ts = timestamp_ns;
        h.pending.push(ev.clone());
        if h.pending.len() >= self.inner.batch_events {
            self.wake_writer(h);
        }
        write(&self.inner.events).push(ev.clone());
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

    /// Makes every event appended so far durable.
    pub fn sync(&self) -> Result<()> {
        let h = lock(&self.inner.head);
        match h.next_seq.checked_sub(1) {
            Some(last) => self.wait_durable(h, last),
            None => Ok(()),
        }
    }

    /// Event by seq.
    pub fn get(&self, seq: u64) -> Option<Arc<ChainEvent>> {
        read(&self.inner.events)
            .get(usize::try_from(seq).ok()?)
            .cloned()
    }

    /// The last `n` events, oldest first.
    pub fn tail(&self, n: usize) -> Vec<Arc<ChainEvent>> {
        let evs = read(&self.inner.events);
        evs[evs.len().saturating_sub(n)..].to_vec()
    }

    /// Events whose seq lies in `range` (clamped to the chain).
    pub fn range(&self, range: impl RangeBounds<u64>) -> Vec<Arc<ChainEvent>> {
        use std::ops::Bound;
        let evs = read(&self.inner.events);
        let len = evs.len() as u64;
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        }
        .min(len);
        let end = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => len,
        }
        .min(len);
        if start >= end {
            return Vec::new();
        }
        evs[start as usize..end as usize].to_vec()
    }

    /// Number of events (including genesis).
    pub fn len(&self) -> u64 {
        read(&self.inner.events).len() as u64
    }

    /// Never true after `open` (genesis exists); provided for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The chain id the file was opened with.
    pub fn chain_id(&self) -> u32 {
        self.inner.chain_id
    }

    /// Path of `chain.log`.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The key that verifies this chain's checkpoints.
    pub fn public_key(&self) -> VerifyingKey {
        self.inner.public_key
    }

    /// Checkpoints written so far (loaded and new).
    pub fn checkpoints(&self) -> Vec<Checkpoint> {
        read(&self.inner.checkpoints).clone()
    }

    /// A snapshot of length, head, checkpoints and durability.
    pub fn status(&self) -> ChainStatus {
        let (durable_len, fsyncs) = {
            let h = lock(&self.inner.head);
            (h.durable, h.fsyncs)
        };
        let (len, last_hash) = {
            let evs = read(&self.inner.events);
            (
                evs.len() as u64,
                evs.last().map(|e| e.hash_hex()).unwrap_or_default(),
            )
        };
        let cps = read(&self.inner.checkpoints);
        ChainStatus {
            chain_id: self.inner.chain_id,
            len,
            last_seq: len.saturating_sub(1),
            last_hash,
            public_key: public_key_hex(&self.inner.public_key),
            path: self.inner.path.clone(),
            checkpoints: cps.len() as u64,
            last_checkpoint_seq: cps.last().map(|c| c.seq),
            durable_len,
            fsyncs,
        }
    }

    /// Re-verifies every in-memory event (hash links, payload hashes, event
    /// hashes) and every checkpoint signature.
    pub fn verify_integrity(&self) -> VerifyReport {
        let events = read(&self.inner.events).clone();
        let checkpoints = self.checkpoints();
        verify_events(&events, &checkpoints, &self.inner.public_key)
    }

    /// Writes one JSON object per event (payload decoded, hashes hex).
    /// Returns the number of lines written.
    pub fn export_jsonl<W: Write>(&self, mut w: W) -> Result<u64> {
        let events = read(&self.inner.events).clone();
        let io = |e: std::io::Error| ChainError::io("<export writer>", e);
        for ev in &events {
            serde_json::to_writer(&mut w, &ev.to_json()).map_err(|e| io(e.into()))?;
            w.write_all(b"\n").map_err(io)?;
        }
        w.flush().map_err(io)?;
        Ok(events.len() as u64)
    }

    /// Stops accepting appends, writes everything pending plus a final
    /// checkpoint, fdatasyncs, and releases the file lock. Idempotent.
    pub fn shutdown(&self) -> Result<()> {
        lock(&self.inner.head).closing = true;
        self.inner.work_cv.notify_all();
        let handle = lock(&self.writer).take();
        if let Some(j) = handle {
            if j.join().is_err() {
                return Err(ChainError::WriterFailed("writer thread panicked".into()));
            }
        }
        match &lock(&self.inner.head).failed {
            Some(f) => Err(ChainError::WriterFailed(f.clone())),
            None => Ok(()),
        }
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
            .field("path", &self.inner.path)
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
