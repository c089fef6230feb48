//! Static node identities: an X25519 keypair per node, and the peer keys a trust store holds.

use std::fmt;
use std::str::FromStr;

use curve25519_dalek::montgomery::MontgomeryPoint;
use zeroize::Zeroizing;

use crate::MeshError;

/// A node's static X25519 public key: what the cluster trust store lists and what admission
/// checks.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey([u8; 32]);

impl PeerKey {
    /// Wraps raw key bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        PeerKey(bytes)
    }

    /// The raw key bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(text: &str) -> Result<Self, MeshError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .map_err(|e| MeshError::Protocol(format!("peer key is not 32 bytes of hex: {e}")))?;
        Ok(PeerKey(bytes))
    }

    /// Parses a key Noise reported; snow only yields 32-byte X25519 keys.
    pub(crate) fn from_slice(bytes: &[u8]) -> Result<Self, MeshError> {
        <[u8; 32]>::try_from(bytes)
            .map(PeerKey)
            .map_err(|_| MeshError::Protocol("remote static key is not 32 bytes".into()))
    }
}

impl fmt::Display for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerKey({})", self.to_hex())
    }
}

impl FromStr for PeerKey {
    type Err = MeshError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PeerKey::from_hex(s)
    }
}

/// A node's static X25519 keypair, used as the Noise `s` key.
#[derive(Clone)]
pub struct MeshIdentity {
    secret: Zeroizing<[u8; 32]>,
    public: PeerKey,
}

impl MeshIdentity {
    /// A fresh keypair from the operating system's random source.
    pub fn generate() -> Result<Self, MeshError> {
        let mut secret = Zeroizing::new([0u8; 32]);
        getrandom::fill(secret.as_mut()).map_err(|e| MeshError::Entropy(e.to_string()))?;
        Ok(Self::from_secret_bytes(*secret))
    }

    /// Rebuilds an identity from its 32 secret bytes (any 32 bytes are a valid X25519 secret:
    /// they are clamped, as RFC 7748 and Noise do).
    pub fn from_secret_bytes(secret: [u8; 32]) -> Self {
        let public = MontgomeryPoint::mul_base_clamped(secret).to_bytes();
        MeshIdentity {
            secret: Zeroizing::new(secret),
            public: PeerKey(public),
        }
    }

    /// The 32 secret bytes, to persist the identity. Handle with care.
    pub fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The public key peers will see and admit.
    pub fn public_key(&self) -> PeerKey {
        self.public
    }

    /// The public key as 64 hex characters.
    pub fn public_key_hex(&self) -> String {
        self.public.to_hex()
    }
}

impl fmt::Debug for MeshIdentity {
    // Never print the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshIdentity")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7748_public_key() {
        // RFC 7748 section 6.1, Alice.
        let sk = hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
            .unwrap();
        let id = MeshIdentity::from_secret_bytes(sk.try_into().unwrap());
        assert_eq!(
            id.public_key_hex(),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        assert_eq!(
            PeerKey::from_hex(&id.public_key_hex()).unwrap(),
            id.public_key()
        );
        assert!(!format!("{id:?}").contains("77076d0a"));
    }
}
