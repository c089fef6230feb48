//! Background writer: appends event records to the open segment, keeps the
//! tree frontier and the index, writes a signed tree head at every group
//! commit (one fdatasync for every durable waiter), rotates segments.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;

use crate::boot::{create_segment, head_body, Chunker};
use crate::event::ChainEvent;
use crate::head::SignedHead;
use crate::layout::{index_path, kinds_path, CHUNK, SEGMENT_HEADER_LEN};
use crate::manager::{lock, write, Inner};
use crate::merkle::Frontier;
use crate::record::{frame, EventBody, TYPE_EVENT, TYPE_HEAD};
use crate::store::Seg;

/// Index entries (chunks) between index fsyncs: bounds what boot replays.
const INDEX_SYNC_CHUNKS: u64 = 512;
/// Events after which a head is written even without a commit or flush:
/// bounds how far back boot looks for one.
const HEAD_EVERY_EVENTS: u64 = 4096;

/// The open segment's files.
pub(crate) struct OpenSeg {
    pub first_seq: u64,
    pub log: BufWriter<File>,
    pub idx: File,
    pub kinds: File,
    /// Bytes in the log file (written or buffered).
    pub offset: u64,
}

/// State owned by the writer thread only (no locking needed).
pub(crate) struct Writer {
    pub inner: Arc<Inner>,
    pub key: SigningKey,
    pub flush_interval: Duration,
    pub max_segment_bytes: u64,
    pub seg: OpenSeg,
    pub frontier: Frontier,
    pub chunker: Chunker,
    pub last_record_ts: u64,
    pub last_event_ts: u64,
    /// Index state known durable, and where rebuilding it would resume.
    pub synced_chunks: u64,
    pub synced_kinds: u64,
    pub resume_offset: u64,
    pub resume_ts: u64,
    /// Size of the last head written.
    pub head_size: u64,
    pub last_head: Option<SignedHead>,
    pub events_since_head: u64,
    pub scratch: Vec<u8>,
    pub body: Vec<u8>,
    pub idx_buf: Vec<u8>,
    pub kinds_buf: Vec<u8>,
    /// Bytes written since the last fdatasync.
    pub unsynced: bool,
    /// Bytes in user-space buffers not yet handed to the OS.
    pub unflushed: bool,
}

impl Writer {
    pub fn run(mut self) {
        let _guard = StopGuard(self.inner.clone());
        if let Err(e) = self.run_inner() {
            tracing::error!(error = %e, dir = %self.inner.dir.display(), "chain writer failed");
            let mut h = lock(&self.inner.head);
            h.failed = Some(e.to_string());
            h.closed = true;
            drop(h);
            self.inner.stopped.store(true, Ordering::Release);
            release_waiters(&self.inner);
        }
    }

    fn run_inner(&mut self) -> std::io::Result<()> {
        let mut last_flush = Instant::now();
        // A fresh boot head makes everything resumed durable and covered.
        self.commit(true)?;
        loop {
            let (batch, want_durable, closing) = {
                let mut h = lock(&self.inner.head);
                // Buffered appends do not notify (a futex wake per event would
                // cost a syscall); we wake on a full batch, a durable request,
                // shutdown, or the flush interval.
                while h.pending.len() < self.inner.batch_events
                    && h.durable_wanted <= h.durable
                    && !h.closing
                {
                    h.writer_waiting = true;
                    let (g, t) = self
                        .inner
                        .work_cv
                        .wait_timeout(h, self.flush_interval)
                        .unwrap_or_else(|p| p.into_inner());
                    h = g;
                    h.writer_waiting = false;
                    if t.timed_out() {
                        break;
                    }
                }
                (
                    std::mem::take(&mut h.pending),
                    h.durable_wanted > h.durable,
                    h.closing,
                )
            };
            for ev in &batch {
                self.write_event(ev)?;
            }
            drop(batch);
            if closing {
                // Index durable too, so the next boot replays next to nothing.
                self.write_head(true)?;
                self.commit(true)?;
            } else if want_durable {
                self.commit(true)?;
                last_flush = Instant::now();
            } else if (self.unflushed && last_flush.elapsed() >= self.flush_interval)
                || self.events_since_head >= HEAD_EVERY_EVENTS
            {
                // Hand buffered bytes (and a head covering them) to the OS so
                // a process crash loses at most about one flush interval.
                self.commit(false)?;
                last_flush = Instant::now();
            }
            if closing {
                let mut h = lock(&self.inner.head);
                h.closed = true;
                drop(h);
                self.inner.stopped.store(true, Ordering::Release);
                release_waiters(&self.inner);
                return Ok(());
            }
        }
    }

    fn write_event(&mut self, ev: &ChainEvent) -> std::io::Result<()> {
        debug_assert_eq!(ev.seq, self.frontier.size());
        self.body.clear();
        EventBody {
            ts_delta: ev.timestamp_ns - self.last_record_ts,
            source: &ev.source,
            kind: &ev.kind,
            payload: &ev.payload,
        }
        .encode(&mut self.body);
        self.scratch.clear();
        frame(&mut self.scratch, TYPE_EVENT, &self.body);
        self.seg.log.write_all(&self.scratch)?;
        let at = self.seg.offset;
        let len = self.scratch.len() as u64;
        self.seg.offset += len;
        self.last_record_ts = ev.timestamp_ns;
        self.last_event_ts = ev.timestamp_ns;
        self.chunker.event(
            ev,
            at,
            len,
            &mut self.frontier,
            &mut self.idx_buf,
            &mut self.kinds_buf,
        );
        self.unflushed = true;
        self.unsynced = true;
        self.events_since_head += 1;
        if (ev.seq + 1).is_multiple_of(CHUNK) && self.seg.offset >= self.max_segment_bytes {
            self.rotate()?;
        }
        Ok(())
    }

