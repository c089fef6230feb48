//! The async side: the handshake driver (`connect`, `accept`) and the framed channel.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

use crate::config::MeshConfig;
use crate::frame::{Opener, Sealer, FLAGS_BYTES, LEN_BYTES, TAG_BYTES};
use crate::handshake::{Entropy, Established, Initiator, Responder};
use crate::identity::{MeshIdentity, PeerKey};
use crate::negotiation::{Downgrade, Negotiation};
use crate::MeshError;

/// Bytes the receiver asks the stream for at a time (frames are read many per syscall).
const READ_CHUNK: usize = 64 * 1024;

/// Opens a mesh channel as the initiator (the side that dialled).
///
/// Runs the handshake of docs/mesh.md within `config.handshake_timeout`. `admit` is the
/// cluster trust store: it sees the responder's authenticated static key and returns whether
/// to admit it; a refused key ends the handshake with [`MeshError::UntrustedPeer`].
pub async fn connect<S, F>(
    io: S,
    identity: &MeshIdentity,
    config: &MeshConfig,
    admit: F,
) -> Result<Channel<S>, MeshError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    F: Fn(&PeerKey) -> bool,
{
    config.validate()?;
    let entropy = Entropy::os()?;
    with_timeout(config, initiate(io, identity, config, &admit, entropy)).await
}

/// Accepts a mesh channel as the responder (the side that listened). See [`connect`].
pub async fn accept<S, F>(
    io: S,
    identity: &MeshIdentity,
    config: &MeshConfig,
    admit: F,
) -> Result<Channel<S>, MeshError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    F: Fn(&PeerKey) -> bool,
{
    config.validate()?;
    let entropy = Entropy::os()?;
    with_timeout(config, respond(io, identity, config, &admit, entropy)).await
}

async fn with_timeout<T>(
    config: &MeshConfig,
    fut: impl Future<Output = Result<T, MeshError>>,
) -> Result<T, MeshError> {
    tokio::time::timeout(config.handshake_timeout, fut)
        .await
        .map_err(|_| MeshError::Timeout {
            after: config.handshake_timeout,
        })?
}

async fn initiate<S, F>(
    mut io: S,
    identity: &MeshIdentity,
    config: &MeshConfig,
    admit: &F,
    entropy: Entropy,
) -> Result<Channel<S>, MeshError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn(&PeerKey) -> bool,
{
    let mut hs = Initiator::new(identity, config, entropy)?;
    write_handshake(&mut io, &hs.write_msg1()?).await?;
    let msg2 = read_handshake(&mut io).await?;
    hs.read_msg2(&msg2, admit)?;
    write_handshake(&mut io, &hs.write_msg3()?).await?;
    Ok(Channel::new(io, hs.finish()?, config))
}

async fn respond<S, F>(
    mut io: S,
    identity: &MeshIdentity,
    config: &MeshConfig,
    admit: &F,
    entropy: Entropy,
) -> Result<Channel<S>, MeshError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn(&PeerKey) -> bool,
{
    let mut hs = Responder::new(identity, config, entropy)?;
    let msg1 = read_handshake(&mut io).await?;
    hs.read_msg1(&msg1)?;
    write_handshake(&mut io, &hs.write_msg2()?).await?;
    let msg3 = match read_handshake(&mut io).await {
        // It told us in message 1 that it would hang up on a classical session.
        Err(MeshError::HandshakeClosed) if hs.peer_will_refuse() => {
            return Err(MeshError::PeerRequiresPq { peer: None })
        }
        other => other?,
    };
    hs.read_msg3(&msg3, admit)?;
    Ok(Channel::new(io, hs.finish()?, config))
}

/// Handshake messages travel as `len: u16 BE || noise message` (Noise's own framing advice).
async fn write_handshake<S: AsyncWrite + Unpin>(io: &mut S, msg: &[u8]) -> Result<(), MeshError> {
    let len = u16::try_from(msg.len())
        .map_err(|_| MeshError::Protocol("handshake message over 65535 bytes".into()))?;
    let mut wire = Vec::with_capacity(2 + msg.len());
    wire.extend_from_slice(&len.to_be_bytes());
    wire.extend_from_slice(msg);
    io.write_all(&wire).await?;
    io.flush().await?;
    Ok(())
}

