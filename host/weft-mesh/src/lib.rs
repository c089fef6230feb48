//! The Weft cluster mesh transport.
//!
//! Two nodes talk over one byte stream (TCP, or anything `AsyncRead + AsyncWrite`):
//!
//! 1. a `Noise_XX_25519_ChaChaPoly_BLAKE2s` handshake authenticates both nodes' static X25519
//!    keys ([`MeshIdentity`]), which the cluster trust store must admit;
//! 2. the handshake payloads carry the `kem_supported` negotiation and, when both offer it, an
//!    ML-KEM-768 encapsulation key and ciphertext;
//! 3. the traffic keys are HKDF-SHA256(salt = Noise handshake hash, IKM = Noise split keys ||
//!    ML-KEM shared secret), so they are hybrid and bound to the whole transcript;
//! 4. a [`Channel`] then carries length-prefixed ChaCha20-Poly1305 frames with implicit nonces,
//!    a maximum size, back-pressure and rekeying.
//!
//! `docs/mesh.md` specifies the protocol byte for byte; `tests/vectors/mesh-v1.json` holds test
//! vectors for another implementation.
//!
//! ```no_run
//! # async fn demo() -> Result<(), weft_mesh::MeshError> {
//! use weft_mesh::{accept, connect, MeshConfig, MeshIdentity};
//! let (a, b) = (MeshIdentity::generate()?, MeshIdentity::generate()?);
//! let (pa, pb) = (a.public_key(), b.public_key());
//! let config = MeshConfig::default();
//! let (x, y) = tokio::io::duplex(64 * 1024);
//! let (ca, cb) = tokio::join!(
//!     connect(x, &a, &config, move |k| *k == pb),
//!     accept(y, &b, &config, move |k| *k == pa),
//! );
//! let (mut ca, mut cb) = (ca?, cb?);
//! assert!(ca.pq());
//! ca.send(b"hello").await?;
//! assert_eq!(cb.recv().await?, b"hello");
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod channel;
mod config;
mod error;
mod frame;
mod handshake;
mod identity;
mod keys;
mod negotiation;
#[cfg(test)]
mod vectors;

pub use channel::{accept, connect, Channel, KeyInfo, RecvHalf, SendHalf, SessionInfo};
pub use config::{MeshConfig, MAX_FRAME_LIMIT, MAX_REKEY_MESSAGES};
pub use error::MeshError;
pub use handshake::{NOISE_PARAMS, PROLOGUE};
pub use identity::{MeshIdentity, PeerKey};
pub use negotiation::{Downgrade, Negotiation};
