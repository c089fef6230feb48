//! Per-node transport policy and limits.

use std::time::Duration;

use crate::MeshError;

/// Largest payload a frame may ever carry, whatever the configuration says (16 MiB).
pub const MAX_FRAME_LIMIT: usize = 16 * 1024 * 1024;

/// Largest rekey interval in messages; keeps the 64-bit nonce far from wrapping.
pub const MAX_REKEY_MESSAGES: u64 = 1 << 60;

/// How a node runs its mesh connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshConfig {
    /// Refuse any session that is not post-quantum (hybrid). The cluster policy.
    pub require_pq: bool,
    /// Offer ML-KEM-768 in the handshake (`kem_supported`).
    pub kem_supported: bool,
    /// Largest frame payload, in bytes, this node accepts (and sends). At most
    /// [`MAX_FRAME_LIMIT`]. Each side announces its limit; a sender uses the smaller of the two.
    pub max_frame: usize,
    /// A sender switches to the next key after this many frames under one key.
    pub rekey_after_messages: u64,
    /// A sender switches to the next key on its first frame after this much time under one key.
    pub rekey_after: Duration,
    /// The whole handshake must finish within this time.
    pub handshake_timeout: Duration,
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            require_pq: true,
            kem_supported: true,
            max_frame: 1024 * 1024,
            rekey_after_messages: 1 << 20,
            rekey_after: Duration::from_secs(120),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl MeshConfig {
    /// Checks the limits; `connect`/`accept` call it first.
    pub fn validate(&self) -> Result<(), MeshError> {
        if self.require_pq && !self.kem_supported {
            return Err(MeshError::InvalidConfig(
                "require_pq needs kem_supported".into(),
            ));
        }
        if self.max_frame == 0 || self.max_frame > MAX_FRAME_LIMIT {
            return Err(MeshError::InvalidConfig(format!(
                "max_frame must be in 1..={MAX_FRAME_LIMIT}, got {}",
                self.max_frame
            )));
        }
        if self.rekey_after_messages == 0 || self.rekey_after_messages > MAX_REKEY_MESSAGES {
            return Err(MeshError::InvalidConfig(format!(
                "rekey_after_messages must be in 1..=2^60, got {}",
                self.rekey_after_messages
            )));
        }
        if self.rekey_after.is_zero() || self.handshake_timeout.is_zero() {
            return Err(MeshError::InvalidConfig(
                "rekey_after and handshake_timeout must be positive".into(),
            ));
        }
        Ok(())
    }
}