async fn read_handshake<S: AsyncRead + Unpin>(io: &mut S) -> Result<Vec<u8>, MeshError> {
    let eof = |e: io::Error| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            MeshError::HandshakeClosed
        } else {
            MeshError::Io(e)
        }
    };
    let mut len = [0u8; 2];
    io.read_exact(&mut len).await.map_err(eof)?;
    // At most 64 KiB, so allocating the announced length is bounded.
    let len = usize::from(u16::from_be_bytes(len));
    if len == 0 {
        return Err(MeshError::Protocol("empty handshake message".into()));
    }
    let mut msg = vec![0u8; len];
    io.read_exact(&mut msg).await.map_err(eof)?;
    Ok(msg)
}

/// What both sides authenticated about a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The peer's static X25519 key (admitted by the trust store).
    pub peer: PeerKey,
    /// The `kem_supported` negotiation.
    pub negotiation: Negotiation,
    /// Noise's handshake hash `h`: a unique, public name of the session (equal on both sides).
    pub handshake_hash: [u8; 32],
    /// We dialled.
    pub initiator: bool,
}

impl SessionInfo {
    /// The traffic keys include an ML-KEM-768 shared secret.
    pub fn pq(&self) -> bool {
        self.negotiation.pq
    }

    /// `Some` when the session is classical (Noise-only): a fact to record on the chain.
    pub fn downgrade(&self) -> Option<Downgrade> {
        (!self.negotiation.pq).then_some(Downgrade {
            peer: self.peer,
            local_kem: self.negotiation.local_kem,
            peer_kem: self.negotiation.peer_kem,
        })
    }
}

/// Which key a direction uses now, without revealing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInfo {
    /// Rekeys so far in this direction.
    pub epoch: u64,
    /// First 16 bytes of HKDF-Expand(key, "weft-mesh/1 key id"): equal on both ends of a
    /// direction, different for every key.
    pub id: [u8; 16],
}

/// State both halves share: a fatal error on one side stops the other.
struct Shared {
    dead: AtomicBool,
}

/// An established, authenticated, encrypted channel to one peer.
///
/// Frames arrive in order, each exactly once, or the channel fails. Use [`Channel::split`] to
/// read in one task while writing in another.
pub struct Channel<S> {
    tx: SendHalf<S>,
    rx: RecvHalf<S>,
}

impl<S: AsyncRead + AsyncWrite> Channel<S> {
    fn new(io: S, est: Established, config: &MeshConfig) -> Self {
        let info = Arc::new(SessionInfo {
            peer: est.peer,
            negotiation: est.negotiation,
            handshake_hash: est.handshake_hash,
            initiator: est.initiator,
        });
        let (send_key, recv_key) = if est.initiator {
            (est.keys.i2r, est.keys.r2i)
        } else {
            (est.keys.r2i, est.keys.i2r)
        };
        // Send no more than either side accepts.
        let send_max = config
            .max_frame
            .min(est.negotiation.peer_max_frame as usize);
        let shared = Arc::new(Shared {
            dead: AtomicBool::new(false),
        });
        let (r, w) = tokio::io::split(io);
        Channel {
            tx: SendHalf {
                w,
                sealer: Sealer::new(
                    send_key,
                    send_max,
                    config.rekey_after_messages,
                    config.rekey_after,
                    Instant::now(),
                ),
                buf: Vec::new(),
                shared: shared.clone(),
                info: info.clone(),
                in_flight: false,
                closed: false,
                shut: false,
            },
            rx: RecvHalf {
                r,
                opener: Opener::new(recv_key, config.max_frame),
                buf: vec![0u8; READ_CHUNK],
                start: 0,
                end: 0,
                shared,
                info,
                closed: false,
            },
        }
    }

    /// What was authenticated and negotiated.
    pub fn info(&self) -> &SessionInfo {
        &self.tx.info
    }

    /// The peer's static key.
    pub fn peer(&self) -> PeerKey {
        self.tx.info.peer
    }

    /// The session is hybrid (Noise + ML-KEM-768).
    pub fn pq(&self) -> bool {
        self.tx.info.pq()
    }

    /// The negotiation report.
    pub fn negotiation(&self) -> Negotiation {
        self.tx.info.negotiation
    }

    /// `Some` when the session is classical; the caller records it.
    pub fn downgrade(&self) -> Option<Downgrade> {
        self.tx.info.downgrade()
    }

    /// Noise's handshake hash, equal on both sides.
    pub fn handshake_hash(&self) -> [u8; 32] {
        self.tx.info.handshake_hash
    }

    /// The largest payload [`Channel::send`] accepts.
    pub fn max_payload(&self) -> usize {
        self.tx.max_payload()
    }

    /// The current sending key.
    pub fn send_key(&self) -> KeyInfo {
        self.tx.key()
    }

