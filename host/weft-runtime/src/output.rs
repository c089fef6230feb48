//! Bounded capture of a guest's stdout and stderr.
//!
//! wasmtime-wasi's `MemoryOutputPipe` reports a full buffer as a closed
//! stream, which a guest sees as an I/O error it may ignore. We want an
//! overflow to be a typed [`crate::RunError::OutputLimit`], so a write past
//! the cap traps with our own error and sets a flag the classifier reads.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

use crate::error::OutputOverflow;

/// A capped, shareable in-memory sink. Clones write to the same buffer.
#[derive(Clone)]
pub struct BoundedOutput {
    name: &'static str,
    limit: usize,
    buf: Arc<Mutex<Vec<u8>>>,
    overflowed: Arc<AtomicBool>,
}

impl BoundedOutput {
    /// An empty buffer for stream `name` (`stdout`, `stderr`) that holds at most `limit` bytes.
    pub fn new(name: &'static str, limit: usize) -> Self {
        BoundedOutput {
            name,
            limit,
            buf: Arc::default(),
            overflowed: Arc::default(),
        }
    }

    /// Everything captured so far (at most `limit` bytes).
    pub fn contents(&self) -> Vec<u8> {
        self.lock().clone()
    }

    /// Take the captured bytes, leaving the buffer empty.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.lock())
    }

    /// The last few lines, for error messages.
    pub fn tail(&self, max_bytes: usize) -> Option<String> {
        let buf = self.lock();
        if buf.is_empty() {
            return None;
        }
        let start = buf.len().saturating_sub(max_bytes);
        let text = String::from_utf8_lossy(&buf[start..]);
        Some(text.trim().to_string())
    }

    /// `Some((stream, limit))` once a write was refused.
    pub fn overflow(&self) -> Option<(&'static str, usize)> {
        self.overflowed
            .load(Ordering::Relaxed)
            .then_some((self.name, self.limit))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        // A poisoned buffer still holds valid bytes.
        self.buf.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, bytes: &[u8]) -> Result<(), OutputOverflow> {
        let mut buf = self.lock();
        if buf.len() + bytes.len() > self.limit {
            let room = self.limit - buf.len();
            buf.extend_from_slice(&bytes[..room]);
            self.overflowed.store(true, Ordering::Relaxed);
            return Err(OutputOverflow {
                stream: self.name,
                limit: self.limit,
            });
        }
        buf.extend_from_slice(bytes);
        Ok(())
    }
}

impl IsTerminal for BoundedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for BoundedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for BoundedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for BoundedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes)
            .map_err(|e| StreamError::Trap(wasmtime::Error::new(e)))
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        // Always grant a permit: the overflow is detected in `write`, so a
        // flood traps instead of looping on a zero-sized permit.
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for BoundedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(
            self.push(b)
                .map(|()| b.len())
                .map_err(std::io::Error::other),
        )
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_keeps_prefix_and_sets_flag() {
        let out = BoundedOutput::new("stdout", 4);
        assert!(out.push(b"ab").is_ok());
        assert!(out.push(b"cde").is_err());
        assert_eq!(out.contents(), b"abcd");
        assert_eq!(out.overflow(), Some(("stdout", 4)));
    }
}
