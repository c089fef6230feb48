//! Signed checkpoints: periodic Ed25519 attestations of the chain head.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::event::Reader;

/// Domain tag of the checkpoint signing message.
pub const CHECKPOINT_DOMAIN: &[u8] = b"weft-chain-checkpoint-v1";
/// Encoded checkpoint payload size.
pub const CHECKPOINT_LEN: usize = 8 + 4 + 8 + 32 + 8 + 32 + 64;

/// A signed statement "event `seq` of chain `chain_id` has hash `event_hash`".
/// Because the hash covers all earlier events, one valid checkpoint
/// authenticates the whole prefix with the chain's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Checkpoint counter: 0, 1, 2... in file order (gaps mean a deleted one).
    pub id: u64,
    /// Chain the checkpoint belongs to.
    pub chain_id: u32,
    /// Seq of the last event covered.
    pub seq: u64,
    /// Hash of event `seq`, which covers every event before it.
    pub event_hash: [u8; 32],
    /// When the checkpoint was written, nanoseconds since the UNIX epoch.
    pub timestamp_ns: u64,
    /// Ed25519 key that made `signature`.
    pub public_key: [u8; 32],
    /// Ed25519 signature over [`signing_message`].
    pub signature: [u8; 64],
}

/// Bytes signed by a checkpoint (see docs/chain-format.md).
pub fn signing_message(
    chain_id: u32,
    id: u64,
    seq: u64,
    event_hash: &[u8; 32],
    timestamp_ns: u64,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 60);
    m.extend_from_slice(CHECKPOINT_DOMAIN);
    m.extend_from_slice(&chain_id.to_le_bytes());
    m.extend_from_slice(&id.to_le_bytes());
    m.extend_from_slice(&seq.to_le_bytes());
    m.extend_from_slice(event_hash);
    m.extend_from_slice(&timestamp_ns.to_le_bytes());
    m
}

impl Checkpoint {
    /// Creates and signs a checkpoint.
    pub fn sign(
        key: &SigningKey,
        id: u64,
        chain_id: u32,
        seq: u64,
        event_hash: [u8; 32],
        timestamp_ns: u64,
    ) -> Self {
        let msg = signing_message(chain_id, id, seq, &event_hash, timestamp_ns);
        Checkpoint {
            id,
            chain_id,
            seq,
            event_hash,
            timestamp_ns,
            public_key: key.verifying_key().to_bytes(),
            signature: key.sign(&msg).to_bytes(),
        }
    }

    /// Verifies the signature with `key` (not the embedded key, which is only
    /// informational: trust comes from the caller's key).
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), String> {
        if self.public_key != key.to_bytes() {
            return Err(format!(
                "checkpoint {} signed by {} but chain key is {}",
                self.id,
                hex::encode(self.public_key),
                hex::encode(key.to_bytes())
            ));
        }
        let msg = signing_message(
            self.chain_id,
            self.id,
            self.seq,
            &self.event_hash,
            self.timestamp_ns,
        );
        key.verify_strict(&msg, &Signature::from_bytes(&self.signature))
            .map_err(|_| format!("checkpoint {} signature invalid", self.id))
    }

    /// Fixed-size payload encoding.
    pub fn encode(&self) -> [u8; CHECKPOINT_LEN] {
        let mut b = [0u8; CHECKPOINT_LEN];
        b[0..8].copy_from_slice(&self.id.to_le_bytes());
        b[8..12].copy_from_slice(&self.chain_id.to_le_bytes());
        b[12..20].copy_from_slice(&self.seq.to_le_bytes());
        b[20..52].copy_from_slice(&self.event_hash);
        b[52..60].copy_from_slice(&self.timestamp_ns.to_le_bytes());
        b[60..92].copy_from_slice(&self.public_key);
        b[92..156].copy_from_slice(&self.signature);
        b
    }

    /// Parses a checkpoint segment payload; does not check the signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() != CHECKPOINT_LEN {
            return Err(format!(
                "checkpoint payload is {} bytes, expected {CHECKPOINT_LEN}",
                bytes.len()
            ));
        }
        let mut r = Reader { buf: bytes, pos: 0 };
        Ok(Checkpoint {
            id: r.u64()?,
            chain_id: r.u32()?,
            seq: r.u64()?,
            event_hash: r.hash()?,
            timestamp_ns: r.u64()?,
            public_key: r.array()?,
            signature: r.array()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_roundtrip_and_tamper() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let cp = Checkpoint::sign(&key, 3, 1, 99, [5u8; 32], 1234);
        cp.verify(&key.verifying_key()).unwrap();
        let enc = cp.encode();
        assert_eq!(Checkpoint::decode(&enc).unwrap(), cp);
        for i in 0..CHECKPOINT_LEN {
            let mut b = enc;
            b[i] ^= 0x40;
            let t = Checkpoint::decode(&b).unwrap();
            assert!(t.verify(&key.verifying_key()).is_err(), "byte {i}");
        }
        let other = SigningKey::from_bytes(&[8u8; 32]);
        assert!(cp.verify(&other.verifying_key()).is_err());
    }
}