    /// The current receiving key.
    pub fn recv_key(&self) -> KeyInfo {
        self.rx.key()
    }

    /// Sends one frame; see [`SendHalf::send`].
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), MeshError> {
        self.tx.send(payload).await
    }

    /// Receives one frame; see [`RecvHalf::recv`]. A fatal error also shuts our writing side,
    /// so the peer sees the connection drop at once.
    pub async fn recv(&mut self) -> Result<Vec<u8>, MeshError> {
        let result = self.rx.recv().await;
        if self.rx.shared.dead.load(Ordering::Acquire) {
            self.tx.abort().await;
        }
        result
    }

    /// Sends a close frame and shuts our writing side; see [`SendHalf::close`].
    pub async fn close(&mut self) -> Result<(), MeshError> {
        self.tx.close().await
    }

    /// Splits into a sending and a receiving half that can live in different tasks.
    pub fn split(self) -> (SendHalf<S>, RecvHalf<S>) {
        (self.tx, self.rx)
    }
}

/// The sending half of a [`Channel`].
pub struct SendHalf<S> {
    w: WriteHalf<S>,
    sealer: Sealer,
    buf: Vec<u8>,
    shared: Arc<Shared>,
    info: Arc<SessionInfo>,
    /// A send was cancelled half-way: the stream holds a partial frame.
    in_flight: bool,
    /// `close` was called.
    closed: bool,
    /// The stream's writing side is shut.
    shut: bool,
}

impl<S: AsyncWrite> SendHalf<S> {
    /// What was authenticated and negotiated.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// The largest payload [`SendHalf::send`] accepts: the smaller of our and the peer's
    /// `max_frame`.
    pub fn max_payload(&self) -> usize {
        self.sealer.max_payload()
    }

    /// The current sending key.
    pub fn key(&self) -> KeyInfo {
        KeyInfo {
            epoch: self.sealer.dir.epoch(),
            id: self.sealer.dir.key_id(),
        }
    }

    /// Seals `payload` into one frame and writes it. Waits while the stream is full
    /// (back-pressure: nothing is queued). A payload over [`SendHalf::max_payload`] is refused
    /// with [`MeshError::FrameTooLarge`] and the channel stays usable; any other error is fatal.
    ///
    /// Cancelling a send half-way drops the channel (the next call returns
    /// [`MeshError::Dropped`]).
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), MeshError> {
        self.send_many(std::slice::from_ref(&payload)).await
    }

    /// Sends several frames with one write: the same as calling [`SendHalf::send`] for each, but
    /// cheaper. Nothing is sent if any payload is too large.
    pub async fn send_many<P: AsRef<[u8]>>(&mut self, payloads: &[P]) -> Result<(), MeshError> {
        self.ready().await?;
        let max = self.sealer.max_payload();
        if let Some(p) = payloads.iter().find(|p| p.as_ref().len() > max) {
            return Err(MeshError::FrameTooLarge {
                len: p.as_ref().len(),
                max,
            });
        }
        self.buf.clear();
        let now = Instant::now();
        for p in payloads {
            if let Err(e) = self.sealer.seal_into(p.as_ref(), false, now, &mut self.buf) {
                // Sizes were checked, so this is nonce exhaustion: the key state moved on.
                self.abort().await;
                return Err(e);
            }
        }
        self.write_buf().await
    }

    /// Sends a close frame (the peer's `recv` then returns [`MeshError::Closed`]) and shuts the
    /// writing side. Later sends return [`MeshError::Closed`].
    pub async fn close(&mut self) -> Result<(), MeshError> {
        self.ready().await?;
        self.buf.clear();
        self.sealer
            .seal_into(&[], true, Instant::now(), &mut self.buf)?;
        self.write_buf().await?;
        self.closed = true;
        self.shut = true;
        self.w.shutdown().await?;
        Ok(())
    }

    async fn ready(&mut self) -> Result<(), MeshError> {
        if self.in_flight || self.shared.dead.load(Ordering::Acquire) {
            self.abort().await;
            return Err(MeshError::Dropped);
        }
        if self.closed {
            return Err(MeshError::Closed);
        }
        Ok(())
    }

    async fn write_buf(&mut self) -> Result<(), MeshError> {
        self.in_flight = true;
        let result = async {
            self.w.write_all(&self.buf).await?;
            self.w.flush().await
        }
        .await;
        if let Err(e) = result {
            self.shared.dead.store(true, Ordering::Release);
            return Err(MeshError::Io(e));
        }
        self.in_flight = false;
        Ok(())
    }

    /// Marks the channel dead and shuts the stream's writing side (best effort).
    async fn abort(&mut self) {
        self.shared.dead.store(true, Ordering::Release);
        if !self.shut {
            self.shut = true;
            let _ = self.w.shutdown().await;
        }
    }
}

