//! Typed errors of the mesh transport.

use std::time::Duration;

use crate::identity::PeerKey;
use crate::negotiation::Downgrade;

/// Everything that can go wrong while establishing or using a mesh channel.
///
/// Errors marked *fatal* drop the connection: every later `send`/`recv` on the same channel
/// returns [`MeshError::Dropped`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeshError {
    /// The peer authenticated with a static key that the admission check refused.
    #[error("untrusted peer static key {key}")]
    UntrustedPeer {
        /// The peer's static X25519 public key, for the record.
        key: PeerKey,
    },

    /// Our policy requires a post-quantum session but the peer offered no ML-KEM.
    #[error("post-quantum required, refused a classical session: {downgrade}")]
    DowngradeRefused {
        /// What was negotiated, for the record.
        downgrade: Downgrade,
    },

    /// The peer requires a post-quantum session and we do not support ML-KEM.
    #[error("the peer{} requires a post-quantum session and ML-KEM is disabled here", fmt_opt_key(.peer))]
    PeerRequiresPq {
        /// The peer's static key when it was already known.
        peer: Option<PeerKey>,
    },

    /// A frame exceeds the maximum payload size. Fatal when received, not when sending.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// Payload length the frame claims (or the caller passed).
        len: usize,
        /// The limit in force.
        max: usize,
    },

    /// A handshake message or a frame failed authentication (tampered, replayed, reordered or
    /// forged). Fatal.
    #[error("authentication failed during the {stage}")]
    Authentication {
        /// `"handshake"` or `"transport"`.
        stage: &'static str,
    },

    /// The handshake did not finish within [`crate::MeshConfig::handshake_timeout`].
    #[error("handshake timed out after {after:?}")]
    Timeout {
        /// The configured limit.
        after: Duration,
    },

    /// The peer closed the connection in the middle of the handshake (it may have refused us).
    #[error("the peer closed the connection during the handshake")]
    HandshakeClosed,

    /// The peer closed the channel cleanly with a close frame.
    #[error("the peer closed the channel")]
    Closed,

    /// The channel was dropped after an earlier fatal error (or a cancelled send).
    #[error("the channel was dropped after an earlier failure")]
    Dropped,

    /// The peer sent a malformed message (wrong length, unknown version, invalid key...). Fatal.
    #[error("protocol violation: {0}")]
    Protocol(String),

    /// The configuration is unusable.
    #[error("invalid mesh configuration: {0}")]
    InvalidConfig(String),

    /// The operating system's random source failed.
    #[error("random source failed: {0}")]
    Entropy(String),

    /// A Noise operation failed for a reason other than authentication.
    #[error("noise: {0}")]
    Noise(snow::Error),

    /// The underlying stream failed (including an abrupt end of stream). Fatal.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

fn fmt_opt_key(key: &Option<PeerKey>) -> String {
    key.map(|k| format!(" {k}")).unwrap_or_default()
}

impl MeshError {
    /// Maps a snow error from the handshake: a failed decryption is an authentication failure.
    pub(crate) fn from_noise(err: snow::Error) -> Self {
        match err {
            snow::Error::Decrypt => MeshError::Authentication { stage: "handshake" },
            other => MeshError::Noise(other),
        }
    }
}
