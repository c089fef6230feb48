//! Background writer: batches appended events into `chain.log`, runs group
//! commit (one fdatasync for every durable waiter) and writes checkpoints.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;

use crate::checkpoint::Checkpoint;
use crate::event::ChainEvent;
use crate::manager::{lock, now_ns, Inner};
use crate::segment::{write_segment, SegmentHeader, SegmentKind};

/// State owned by the writer thread only (no locking needed).
pub(crate) struct Writer {
    pub inner: Arc<Inner>,
    pub file: BufWriter<File>,
    pub key: SigningKey,
    pub checkpoint_every: u64,
    pub flush_interval: Duration,
    /// Events handed to the BufWriter so far (= next seq to write).
    pub written: u64,
    pub last_hash: [u8; 32],
    pub last_ts: u64,
    pub next_checkpoint_id: u64,
    pub last_checkpoint_seq: Option<u64>,
    pub scratch: Vec<u8>,
    /// Bytes in the BufWriter or OS not yet covered by fdatasync.
    pub unsynced: bool,
    pub unflushed: bool,
}

impl Writer {
    pub fn run(mut self) {
        let _guard = StopGuard(self.inner.clone());
        if let Err(e) = self.run_inner() {
            tracing::error!(error = %e, path = %self.inner.path.display(), "chain writer failed");
            let mut h = lock(&self.inner.head);
            h.failed = Some(e.to_string());
            h.closed = true;
            drop(h);
            self.inner.stopped.store(true, Ordering::Release);
            self.release_waiters();
        }
    }

    /// Wakes every durable waiter; each rechecks `durable`/`stopped`.
    fn release_waiters(&self) {
        release_waiters(&self.inner);
    }

    fn run_inner(&mut self) -> std::io::Result<()> {
        let mut last_flush = Instant::now();
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
            if closing && self.written > 0 && self.last_checkpoint_seq != Some(self.written - 1) {
                self.write_checkpoint()?;
            }
            if want_durable || closing {
                let synced = self.unflushed || self.unsynced;
                if synced {
                    self.file.flush()?;
                    self.file.get_ref().sync_data()?;
                    last_flush = Instant::now();
                }
                self.unflushed = false;
                self.unsynced = false;
                let mut h = lock(&self.inner.head);
                h.durable = self.written;
                h.fsyncs += u64::from(synced);
                if closing {
                    h.closed = true;
                }
                drop(h);
                self.inner.durable.store(self.written, Ordering::Release);
                if closing {
                    self.inner.stopped.store(true, Ordering::Release);
                }
                self.release_waiters();
            } else if self.unflushed && last_flush.elapsed() >= self.flush_interval {
                // Push buffered bytes to the OS so a process crash loses at
                // most about one flush interval of non-durable appends.
                self.file.flush()?;
                self.unflushed = false;
                last_flush = Instant::now();
            }
            if closing {
                return Ok(());
            }
        }
    }

    fn write_event(&mut self, ev: &ChainEvent) -> std::io::Result<()> {
        debug_assert_eq!(ev.seq, self.written);
        self.scratch.clear();
        ev.encode_into(&mut self.scratch);
        let header = SegmentHeader::new(SegmentKind::Event, ev.seq, ev.timestamp_ns, &self.scratch);
        self.file.write_all(&header.encode())?;
        self.file.write_all(&self.scratch)?;
        self.written = ev.seq + 1;
        self.last_hash = ev.hash;
        self.last_ts = ev.timestamp_ns;
        self.unflushed = true;
        self.unsynced = true;
        if self.checkpoint_every > 0 && self.written.is_multiple_of(self.checkpoint_every) {
            self.write_checkpoint()?;
        }
        Ok(())
    }

    fn write_checkpoint(&mut self) -> std::io::Result<()> {
        let seq = self.written - 1;
        let ts = now_ns().max(self.last_ts);
        let cp = Checkpoint::sign(
            &self.key,
            self.next_checkpoint_id,
            self.inner.chain_id,
            seq,
            self.last_hash,
            ts,
        );
        let mut framed = Vec::with_capacity(64 + crate::checkpoint::CHECKPOINT_LEN);
        write_segment(
            &mut framed,
            SegmentKind::Checkpoint,
            cp.id,
            ts,
            &cp.encode(),
        );
        self.file.write_all(&framed)?;
        self.unflushed = true;
        self.unsynced = true;
        self.next_checkpoint_id += 1;
        self.last_checkpoint_seq = Some(seq);
        self.inner
            .checkpoints
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(cp);
        Ok(())
    }
}

fn release_waiters(inner: &Inner) {
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