/// The receiving half of a [`Channel`].
pub struct RecvHalf<S> {
    r: ReadHalf<S>,
    opener: Opener,
    /// Bytes read but not yet consumed are `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    shared: Arc<Shared>,
    info: Arc<SessionInfo>,
    closed: bool,
}

impl<S: AsyncRead> RecvHalf<S> {
    /// What was authenticated and negotiated.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// The current receiving key.
    pub fn key(&self) -> KeyInfo {
        KeyInfo {
            epoch: self.opener.dir.epoch(),
            id: self.opener.dir.key_id(),
        }
    }

    /// Receives the next frame's payload.
    ///
    /// [`MeshError::Closed`] after the peer's close frame. Any other error is fatal: a frame that
    /// fails authentication, a length over `max_frame` (refused before anything is allocated
    /// for it), a malformed frame or an end of stream without a close frame; every later call
    /// then returns [`MeshError::Dropped`], and the sending half stops too.
    ///
    /// Cancel safe: dropping the future loses no data.
    pub async fn recv(&mut self) -> Result<Vec<u8>, MeshError> {
        let (a, b) = self.next_frame().await?;
        Ok(self.buf[a..b].to_vec())
    }

    /// Like [`RecvHalf::recv`] but appends the payload to `out` (no allocation when `out` has
    /// room) and returns its length.
    pub async fn recv_into(&mut self, out: &mut Vec<u8>) -> Result<usize, MeshError> {
        let (a, b) = self.next_frame().await?;
        out.extend_from_slice(&self.buf[a..b]);
        Ok(b - a)
    }

    async fn next_frame(&mut self) -> Result<(usize, usize), MeshError> {
        if self.closed {
            return Err(MeshError::Closed);
        }
        if self.shared.dead.load(Ordering::Acquire) {
            return Err(MeshError::Dropped);
        }
        match self.read_frame().await {
            Ok(range) => Ok(range),
            Err(MeshError::Closed) => {
                self.closed = true;
                Err(MeshError::Closed)
            }
            Err(e) => {
                self.shared.dead.store(true, Ordering::Release);
                Err(e)
            }
        }
    }

    async fn read_frame(&mut self) -> Result<(usize, usize), MeshError>
    where
        S: AsyncRead,
    {
        loop {
            let avail = self.end - self.start;
            let need = if avail >= LEN_BYTES {
                let mut len = [0u8; LEN_BYTES];
                len.copy_from_slice(&self.buf[self.start..self.start + LEN_BYTES]);
                // Checked against max_frame before the buffer grows for it.
                let body_len = self.opener.check_len(u32::from_be_bytes(len))?;
                let total = LEN_BYTES + body_len;
                if avail >= total {
                    let body_start = self.start + LEN_BYTES;
                    let body = &mut self.buf[body_start..self.start + total];
                    let opened = self.opener.open_in_place(len, body)?;
                    self.start += total;
                    if opened.close {
                        return Err(MeshError::Closed);
                    }
                    return Ok((body_start + FLAGS_BYTES, body_start + body_len - TAG_BYTES));
                }
                total
            } else {
                LEN_BYTES
            };
            self.make_room(need);
            let n = self.r.read(&mut self.buf[self.end..]).await?;
            if n == 0 {
                let what = if avail == 0 {
                    "the peer ended the stream without a close frame"
                } else {
                    "the stream ended inside a frame"
                };
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, what).into());
            }
            self.end += n;
        }
    }

    /// Makes `buf[start..]` able to hold `need` bytes, with free space after `end`.
    fn make_room(&mut self, need: usize) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.start < need.max(READ_CHUNK / 2) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
    }
}

#[cfg(test)]
pub(crate) async fn connect_with(
    io: tokio::io::DuplexStream,
    identity: &MeshIdentity,
    config: &MeshConfig,
    entropy: Entropy,
) -> Result<Channel<tokio::io::DuplexStream>, MeshError> {
    initiate(io, identity, config, &|_: &PeerKey| true, entropy).await
}

#[cfg(test)]
pub(crate) async fn accept_with(
    io: tokio::io::DuplexStream,
    identity: &MeshIdentity,
    config: &MeshConfig,
    entropy: Entropy,
) -> Result<Channel<tokio::io::DuplexStream>, MeshError> {
    respond(io, identity, config, &|_: &PeerKey| true, entropy).await
}
