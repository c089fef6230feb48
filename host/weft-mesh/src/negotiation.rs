//! What the two sides agreed on, and the downgrade report callers record.

use std::fmt;

use crate::identity::PeerKey;

/// The outcome of the `kem_supported` negotiation, as both sides authenticated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiation {
    /// We offered ML-KEM-768.
    pub local_kem: bool,
    /// The peer offered ML-KEM-768.
    pub peer_kem: bool,
    /// Our policy requires a post-quantum session.
    pub local_require_pq: bool,
    /// The peer announced that its policy requires a post-quantum session.
    pub peer_require_pq: bool,
    /// The session keys include an ML-KEM-768 shared secret (both offered it).
    pub pq: bool,
    /// The largest payload the peer accepts.
    pub peer_max_frame: u32,
}

/// A classical (Noise-only) session: a fact to record on the chain, whether it was accepted
/// (then [`crate::Channel::downgrade`] returns it) or refused
/// ([`crate::MeshError::DowngradeRefused`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Downgrade {
    /// The authenticated peer.
    pub peer: PeerKey,
    /// We offered ML-KEM-768.
    pub local_kem: bool,
    /// The peer offered ML-KEM-768.
    pub peer_kem: bool,
}

impl fmt::Display for Downgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yn = |b: bool| if b { "yes" } else { "no" };
        write!(
            f,
            "classical session with {} (ML-KEM offered: local {}, peer {})",
            self.peer,
            yn(self.local_kem),
            yn(self.peer_kem)
        )
    }
}