    /// Writes index and kind entries to their files, fsyncing them when
    /// enough have accumulated (or `force`); then the next head records
    /// them as durable.
    fn flush_index(&mut self, force: bool) -> std::io::Result<()> {
        if !self.idx_buf.is_empty() {
            self.seg.idx.write_all(&self.idx_buf)?;
            self.idx_buf.clear();
        }
        if !self.kinds_buf.is_empty() {
            self.seg.kinds.write_all(&self.kinds_buf)?;
            self.kinds_buf.clear();
        }
        let behind = self.chunker.chunks - self.synced_chunks;
        if (force && behind > 0) || behind >= INDEX_SYNC_CHUNKS {
            self.seg.idx.sync_data()?;
            self.seg.kinds.sync_data()?;
            // Kind entries of events after the last complete chunk are
            // rebuilt with them on replay, so they do not count yet.
            self.synced_chunks = self.chunker.chunks;
            self.synced_kinds = self.chunker.after_kinds;
            if self.synced_chunks > 0 {
                self.resume_offset = self.chunker.after_offset;
                self.resume_ts = self.chunker.after_ts;
            }
        }
        Ok(())
    }

    fn write_head(&mut self, force_index: bool) -> std::io::Result<()> {
        self.flush_index(force_index)?;
        let size = self.frontier.size();
        let head = SignedHead::sign(
            &self.key,
            self.inner.chain_id,
            size,
            self.frontier.root(),
            self.last_event_ts,
            self.seg.first_seq,
            self.seg.offset,
        );
        let body = head_body(
            &head,
            &self.frontier,
            self.synced_chunks,
            self.synced_kinds,
            self.resume_offset,
            self.resume_ts,
        );
        self.scratch.clear();
        frame(&mut self.scratch, TYPE_HEAD, &body);
        self.seg.log.write_all(&self.scratch)?;
        self.seg.offset += self.scratch.len() as u64;
        self.last_record_ts = self.last_event_ts;
        self.head_size = size;
        self.last_head = Some(head);
        self.events_since_head = 0;
        self.unflushed = true;
        self.unsynced = true;
        self.inner.heads_written.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A head covering every event written (if the tree grew), everything
    /// handed to the OS, and with `durable` an fdatasync; then readers and
    /// waiters learn the new state.
    fn commit(&mut self, durable: bool) -> std::io::Result<()> {
        if self.frontier.size() > self.head_size || self.last_head.is_none() {
            self.write_head(false)?;
        }
        self.seg.log.flush()?;
        self.flush_index(false)?;
        self.unflushed = false;
        let size = self.frontier.size();
        self.inner.flushed.store(size, Ordering::Release);
        if !durable {
            return Ok(());
        }
        let synced = self.unsynced;
        if synced {
            self.seg.log.get_ref().sync_data()?;
            self.unsynced = false;
        }
        if let Some(h) = &self.last_head {
            *write(&self.inner.durable_head) = Some(h.clone());
        }
        let mut h = lock(&self.inner.head);
        h.durable = size;
        h.fsyncs += u64::from(synced);
        drop(h);
        self.inner.durable.store(size, Ordering::Release);
        release_waiters(&self.inner);
        Ok(())
    }

    /// Seals the open segment (a head, everything durable) and starts the
    /// next one, whose start head repeats the tree state at its position.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.write_head(true)?;
        self.commit(true)?;
        let dir = self.inner.dir.clone();
        let (file, head, len) = create_segment(
            &dir,
            self.inner.chain_id,
            &self.key,
            &self.frontier,
            self.last_event_ts,
        )
        .map_err(std::io::Error::other)?;
        let first_seq = self.frontier.size();
        let open_append = |p: std::path::PathBuf| std::fs::OpenOptions::new().append(true).open(p);
        self.seg = OpenSeg {
            first_seq,
            log: BufWriter::with_capacity(1 << 20, file),
            idx: open_append(index_path(&dir, first_seq))?,
            kinds: open_append(kinds_path(&dir, first_seq))?,
            offset: len,
        };
        self.chunker = Chunker {
            after_offset: SEGMENT_HEADER_LEN as u64,
            ..Chunker::default()
        };
        self.synced_chunks = 0;
        self.synced_kinds = 0;
        self.resume_offset = SEGMENT_HEADER_LEN as u64;
        self.resume_ts = 0;
        self.last_record_ts = head.timestamp_ns;
        self.last_head = Some(head.clone());
        *write(&self.inner.durable_head) = Some(head);
        let seg = Seg::open(&dir, first_seq).map_err(std::io::Error::other)?;
        write(&self.inner.store.segments).push(Arc::new(seg));
        self.inner.rotations.fetch_add(1, Ordering::Relaxed);
        if let Some(k) = self.inner.keep.clone() {
            if let Err(e) =
                crate::retention::apply(&self.inner, &k, self.inner.archive_dir.as_deref())
            {
                tracing::warn!(error = %e, "chain: retention failed; keeping every segment");
            }
        }
        Ok(())
    }
}

pub(crate) fn release_waiters(inner: &Inner) {
    inner.sync_epoch.fetch_add(1, Ordering::Release);
    atomic_wait::wake_all(&inner.sync_epoch);
}

/// Marks the chain failed if the writer thread ends without a clean stop
/// (e.g. a panic), so durable waiters get an error instead of hanging.
struct StopGuard(Arc<Inner>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        if self.0.stopped.load(Ordering::Acquire) {
            return;
        }
        let mut h = lock(&self.0.head);
        if h.failed.is_none() {
            h.failed = Some("writer thread exited unexpectedly".into());
        }
        h.closed = true;
        drop(h);
        self.0.stopped.store(true, Ordering::Release);
        release_waiters(&self.0);
    }
}
